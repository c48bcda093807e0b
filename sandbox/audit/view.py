"""Reading the audit trail, and recording reads in it.

**Who sees what.** An admin sees every record. A dataset owner sees every record
about their own datasets: the datasets and their versions, classification
changes, licences, query runs (with the run's SQL, ε and operator), templates and
query requests, products, data requests and sharing, and the reads recorded
below. Anyone else is refused (``audit_not_allowed``).

**Filters** (all optional, combined with AND): ``actor`` (the person who acted,
or on whose behalf), ``action`` (exact, or a family: ``query.*``), ``object``
(``TYPE`` or ``TYPE:ID``), ``dataset`` (every record about that dataset), and a
time range ``since`` (inclusive) … ``until`` (exclusive; a date alone means the
end of that day). Times are ISO 8601; a time without an offset is UTC. Newest
records come first.

**Reads are records too**, each written in its own transaction: downloads of open
data and of product files, previews, and refused queries (the refusal's code and
the SQL, written after the refused transaction has rolled back, so a refusal
still charges nothing). A read is recorded only once it is allowed, and the
record carries no value from the data: names, SQL, ε, formats and codes.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import String, and_, cast, false, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from queries.errors import Forbidden, InvalidInput, SandboxError
from sandbox import audit
from sandbox.audit import Actor
from sandbox.instance import Instance
from sandbox.persistence.approval_models import QueryRequest, QueryTemplate
from sandbox.persistence.models import (
    AuditRecord, ClassificationChange, DataRequest, Dataset, DatasetVersion, Licence, Product, QueryRun,
    SharingChange, ShareDemand, ShareObjection, ShareRequest, User,
)
from sandbox.vocabulary import ReadAction, Role

log = logging.getLogger("dp_sandbox.audit")

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100
MAX_SQL = 20_000          # characters of SQL kept in a read's record

# The object types whose rows name a dataset: a record about one of these objects
# is about that dataset.
DATASET_OBJECTS: dict[str, Any] = {
    "dataset_version": DatasetVersion,
    "classification_change": ClassificationChange,
    "licence": Licence,
    "query_run": QueryRun,
    "template": QueryTemplate,
    "query_request": QueryRequest,
    "product": Product,
    "data_request": DataRequest,
    "sharing_change": SharingChange,
    "share_request": ShareRequest,
    "share_objection": ShareObjection,
    "share_demand": ShareDemand,
}

_OBJECT = re.compile(r"^([a-z][a-z_]{0,31})(?::([A-Za-z0-9_.-]{1,64}))?$")
_ACTION = re.compile(r"^[a-z][a-z_]*(\.[a-z_]+)*(\.\*)?$")


# --- filters ------------------------------------------------------------------------

def parse_time(text: str, *, end: bool = False) -> str:
    """An ISO date or date-time as the audit records' time form (UTC, microseconds).
    A date alone is the start of that day, or with ``end`` the start of the next."""
    value = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            day = date.fromisoformat(value)
            moment = datetime.combine(day + timedelta(days=1) if end else day, time(), tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput(f"'{value[:40]}' is not an ISO date or date-time (2026-03-01 or 2026-03-01T09:30:00Z)",
                           code="bad_time", value=value[:40]) from None
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which records to list (every field optional; see the module's docstring)."""

    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    dataset: str | None = None
    since: str | None = None            # in the records' time form (parse_time)
    until: str | None = None

    @classmethod
    def parse(cls, *, actor: str | None = None, action: str | None = None, object: str | None = None,
              dataset: str | None = None, since: str | None = None, until: str | None = None) -> AuditFilter:
        """The filter from its words as a person types them; bad input is an
        ``InvalidInput`` naming what is wrong."""
        object_type = object_id = None
        if object:
            m = _OBJECT.match(object.strip())
            if m is None:
                raise InvalidInput("--object is TYPE or TYPE:ID (for example licence:3 or query_run)",
                                   code="bad_object_filter")
            object_type, object_id = m.group(1), m.group(2)
        if action and not _ACTION.match(action.strip()):
            raise InvalidInput("the action is a word like query.run, or a family like query.*",
                               code="bad_action_filter")
        start = parse_time(since) if since else None
        stop = parse_time(until, end=True) if until else None
        if start is not None and stop is not None and start >= stop:
            raise InvalidInput("the time range is empty: since must be before until", code="bad_time_range")
        return cls(actor=(actor or "").strip() or None, action=(action or "").strip() or None,
                   object_type=object_type, object_id=object_id, dataset=(dataset or "").strip() or None,
                   since=start, until=stop)


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"the limit is 1 to {MAX_LIMIT}", code="bad_limit", limit=limit)
    return limit


