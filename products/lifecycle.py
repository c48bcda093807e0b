"""The product lifecycle: draft, edit, submit, review, withdraw; reading products.

States: draft → submitted → (returned → submitted …) → approved → released;
rejected, withdrawn and cancelled are final. Every transition writes one audit
record (actor, time, from, to, reason) in the same transaction. A submission
opens a review round; only approvals of the current round count, so editing a
submitted product (a new round) resets the votes.
"""

from __future__ import annotations

from datetime import datetime, UTC
from typing import Any, overload

from sqlalchemy import select
from sqlalchemy.orm import Session

from products.checks import RunTable, run_checks
from products.model import (
    DECISIONS, FINAL, PENDING, CheckResult, ProductDetail, ProductSummary, ReviewRecord, VersionInfo,
)
from products.reasons import clean_reason, required_reason
from queries.errors import Conflict, Forbidden, InvalidInput, NotFound
from sandbox import audit
from sandbox.audit import SYSTEM
from sandbox.instance import Instance
from sandbox.licences import cancel_pending_products
from sandbox.notifications import outbox as notices
from sandbox.persistence.models import (
    Dataset, DatasetVersion, Licence, Product, ProductReview, ProductVersion, QueryRun, User,
)
from sandbox.persistence.store import existing_row
from sandbox.users import actor_of, get_user
from sandbox.vocabulary import LicenceStatus, ProductState, Role, RunStatus

MAX_TABLES = 50
EDITABLE = (ProductState.DRAFT, ProductState.RETURNED, ProductState.SUBMITTED)


def now() -> datetime:
    return datetime.now(UTC)


@overload
def iso(d: datetime) -> str: ...
@overload
def iso(d: None) -> None: ...
@overload
def iso(d: datetime | None) -> str | None: ...


def iso(d: datetime | None) -> str | None:
    """A time as ISO 8601 text (naive ones are UTC), None for none."""
    if d is None:
        return None
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).isoformat()


def licence_ended(lic: Licence) -> str | None:
    """'revoked' or 'expired' when the licence can no longer carry products."""
    if lic.status != LicenceStatus.ACTIVE:
        return "revoked"
    exp = lic.expires_at if lic.expires_at.tzinfo else lic.expires_at.replace(tzinfo=UTC)
    return "expired" if exp <= now() else None


def cancel_products_of_ended_licences(inst: Instance) -> int:
    """Cancel pending products whose licence expired (revocation cancels at once).
    Called before every submit, review and release."""
    with inst.store.transaction() as s:
        ended = s.execute(select(Licence.id).join(Product, Product.licence_id == Licence.id)
                          .where(Product.state.in_(PENDING), Licence.status == LicenceStatus.ACTIVE,
                                 Licence.expires_at <= now()).distinct()).scalars().all()
        return sum(cancel_pending_products(s, inst, SYSTEM, lid, "licence expired") for lid in ended)


def get_product_row(s: Session, product_id: int) -> Product:
    p = s.get(Product, product_id)
    if p is None:
        raise NotFound(f"no product {product_id}", code="unknown_product")
    return p


def latest_version(s: Session, p: Product) -> ProductVersion:
    return s.execute(select(ProductVersion).where(ProductVersion.product_id == p.id)
                     .order_by(ProductVersion.number.desc()).limit(1)).scalar_one()


def versions_of(s: Session, p: Product) -> list[ProductVersion]:
    return list(s.execute(select(ProductVersion).where(ProductVersion.product_id == p.id)
                          .order_by(ProductVersion.number)).scalars())


def run_table(run: QueryRun, product_id: int | None = None) -> RunTable:
    return RunTable(run.id, run.sql, run.fingerprint, dict(run.plan or {}), dict(run.result or {}),
                    float(run.epsilon), float(run.delta), product_id)


def tables_of(s: Session, run_ids: list[str]) -> list[RunTable]:
    return [run_table(existing_row(s, QueryRun, rid)) for rid in run_ids]


def released_tables(s: Session, dataset_id: int, exclude_product: int | None) -> list[RunTable]:
    """Tables of released versions of other products on the dataset (withdrawn
    ones included: they were public)."""
    rows = s.execute(select(ProductVersion, Product).join(Product, Product.id == ProductVersion.product_id)
                     .where(Product.dataset_id == dataset_id, ProductVersion.released_at.is_not(None))).all()
    out = []
    for v, p in rows:
        if p.id == exclude_product:
            continue
        for rid in v.run_ids:
            run = s.get(QueryRun, rid)
            if run is not None:
                out.append(run_table(run, p.id))
    return out


