"""Licences: an operator's right to query one dataset, for a purpose, with a budget."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, UTC
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from privacy.model import TOLERANCE, PrivacyLoss
from privacy.vocabulary import Accounting
from queries.errors import Conflict, Forbidden, InvalidInput, NotFound
from queries.vocabulary import Classification, member_of
from sandbox import audit
from sandbox.audit import Actor
from sandbox.datasets import get_dataset
from sandbox.instance import Instance
from sandbox.ledger import BudgetStatus, status_of
from sandbox.notifications import outbox as notices
from sandbox.persistence.models import Budget, Dataset, Licence, User
from sandbox.persistence.store import existing_row, lock_for_update
from sandbox.users import get_user
from sandbox.vocabulary import PENDING_PRODUCT_STATES, SYSTEM, ApprovalMode, LicenceStatus, Role

CANCELLED = "cancelled"
"""The status of a template or query approval request whose licence was revoked or expired."""
PENDING_TEMPLATE_STATES = ("proposed", "approved")
PENDING_REQUEST_STATES = ("pending", "approved")


def _as_utc(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def end_of_day(day: date) -> datetime:
    """A licence runs until the last second of its end date (UTC)."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def licence_status(lic: Licence, now: datetime | None = None) -> LicenceStatus:
    """The status a licence shows: ``revoked``, ``expired`` (active but past its
    end, never stored) or ``active``."""
    if lic.status == LicenceStatus.REVOKED:
        return LicenceStatus.REVOKED
    if _as_utc(lic.expires_at) <= (now or datetime.now(UTC)):
        return LicenceStatus.EXPIRED
    return LicenceStatus.ACTIVE


def grant_licence(inst: Instance, actor: Actor, *, dataset: str, operator: str, epsilon: float, delta: float,
                  purpose: str, expires: date, tables: list[str] | None = None,
                  approval: str = ApprovalMode.AUTOMATIC, accounting: str = Accounting.APPROX,
                  max_epsilon_per_query: float | None = None, min_epsilon_per_query: float | None = None,
                  max_queries: int | None = None) -> int:
    if not (purpose or "").strip():
        raise InvalidInput("a licence needs a purpose", code="missing_purpose")
    if member_of(ApprovalMode, approval) is None:
        raise InvalidInput(f"approval must be one of {', '.join(ApprovalMode)}", code="invalid_approval_mode")
    if member_of(Accounting, accounting) is None:
        raise InvalidInput(f"accounting must be one of {', '.join(Accounting)}", code="invalid_accounting")
    loss = PrivacyLoss(epsilon, delta)
    if loss.epsilon <= 0:
        raise InvalidInput("epsilon must be greater than 0", code="invalid_budget")
    if accounting == Accounting.ZCDP and loss.delta <= 0:
        raise InvalidInput("zCDP accounting needs a licence δ greater than 0", code="invalid_budget")
    if max_queries is not None and (isinstance(max_queries, bool) or not isinstance(max_queries, int)
                                    or max_queries < 1):
        raise InvalidInput("max_queries must be a positive whole number", code="invalid_budget")
    if min_epsilon_per_query is not None:
        PrivacyLoss(min_epsilon_per_query)   # finite, non-negative
        if min_epsilon_per_query <= 0:
            raise InvalidInput("the per-query floor on ε must be greater than 0", code="invalid_budget")
    expires_at = end_of_day(expires)
    if expires_at <= datetime.now(UTC):
        raise InvalidInput("the expiry date is in the past", code="invalid_expiry")
    with inst.store.transaction() as s:
        ds = get_dataset(s, dataset)
        owner = existing_row(s, User, ds.owner_id)
        if actor.role != Role.ADMIN and actor.name != owner.name:
            raise Forbidden("only the dataset's owner or an admin can grant licences on it")
        if ds.classification != Classification.CONDITIONAL:
            raise Conflict(f"dataset '{dataset}' is {ds.classification}: only conditional datasets are licensed "
                           "for queries", code="not_licensable")
        op = get_user(s, operator)
        if op.role != Role.OPERATOR:
            raise InvalidInput(f"'{operator}' does not have the operator role", code="not_an_operator")
        dsb = s.execute(select(Budget).where(Budget.scope == "dataset", Budget.dataset_id == ds.id)).scalar_one()
        if loss.epsilon > dsb.epsilon or loss.delta > dsb.delta:
            raise InvalidInput("a licence's budget cannot exceed the dataset's total budget", code="invalid_budget")
        per_q = min(max_epsilon_per_query or dsb.max_epsilon_per_query, dsb.max_epsilon_per_query, loss.epsilon)
        # a licence may raise the dataset's floor on one query's ε, never lower it
        floor = max(min_epsilon_per_query or 0.0, float(dsb.min_epsilon_per_query or 0.0))
        if floor > per_q:
            raise InvalidInput(f"the per-query floor ε={floor:g} exceeds the per-query cap ε={per_q:g}",
                               code="invalid_budget")
        lic = Licence(dataset_id=ds.id, operator_id=op.id, purpose=purpose.strip(), tables=tables,
                      approval_mode=approval, accounting=accounting, expires_at=expires_at,
                      granted_by=get_user(s, actor.name).id if actor.role != SYSTEM else owner.id)
        s.add(lic)
        s.flush()
        rho = rho_delta = None
        if accounting == Accounting.ZCDP:
            # ρ composes across the licence's queries; half of δ converts ρ to (ε, δ),
            # the other half pays partition selection.
            from privacy.accounting import rho_for

            rho_delta = loss.delta / 2
            rho = rho_for(loss.epsilon, rho_delta)
        budget = Budget(scope="licence", dataset_id=ds.id, licence_id=lic.id, epsilon=loss.epsilon, delta=loss.delta,
                        max_epsilon_per_query=per_q, max_delta_per_query=min(dsb.max_delta_per_query, loss.delta),
                        rho=rho, rho_delta=rho_delta or 0.0, min_epsilon_per_query=floor, max_queries=max_queries)
        s.add(budget)
        s.flush()
        # every number the budget row starts with, so the state can be recomputed from the chain
        audit.append(s, inst.signer, actor, "licence.grant", "licence", lic.id, {
            "dataset": ds.name, "operator": op.name, "epsilon": loss.epsilon, "delta": loss.delta,
            "min_epsilon_per_query": floor, "max_queries": max_queries,
            "purpose": lic.purpose, "expires": expires_at.isoformat(), "tables": tables,
            "approval": approval, "accounting": accounting, "budget": budget.id,
            "max_epsilon_per_query": budget.max_epsilon_per_query,
            "max_delta_per_query": budget.max_delta_per_query, "rho": rho, "rho_delta": budget.rho_delta,
        })
        return lic.id


