"""Exact delivery under a sharing grant: opening a grant for use, exact SQL in the
isolated worker, extract batches, and the audited count of every delivery.

Shared data is not noised: a department receives the granted columns as they are.
What keeps it safe is what may leave: only a granted request, held by its
department user, on a dataset that is neither restricted nor ``none``, and only
the granted columns that the dataset *still* declares shareable. Everything runs
in the hardened worker pool with the same resource limits as DP queries; the SQL
the worker runs is emitted from a checked tree (:mod:`queries.shared_sql`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pyarrow as pa
from sqlalchemy import select
from sqlglot import exp

from queries.errors import Forbidden, InvalidInput, NotFound
from queries.shared_sql import SharedScope, check_shared_sql, extract_sql
from sandbox import audit
from sandbox.datasets import get_version, version_policy
from sandbox.instance import Instance
from sandbox.persistence.models import Dataset, DatasetTable, ShareDelivery, ShareRequest, User
from sandbox.persistence.store import existing_row
from sandbox.organisations import organisation_of
from sandbox.sharing.grants import (
    GrantStatus, _get_request, as_utc, department_of, provider_name, status_of, supplied_sharing,
)
from sandbox.users import actor_of, get_user

SHARED_QUERY_MAX_ROWS = 100_000
EXTRACT_BATCH_ROWS = 1_000_000


class DeliveryKind(StrEnum):
    PULL = "pull"
    QUERY = "query"


@dataclass(frozen=True)
class OpenGrant:
    """A usable grant on one dataset version: what may be read, and from where."""

    request_id: int
    user: str
    department: str
    provider: str
    dataset: str
    version: int
    digest: str                 # the version's published digest
    version_path: str
    wrapped_key: bytes = field(repr=False)
    purpose: str
    basis: str
    expires_at: str
    scope: SharedScope
    row_counts: dict[str, int]
    withheld: tuple[str, ...]          # granted columns the dataset no longer shares (never delivered)
    last_version: int | None

    def columns_of(self, table: str) -> tuple[str, ...]:
        return tuple(self.scope.tables.get(table, {}))


_STATUS_REFUSALS = {
    GrantStatus.PENDING: ("grant_pending", "the request has not been granted yet"),
    GrantStatus.REJECTED: ("grant_rejected", "the request was refused"),
    GrantStatus.REVOKED: ("grant_revoked", "the grant was revoked"),
    GrantStatus.EXPIRED: ("grant_expired", "the grant's term has ended"),
}


def open_grant(inst: Instance, user: str, request_id: int, version: int | None = None) -> OpenGrant:
    """The grant, checked for use by ``user`` now, or a specific refusal."""
    with inst.store.read() as s:
        who = get_user(s, user)
        req = _get_request(s, request_id)
        if who.id != req.requester_id:
            raise Forbidden("only the grant's holder can use it", code="not_grantee")
        org = department_of(s, who)
        status = status_of(req)
        if status in _STATUS_REFUSALS:
            code, message = _STATUS_REFUSALS[status]
            raise Forbidden(f"{message} (request {request_id})", code=code)
        ds = existing_row(s, Dataset, req.dataset_id)
        sharing = supplied_sharing(s, ds)
        v = get_version(s, ds, version)
        policy = version_policy(v)
        present = {f"{t.name}.{c.name}": c.type for t in policy.tables for c in t.columns}
        tables: dict[str, dict[str, str | None]] = {}
        withheld = []
        for name in req.columns:
            if name not in sharing.columns:
                withheld.append(name)
                continue
            if name in present:
                table, column = name.split(".", 1)
                tables.setdefault(table, {})[column] = present[name]
        if not tables:
            raise Forbidden("none of the granted columns is shareable in this version", code="column_not_shareable")
        counts = {t.name: int(t.row_count) for t in s.execute(
            select(DatasetTable).where(DatasetTable.version_id == v.id)).scalars()}
        from sandbox.datasets import published_digest

        # the published digest, never the plain content hash: the hash covers columns the
        # department was not granted, and would confirm a guess about them
        return OpenGrant(req.id, who.name, org.name, provider_name(s, ds), ds.name, v.number,
                         published_digest(inst, v, ds.classification),
                         v.path, v.wrapped_key, req.purpose, req.basis, as_utc(req.expires_at).isoformat(),
                         SharedScope(tables), counts, tuple(withheld), req.last_version)


def _data_key(inst: Instance, grant: OpenGrant) -> bytes:
    from sandbox.execution.storage import unwrap_key

    return unwrap_key(grant.wrapped_key, inst.master_key)


@dataclass(frozen=True)
class DeliveryRecord:
    delivery_id: int
    audit_seq: int


def record_delivery(inst: Instance, grant: OpenGrant, kind: DeliveryKind, rows: int,
                    detail: dict[str, Any]) -> DeliveryRecord:
    """Audit and count one pull or query (one transaction). A pull also moves the
    grant's ``last_version`` forward (the base of the next incremental pull)."""
    with inst.store.transaction() as s:
        who = get_user(s, grant.user)
        req = existing_row(s, ShareRequest, grant.request_id)
        ds = existing_row(s, Dataset, req.dataset_id)
        owner = s.get(User, ds.owner_id)
        provider_org = organisation_of(s, owner) if owner else None
        record = audit.append(s, inst.signer, actor_of(who), f"share.{kind.value}", "share_request", req.id, {
            "dataset": ds.name, "version": grant.version, "recipient": who.name, "department": grant.department,
            "purpose": grant.purpose, "rows": int(rows), **detail})
        delivery = ShareDelivery(request_id=req.id, user_id=who.id, dataset_id=ds.id,
                                 provider_org_id=provider_org.id if provider_org else None,
                                 recipient_org_id=req.org_id, version_number=grant.version, kind=kind.value,
                                 rows=int(rows), audit_seq=record.seq)
        s.add(delivery)
        if kind == DeliveryKind.PULL and (req.last_version or 0) < grant.version:
            req.last_version = grant.version
        s.flush()
        return DeliveryRecord(delivery.id, record.seq)