def _checked_runs(s: Session, user: User, run_ids: list[str]) -> tuple[list[QueryRun], Licence]:
    if not run_ids:
        raise InvalidInput("a product needs at least one query run", code="no_runs")
    if len(run_ids) != len(set(run_ids)):
        raise InvalidInput("a query run is listed twice", code="duplicate_run")
    if len(run_ids) > MAX_TABLES:
        raise InvalidInput(f"a product holds at most {MAX_TABLES} tables", code="too_many_runs")
    runs = []
    for rid in run_ids:
        run = s.get(QueryRun, str(rid))
        if run is None or run.operator_id != user.id:
            raise NotFound(f"no query run {rid} of yours", code="unknown_run")
        if run.status != RunStatus.CHARGED or not run.result:
            raise Conflict(f"query run {rid} has no charged result", code="run_not_charged")
        runs.append(run)
    if len({r.dataset_id for r in runs}) > 1:
        raise InvalidInput("every query of a product must be on the same dataset", code="mixed_datasets")
    if len({r.version_id for r in runs}) > 1:
        raise InvalidInput("every query of a product must be on the same dataset version", code="mixed_versions")
    if len({r.licence_id for r in runs}) > 1:
        raise InvalidInput("every query of a product must be under the same licence", code="mixed_licences")
    lic = existing_row(s, Licence, runs[0].licence_id)
    ended = licence_ended(lic)
    if ended:
        raise Forbidden(f"the licence of these queries has {ended}", code=f"licence_{ended}")
    return runs, lic


def _text(value: str | None, name: str, limit: int, required: bool = False) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidInput(f"a product needs a {name}", code=f"missing_{name}")
    if len(value) > limit:
        raise InvalidInput(f"the {name} is longer than {limit} characters", code=f"{name}_too_long")
    return value


def _hints(chart_hints: dict[str, Any] | None) -> dict[str, Any]:
    if chart_hints is None:
        return {}
    if not isinstance(chart_hints, dict):
        raise InvalidInput("chart hints must be an object (run id or table name → hint)", code="invalid_chart_hints")
    return {str(k): v for k, v in chart_hints.items()}


def draft_product(inst: Instance, user: str, *, title: str, run_ids: list[str], description: str = "",
                  purpose: str = "", chart_hints: dict[str, Any] | None = None) -> ProductDetail:
    """An operator drafts a product from its own charged query results."""
    title = _text(title, "title", 300, required=True)
    with inst.store.transaction() as s:
        u = get_user(s, user)
        if u.role != Role.OPERATOR:
            raise Forbidden("only operators draft products", code="wrong_role")
        runs, lic = _checked_runs(s, u, [str(r) for r in run_ids])
        p = Product(dataset_id=runs[0].dataset_id, licence_id=lic.id, author_id=u.id, title=title,
                    description=_text(description, "description", 20000), purpose=_text(purpose, "purpose", 5000),
                    state=ProductState.DRAFT, review_round=0, attestation="", created_at=now(), updated_at=now())
        s.add(p)
        s.flush()
        v = ProductVersion(product_id=p.id, number=1, run_ids=[r.id for r in runs], chart_hints=_hints(chart_hints),
                           dataset_version_id=runs[0].version_id, epsilon=sum(r.epsilon for r in runs),
                           delta=sum(r.delta for r in runs))
        s.add(v)
        s.flush()
        audit.append(s, inst.signer, actor_of(u), "product.draft", "product", p.id, {
            "to": ProductState.DRAFT, "title": title, "runs": v.run_ids, "version": 1})
        return detail(s, inst, p, u)