# --- the entries --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One record as people read it: who, on whose behalf, what, on which object
    (and its dataset), when, with the record's payload; a query run's record also
    shows the run's SQL."""

    seq: int
    time: str
    actor: str
    role: str
    on_behalf_of: str | None
    action: str
    object_type: str
    object_id: str
    dataset: str | None
    payload: Mapping[str, Any] = field(default_factory=dict)
    sql: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "actor": self.actor, "role": self.role,
                "on_behalf_of": self.on_behalf_of, "action": self.action, "object_type": self.object_type,
                "object_id": self.object_id, "dataset": self.dataset, "payload": dict(self.payload),
                "sql": self.sql}


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of entries, newest first, and how many records match in all."""

    entries: tuple[AuditEntry, ...]
    total: int
    limit: int
    offset: int

    def to_dict(self) -> dict[str, Any]:
        return {"entries": [e.to_dict() for e in self.entries], "total": self.total,
                "limit": self.limit, "offset": self.offset}


def _dataset_scope(ids: ColumnElement[bool] | Any) -> ColumnElement[bool]:
    """Records about the datasets selected by ``ids`` (a subquery of dataset ids)."""
    clauses = [and_(AuditRecord.object_type == "dataset",
                    AuditRecord.object_id.in_(select(cast(Dataset.id, String)).where(Dataset.id.in_(ids))))]
    for object_type, model in DATASET_OBJECTS.items():
        clauses.append(and_(AuditRecord.object_type == object_type,
                            AuditRecord.object_id.in_(select(cast(model.id, String))
                                                      .where(model.dataset_id.in_(ids)))))
    return or_(*clauses)


def _conditions(s: Session, viewer: Actor, filt: AuditFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if viewer.role == Role.ADMIN:
        pass
    elif viewer.role == Role.OWNER:
        owner = s.execute(select(User.id).where(User.name == viewer.name)).scalar_one_or_none()
        where.append(_dataset_scope(select(Dataset.id).where(Dataset.owner_id == owner)) if owner is not None
                     else false())
    else:
        raise Forbidden("only admins and dataset owners can read the audit trail", code="audit_not_allowed")
    if filt.dataset:
        where.append(_dataset_scope(select(Dataset.id).where(Dataset.name == filt.dataset)))
    if filt.actor:
        behalf = getattr(AuditRecord, "on_behalf_of", None)
        where.append(or_(AuditRecord.actor == filt.actor, behalf == filt.actor) if behalf is not None
                     else AuditRecord.actor == filt.actor)
    if filt.action:
        if filt.action.endswith(".*"):
            where.append(AuditRecord.action.startswith(filt.action[:-1], autoescape=True))
        else:
            where.append(AuditRecord.action == filt.action)
    if filt.object_type:
        where.append(AuditRecord.object_type == filt.object_type)
    if filt.object_id:
        where.append(AuditRecord.object_id == filt.object_id)
    if filt.since:
        where.append(AuditRecord.time >= filt.since)
    if filt.until:
        where.append(AuditRecord.time < filt.until)
    return where


def _dataset_names(s: Session, records: list[AuditRecord]) -> dict[tuple[str, str], str]:
    """The dataset each record is about, by (object type, object id)."""
    names: dict[tuple[str, str], str] = {}
    wanted: dict[str, set[str]] = {}
    for r in records:
        if r.object_type == "dataset" or r.object_type in DATASET_OBJECTS:
            wanted.setdefault(r.object_type, set()).add(r.object_id)
    for object_type, ids in wanted.items():
        if object_type == "dataset":
            rows = s.execute(select(cast(Dataset.id, String), Dataset.name)
                             .where(cast(Dataset.id, String).in_(ids))).all()
        else:
            model = DATASET_OBJECTS[object_type]
            rows = s.execute(select(cast(model.id, String), Dataset.name).join(Dataset, Dataset.id == model.dataset_id)
                             .where(cast(model.id, String).in_(ids))).all()
        names.update({(object_type, str(oid)): name for oid, name in rows})
    return names


def list_audit(inst: Instance, viewer: Actor, filt: AuditFilter | None = None, *, limit: int = DEFAULT_LIMIT,
               offset: int = 0) -> AuditPage:
    """The records ``viewer`` may see that match ``filt``, newest first."""
    filt = filt or AuditFilter()
    check_limit(limit)
    if offset < 0:
        raise InvalidInput("the offset is 0 or more", code="bad_offset")
    with inst.store.read() as s:
        where = _conditions(s, viewer, filt)
        total = s.execute(select(func.count()).select_from(AuditRecord).where(*where)).scalar_one()
        records = list(s.execute(select(AuditRecord).where(*where).order_by(AuditRecord.seq.desc())
                                 .limit(limit).offset(offset)).scalars())
        names = _dataset_names(s, records)
        run_ids = {r.object_id for r in records if r.object_type == "query_run"}
        sqls = {rid: sql for rid, sql in s.execute(select(QueryRun.id, QueryRun.sql)
                                                   .where(QueryRun.id.in_(run_ids))).all()} if run_ids else {}
        entries = tuple(AuditEntry(
            seq=r.seq, time=r.time, actor=r.actor, role=r.role, on_behalf_of=getattr(r, "on_behalf_of", None),
            action=r.action, object_type=r.object_type, object_id=r.object_id,
            dataset=names.get((r.object_type, r.object_id)) or _payload_dataset(r),
            payload=dict(r.payload or {}),
            sql=sqls.get(r.object_id) if r.object_type == "query_run" else _payload_sql(r),
        ) for r in records)
    return AuditPage(entries, int(total), limit, offset)


def _payload_dataset(r: AuditRecord) -> str | None:
    value = (r.payload or {}).get("dataset")
    return value if isinstance(value, str) else None


def _payload_sql(r: AuditRecord) -> str | None:
    value = (r.payload or {}).get("sql")
    return value if isinstance(value, str) else None


# --- recording reads ----------------------------------------------------------------

def record_read(inst: Instance, actor: Actor, action: ReadAction, object_type: str, object_id: Any,
                payload: Mapping[str, Any]) -> None:
    """Append the record of a read, in its own transaction."""
    with inst.store.transaction() as s:
        audit.append(s, inst.signer, actor, action, object_type, object_id, dict(payload))


def record_dataset_read(inst: Instance, actor: Actor, action: ReadAction, dataset: str,
                        payload: Mapping[str, Any]) -> None:
    """Append the record of a read of the dataset named ``dataset`` (its object is
    the dataset's id, so that its owner sees it)."""
    with inst.store.transaction() as s:
        ds_id = s.execute(select(Dataset.id).where(Dataset.name == dataset)).scalar_one()
        audit.append(s, inst.signer, actor, action, "dataset", ds_id, {"dataset": dataset, **payload})


def _sql(sql: str | None) -> str | None:
    return sql[:MAX_SQL] if sql is not None else None


def _record_query_read(inst: Instance, user_name: str, dataset: str, action: ReadAction,
                       payload: dict[str, Any]) -> None:
    """The record of a preview or a refused query by ``user_name`` on ``dataset``.
    Nothing is recorded when either does not exist (there is no one to account
    for, and nothing of an owner's was read). A failure to record is logged and
    changes nothing the caller sees."""
    try:
        with inst.store.transaction() as s:
            user = s.execute(select(User).where(User.name == user_name)).scalar_one_or_none()
            ds_id = s.execute(select(Dataset.id).where(Dataset.name == dataset)).scalar_one_or_none()
            if user is None or ds_id is None:
                return
            audit.append(s, inst.signer, Actor(user.name, user.role), action, "dataset", ds_id,
                         {"dataset": dataset, **payload})
    except Exception as exc:   # the record's failure is logged by type; the caller's outcome stands
        log.error("could not record %s (dataset %s, operator %s): %s", action, dataset, user_name,
                  type(exc).__name__)


def _as_asked(epsilon: Any) -> float | str | None:
    """ε as the caller gave it: a finite number as it is, anything else (NaN, an
    infinity, text, a flag) as its text, since JSON has no NaN and the store's
    JSON columns refuse it."""
    if epsilon is None or (type(epsilon) in (int, float) and math.isfinite(epsilon)):
        return epsilon
    return str(epsilon)


@contextmanager
def refusals_recorded(inst: Instance, user_name: str, dataset: str, sql: str | None, *,
                      epsilon: float | None = None, template: int | None = None,
                      request: int | None = None) -> Iterator[None]:
    """Around the transaction that plans and reserves a run: a refusal raised in it
    (after that transaction rolled back, so nothing is charged) is recorded as
    ``query.refuse`` with its code and the SQL, then raised unchanged."""
    try:
        yield
    except SandboxError as exc:
        _record_query_read(inst, user_name, dataset, ReadAction.QUERY_REFUSE, {
            "code": exc.code, "sql": _sql(sql), "epsilon": _as_asked(epsilon), "template": template,
            "request": request})
        raise


P = ParamSpec("P")
R = TypeVar("R")


def preview_recorded(fn: Callable[P, R]) -> Callable[P, R]:
    """Record each preview (``query.preview``) of ``fn(inst, operator, dataset, sql,
    *, epsilon=…)``: the SQL, the ε asked for and the outcome (``ok``, the code of
    the budget level that would refuse the run, or the code of the refusal)."""

    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        bound = signature.bind(*args, **kwargs).arguments
        inst, operator, dataset = bound["inst"], str(bound["operator"]), str(bound["dataset"])
        facts = {"sql": _sql(str(bound["sql"])), "epsilon": bound.get("epsilon")}
        try:
            result = fn(*args, **kwargs)
        except SandboxError as exc:
            _record_query_read(inst, operator, dataset, ReadAction.QUERY_PREVIEW, {**facts, "outcome": exc.code})
            raise
        refused = [r.code for r in getattr(result, "refusals", ())]
        _record_query_read(inst, operator, dataset, ReadAction.QUERY_PREVIEW,
                           {**facts, "outcome": refused[0] if refused else "ok"})
        return result

    return wrapper
