"""Pydantic models of the JSON API: request bodies and query strings (validated
on every request) and responses (validated before they are sent). The OpenAPI
document is generated from them (``web/openapi.py``)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from privacy.vocabulary import Accounting
from products.vocabulary import DataRequestStatus
from queries.vocabulary import Classification
from sandbox.notifications.vocabulary import Channel, DeliveryStatus, NoticeKind
from sandbox.vocabulary import ApprovalMode, LicenceStatus, ProductState, Role, RunStatus

Name = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Response(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- requests -------------------------------------------------------------------

class PageQuery(Request):
    page: int = Field(1, ge=1, le=1_000_000, description="1-based page number")
    per_page: int = Field(50, ge=1, le=200, description="items per page")


class DatasetListQuery(PageQuery):
    q: str | None = Field(None, max_length=200, description="words in the name, title or description")
    classification: Classification | None = None
    publisher: str | None = Field(None, max_length=300)


class LicenceListQuery(PageQuery):
    dataset: str | None = Field(None, max_length=64)
    operator: str | None = Field(None, max_length=64)


class RunListQuery(PageQuery):
    dataset: str | None = Field(None, max_length=64)


class ProductListQuery(PageQuery):
    state: ProductState | None = None
    dataset: str | None = Field(None, max_length=64)


class DownloadQuery(Request):
    format: Literal["csv", "json", "parquet"] = "csv"


class TableDownloadQuery(DownloadQuery):
    table: str | None = Field(None, max_length=64, description="one table of the dataset (default: the first)")


def _all_scope() -> list[Literal["read", "all"]]:
    return ["all"]


class TokenRequest(Request):
    user: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    scopes: list[Literal["read", "all"]] = Field(default_factory=_all_scope, min_length=1, max_length=2)
    days: int = Field(30, ge=1, le=366)


class LicenceGrant(Request):
    dataset: str = Field(min_length=1, max_length=64)
    operator: str = Field(min_length=1, max_length=64)
    epsilon: float = Field(gt=0, le=1000)
    delta: float = Field(0.0, ge=0, lt=1)
    purpose: str = Field(min_length=1, max_length=2000)
    expires: date
    tables: list[str] | None = None
    approval: ApprovalMode = ApprovalMode.AUTOMATIC
    accounting: Accounting = Accounting.APPROX
    max_epsilon_per_query: float | None = Field(None, gt=0, le=1000)
    min_epsilon_per_query: float | None = Field(None, gt=0, le=1000)
    max_queries: int | None = Field(None, ge=1, le=1_000_000)


class LicenceRevoke(Request):
    reason: str = Field("", max_length=2000)


class LicenceExtend(Request):
    until: date = Field(description="the new end date (later than the current one); the licence runs to its end")


class LicenceTopUp(Request):
    epsilon: float = Field(ge=0, le=1000, description="ε added to the licence's budget")
    delta: float = Field(0.0, ge=0, lt=1, description="δ added to the licence's budget")


class AccuracyTarget(Request):
    """Accuracy-first: the smallest ε whose expected 95% half-width on ``output``
    is at most ``half_width`` (capped by the per-query cap)."""

    output: str = Field(min_length=1, max_length=200)
    half_width: float = Field(gt=0, le=1e15)


class QueryRequest(Request):
    dataset: str = Field(min_length=1, max_length=64)
    sql: str = Field(min_length=1, max_length=20_000)
    epsilon: float | None = Field(None, gt=0, le=1000)
    version: int | None = Field(None, ge=1, le=1_000_000)
    target: AccuracyTarget | None = Field(None, description="instead of epsilon: a target half-width for one output")


class ApprovalModeChange(Request):
    mode: ApprovalMode
    reason: str = Field("", max_length=2000)


ParamName = Field(min_length=1, max_length=63, pattern=r"^[a-z][a-z0-9_]*$")
ParamValue = str | int | float


class ParameterDeclaration(Request):
    """A template parameter: an allowed set, or a range ``min``..``max``."""

    name: str = ParamName
    type: Literal["string", "integer", "float", "date"]
    allowed: list[ParamValue] | None = Field(None, min_length=1, max_length=1000)
    min: ParamValue | None = None
    max: ParamValue | None = None


class TemplateProposal(Request):
    dataset: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=300)
    purpose: str = Field(min_length=1, max_length=2000)
    sql: str = Field(min_length=1, max_length=20_000)
    parameters: list[ParameterDeclaration | str] = Field(
        default_factory=list, max_length=20,
        description="declarations, as objects or as name:type:a|b|c / name:type:lo..hi")
    epsilon_per_run: float = Field(gt=0, le=1000)
    max_runs: int | None = Field(None, ge=1, le=1_000_000)
    max_epsilon: float | None = Field(None, gt=0, le=100_000)
    confidential: bool = False


class TemplateListQuery(PageQuery):
    dataset: str | None = Field(None, max_length=64)
    licence_id: int | None = Field(None, ge=1, le=2**31 - 1)
    status: Literal["proposed", "approved", "returned", "rejected", "withdrawn"] | None = None


class TemplateDecision(Request):
    decision: Literal["approve", "return", "reject"]
    reason: str = Field("", max_length=5000)


class TemplateRun(Request):
    params: dict[str, ParamValue] = Field(default_factory=dict, max_length=20)
    version: int | None = Field(None, ge=1, le=1_000_000)


class ApprovalSubmission(Request):
    """A query submitted for approval (licences in ``each`` mode)."""

    dataset: str = Field(min_length=1, max_length=64)
    sql: str = Field(min_length=1, max_length=20_000)
    purpose: str = Field(min_length=1, max_length=2000)
    epsilon: float = Field(gt=0, le=1000)


class ApprovalListQuery(PageQuery):
    dataset: str | None = Field(None, max_length=64)
    status: Literal["pending", "approved", "rejected", "ran"] | None = None


class ApprovalDecision(Request):
    decision: Literal["approve", "reject"]
    reason: str = Field("", max_length=5000)


class DelegateCreate(Request):
    reviewer: str = Field(min_length=1, max_length=64)


class ProductEdit(Request):
    title: str | None = Field(None, min_length=1, max_length=300)
    description: str | None = Field(None, max_length=20_000)
    purpose: str | None = Field(None, max_length=5000)
    run_ids: list[str] | None = Field(None, min_length=1, max_length=50)


class ProductRerun(Request):
    dataset_version: int | None = Field(None, ge=1, le=1_000_000,
                                        description="the dataset version to re-run on (default: the newest)")


class DisclosureRequest(Request):
    year: int = Field(ge=1970, le=9999)


class UserCreate(Request):
    name: str = Field(min_length=2, max_length=64)
    role: Role
    password: str = Field(min_length=8, max_length=1024)
    display_name: str = Field("", max_length=200)
    organisation: str = Field("", max_length=200)


class DraftCreate(Request):
    title: str = Field(min_length=1, max_length=300)
    run_ids: list[str] = Field(min_length=1, max_length=50)
    description: str = Field("", max_length=5000)
    purpose: str = Field("", max_length=2000)


class ReviewDecision(Request):
    decision: Literal["approve", "return", "reject"]
    reason: str = Field("", max_length=5000)


class DataRequestCreate(Request):
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(min_length=1, max_length=5000)
    contact: str = Field(min_length=1, max_length=300)
    dataset: str | None = Field(None, max_length=64)


class DataRequestDecision(Request):
    decision: Literal["accept", "decline", "link"]
    reason: str = Field("", max_length=5000)
    product_id: int | None = Field(None, ge=1, le=2**31 - 1)


class DataRequestListQuery(PageQuery):
    status: DataRequestStatus | None = None


class SubmitRequest(Request):
    attestation: str = Field(min_length=1, max_length=2000)


class WithdrawRequest(Request):
    reason: str = Field(min_length=1, max_length=2000)


class ProductDownloadQuery(Request):
    format: Literal["zip", "csv", "json", "parquet"] = "zip"
    version: int | None = Field(None, ge=1, le=1_000_000)
    table: int = Field(1, ge=1, le=1000, description="1-based table of the product (csv, json, parquet)")


# --- responses ------------------------------------------------------------------

class Meta(Response):
    page: int | None = None
    per_page: int | None = None
    total: int | None = None


class Problem(BaseModel):
    """RFC 7807 problem details, with dp-sandbox's stable ``code``."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    code: str