def edit_product(inst: Instance, user: str, product_id: int, *, title: str | None = None,
                 description: str | None = None, purpose: str | None = None, run_ids: list[str] | None = None,
                 chart_hints: dict[str, Any] | None = None) -> ProductDetail:
    """The author edits a draft, returned or submitted product; editing a
    submitted product opens a new review round (earlier votes stop counting)."""
    with inst.store.transaction() as s:
        u = get_user(s, user)
        p = get_product_row(s, product_id)
        _require_author(p, u)
        if p.state not in EDITABLE:
            raise Conflict(f"a {p.state} product cannot be edited", code="wrong_state")
        v = latest_version(s, p)
        changed = []
        if title is not None:
            p.title = _text(title, "title", 300, required=True)
            changed.append("title")
        if description is not None:
            p.description = _text(description, "description", 20000)
            changed.append("description")
        if purpose is not None:
            p.purpose = _text(purpose, "purpose", 5000)
            changed.append("purpose")
        if chart_hints is not None:
            v.chart_hints = _hints(chart_hints)
            changed.append("chart_hints")
        if run_ids is not None:
            runs, lic = _checked_runs(s, u, [str(r) for r in run_ids])
            if runs[0].dataset_id != p.dataset_id:
                raise InvalidInput("a product stays on its dataset", code="mixed_datasets")
            v.run_ids = [r.id for r in runs]
            v.dataset_version_id = runs[0].version_id
            v.epsilon, v.delta = sum(r.epsilon for r in runs), sum(r.delta for r in runs)
            p.licence_id = lic.id
            changed.append("runs")
        if not changed:
            raise InvalidInput("nothing to change", code="nothing_to_change")
        reset = p.state == ProductState.SUBMITTED
        if reset:
            p.review_round += 1
            v.checks = [c.to_dict() for c in compute_checks(s, inst, p, v)]
        p.updated_at = now()
        audit.append(s, inst.signer, actor_of(u), "product.edit", "product", p.id, {
            "changed": changed, "state": p.state, "votes_reset": reset, "round": p.review_round})
        return detail(s, inst, p, u)


def compute_checks(s: Session, inst: Instance, p: Product, v: ProductVersion) -> list[CheckResult]:
    return run_checks(tables_of(s, list(v.run_ids)), released_tables(s, p.dataset_id, p.id),
                      inst.settings.small_count_threshold)


def submit_product(inst: Instance, user: str, product_id: int, *, attestation: str) -> ProductDetail:
    """The author submits with a responsibility attestation; checks run now."""
    cancel_products_of_ended_licences(inst)
    attestation = (attestation or "").strip()
    if not attestation:
        raise InvalidInput("submitting needs a responsibility attestation", code="missing_attestation")
    with inst.store.transaction() as s:
        u = get_user(s, user)
        p = get_product_row(s, product_id)
        _require_author(p, u)
        if p.state not in (ProductState.DRAFT, ProductState.RETURNED):
            raise Conflict(f"a {p.state} product cannot be submitted", code="wrong_state")
        _require_licence(s, p)
        v = latest_version(s, p)
        checks = compute_checks(s, inst, p, v)
        v.checks = [c.to_dict() for c in checks]
        old = p.state
        p.state, p.attestation, p.submitted_at, p.updated_at = ProductState.SUBMITTED, attestation[:2000], now(), now()
        p.review_round += 1
        audit.append(s, inst.signer, actor_of(u), "product.submit", "product", p.id, {
            "from": old, "to": ProductState.SUBMITTED, "round": p.review_round, "version": v.number,
            "attestation": p.attestation, "checks": {c.status: sum(1 for x in checks if x.status == c.status)
                                                     for c in checks}})
        notices.on_product_submitted(s, inst.settings, p)
        return detail(s, inst, p, u)


def review_product(inst: Instance, user: str, product_id: int, decision: str, reason: str = "") -> ProductDetail:
    """A reviewer approves, returns or rejects a submitted product."""
    cancel_products_of_ended_licences(inst)
    if decision not in DECISIONS:
        raise InvalidInput(f"decision must be one of {', '.join(DECISIONS)}", code="invalid_decision")
    given = reason
    reason = clean_reason(reason)
    if decision != "approve":
        reason = required_reason(given, f"'{decision}' needs a reason")
    with inst.store.transaction() as s:
        u = get_user(s, user)
        p = get_product_row(s, product_id)
        if p.author_id == u.id:
            raise Forbidden("you cannot review your own product", code="self_review")
        if u.role != Role.REVIEWER:
            raise Forbidden("only reviewers review products", code="wrong_role")
        if p.state != ProductState.SUBMITTED:
            raise Conflict(f"a {p.state} product is not awaiting review", code="wrong_state")
        _require_licence(s, p)
        voted = s.execute(select(ProductReview).where(ProductReview.product_id == p.id,
                                                      ProductReview.reviewer_id == u.id,
                                                      ProductReview.round == p.review_round)).first()
        if voted is not None:
            raise Conflict("you already reviewed this round; a second vote does not count", code="already_reviewed")
        v = latest_version(s, p)
        failing = [c for c in (v.checks or []) if c.get("status") in ("warn", "fail")]
        if decision == "approve" and failing:
            names = ", ".join(sorted({c.get("name", "") for c in failing}))
            reason = required_reason(given, f"{len(failing)} automatic check(s) warn or fail ({names}): "
                                     "approving over them needs a reason", code="override_reason_required")
        s.add(ProductReview(product_id=p.id, reviewer_id=u.id, decision=decision, reason=reason,
                            round=p.review_round, version_number=v.number, created_at=now()))
        s.flush()
        old = p.state
        approvals = _approvals(s, p)
        if decision == "return":
            p.state = ProductState.RETURNED
        elif decision == "reject":
            p.state = ProductState.REJECTED
        elif approvals >= inst.settings.reviewers_required:
            p.state = ProductState.APPROVED
        p.updated_at = now()
        audit.append(s, inst.signer, actor_of(u), "product.review", "product", p.id, {
            "decision": decision, "reason": reason, "round": p.review_round, "version": v.number,
            "approvals": approvals, "from": old, "to": p.state, "overrides_failing_checks": bool(failing)})
        notices.on_product_decided(s, inst.settings, p)
        return detail(s, inst, p, u)