def _owned_licence(s: Session, actor: Actor, licence_id: int, what: str) -> tuple[Licence, Dataset]:
    """The licence, if ``actor`` is its dataset's owner or an admin."""
    lic = s.get(Licence, licence_id)
    if lic is None:
        raise NotFound(f"no licence {licence_id}", code="unknown_licence")
    ds = existing_row(s, Dataset, lic.dataset_id)
    if actor.role != Role.ADMIN and actor.name != existing_row(s, User, ds.owner_id).name:
        raise Forbidden(f"only the dataset's owner or an admin can {what} its licences")
    return lic, ds


def revoke_licence(inst: Instance, actor: Actor, licence_id: int, reason: str = "") -> None:
    """Revoke a licence: its pending products, templates and query approval
    requests are cancelled in the same transaction, each with its record."""
    with inst.store.transaction() as s:
        lic, _ = _owned_licence(s, actor, licence_id, "revoke")
        if lic.status == LicenceStatus.REVOKED:
            raise Conflict(f"licence {licence_id} is already revoked", code="already_revoked")
        lic.status = LicenceStatus.REVOKED
        lic.revoked_at = datetime.now(UTC)
        lic.revoke_reason = reason
        audit.append(s, inst.signer, actor, "licence.revoke", "licence", lic.id, {"reason": reason})
        notices.on_licence_revoked(s, inst.settings, lic)
        cancel_pending_products(s, inst, actor, lic.id, "licence revoked")
        cancel_pending_approvals(s, inst, actor, lic.id, "licence revoked")


