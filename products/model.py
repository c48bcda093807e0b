"""Values the product services return: frozen dataclasses with ``to_dict()``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sandbox.vocabulary import FINAL_PRODUCT_STATES, PENDING_PRODUCT_STATES, ProductState

STATES = tuple(ProductState)
PENDING = PENDING_PRODUCT_STATES
FINAL = FINAL_PRODUCT_STATES
DECISIONS = ("approve", "return", "reject")


@dataclass(frozen=True)
class CheckResult:
    """One automatic disclosure check, as reviewers see it."""

    name: str            # small_counts | wide_intervals | partition_selection | differencing | empty_table
    status: str          # pass | warn | fail
    message: str
    table: str | None = None           # the run id the check is about, None for the whole product
    details: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "message": self.message, "table": self.table,
                "details": dict(self.details)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheckResult:
        return cls(d["name"], d["status"], d["message"], d.get("table"), tuple(sorted((d.get("details") or {}).items())))


@dataclass(frozen=True)
class ReviewRecord:
    reviewer: str
    decision: str
    reason: str
    round: int
    version: int
    time: str
    counts: bool        # True when it is a vote of the current round

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VersionInfo:
    number: int
    run_ids: tuple[str, ...]
    dataset_version: int | None
    epsilon: float
    delta: float
    released_at: str | None
    manifest_sha256: str | None
    chart_hints: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_ids"] = list(self.run_ids)
        return d


@dataclass(frozen=True)
class ProductSummary:
    id: int
    title: str
    state: str
    dataset: str
    author: str
    latest_version: int
    released_versions: tuple[int, ...]
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["released_versions"] = list(self.released_versions)
        return d


@dataclass(frozen=True)
class ProductDetail:
    id: int
    title: str
    description: str
    purpose: str
    state: str
    dataset: str
    licence_id: int
    author: str
    created_at: str
    updated_at: str
    review_round: int
    approvals: int                  # distinct approvals counted in the current round
    approvals_required: int
    attestation: str
    withdraw_reason: str
    versions: tuple[VersionInfo, ...]
    reviews: tuple[ReviewRecord, ...]
    checks: tuple[CheckResult, ...]
    tables: tuple[dict[str, Any], ...] = ()   # per run: sql, columns, rows, intervals (for reviewers and public)
    licence_purpose: str = ""       # the purpose the owner granted the licence for (public in the register)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "description": self.description, "purpose": self.purpose,
            "state": self.state, "dataset": self.dataset, "licence_id": self.licence_id, "author": self.author,
            "created_at": self.created_at, "updated_at": self.updated_at, "review_round": self.review_round,
            "approvals": self.approvals, "approvals_required": self.approvals_required,
            "attestation": self.attestation, "withdraw_reason": self.withdraw_reason,
            "versions": [v.to_dict() for v in self.versions], "reviews": [r.to_dict() for r in self.reviews],
            "checks": [c.to_dict() for c in self.checks], "tables": [dict(t) for t in self.tables],
            "licence_purpose": self.licence_purpose,
        }


@dataclass(frozen=True)
class ReleasedPackage:
    product_id: int
    version: int
    path: Path
    files: tuple[str, ...]
    manifest_sha256: str
    key_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"product_id": self.product_id, "version": self.version, "path": str(self.path),
                "files": list(self.files), "manifest_sha256": self.manifest_sha256, "key_id": self.key_id}


@dataclass(frozen=True)
class VerificationReport:
    ok: bool
    path: str
    kind: str | None                 # data_product | disclosure_report
    subject: str | None              # e.g. "product 3 v1"
    key_id: str | None
    files_checked: int
    problems: tuple[str, ...] = ()
    key_source: str = "given"        # given (by the caller) | manifest (embedded in the package itself)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["problems"] = list(self.problems)
        return d


@dataclass(frozen=True)
class DataRequestView:
    id: int
    title: str
    description: str
    dataset: str | None
    status: str
    reason: str
    product_id: int | None
    created_at: str
    decided_at: str | None
    closed_at: str | None
    contact: str | None = None       # None unless the viewer may see it

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.contact is None:
            d.pop("contact")
        return d