def withdraw_product(inst: Instance, user: str, product_id: int, reason: str) -> ProductDetail:
    """The author withdraws an unreleased product; an admin withdraws any
    product, a released one with a public reason (its files stay verifiable;
    ε is never refunded)."""
    reason = required_reason(reason, "a withdrawal needs a reason")
    with inst.store.transaction() as s:
        u = get_user(s, user)
        p = get_product_row(s, product_id)
        if p.state in FINAL:
            raise Conflict(f"the product is already {p.state}", code="wrong_state")
        has_release = s.execute(select(ProductVersion.id).where(ProductVersion.product_id == p.id,
                                                                ProductVersion.released_at.is_not(None))).first()
        if u.role != Role.ADMIN:
            _require_author(p, u)
            if p.state == ProductState.RELEASED or has_release:
                raise Forbidden("a released product is withdrawn by an admin", code="admin_only")
        old = p.state
        p.state, p.withdraw_reason, p.withdrawn_at, p.updated_at = ProductState.WITHDRAWN, reason[:5000], now(), now()
        audit.append(s, inst.signer, actor_of(u), "product.withdraw", "product", p.id, {
            "from": old, "to": ProductState.WITHDRAWN, "reason": p.withdraw_reason, "was_released": bool(has_release)})
        return detail(s, inst, p, u)


def _require_author(p: Product, u: User) -> None:
    if p.author_id != u.id:
        raise Forbidden("only the product's author can do this", code="not_author")


def _require_licence(s: Session, p: Product) -> None:
    ended = licence_ended(existing_row(s, Licence, p.licence_id))
    if ended:
        raise Forbidden(f"the product's licence has {ended}", code=f"licence_{ended}")


def _approvals(s: Session, p: Product) -> int:
    rows = s.execute(select(ProductReview.reviewer_id).where(
        ProductReview.product_id == p.id, ProductReview.round == p.review_round,
        ProductReview.decision == "approve")).scalars().all()
    return len(set(rows))


# --- reading ---------------------------------------------------------------

def can_see(s: Session, p: Product, viewer: User | None) -> bool:
    if viewer is not None and (viewer.role in (Role.ADMIN, Role.REVIEWER) or viewer.id == p.author_id):
        return True
    if viewer is not None and viewer.role == Role.OWNER and existing_row(s, Dataset, p.dataset_id).owner_id == viewer.id:
        return True
    return s.execute(select(ProductVersion.id).where(ProductVersion.product_id == p.id,
                                                     ProductVersion.released_at.is_not(None))).first() is not None


def is_insider(s: Session, p: Product, viewer: User | None) -> bool:
    """Author, reviewers, admins and the dataset's owner see every version and the real state."""
    return viewer is not None and (viewer.role in (Role.ADMIN, Role.REVIEWER) or viewer.id == p.author_id
                                   or (viewer.role == Role.OWNER
                                       and existing_row(s, Dataset, p.dataset_id).owner_id == viewer.id))


def shown_state(p: Product, insider: bool) -> str:
    """The public sees a product with a released version as released (or
    withdrawn), whatever the state of a newer version under review."""
    if insider or p.state == ProductState.WITHDRAWN:
        return p.state
    return "released"


def _viewer(s: Session, user: str | None) -> User | None:
    return get_user(s, user) if user else None


