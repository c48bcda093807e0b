"""Registering datasets from their policy files, and reading them back.

What is published about a version is its number, date and :func:`published_digest`
(the plain content hash for open data, a keyed digest otherwise). Exact row counts
and the quality report are the owner's alone. Public tables' statistics
(:func:`public_stats_of`) are exact: they describe public data.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from queries.errors import Conflict, Forbidden, NotFound, PolicyError, SandboxError
from queries.model import PublicTableStats
from queries.policy import DatasetPolicy, parse_policy
from queries.vocabulary import Classification
from sandbox import audit
from sandbox.audit import Actor
from sandbox.instance import Instance
from sandbox.ledger import BudgetStatus
from sandbox.notifications import outbox as notices
from sandbox.operations.masterkey import current_wrapping
from sandbox.persistence.models import (
    Budget, Dataset, DatasetColumn, DatasetSource, DatasetTable, DatasetVersion, User,
)
from sandbox.persistence.store import existing_row
from sandbox.vocabulary import SYSTEM, Role

log = logging.getLogger("dp_sandbox.datasets")


@dataclass(frozen=True)
class RegisteredVersion:
    """What registering a version tells the owner (or admin) who registered it."""

    dataset: str
    number: int
    content_hash: str
    row_counts: dict[str, int]
    created: bool           # False when the same data and policy were already registered
    digest: str             # what the catalog publishes (see published_digest)
    classification: str = ""    # the dataset's class after this version
    # a less protected class declared by this version's policy waits for a reviewer (sandbox.classification)
    classification_change: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def policy_hash(policy: DatasetPolicy) -> str:
    return hashlib.sha256(json.dumps(policy.to_dict(), sort_keys=True, default=str).encode()).hexdigest()


def read_policy_file(path: Path) -> DatasetPolicy:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"policy file {path} does not exist", code="policy_not_found") from None
    except UnicodeDecodeError:
        raise PolicyError(f"policy file {path} is not UTF-8 text") from None
    return parse_policy(text)


def add_dataset(inst: Instance, actor: Actor, policy_path: Path,
                progress: Callable[[str, int], None] | None = None, *,
                version_of: str | None = None) -> RegisteredVersion:
    """Ingest a policy's files as a new version of its dataset (of ``version_of``,
    an existing dataset, when given). Nothing is registered unless everything succeeds.

    One source, one dataset: data whose content hash already belongs to another
    dataset is refused (``duplicate_source``, naming it); the owner adds it as a
    new version of that dataset instead, whose budget carries on. A policy that
    declares a less protected class than the dataset's files a request for a
    reviewer; a more protected one applies at once (:mod:`sandbox.classification`)."""
    from sandbox.classification import check_open_policy

    policy = read_policy_file(policy_path)
    if version_of is not None and version_of != policy.name:
        policy = replace(policy, name=version_of)
    check_open_policy(policy)
    registered = _add_version(inst, actor, policy, policy_path, progress, version_of)
    if registered.created:
        _spark_copy(inst, policy, registered)
    return registered


def _spark_copy(inst: Instance, policy: DatasetPolicy, registered: RegisteredVersion) -> None:
    """A version of a dataset whose engine is Spark is stored as encrypted Parquet
    too (``sandbox.execution.spark_store``), now rather than by its first run. When
    Spark cannot start here the version is registered all the same, and its first
    Spark run makes the copy (or is refused, before reserving, naming what is missing)."""
    from queries.vocabulary import Engine
    from sandbox.execution.engine import engine_of
    from sandbox.execution.storage import unwrap_key

    if engine_of(policy, inst.settings.engine) is not Engine.SPARK:
        return
    with inst.store.read() as s:
        ds = s.execute(select(Dataset).where(Dataset.name == registered.dataset)).scalar_one()
        v = s.execute(select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id,
                                                   DatasetVersion.number == registered.number)).scalar_one()
        path, wrapped = Path(v.path), v.wrapped_key
    try:
        inst.engine(Engine.SPARK).prepare(path, unwrap_key(wrapped, inst.master_key))
    except Exception as exc:    # Spark missing or failing: the cause's code or class, never a message
        cause = exc.code if isinstance(exc, SandboxError) else type(exc).__name__
        log.warning("version %s of %s has no Parquet copy yet: %s", registered.number, registered.dataset, cause)


def _add_version(inst: Instance, actor: Actor, policy: DatasetPolicy, policy_path: Path,
                 progress: Callable[[str, int], None] | None, version_of: str | None) -> RegisteredVersion:
    from sqlalchemy.exc import IntegrityError

    from sandbox.classification import change_class, less_protected
    from sandbox.execution.storage import ingest_version

    with inst.store.read() as s:
        owner = s.execute(select(User).where(User.name == policy.owner)).scalar_one_or_none()
        if owner is None or owner.role != Role.OWNER:
            raise PolicyError(f"'{policy.owner}' is not a user with the owner role", key="dataset.owner")
        if actor.role not in (Role.ADMIN, SYSTEM) and actor.name != policy.owner:
            raise Forbidden("only the dataset's owner or an admin can register it")
        existing = s.execute(select(Dataset).where(Dataset.name == policy.name)).scalar_one_or_none()
        if existing is None and version_of is not None:
            raise NotFound(f"no dataset named '{version_of}'", code="unknown_dataset", dataset=version_of)
        if existing is not None and existing.owner_id != owner.id:
            raise Forbidden(f"dataset '{policy.name}' belongs to another owner")
    dest = inst.home / "data" / policy.name
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    stored = ingest_version(policy, policy_path.parent, dest, inst.master_key, progress=progress)
    typed = policy.with_types(stored.types)
    phash = policy_hash(typed)
    try:
        with inst.store.transaction() as s:
            claimed = _source_owner(s, policy.name, stored.content_hash)
            if claimed is not None:
                raise _duplicate(claimed)
            ds = s.execute(select(Dataset).where(Dataset.name == policy.name)).scalar_one_or_none()
            if ds is not None:
                latest = _latest_version(s, ds.id)
                if latest is not None and latest.content_hash == stored.content_hash and latest.policy_hash == phash:
                    _discard(stored.path, latest.path)
                    refresh_digests(s, inst, ds)
                    return RegisteredVersion(ds.name, latest.number, latest.content_hash, latest.row_counts, False,
                                             published_digest(inst, latest, ds.classification), ds.classification)
            if ds is None:
                ds = Dataset(name=policy.name, title=policy.title, description=policy.description,
                             publisher=policy.publisher, owner_id=owner.id,
                             classification=policy.classification, privacy_unit=policy.privacy_unit)
                s.add(ds)
                s.flush()
                audit.append(s, inst.signer, actor, "dataset.register", "dataset", ds.id,
                             {"name": ds.name, "classification": ds.classification})
            else:
                ds.title, ds.description, ds.publisher = policy.title, policy.description, policy.publisher
                lowering = less_protected(policy.classification, ds.classification)
                # a class that waits for a reviewer keeps the unit queries are accounted by
                ds.privacy_unit = (policy.privacy_unit or ds.privacy_unit) if lowering else policy.privacy_unit
            source = s.get(DatasetSource, stored.content_hash)
            if source is None:
                s.add(DatasetSource(content_hash=stored.content_hash, dataset_id=ds.id))
                s.flush()
            elif source.dataset_id != ds.id:        # claimed since this transaction began
                raise _duplicate(existing_row(s, Dataset, source.dataset_id).name)
            _set_dataset_budget(s, inst, actor, ds, policy)
            number = (s.execute(select(func.max(DatasetVersion.number)).where(DatasetVersion.dataset_id == ds.id))
                      .scalar_one() or 0) + 1
            version = DatasetVersion(
                dataset_id=ds.id, number=number, content_hash=stored.content_hash, policy_hash=phash,
                path=str(stored.path), wrapped_key=current_wrapping(s, inst, stored.wrapped_key), policy=json.loads(json.dumps(typed.to_dict(), default=str)),
                row_counts=dict(stored.row_counts), quality=json.loads(json.dumps(stored.quality, default=str)),
                public_stats=stored.public_stats, created_by=owner.id if actor.name == policy.owner else owner.id,
            )
            s.add(version)
            s.flush()
            refresh_digests(s, inst, ds)
            for table in typed.tables:
                t = DatasetTable(version_id=version.id, name=table.name, public=table.public,
                                 rows_per_unit=table.rows_per_unit, max_rows_per_unit=table.max_rows_per_unit,
                                 max_groups_per_unit=table.max_groups_per_unit,
                                 row_count=int(stored.row_counts.get(table.name, 0)))
                s.add(t)
                s.flush()
                for c in table.columns:
                    s.add(DatasetColumn(table_id=t.id, name=c.name, column_class=c.cls, type=c.type,
                                        min=c.min, max=c.max, domain=list(c.domain) if c.domain else None))
            audit.append(s, inst.signer, actor, "dataset.version", "dataset_version", version.id, {
                "dataset": ds.name, "number": number, "digest": version.digest,
                "policy_hash": phash, "row_counts": dict(stored.row_counts),
            })
            change = None
            if policy.classification != ds.classification:
                change = change_class(s, inst, actor, ds, policy.classification,
                                      f"version {number}'s policy declares {policy.classification}", version=number)
            from sandbox.sharing.grants import on_new_version

            on_new_version(s, inst, actor, ds, version, typed)
            notices.on_new_version(s, inst.settings, version)
            return RegisteredVersion(ds.name, number, stored.content_hash, dict(stored.row_counts), True,
                                     published_digest(inst, version, ds.classification), ds.classification,
                                     change.change_id if change is not None else None)
    except IntegrityError:
        Path(stored.path).unlink(missing_ok=True)
        # a registration of the same data under another name committed first
        with inst.store.read() as s:
            claimed = _source_owner(s, policy.name, stored.content_hash)
        if claimed is None:
            raise
        raise _duplicate(claimed) from None
    except BaseException:
        Path(stored.path).unlink(missing_ok=True)
        raise


def _source_owner(s: Session, name: str, content_hash: str | None) -> str | None:
    """The other dataset (not ``name``) the content hash belongs to, if any."""
    if content_hash is None:
        return None
    src = s.get(DatasetSource, content_hash)
    if src is None:
        return None
    other = existing_row(s, Dataset, src.dataset_id).name
    return other if other != name else None


def _duplicate(other: str) -> Conflict:
    return Conflict(f"this data is already a version of dataset '{other}' (one source, one dataset); "
                    f"add it as a new version of '{other}' instead (dataset add POLICY --version-of {other})",
                    code="duplicate_source", dataset=other)


def published_digest(inst: Instance, v: DatasetVersion, classification: str | None = None) -> str:
    """The hash a version publishes (catalog, listings, CLI, API, manifests): its
    content hash only when the version was registered as open *and* its dataset is
    open now (``classification``, read from the version's session if not given);
    otherwise the keyed digest of :func:`sandbox.execution.storage.version_digest`. Computed
    here, so it is right for versions whose stored ``digest`` is missing (registered
    before digests existed) or stale (the dataset was reclassified since)."""
    from sandbox.execution.storage import version_digest

    if classification is None:
        session = object_session(v)
        if session is None:
            raise ValueError("a detached version's classification must be given")
        classification = existing_row(session, Dataset, v.dataset_id).classification
    registered_as = (v.policy or {}).get("classification", classification)
    kind = "open" if classification == Classification.OPEN and registered_as == "open" else "keyed"
    return version_digest(v.content_hash, kind, inst.master_key, digest_key=inst.digest_key)


def refresh_digests(s: Session, inst: Instance, ds: Dataset) -> None:
    """Store every version's published digest: it is missing on versions
    registered before digests existed and changes when the dataset is reclassified."""
    for v in s.execute(select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id)).scalars():
        digest = published_digest(inst, v, ds.classification)
        if v.digest != digest:
            v.digest = digest
    s.flush()


def public_stats_of(version: DatasetVersion, inst: Instance | None = None) -> dict[str, PublicTableStats]:
    """Exact statistics of the version's public tables, by table: ``rows`` and, per
    column, ``max_rows_per_value`` (the most rows sharing one non-NULL value).

    Versions registered before statistics existed have none stored. With ``inst``
    they are computed once by the instance's worker pool on the encrypted version
    and set on ``version``, so the caller's session stores them when it commits.
    Without it they come back empty: the planner then treats the public tables as
    having no statistics and refuses the joins it cannot bound."""
    stats = version.public_stats
    if stats is None and inst is not None:
        stats = _compute_public_stats(inst, version)
        version.public_stats = stats
    return typed_public_stats(stats or {})


def typed_public_stats(stats: dict[str, Any]) -> dict[str, PublicTableStats]:
    return {t: PublicTableStats(rows=int(v["rows"]), max_rows_per_value=dict(v["max_rows_per_value"]))
            for t, v in stats.items()}


def _compute_public_stats(inst: Instance, version: DatasetVersion) -> dict[str, Any]:
    from sandbox.execution.storage import public_stats_from_row, public_stats_query, unwrap_key

    sql, labels = public_stats_query(version_policy(version))
    if sql is None:
        return {}
    data_key = unwrap_key(version.wrapped_key, inst.master_key)
    row = inst.pool.execute(Path(version.path), data_key, sql, {}, fingerprint="public-stats").to_pylist()[0]
    return public_stats_from_row(labels, [row[f"s{i}"] for i in range(len(labels))])


def _discard(new_path: Path, kept_path: str) -> None:
    if Path(new_path).resolve() != Path(kept_path).resolve():
        Path(new_path).unlink(missing_ok=True)


def _set_dataset_budget(s: Session, inst: Instance, actor: Actor, ds: Dataset, policy: DatasetPolicy) -> None:
    if policy.budget is None:
        return
    b = s.execute(select(Budget).where(Budget.scope == "dataset", Budget.dataset_id == ds.id)).scalar_one_or_none()
    pb = policy.budget
    # the floor on one query's ε: the policy's, else the instance default (never above the cap)
    floor = pb.min_epsilon_per_query if pb.min_epsilon_per_query is not None else \
        min(float(inst.settings.min_epsilon_per_query), pb.max_epsilon_per_query)
    # budget.set records every total, at creation too, so the budget can be recomputed from the chain
    payload = {"epsilon": pb.epsilon, "delta": pb.delta, "max_epsilon_per_query": pb.max_epsilon_per_query,
               "max_delta_per_query": pb.max_delta_per_query, "min_epsilon_per_query": floor}
    if b is None:
        s.add(Budget(scope="dataset", dataset_id=ds.id, epsilon=pb.epsilon, delta=pb.delta,
                     max_epsilon_per_query=pb.max_epsilon_per_query, max_delta_per_query=pb.max_delta_per_query,
                     min_epsilon_per_query=floor))
        s.flush()
        audit.append(s, inst.signer, actor, "budget.set", "dataset", ds.id, payload)
    elif (b.epsilon, b.delta, b.max_epsilon_per_query, b.max_delta_per_query, b.min_epsilon_per_query) != (
            pb.epsilon, pb.delta, pb.max_epsilon_per_query, pb.max_delta_per_query, floor):
        b.epsilon, b.delta = pb.epsilon, pb.delta
        b.max_epsilon_per_query, b.max_delta_per_query = pb.max_epsilon_per_query, pb.max_delta_per_query
        b.min_epsilon_per_query = floor
        audit.append(s, inst.signer, actor, "budget.set", "dataset", ds.id, payload)
    s.flush()


def _latest_version(s: Session, dataset_id: int) -> DatasetVersion | None:
    return s.execute(select(DatasetVersion).where(DatasetVersion.dataset_id == dataset_id)
                     .order_by(DatasetVersion.number.desc()).limit(1)).scalar_one_or_none()


def get_dataset(s: Session, name: str) -> Dataset:
    ds = s.execute(select(Dataset).where(Dataset.name == name)).scalar_one_or_none()
    if ds is None:
        raise NotFound(f"no dataset named '{name}'", code="unknown_dataset", dataset=name)
    return ds


def latest_version(s: Session, ds: Dataset) -> DatasetVersion:
    v = _latest_version(s, ds.id)
    if v is None:
        raise SandboxError(f"dataset '{ds.name}' has no version yet", code="no_version", status=409, dataset=ds.name)
    return v


def get_version(s: Session, ds: Dataset, number: int | None) -> DatasetVersion:
    if number is None:
        return latest_version(s, ds)
    v = s.execute(select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id,
                                               DatasetVersion.number == number)).scalar_one_or_none()
    if v is None:
        raise NotFound(f"dataset '{ds.name}' has no version {number}", code="unknown_version", dataset=ds.name,
                       version=number)
    return v


@dataclass(frozen=True, slots=True)
class DatasetListing:
    """One dataset in the catalog: public metadata only (no hash, no row count)."""

    name: str
    title: str
    classification: str
    publisher: str
    owner: str | None
    versions: int               # how many versions are registered
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "classification": self.classification,
                "publisher": self.publisher, "owner": self.owner, "versions": self.versions,
                "description": self.description}


@dataclass(frozen=True, slots=True)
class ColumnView:
    """A column as its policy declares it: class, type, bounds and public domain."""

    name: str
    cls: str
    type: str | None
    min: Any = None
    max: Any = None
    domain: tuple[Any, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "class": self.cls, "type": self.type, "min": self.min, "max": self.max,
                "domain": list(self.domain) if self.domain else None}


@dataclass(frozen=True, slots=True)
class TableView:
    name: str
    public: bool
    columns: tuple[ColumnView, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "public": self.public, "columns": [c.to_dict() for c in self.columns]}


@dataclass(frozen=True, slots=True)
class VersionView:
    """A registered version: its number, published digest and date; for the owner
    (``row_counts`` not None) also its exact row counts and quality report."""

    number: int
    digest: str
    created_at: str
    row_counts: dict[str, int] | None = None
    quality: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"number": self.number, "digest": self.digest, "created_at": self.created_at}
        if self.row_counts is not None:
            out["row_counts"], out["quality"] = self.row_counts, self.quality
        return out


@dataclass(frozen=True, slots=True)
class DatasetView:
    """A dataset's public metadata, the newest version's tables and the dataset budget."""

    name: str
    title: str
    description: str
    publisher: str
    classification: str
    privacy_unit: str | None
    owner: str
    versions: tuple[VersionView, ...]
    tables: tuple[TableView, ...]
    budget: BudgetStatus | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "description": self.description, "publisher": self.publisher,
            "classification": self.classification, "privacy_unit": self.privacy_unit, "owner": self.owner,
            "versions": [v.to_dict() for v in self.versions], "tables": [t.to_dict() for t in self.tables],
            "budget": self.budget.to_dict() if self.budget else None,
        }


def list_datasets(inst: Instance) -> list[DatasetListing]:
    """Public metadata of every dataset (no hash, no row count)."""
    with inst.store.read() as s:
        out = []
        for ds in s.execute(select(Dataset).order_by(Dataset.name)).scalars():
            v = _latest_version(s, ds.id)
            owner = s.get(User, ds.owner_id)
            out.append(DatasetListing(name=ds.name, title=ds.title, classification=ds.classification,
                                      publisher=ds.publisher, owner=owner.name if owner else None,
                                      versions=v.number if v else 0, description=ds.description))
        return out


def show_dataset(inst: Instance, name: str, *, include_quality: bool = False) -> DatasetView:
    """Public metadata of a dataset, each version with its published ``digest``
    (never the content hash of non-open data); ``include_quality`` (for its owner
    only) adds the exact row counts and the quality report."""
    from sandbox.ledger import status_of

    with inst.store.read() as s:
        ds = get_dataset(s, name)
        versions = s.execute(select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id)
                             .order_by(DatasetVersion.number)).scalars().all()
        latest = versions[-1] if versions else None
        policy = DatasetPolicy.from_dict(latest.policy) if latest else None
        budget = s.execute(select(Budget).where(Budget.scope == "dataset", Budget.dataset_id == ds.id)).scalar_one_or_none()
        return DatasetView(
            name=ds.name, title=ds.title, description=ds.description, publisher=ds.publisher,
            classification=ds.classification, privacy_unit=ds.privacy_unit,
            owner=existing_row(s, User, ds.owner_id).name,
            versions=tuple(VersionView(v.number, published_digest(inst, v, ds.classification), v.created_at.isoformat(),
                                       *((dict(v.row_counts or {}), v.quality) if include_quality else ()))
                           for v in versions),
            tables=tuple(TableView(t.name, t.public, tuple(
                ColumnView(c.name, c.cls, c.type, c.min, c.max, tuple(c.domain) if c.domain else None)
                for c in t.columns)) for t in (policy.tables if policy else ())),
            budget=status_of(budget) if budget else None,
        )


def version_policy(v: DatasetVersion) -> DatasetPolicy:
    return DatasetPolicy.from_dict(v.policy)
