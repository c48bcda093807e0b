"""Tables of the metadata store (SQLAlchemy 2 declarative models).

The schema is created and changed only by the Alembic migrations in
``sandbox/persistence/migrations``; a test checks the models and the migrations agree.
"""

from __future__ import annotations

from datetime import datetime, UTC
from typing import Any

from sqlalchemy import (
    JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))            # owner | operator | reviewer | admin
    display_name: Mapped[str] = mapped_column(String(200), default="")
    organisation: Mapped[str] = mapped_column(String(200), default="")
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)   # sharing
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)   # deactivation revokes them all
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    publisher: Mapped[str] = mapped_column(String(300), default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    classification: Mapped[str] = mapped_column(String(16))  # open | conditional | restricted
    privacy_unit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    number: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    policy_hash: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(500))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)       # the parsed policy with column types
    row_counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON)      # owner-only report
    # public tables only: rows and the most rows sharing one value, per column (bounds join fan-out)
    public_stats: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # the published digest: plain content hash for open data, keyed by an instance secret otherwise
    digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DatasetTable(Base):
    __tablename__ = "dataset_tables"
    __table_args__ = (UniqueConstraint("version_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"))
    name: Mapped[str] = mapped_column(String(64))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    rows_per_unit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_rows_per_unit: Mapped[int] = mapped_column(Integer, default=1)
    max_groups_per_unit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    row_count: Mapped[int] = mapped_column(BigInteger, default=0)


class DatasetColumn(Base):
    __tablename__ = "dataset_columns"
    __table_args__ = (UniqueConstraint("table_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    table_id: Mapped[int] = mapped_column(ForeignKey("dataset_tables.id"))
    name: Mapped[str] = mapped_column(String(64))
    column_class: Mapped[str] = mapped_column(String(16))
    type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    min: Mapped[float | None] = mapped_column(Float, nullable=True)
    max: Mapped[float | None] = mapped_column(Float, nullable=True)
    domain: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)


class DatasetSource(Base):
    """One source, one dataset: the dataset each version's content hash belongs to.
    The primary key makes a second dataset with the same data impossible, even
    when two registrations race."""

    __tablename__ = "dataset_sources"
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ClassificationChange(Base):
    """A request to move a dataset to a less protected class, which a reviewer
    decides; the dataset keeps its class until it is approved."""

    __tablename__ = "classification_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    from_class: Mapped[str] = mapped_column(String(16))
    to_class: Mapped[str] = mapped_column(String(16))
    version_number: Mapped[int | None] = mapped_column(Integer, nullable=True)   # the version whose policy asked
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")   # pending | approved | rejected | superseded
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Licence(Base):
    __tablename__ = "licences"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    purpose: Mapped[str] = mapped_column(Text)
    tables: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)   # None: every table
    status: Mapped[str] = mapped_column(String(16), default="active")      # active | revoked
    approval_mode: Mapped[str] = mapped_column(String(16), default="automatic")
    accounting: Mapped[str] = mapped_column(String(8), default="approx")   # approx | zcdp
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    granted_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoke_reason: Mapped[str] = mapped_column(Text, default="")