def detail(s: Session, inst: Instance, p: Product, viewer: User | None) -> ProductDetail:
    versions = versions_of(s, p)
    insider = is_insider(s, p, viewer)
    shown = versions[-1] if insider else next((v for v in reversed(versions) if v.released_at), versions[-1])
    reviews = s.execute(select(ProductReview, User).join(User, User.id == ProductReview.reviewer_id)
                        .where(ProductReview.product_id == p.id).order_by(ProductReview.id)).all()
    tables = []
    if insider or shown.released_at:
        for t in tables_of(s, list(shown.run_ids)):
            if insider:
                rows, ivs = t.rows, t.intervals
            else:
                from products.checks import suppressed_table

                rows, ivs, _ = suppressed_table(t, inst.settings.small_count_threshold)
            tables.append({"run_id": t.run_id, "sql": t.sql, "columns": t.columns, "rows": rows, "intervals": ivs,
                           "epsilon": t.epsilon, "delta": t.delta})
    return ProductDetail(
        id=p.id, title=p.title, description=p.description, purpose=p.purpose, state=shown_state(p, insider),
        dataset=existing_row(s, Dataset, p.dataset_id).name, licence_id=p.licence_id,
        author=existing_row(s, User, p.author_id).name,
        created_at=iso(p.created_at), updated_at=iso(p.updated_at), review_round=p.review_round,
        approvals=_approvals(s, p) if p.state in (ProductState.SUBMITTED, ProductState.APPROVED) else 0,
        approvals_required=inst.settings.reviewers_required, attestation=p.attestation,
        withdraw_reason=p.withdraw_reason,
        versions=tuple(_version_info(s, v) for v in versions if insider or v.released_at),
        reviews=tuple(ReviewRecord(u.name, r.decision, r.reason, r.round, r.version_number, iso(r.created_at),
                                   r.round == p.review_round and p.state in (ProductState.SUBMITTED, ProductState.APPROVED))
                      for r, u in reviews) if insider else
                tuple(ReviewRecord(u.name, r.decision, "", r.round, r.version_number, iso(r.created_at), False)
                      for r, u in reviews if r.decision == "approve"
                      and any(v.released_at and v.number == r.version_number for v in versions)),
        checks=tuple(CheckResult.from_dict(c) for c in (shown.checks or [])) if insider else (),
        tables=tuple(tables),
        licence_purpose=lic.purpose if (lic := s.get(Licence, p.licence_id)) is not None else "",
    )


def _version_info(s: Session, v: ProductVersion) -> VersionInfo:
    dv = s.get(DatasetVersion, v.dataset_version_id) if v.dataset_version_id else None
    from products.release import manifest_sha256

    sha = manifest_sha256(v.manifest)
    return VersionInfo(v.number, tuple(v.run_ids), dv.number if dv else None, float(v.epsilon), float(v.delta),
                       iso(v.released_at), sha, dict(v.chart_hints or {}))


def get_product(inst: Instance, user: str | None, product_id: int) -> ProductDetail:
    with inst.store.read() as s:
        viewer = _viewer(s, user)
        p = get_product_row(s, product_id)
        if not can_see(s, p, viewer):
            raise NotFound(f"no product {product_id}", code="unknown_product")
        return detail(s, inst, p, viewer)


def list_products(inst: Instance, user: str | None, *, state: str | None = None,
                  dataset: str | None = None) -> list[ProductSummary]:
    with inst.store.read() as s:
        viewer = _viewer(s, user)
        stmt = select(Product).order_by(Product.id)
        if dataset:
            ds = s.execute(select(Dataset).where(Dataset.name == dataset)).scalar_one_or_none()
            if ds is None:
                raise NotFound(f"no dataset named '{dataset}'", code="unknown_dataset", dataset=dataset)
            stmt = stmt.where(Product.dataset_id == ds.id)
        out = []
        for p in s.execute(stmt).scalars():
            if not can_see(s, p, viewer):
                continue
            versions = versions_of(s, p)
            released = tuple(v.number for v in versions if v.released_at)
            if state == "released":      # every product with a released version that is not withdrawn
                if not released or p.state == ProductState.WITHDRAWN:
                    continue
            elif state and p.state != state:
                continue
            insider = is_insider(s, p, viewer)
            out.append(ProductSummary(p.id, p.title, shown_state(p, insider),
                                      existing_row(s, Dataset, p.dataset_id).name,
                                      existing_row(s, User, p.author_id).name,
                                      versions[-1].number if insider else released[-1], released, iso(p.updated_at)))
        return out
