"""Licences: an operator's right to query one dataset, for a purpose, with a budget."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, UTC
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from privacy.model import PrivacyLoss
from privacy.vocabulary import Accounting
from queries.errors import Conflict, Forbidden, InvalidInput, NotFound
from queries.vocabulary import Classification, member_of
from sandbox import audit
from sandbox.audit import Actor
from sandbox.datasets import get_dataset
from sandbox.instance import Instance
from sandbox.ledger import BudgetStatus, status_of
from sandbox.persistence.models import Budget, Dataset, Licence, User
from sandbox.persistence.store import existing_row
from sandbox.users import get_user
from sandbox.vocabulary import PENDING_PRODUCT_STATES, SYSTEM, ApprovalMode, LicenceStatus, Role


def _as_utc(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=UTC)


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
    expires_at = datetime.combine(expires, time(23, 59, 59), tzinfo=UTC)
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
        s.add(Budget(scope="licence", dataset_id=ds.id, licence_id=lic.id, epsilon=loss.epsilon, delta=loss.delta,
                     max_epsilon_per_query=per_q, max_delta_per_query=min(dsb.max_delta_per_query, loss.delta),
                     rho=rho, rho_delta=rho_delta or 0.0, min_epsilon_per_query=floor, max_queries=max_queries))
        audit.append(s, inst.signer, actor, "licence.grant", "licence", lic.id, {
            "dataset": ds.name, "operator": op.name, "epsilon": loss.epsilon, "delta": loss.delta,
            "min_epsilon_per_query": floor, "max_queries": max_queries,
            "purpose": lic.purpose, "expires": expires_at.isoformat(), "tables": tables,
            "approval": approval, "accounting": accounting,
        })
        return lic.id


def revoke_licence(inst: Instance, actor: Actor, licence_id: int, reason: str = "") -> None:
    with inst.store.transaction() as s:
        lic = s.get(Licence, licence_id)
        if lic is None:
            raise NotFound(f"no licence {licence_id}", code="unknown_licence")
        ds = existing_row(s, Dataset, lic.dataset_id)
        owner = existing_row(s, User, ds.owner_id)
        if actor.role != Role.ADMIN and actor.name != owner.name:
            raise Forbidden("only the dataset's owner or an admin can revoke its licences")
        if lic.status == LicenceStatus.REVOKED:
            raise Conflict(f"licence {licence_id} is already revoked", code="already_revoked")
        lic.status = LicenceStatus.REVOKED
        lic.revoked_at = datetime.now(UTC)
        lic.revoke_reason = reason
        audit.append(s, inst.signer, actor, "licence.revoke", "licence", lic.id, {"reason": reason})
        cancel_pending_products(s, inst, actor, lic.id, "licence revoked")


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
        if lic.status == LicenceStatus.ACTIVE and _as_utc(lic.expires_at) > now:
            return lic
    if all(l.status == LicenceStatus.REVOKED for l in rows):
        raise Forbidden(f"your licence for dataset '{ds.name}' was revoked", code="licence_revoked",
                        dataset=ds.name)
    raise Forbidden(f"your licence for dataset '{ds.name}' has expired", code="licence_expired", dataset=ds.name)


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
        purpose=lic.purpose, tables=tuple(lic.tables) if lic.tables is not None else None, status=lic.status,
        approval_mode=lic.approval_mode, accounting=lic.accounting,
        expires_at=_as_utc(lic.expires_at).isoformat(), created_at=_as_utc(lic.created_at).isoformat(),
        budget=status_of(b) if b else None,
    )


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