# ---------------------------------------------------------------- exact SQL

def _plain(value: Any) -> Any:
    """DuckDB's exact integer sums arrive as decimals: whole ones become ints."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


@dataclass(frozen=True)
class SharedQueryResult:
    request_id: int
    dataset: str
    version: int
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool
    audit_seq: int

    def to_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "dataset": self.dataset, "version": self.version,
                "columns": list(self.columns), "rows": [list(r) for r in self.rows], "truncated": self.truncated,
                "audit_seq": self.audit_seq}


def run_shared_query(inst: Instance, user: str, request_id: int, sql: str, *,
                     version: int | None = None) -> SharedQueryResult:
    """Exact SQL over the granted columns, read-only in the isolated worker."""
    grant = open_grant(inst, user, request_id, version)
    checked = check_shared_sql(sql, grant.scope, max_rows=SHARED_QUERY_MAX_ROWS)
    table = inst.pool.execute(Path(grant.version_path), _data_key(inst, grant), checked.sql)
    truncated = table.num_rows > SHARED_QUERY_MAX_ROWS
    if truncated:
        table = table.slice(0, SHARED_QUERY_MAX_ROWS)
    rows = tuple(tuple(map(_plain, r)) for r in zip(*(table.column(i).to_pylist() for i in range(table.num_columns))))
    rec = record_delivery(inst, grant, DeliveryKind.QUERY, table.num_rows,
                          {"sql": sql, "columns_read": list(checked.columns), "truncated": truncated})
    return SharedQueryResult(grant.request_id, grant.dataset, grant.version, tuple(table.column_names), rows,
                             truncated, rec.audit_seq)


# ---------------------------------------------------------------- extracts

def extract_table(grant: OpenGrant, table: str | None) -> str:
    tables = sorted(grant.scope.tables)
    if table is None:
        if len(tables) != 1:
            raise InvalidInput(f"the grant covers several tables ({', '.join(tables)}); name one",
                               code="table_required")
        return tables[0]
    if table not in grant.scope.tables:
        raise Forbidden(f"table '{table}' is not part of this grant", code="table_not_granted", table=table)
    return table


def extract_batches(inst: Instance, grant: OpenGrant, table: str, condition: exp.Expr | None,
                    *, batch_rows: int = EXTRACT_BATCH_ROWS) -> Iterator[pa.Table]:
    """The granted columns of ``table`` in batches of storage order, each one query in
    the worker (memory stays flat however large the table). At least one batch is
    yielded, so an empty extract still has its schema."""
    columns = grant.columns_of(table)
    total = grant.row_counts.get(table, 0)
    key = _data_key(inst, grant)
    for start in range(0, max(total, 1), batch_rows):
        yield inst.pool.execute(Path(grant.version_path), key,
                                extract_sql(table, columns, condition, start, start + batch_rows))


def base_grant(inst: Instance, grant: OpenGrant, since_version: int) -> OpenGrant:
    """The same grant opened on an earlier version (the base of an incremental pull)."""
    if since_version >= grant.version:
        raise InvalidInput(f"version {since_version} is not older than version {grant.version}",
                           code="invalid_base_version")
    try:
        return open_grant(inst, grant.user, grant.request_id, since_version)
    except NotFound:
        raise NotFound(f"dataset '{grant.dataset}' has no version {since_version}", code="unknown_version") from None