def extend_licence(inst: Instance, actor: Actor, licence_id: int, until: date) -> LicenceView:
    """Move a licence's end to the end of ``until`` (later than its current end and
    not in the past). An expired licence extended is active again; a revoked one
    stays revoked."""
    new_end = end_of_day(until)
    if new_end <= datetime.now(UTC):
        raise InvalidInput("the new end date is in the past", code="invalid_expiry")
    with inst.store.transaction() as s:
        lic, _ = _owned_licence(s, actor, licence_id, "extend")
        if lic.status == LicenceStatus.REVOKED:
            raise Conflict(f"licence {licence_id} is revoked: it cannot be extended", code="licence_revoked",
                           licence=licence_id)
        old = _as_utc(lic.expires_at)
        if new_end <= old:
            raise InvalidInput(f"licence {licence_id} already runs until {old.date().isoformat()}: an extension "
                               "moves its end later", code="invalid_expiry", licence=licence_id)
        lic.expires_at = new_end
        audit.append(s, inst.signer, actor, "licence.extend", "licence", lic.id,
                     {"from": old.isoformat(), "to": new_end.isoformat()})
        s.flush()
        return licence_view(s, lic)


def top_up_licence(inst: Instance, actor: Actor, licence_id: int, *, epsilon: float,
                   delta: float = 0.0) -> LicenceView:
    """Add (ε, δ) to a licence's budget. The new total never exceeds the dataset's
    total budget; a zCDP licence's ρ is recomputed from its new (ε, δ)."""
    add = PrivacyLoss(epsilon, delta)
    if add.epsilon < 0 or add.delta < 0 or (add.epsilon == 0 and add.delta == 0):
        raise InvalidInput("a top-up adds a positive ε or δ", code="invalid_budget")
    with inst.store.transaction() as s:
        lic, ds = _owned_licence(s, actor, licence_id, "top up")
        status = licence_status(lic)
        if status != LicenceStatus.ACTIVE:
            raise Conflict(f"licence {licence_id} is {status}: only an active licence is topped up",
                           code=f"licence_{status}", licence=licence_id)
        b = s.execute(lock_for_update(select(Budget).where(Budget.scope == "licence", Budget.licence_id == lic.id),
                                      s)).scalar_one_or_none()
        dsb = s.execute(select(Budget).where(Budget.scope == "dataset", Budget.dataset_id == ds.id)).scalar_one_or_none()
        if b is None or dsb is None:
            raise NotFound(f"licence {licence_id} has no budget", code="no_budget")
        new = PrivacyLoss(b.epsilon + add.epsilon, b.delta + add.delta)
        if new.epsilon > dsb.epsilon * TOLERANCE.factor or new.delta > dsb.delta * TOLERANCE.factor + TOLERANCE.delta:
            raise InvalidInput(f"the licence's budget would become ε={new.epsilon:g}, δ={new.delta:g}, above the "
                               f"dataset's total of ε={dsb.epsilon:g}, δ={dsb.delta:g}", code="budget_above_total",
                               licence=licence_id, total={"epsilon": dsb.epsilon, "delta": dsb.delta})
        old = (b.epsilon, b.delta)
        # a per-query cap that the old total clipped grows with the total, up to the dataset's cap
        if b.max_epsilon_per_query >= old[0]:
            b.max_epsilon_per_query = min(dsb.max_epsilon_per_query, new.epsilon)
        if b.max_delta_per_query >= old[1]:
            b.max_delta_per_query = min(dsb.max_delta_per_query, new.delta)
        b.epsilon, b.delta = new.epsilon, new.delta
        if b.rho is not None:
            from privacy.accounting import rho_for

            b.rho_delta = new.delta / 2
            b.rho = rho_for(new.epsilon, b.rho_delta)
        audit.append(s, inst.signer, actor, "licence.top_up", "licence", lic.id, {
            "budget": b.id, "added": add.to_dict(), "from": {"epsilon": old[0], "delta": old[1]},
            "epsilon": b.epsilon, "delta": b.delta, "rho": b.rho, "rho_delta": b.rho_delta,
            "max_epsilon_per_query": b.max_epsilon_per_query, "max_delta_per_query": b.max_delta_per_query,
        })
        s.flush()
        return licence_view(s, lic)


