"""The budget ledger: reserve → run → charge, atomic across processes.

Budget levels are rows of ``budgets`` (the dataset's total and each licence's
allocation, each with a per-query cap). A reservation is one conditional
``UPDATE`` per level that only succeeds if the level still has room, so
concurrent writers can exhaust a budget but never exceed it — on SQLite
(writers serialised by ``BEGIN IMMEDIATE``) and PostgreSQL (row locks taken by
the UPDATE, levels always locked in the same order: dataset, then licence).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from privacy.model import PrivacyLoss
from queries.errors import BudgetExceeded, NotFound
from sandbox.models import Budget, LedgerEntry

# Relative slack so that k equal shares of a budget fit exactly despite float rounding.
REL = 1e-9
ABS_EPS = 1e-12
ABS_DELTA = 1e-18


@dataclass(frozen=True)
class BudgetStatus:
    scope: str
    total: PrivacyLoss
    spent: PrivacyLoss
    reserved: PrivacyLoss
    per_query: PrivacyLoss

    @property
    def remaining(self) -> PrivacyLoss:
        return PrivacyLoss(
            max(self.total.epsilon - self.spent.epsilon - self.reserved.epsilon, 0.0),
            max(self.total.delta - self.spent.delta - self.reserved.delta, 0.0),
        )

    def to_dict(self) -> dict:
        return {
            "scope": self.scope, "total": self.total.to_dict(), "spent": self.spent.to_dict(),
            "reserved": self.reserved.to_dict(), "remaining": self.remaining.to_dict(),
            "per_query": self.per_query.to_dict(),
        }


def status_of(b: Budget) -> BudgetStatus:
    return BudgetStatus(
        scope=b.scope,
        total=PrivacyLoss(b.epsilon, b.delta),
        spent=PrivacyLoss(max(b.spent_epsilon, 0.0), min(max(b.spent_delta, 0.0), 0.999999)),
        reserved=PrivacyLoss(max(b.reserved_epsilon, 0.0), min(max(b.reserved_delta, 0.0), 0.999999)),
        per_query=PrivacyLoss(b.max_epsilon_per_query, b.max_delta_per_query),
    )


def budget_rows(session: Session, dataset_id: int, licence_id: int) -> list[Budget]:
    """The levels a query on this licence draws from, in lock order."""
    dataset_budget = session.execute(
        select(Budget).where(Budget.scope == "dataset", Budget.dataset_id == dataset_id)
    ).scalar_one_or_none()
    licence_budget = session.execute(
        select(Budget).where(Budget.scope == "licence", Budget.licence_id == licence_id)
    ).scalar_one_or_none()
    if dataset_budget is None or licence_budget is None:
        raise NotFound("no budget is set for this dataset or licence", code="no_budget")
    return [dataset_budget, licence_budget]


def _refusal(b: Budget, loss: PrivacyLoss) -> BudgetExceeded:
    st = status_of(b)
    if loss.epsilon > st.per_query.epsilon * (1 + REL) + ABS_EPS or loss.delta > st.per_query.delta * (1 + REL) + ABS_DELTA:
        level = f"{b.scope}_per_query"
        remaining = st.per_query
    else:
        level = b.scope
        remaining = st.remaining
    diff = {"epsilon": max(loss.epsilon - remaining.epsilon, 0.0), "delta": max(loss.delta - remaining.delta, 0.0)}
    return BudgetExceeded(
        f"the query needs ε={loss.epsilon:g}, δ={loss.delta:g} but the {level.replace('_', ' ')} budget "
        f"has ε={remaining.epsilon:g}, δ={remaining.delta:g} left (short by ε={diff['epsilon']:g}, δ={diff['delta']:g})",
        level=level, requested=loss.to_dict(), remaining={**remaining.to_dict(), "difference": diff},
    )


def reserve(session: Session, dataset_id: int, licence_id: int, run_id: str, loss: PrivacyLoss,
            rows: list[Budget] | None = None) -> list[int]:
    """Reserve ``loss`` at every level or raise ``BudgetExceeded`` (the caller's
    transaction then rolls back, leaving every level as it was). ``rows`` are the
    levels if the caller already read them in this session; returns their ids,
    in lock order, for the charge."""
    rows = rows if rows is not None else budget_rows(session, dataset_id, licence_id)
    for b in rows:
        result = session.execute(
            update(Budget)
            .where(
                Budget.id == b.id,
                Budget.spent_epsilon + Budget.reserved_epsilon + loss.epsilon <= Budget.epsilon * (1 + REL) + ABS_EPS,
                Budget.spent_delta + Budget.reserved_delta + loss.delta <= Budget.delta * (1 + REL) + ABS_DELTA,
                Budget.max_epsilon_per_query * (1 + REL) + ABS_EPS >= loss.epsilon,
                Budget.max_delta_per_query * (1 + REL) + ABS_DELTA >= loss.delta,
            )
            .values(reserved_epsilon=Budget.reserved_epsilon + loss.epsilon,
                    reserved_delta=Budget.reserved_delta + loss.delta)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            session.refresh(b)
            raise _refusal(b, loss)
        session.add(LedgerEntry(budget_id=b.id, run_id=run_id, kind="reserve",
                                epsilon=loss.epsilon, delta=loss.delta))
    session.flush()
    return [b.id for b in rows]


def _level_ids(session: Session, dataset_id: int, licence_id: int, ids: list[int] | None) -> list[int]:
    return ids if ids is not None else [b.id for b in budget_rows(session, dataset_id, licence_id)]


def charge(session: Session, dataset_id: int, licence_id: int, run_id: str,
           reserved: PrivacyLoss, spent: PrivacyLoss, ids: list[int] | None = None) -> None:
    """Turn a reservation into a charge (``spent`` ≤ ``reserved``)."""
    spent = PrivacyLoss(min(spent.epsilon, reserved.epsilon), min(spent.delta, reserved.delta))
    for bid in _level_ids(session, dataset_id, licence_id, ids):
        session.execute(
            update(Budget).where(Budget.id == bid).values(
                reserved_epsilon=Budget.reserved_epsilon - reserved.epsilon,
                reserved_delta=Budget.reserved_delta - reserved.delta,
                spent_epsilon=Budget.spent_epsilon + spent.epsilon,
                spent_delta=Budget.spent_delta + spent.delta,
            ).execution_options(synchronize_session=False)
        )
        session.add(LedgerEntry(budget_id=bid, run_id=run_id, kind="charge",
                                epsilon=spent.epsilon, delta=spent.delta))
    session.flush()


def cancel(session: Session, dataset_id: int, licence_id: int, run_id: str, reserved: PrivacyLoss,
           ids: list[int] | None = None) -> None:
    """Give back a reservation whose query never reached the data."""
    for bid in _level_ids(session, dataset_id, licence_id, ids):
        session.execute(
            update(Budget).where(Budget.id == bid).values(
                reserved_epsilon=Budget.reserved_epsilon - reserved.epsilon,
                reserved_delta=Budget.reserved_delta - reserved.delta,
            ).execution_options(synchronize_session=False)
        )
        session.add(LedgerEntry(budget_id=bid, run_id=run_id, kind="cancel",
                                epsilon=reserved.epsilon, delta=reserved.delta))
    session.flush()


def budget_statuses(session: Session, dataset_id: int, licence_id: int | None = None) -> list[BudgetStatus]:
    stmt = select(Budget).where(Budget.dataset_id == dataset_id)
    rows = session.execute(stmt).scalars().all()
    return [status_of(b) for b in rows if b.scope == "dataset" or licence_id is None or b.licence_id == licence_id]