class Budget(Base):
    """Counters of one budget level. Reservations and charges change them with
    conditional UPDATEs, so concurrent writers can never push them past the total."""

    __tablename__ = "budgets"
    __table_args__ = (UniqueConstraint("scope", "dataset_id", "licence_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))          # dataset | licence
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    licence_id: Mapped[int | None] = mapped_column(ForeignKey("licences.id"), nullable=True)
    epsilon: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float)
    max_epsilon_per_query: Mapped[float] = mapped_column(Float)
    max_delta_per_query: Mapped[float] = mapped_column(Float)
    min_epsilon_per_query: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    max_queries: Mapped[int | None] = mapped_column(Integer, nullable=True)     # None: no cap
    queries_used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # reserved or charged
    spent_epsilon: Mapped[float] = mapped_column(Float, default=0.0)
    spent_delta: Mapped[float] = mapped_column(Float, default=0.0)
    reserved_epsilon: Mapped[float] = mapped_column(Float, default=0.0)
    reserved_delta: Mapped[float] = mapped_column(Float, default=0.0)
    # zCDP levels (licences with accounting = "zcdp"): ρ composes across queries and is
    # converted to (ε, δ) at rho_delta for display; δ beyond rho_delta pays partition selection.
    rho: Mapped[float | None] = mapped_column(Float, nullable=True)
    rho_delta: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    spent_rho: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    reserved_rho: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    budget_id: Mapped[int] = mapped_column(ForeignKey("budgets.id"))
    run_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(16))           # reserve | charge | cancel
    epsilon: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class QueryRun(Base):
    __tablename__ = "query_runs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licences.id"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    sql: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))         # reserved | charged | failed
    epsilon: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    licence_id: Mapped[int] = mapped_column(ForeignKey("licences.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(Text, default="")
    # draft | submitted | returned | approved | released | rejected | withdrawn | cancelled
    state: Mapped[str] = mapped_column(String(16), default="draft")
    withdraw_reason: Mapped[str] = mapped_column(Text, default="")
    review_round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")   # bumped by submit and edits
    attestation: Mapped[str] = mapped_column(Text, default="", server_default="")
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProductVersion(Base):
    __tablename__ = "product_versions"
    __table_args__ = (UniqueConstraint("product_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    number: Mapped[int] = mapped_column(Integer)
    run_ids: Mapped[list[Any]] = mapped_column(JSON)
    chart_hints: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dataset_version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"), nullable=True)
    epsilon: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    delta: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    checks: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)   # automatic checks at submission
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    signature: Mapped[str | None] = mapped_column(Text, nullable=True)
    path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProductReview(Base):
    __tablename__ = "product_reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(String(16))       # approve | return | reject
    reason: Mapped[str] = mapped_column(Text, default="")
    round: Mapped[int] = mapped_column(Integer, default=1)
    version_number: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DataRequest(Base):
    __tablename__ = "data_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    contact: Mapped[str] = mapped_column(String(300))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open")   # open | accepted | declined | closed
    reason: Mapped[str] = mapped_column(Text, default="")
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), nullable=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    filed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditHead(Base):
    """One row: the sequence number and hash of the newest audit record. Writers
    lock it, so records are appended one at a time across processes."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)      # the signing key in force
    signature: Mapped[str | None] = mapped_column(String(128), nullable=True)  # over {seq, hash, key_id}


class AuditRecord(Base):
    """One record of the chain. ``format`` 1: written before records named who
    acted on whose behalf and their signing key (hash and signature as in
    docs/audit.md, "Records of format 1"); 2: the current format."""

    __tablename__ = "audit_records"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    format: Mapped[int] = mapped_column(Integer, default=2)
    time: Mapped[str] = mapped_column(String(40))           # ISO 8601 UTC, as hashed
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    on_behalf_of: Mapped[str | None] = mapped_column(String(64), nullable=True)   # hashed
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    payload_digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)   # None in format 1 (the first key)
    signature: Mapped[str] = mapped_column(String(128))


class SigningKeyEntry(Base):
    """The signing-key history: each key, the first record it signed and, once
    rotated out, the last. Every rotation is also a ``key.rotate`` record."""

    __tablename__ = "signing_keys"
    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))         # SHA-256 of the raw public key, hex
    public_key_pem: Mapped[str] = mapped_column(Text)
    from_seq: Mapped[int] = mapped_column(BigInteger)
    until_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[str] = mapped_column(String(40))
    retired_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


class PublishedHead(Base):
    """A signed chain head as it was published (transparency register,
    disclosure report); ``audit verify`` checks the chain against each."""

    __tablename__ = "audit_published_heads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(128))
    time: Mapped[str] = mapped_column(String(40))
    place: Mapped[str] = mapped_column(String(32))        # register | disclosure_report


# --- sharing between departments (the third supply mode) -------------------------

class Organisation(Base):
    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))           # department | company
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SharingSetting(Base):
    """A dataset's effective [sharing] section: set at registration, changed only
    by a reviewer's approval of a later version's section."""

    __tablename__ = "sharing_settings"
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    version_number: Mapped[int] = mapped_column(Integer)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SharingChange(Base):
    __tablename__ = "sharing_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    version_number: Mapped[int] = mapped_column(Integer)
    previous: Mapped[dict[str, Any]] = mapped_column(JSON)
    proposed: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")   # pending | approved | rejected | superseded
    proposed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ShareRequest(Base):
    """A department's request for a dataset's columns; once granted, the grant."""

    __tablename__ = "share_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    columns: Mapped[list[Any]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(Text)
    basis: Mapped[str] = mapped_column(Text)
    condition: Mapped[str] = mapped_column(Text, default="")          # the declared condition it meets
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | granted | rejected | revoked
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    refusal_condition: Mapped[str] = mapped_column(Text, default="")
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoke_reason: Mapped[str] = mapped_column(Text, default="")
    last_version: Mapped[int | None] = mapped_column(Integer, nullable=True)   # newest version pulled
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ShareDelivery(Base):
    """One pull or exact query under a grant: the usage figures are sums of these."""

    __tablename__ = "share_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("share_requests.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    provider_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    recipient_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    version_number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))             # pull | query
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    audit_seq: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ShareObjection(Base):
    __tablename__ = "share_objections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("share_requests.id"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    version_number: Mapped[int] = mapped_column(Integer)
    filed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    columns: Mapped[list[Any]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")   # open | corrected | explained
    answer: Mapped[str] = mapped_column(Text, default="")
    correction_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ShareDemand(Base):
    """An on-demand request for data no one lists, addressed to the department
    that should hold it, with a tracked response deadline."""

    __tablename__ = "share_demands"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requester_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(Text)
    basis: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")   # open | listed | declined
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), nullable=True)
    answer: Mapped[str] = mapped_column(Text, default="")
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

class Notification(Base):
    """The notification outbox: one event for one recipient, written in the
    transaction of the change it reports. ``facts`` hold names, numbers and
    states only, never data values, SQL or free text."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))              # sandbox.notifications.vocabulary.NoticeKind
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)   # e-mail of a requester without account
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    # once-only events (a licence about to expire): a second one with the same key is not written
    dedup_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NotificationDelivery(Base):
    """One channel's delivery of a notification: retried with back-off until
    delivered or out of attempts."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (UniqueConstraint("notification_id", "channel"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id"))
    channel: Mapped[str] = mapped_column(String(16))           # webhook | email
    status: Mapped[str] = mapped_column(String(16), default="pending")   # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str] = mapped_column(String(300), default="")
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class NotificationChannel(Base):
    """A delivery channel and the notifications it covers: those after
    ``since_id``, the last one written before the channel was first configured."""

    __tablename__ = "notification_channels"
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    since_id: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NotificationAddress(Base):
    """Where a user's notices are e-mailed (set by the user)."""

    __tablename__ = "notification_addresses"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    email: Mapped[str] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MasterKeyRecord(Base):
    """A master key that has wrapped the data keys of this instance, by its key id
    (never the key): the current one has no ``retired_at``. ``keys rotate-master``
    retires the old one and adds the new one in the transaction that re-wraps every
    data key, so the store always names the key its wrapped keys open under."""

    __tablename__ = "master_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