def cancel_pending_approvals(s: Session, inst: Instance, actor: Actor, licence_id: int, reason: str) -> int:
    """Cancel the licence's templates that are proposed or approved and its query
    approval requests that are pending or approved but not run (in the caller's
    transaction), each with its record. Returns how many were cancelled."""
    from sandbox.persistence.approval_models import QueryRequest, QueryTemplate

    now = datetime.now(UTC)
    count = 0
    kinds: tuple[tuple[Any, tuple[str, ...], str, str, str], ...] = (
        (QueryTemplate, PENDING_TEMPLATE_STATES, "decision_reason", "template.cancel", "template"),
        (QueryRequest, PENDING_REQUEST_STATES, "reason", "request.cancel", "query_request"))
    for model, states, reason_field, action, object_type in kinds:
        for row in s.execute(select(model).where(model.licence_id == licence_id, model.status.in_(states))
                             .order_by(model.id)).scalars():
            old = row.status
            row.status, row.decided_at = CANCELLED, now
            setattr(row, reason_field, reason)
            audit.append(s, inst.signer, actor, action, object_type, row.id,
                         {"licence": licence_id, "from": old, "to": CANCELLED, "reason": reason})
            count += 1
    s.flush()
    return count


def close_expired(inst: Instance, *, now: datetime | None = None) -> list[int]:
    """Cancel the pending templates and query approval requests of every licence
    past its end (one transaction per licence: a ``licence.expire`` record by the
    system, then a ``template.cancel`` or ``request.cancel`` record for each).
    Returns the licences closed; a licence with nothing pending is left alone, so
    calling this again changes nothing."""
    from sandbox.persistence.approval_models import QueryRequest, QueryTemplate

    now = now or datetime.now(UTC)
    closed: list[int] = []
    with inst.store.read() as s:
        due = s.execute(select(Licence.id).where(Licence.status == LicenceStatus.ACTIVE, Licence.expires_at <= now)
                        .order_by(Licence.id)).scalars().all()
        due = [lid for lid in due
               if s.execute(select(QueryTemplate.id).where(QueryTemplate.licence_id == lid,
                                                           QueryTemplate.status.in_(PENDING_TEMPLATE_STATES))).first()
               or s.execute(select(QueryRequest.id).where(QueryRequest.licence_id == lid,
                                                          QueryRequest.status.in_(PENDING_REQUEST_STATES))).first()]
    for lid in due:
        with inst.store.transaction() as s:
            lic = s.execute(lock_for_update(select(Licence).where(Licence.id == lid), s)).scalar_one()
            if licence_status(lic, now) != LicenceStatus.EXPIRED:
                continue            # extended or revoked meanwhile
            audit.append(s, inst.signer, audit.SYSTEM, "licence.expire", "licence", lic.id,
                         {"expires": _as_utc(lic.expires_at).isoformat()})
            if cancel_pending_approvals(s, inst, audit.SYSTEM, lic.id, "licence expired"):
                closed.append(lid)
    return closed


def cancel_pending_products(s: Session, inst: Instance, actor: Actor, licence_id: int, reason: str) -> int:
    """Cancel the licence's products that are not released or final yet (in the
    caller's transaction). Returns how many were cancelled."""
    from sandbox.persistence.models import Product

    rows = s.execute(select(Product).where(Product.licence_id == licence_id,
                                           Product.state.in_(PENDING_PRODUCT_STATES))).scalars().all()
    for product in rows:
        old = product.state
        product.state = "cancelled"
        product.updated_at = datetime.now(UTC)
        audit.append(s, inst.signer, actor, "product.cancel", "product", product.id,
                     {"from": old, "to": "cancelled", "reason": reason})
    return len(rows)


def active_licence(s: Session, ds: Dataset, operator: User) -> Licence:
    """The operator's usable licence on the dataset, or a specific refusal."""
    rows = s.execute(select(Licence).where(Licence.dataset_id == ds.id, Licence.operator_id == operator.id)
                     .order_by(Licence.id.desc())).scalars().all()
    if not rows:
        raise Forbidden(f"you hold no licence for dataset '{ds.name}'", code="no_licence", dataset=ds.name)
    now = datetime.now(UTC)
    for lic in rows:
        if licence_status(lic, now) == LicenceStatus.ACTIVE:
            return lic
    # none is usable: the newest one says why (a revoked licence says revoked, even past its end)
    newest = rows[0]
    if licence_status(newest, now) == LicenceStatus.REVOKED:
        raise Forbidden(f"your licence {newest.id} for dataset '{ds.name}' was revoked", code="licence_revoked",
                        dataset=ds.name, licence=newest.id)
    raise Forbidden(f"your licence {newest.id} for dataset '{ds.name}' has expired", code="licence_expired",
                    dataset=ds.name, licence=newest.id)