class TokenOut(Response):
    token: str
    prefix: str
    scopes: list[str]
    days: int


class Me(Response):
    name: str
    role: Role
    display_name: str = ""
    organisation: str = ""


class DatasetSummary(Response):
    name: str
    title: str
    classification: Classification
    publisher: str
    owner: str | None
    versions: int


class DatasetDetail(Response):
    name: str
    title: str
    classification: Classification
    tables: list[dict[str, Any]]
    versions: list[dict[str, Any]]
    budget: dict[str, Any] | None = None


class AddedVersionOut(Response):
    dataset: str
    number: int
    content_hash: str
    row_counts: dict[str, int]
    created: bool
    classification: Classification                  # the dataset's class after this version
    classification_change: int | None = None        # a less protected class waits for a reviewer


class Loss(Response):
    epsilon: float
    delta: float


class BudgetStatusOut(Response):
    scope: str
    total: Loss
    spent: Loss
    reserved: Loss
    remaining: Loss
    per_query: Loss


class LicenceOut(Response):
    id: int
    dataset: str
    operator: str
    purpose: str
    status: LicenceStatus
    expires_at: str
    budget: BudgetStatusOut | None = None


class DatasetBudget(Response):
    dataset: str
    levels: list[dict[str, Any]]


class Created(Response):
    id: int


class Done(Response):
    ok: bool = True


class CheckedQueryOut(Response):
    ok: bool                                   # false when Run would be refused (see refusals)
    dataset_version: int
    licence_id: int
    cost: dict[str, Any]
    plan: dict[str, Any]
    notes: list[str] = []
    refusals: list[dict[str, Any]] = []        # over_query_cap | budget_exceeded | query_cap_reached, per level
    accuracy: list[dict[str, Any]] = []        # expected accuracy of every non-key output
    default_epsilon: float | None = None       # the ε a blank request stands for, when it was blank