@dataclass(frozen=True, slots=True)
class LicenceView:
    """A licence as its owner, its operator and an admin see it, with its budget."""

    id: int
    dataset: str
    operator: str
    purpose: str
    tables: tuple[str, ...] | None        # None: every table of the dataset
    status: str
    approval_mode: str
    accounting: str
    expires_at: str
    created_at: str
    budget: BudgetStatus | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "dataset": self.dataset, "operator": self.operator, "purpose": self.purpose,
            "tables": list(self.tables) if self.tables is not None else None, "status": self.status,
            "approval_mode": self.approval_mode, "accounting": self.accounting, "expires_at": self.expires_at,
            "created_at": self.created_at, "budget": self.budget.to_dict() if self.budget else None,
        }


def licence_view(s: Session, lic: Licence) -> LicenceView:
    b = s.execute(select(Budget).where(Budget.scope == "licence", Budget.licence_id == lic.id)).scalar_one_or_none()
    return LicenceView(
        id=lic.id, dataset=existing_row(s, Dataset, lic.dataset_id).name,
        operator=existing_row(s, User, lic.operator_id).name,
        purpose=lic.purpose, tables=tuple(lic.tables) if lic.tables is not None else None,
        status=licence_status(lic),
        approval_mode=lic.approval_mode, accounting=lic.accounting,
        expires_at=_as_utc(lic.expires_at).isoformat(), created_at=_as_utc(lic.created_at).isoformat(),
        budget=status_of(b) if b else None,
    )


def get_licence(inst: Instance, licence_id: int) -> LicenceView:
    with inst.store.read() as s:
        lic = s.get(Licence, licence_id)
        if lic is None:
            raise NotFound(f"no licence {licence_id}", code="unknown_licence")
        return licence_view(s, lic)


def list_licences(inst: Instance, *, dataset: str | None = None, operator: str | None = None) -> list[LicenceView]:
    with inst.store.read() as s:
        stmt = select(Licence).order_by(Licence.id)
        if dataset:
            stmt = stmt.where(Licence.dataset_id == get_dataset(s, dataset).id)
        if operator:
            stmt = stmt.where(Licence.operator_id == get_user(s, operator).id)
        return [licence_view(s, lic) for lic in s.execute(stmt).scalars()]


@dataclass(frozen=True, slots=True)
class BudgetLevel:
    """One level of a dataset's budget: the dataset's own, or one licence's."""

    level: str                      # dataset | licence
    budget: BudgetStatus
    licence: int | None = None
    operator: str | None = None
    status: str | None = None       # the licence's status (licence levels only)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"level": self.level, "licence": self.licence, "operator": self.operator}
        if self.level == "licence":
            out["status"] = self.status
        return {**out, **self.budget.to_dict()}


@dataclass(frozen=True, slots=True)
class DatasetBudget:
    """A dataset's budget gauge: spent, reserved and remaining at every level."""

    dataset: str
    owner: str
    levels: tuple[BudgetLevel, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "levels": [lv.to_dict() for lv in self.levels]}


def dataset_budget(inst: Instance, dataset: str) -> DatasetBudget:
    """The dataset's budget level, then each of its licences' (in licence order)."""
    with inst.store.read() as s:
        ds = get_dataset(s, dataset)
        levels = []
        own = s.execute(select(Budget).where(Budget.scope == "dataset", Budget.dataset_id == ds.id)).scalar_one_or_none()
        if own is not None:
            levels.append(BudgetLevel("dataset", status_of(own)))
        for lic in s.execute(select(Licence).where(Licence.dataset_id == ds.id).order_by(Licence.id)).scalars():
            view = licence_view(s, lic)
            if view.budget is not None:
                levels.append(BudgetLevel("licence", view.budget, view.id, view.operator, view.status))
        return DatasetBudget(ds.name, existing_row(s, User, ds.owner_id).name, tuple(levels))