class QueryResultOut(Response):
    ok: bool
    run_id: str
    columns: list[str]
    rows: list[list[Any]]
    intervals: list[list[Any]]
    cost: Loss


class RunSummary(Response):
    run_id: str
    status: RunStatus
    epsilon: float
    created_at: str


class RunDetail(Response):
    run_id: str
    dataset: str
    sql: str
    status: RunStatus
    result: dict[str, Any] | None = None


class UserOut(Response):
    name: str
    role: Role
    active: bool


class StateMismatchOut(Response):
    object_type: str
    object_id: str
    field: str
    store: Any = None
    chain: Any = None
    message: str


class StateReportOut(Response):
    """The store reconciled with the audit chain (sandbox.audit.reconcile)."""

    ok: bool
    checked: dict[str, int]
    mismatches: list[StateMismatchOut]


class ChainReportOut(Response):
    ok: bool
    records: int
    first_bad_seq: int | None = None
    reason: str = ""
    state: StateReportOut | None = None


class SettingOut(Response):
    name: str
    value: Any = None
    help: str


class SigningKeyHistoryOut(Response):
    key_id: str
    fingerprint: str
    public_key_pem: str
    algorithm: str
    from_seq: int
    until_seq: int | None = None
    created_at: str
    retired_at: str | None = None


class KeyOut(Response):
    """The signing key in force (its fingerprint: SHA-256 of the raw key, hex) and
    every key the instance has signed with (docs/audit.md)."""

    algorithm: str
    key_id: str
    fingerprint: str
    public_key_pem: str
    history: list[SigningKeyHistoryOut] = []


class ProductSummaryOut(Response):
    id: int
    title: str
    state: ProductState
    dataset: str
    author: str


class ProductOut(Response):
    id: int
    title: str
    state: ProductState
    dataset: str
    author: str
    approvals: int
    approvals_required: int
    versions: list[dict[str, Any]]
    reviews: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    tables: list[dict[str, Any]]


class ReleasedOut(Response):
    product_id: int
    version: int
    manifest_sha256: str
    key_id: str


class TemplateOut(Response):
    id: int
    licence_id: int
    title: str
    purpose: str
    status: str
    epsilon_per_run: float
    max_runs: int | None = None
    max_epsilon: float | None = None
    runs_used: int
    epsilon_used: float
    confidential: bool
    parameters: list[dict[str, Any]]
    decision_reason: str = ""
    sql: str | None = None
    dataset: str | None = None


class ApprovalOut(Response):
    id: int
    licence_id: int
    sql: str
    purpose: str
    epsilon: float
    status: str
    reason: str = ""
    run_id: str | None = None
    dataset: str | None = None


class StatusOut(Response):
    id: int
    status: str


class DisclosureReportOut(Response):
    kind: str
    year: int
    generated_at: str
    agencies: list[dict[str, Any]]
    operators: list[dict[str, Any]]


class DataRequestOut(Response):
    id: int
    title: str
    status: DataRequestStatus


class Document(Response):
    """A JSON document (DCAT-AP JSON-LD catalog, transparency register)."""


class AuditListQuery(PageQuery):
    """Filters of the audit trail (``GET /api/v1/audit``); see docs/audit.md."""

    actor: str | None = Field(None, max_length=64, description="who acted, or on whose behalf")
    action: str | None = Field(None, max_length=64, description="an action (query.run) or a family (query.*)")
    object: str | None = Field(None, max_length=100, description="TYPE or TYPE:ID (licence:3)")
    dataset: str | None = Field(None, max_length=64, description="every record about this dataset")
    since: str | None = Field(None, max_length=40, description="ISO date or date-time, inclusive (UTC)")
    until: str | None = Field(None, max_length=40, description="ISO date-time, exclusive; a date includes its day")


class AuditEntryOut(Response):
    seq: int
    time: str
    actor: str
    role: str
    on_behalf_of: str | None = None
    action: str
    object_type: str
    object_id: str
    dataset: str | None = None
    payload: dict[str, Any]
    sql: str | None = None


class NoticeListQuery(PageQuery):
    """The caller's notifications (``GET /api/v1/notifications``), newest first."""

    lang: Literal["en", "zh"] = Field("en", description="language of each notice's text")


class NoticeDeliveryOut(Response):
    channel: Channel
    status: DeliveryStatus
    attempts: int
    delivered_at: str | None = None


class NoticeOut(Response):
    id: int
    kind: NoticeKind
    audience: str
    object_type: str
    object_id: str
    facts: dict[str, Any]
    text: str
    created_at: str
    deliveries: list[NoticeDeliveryOut]


class NoticeAddressIn(Request):
    email: str | None = Field(None, max_length=300, description="where notices are e-mailed; null stops e-mail")


class NoticeAddressOut(Response):
    user: str
    email: str | None = None
