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
from typing import cast

from sqlalchemy import Float, Table, and_, bindparam, case, insert, or_, select, update
from sqlalchemy.orm import Session

from privacy.model import TOLERANCE, PrivacyLoss
from privacy.vocabulary import Accounting
from queries.errors import BudgetExceeded, Forbidden, InvalidInput, NotFound, SandboxError
from sandbox.persistence.models import Budget, LedgerEntry, utcnow
from sandbox.persistence.store import rowcount

# The ledger's statements run on the session's connection as plain SQL (no ORM
# unit of work: the budget rows are changed only by conditional UPDATEs, never
# through loaded objects), and the entries of all levels go in one INSERT.
_INSERT_ENTRIES = insert(cast(Table, LedgerEntry.__table__))

@dataclass(frozen=True)
class BudgetStatus:
    """One level's total, spent, reserved and per-query cap as (ε, δ). A zCDP level
    composes ρ; its spent and remaining ε are OpenDP's conversion of the ρ used so far
    at ``rho_delta``, which is why they are computed here rather than summed."""

    scope: str
    total: PrivacyLoss
    spent: PrivacyLoss
    reserved: PrivacyLoss
    per_query: PrivacyLoss
    accounting: Accounting = Accounting.APPROX
    rho: tuple[float, float, float] | None = None      # total, spent, reserved (zCDP levels)
    rho_delta: float = 0.0
    min_epsilon: float = 0.0                            # floor on one query's ε
    queries: tuple[int, int | None] = (0, None)         # runs reserved or charged, cap (None: none)

    @property
    def remaining(self) -> PrivacyLoss:
        if self.rho is not None:
            used = _converted(self.rho[1] + self.rho[2], self.rho_delta)
            pure = self.total.delta - self.rho_delta - self.spent.delta - self.reserved.delta
            if self.rho[1] > 0:
                pure += self.rho_delta          # spent.delta includes the conversion δ
            return PrivacyLoss(max(self.total.epsilon - used, 0.0), max(pure, 0.0))
        return PrivacyLoss(
            max(self.total.epsilon - self.spent.epsilon - self.reserved.epsilon, 0.0),
            max(self.total.delta - self.spent.delta - self.reserved.delta, 0.0),
        )

    def to_dict(self) -> dict:
        out = {
            "scope": self.scope, "accounting": self.accounting, "total": self.total.to_dict(),
            "spent": self.spent.to_dict(), "reserved": self.reserved.to_dict(),
            "remaining": self.remaining.to_dict(), "per_query": self.per_query.to_dict(),
            "min_epsilon_per_query": self.min_epsilon,
            "queries": {"used": self.queries[0], "max": self.queries[1]},
        }
        if self.rho is not None:
            out["rho"] = {"total": self.rho[0], "spent": self.rho[1], "reserved": self.rho[2],
                          "conversion_delta": self.rho_delta}
        return out


def _converted(rho: float, delta: float) -> float:
    from privacy.accounting import zcdp_epsilon

    return zcdp_epsilon(rho, delta) if rho > 0 else 0.0


def status_of(b: Budget) -> BudgetStatus:
    clip = lambda x: min(max(x, 0.0), 0.999999)  # noqa: E731
    per_query = PrivacyLoss(b.max_epsilon_per_query, b.max_delta_per_query)
    min_epsilon = float(b.min_epsilon_per_query or 0.0)
    queries = (int(b.queries_used or 0), b.max_queries)
    if b.rho is not None:
        spent_rho, reserved_rho = max(b.spent_rho, 0.0), max(b.reserved_rho, 0.0)
        return BudgetStatus(
            scope=b.scope, total=PrivacyLoss(b.epsilon, b.delta),
            spent=PrivacyLoss(_converted(spent_rho, b.rho_delta),
                              clip((b.rho_delta if spent_rho > 0 else 0.0) + b.spent_delta)),
            reserved=PrivacyLoss(_converted(reserved_rho, b.rho_delta), clip(b.reserved_delta)),
            per_query=per_query, accounting=Accounting.ZCDP, rho=(b.rho, spent_rho, reserved_rho), rho_delta=b.rho_delta,
            min_epsilon=min_epsilon, queries=queries)
    return BudgetStatus(
        scope=b.scope,
        total=PrivacyLoss(b.epsilon, b.delta),
        spent=PrivacyLoss(max(b.spent_epsilon, 0.0), clip(b.spent_delta)),
        reserved=PrivacyLoss(max(b.reserved_epsilon, 0.0), clip(b.reserved_delta)),
        per_query=per_query, min_epsilon=min_epsilon, queries=queries,
    )


@dataclass(frozen=True)
class QueryLoss:
    """What one query costs: its (ε, δ), and for zCDP levels its ρ and the δ that is
    not conversion δ (partition selection)."""

    loss: PrivacyLoss
    rho: float = 0.0
    pure_delta: float = 0.0

    @classmethod
    def of(cls, loss: PrivacyLoss, mechanisms=()) -> QueryLoss:
        return cls(loss, sum(m.rho for m in mechanisms), sum(m.delta for m in mechanisms))

    def to_payload(self) -> dict[str, float]:
        """What an audit record carries, so the ledger can be recomputed from the chain:
        an approx level moves by (epsilon, delta), a zCDP level by (rho, pure_delta)."""
        return {"epsilon": self.loss.epsilon, "delta": self.loss.delta, "rho": self.rho,
                "pure_delta": self.pure_delta}

    @classmethod
    def from_payload(cls, d: dict) -> QueryLoss:
        return cls(PrivacyLoss(float(d["epsilon"]), float(d["delta"])), float(d.get("rho") or 0.0),
                   float(d.get("pure_delta") or 0.0))


def budget_rows(session: Session, dataset_id: int, licence_id: int) -> list[Budget]:
    """The levels a query on this licence draws from, in lock order."""
    rows = session.execute(select(Budget).where(or_(
        and_(Budget.scope == "dataset", Budget.dataset_id == dataset_id),
        and_(Budget.scope == "licence", Budget.licence_id == licence_id)))).scalars().all()
    dataset_budget = next((b for b in rows if b.scope == "dataset"), None)
    licence_budget = next((b for b in rows if b.scope == "licence"), None)
    if dataset_budget is None or licence_budget is None:
        raise NotFound("no budget is set for this dataset or licence", code="no_budget")
    return [dataset_budget, licence_budget]


def epsilon_floor(rows: list[Budget], default: float) -> float:
    """The smallest ε one query may spend: the highest floor of the levels, or
    ``default`` where no level declares one."""
    floors = [float(b.min_epsilon_per_query or 0.0) for b in rows]
    return max(floors) if any(floors) else default


def check_floor(loss: PrivacyLoss, floor: float) -> None:
    """Refuse an ε under the floor: a run at a vanishing ε would still show
    whatever is exact around its numbers, at no cost to the budget."""
    if loss.epsilon < floor * (1 - TOLERANCE.relative):    # OpenDP's map may charge a hair under the ε asked for
        raise InvalidInput(f"ε={loss.epsilon:g} is below this licence's floor of ε={floor:g} per query",
                           code="epsilon_below_floor", floor=floor, requested=loss.to_dict())


def _refusal(b: Budget, loss: PrivacyLoss) -> SandboxError:
    if b.max_queries is not None and b.queries_used >= b.max_queries:
        return Forbidden(f"the {b.scope} allows {b.max_queries} queries and all have been run",
                         code="query_limit_reached", level=b.scope, max_queries=b.max_queries)
    st = status_of(b)
    if not st.per_query.covers(loss):
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


def _p(name: str):
    """A bound float parameter (typed, so PostgreSQL knows it inside CASE and sums)."""
    return bindparam(name, type_=Float)


def _caps() -> tuple:
    """A level's per-query caps and query cap, against the bound loss (``q_eps``, ``q_delta``)."""
    return (Budget.max_epsilon_per_query * TOLERANCE.factor + TOLERANCE.epsilon >= _p("q_eps"),
            Budget.max_delta_per_query * TOLERANCE.factor + TOLERANCE.delta >= _p("q_delta"),
            or_(Budget.max_queries.is_(None), Budget.queries_used < Budget.max_queries))


# The ledger's statements are built once, with bound parameters: building a SQL
# expression costs more than running it.
_RESERVE_APPROX = update(Budget).where(
    Budget.id == bindparam("level"), *_caps(),
    Budget.spent_epsilon + Budget.reserved_epsilon + _p("q_eps")
    <= Budget.epsilon * TOLERANCE.factor + TOLERANCE.epsilon,
    Budget.spent_delta + Budget.reserved_delta + _p("q_delta")
    <= Budget.delta * TOLERANCE.factor + TOLERANCE.delta,
).values(reserved_epsilon=Budget.reserved_epsilon + _p("q_eps"),
         reserved_delta=Budget.reserved_delta + _p("q_delta"), queries_used=Budget.queries_used + 1)
_RESERVE_ZCDP = update(Budget).where(
    Budget.id == bindparam("level"), *_caps(),
    Budget.spent_rho + Budget.reserved_rho + _p("q_rho") <= Budget.rho * TOLERANCE.factor + TOLERANCE.epsilon,
    Budget.spent_delta + Budget.reserved_delta + _p("q_pure_delta")
    <= (Budget.delta - Budget.rho_delta) * TOLERANCE.factor + TOLERANCE.delta,
).values(reserved_rho=Budget.reserved_rho + _p("q_rho"),
         reserved_delta=Budget.reserved_delta + _p("q_pure_delta"), queries_used=Budget.queries_used + 1)


def reserve(session: Session, dataset_id: int, licence_id: int, run_id: str, loss: PrivacyLoss | QueryLoss,
            rows: list[Budget] | None = None) -> list[int]:
    """Reserve ``loss`` at every level or raise ``BudgetExceeded`` (the caller's
    transaction then rolls back, leaving every level as it was). ``rows`` are the
    levels if the caller already read them in this session; returns their ids,
    in lock order, for the charge. A zCDP level reserves ρ (and the query's
    partition-selection δ) instead of ε."""
    q = loss if isinstance(loss, QueryLoss) else QueryLoss(loss)
    loss = q.loss
    rows = rows if rows is not None else budget_rows(session, dataset_id, licence_id)
    conn = session.connection()
    bound = {"q_eps": loss.epsilon, "q_delta": loss.delta, "q_rho": q.rho, "q_pure_delta": q.pure_delta}
    for b in rows:
        check_floor(loss, float(b.min_epsilon_per_query or 0.0))
        if b.rho is not None and q.rho <= 0:
            raise SandboxError("a zCDP budget level can only be charged a zCDP release", code="zcdp_charge_missing",
                               status=500)
        stmt = _RESERVE_ZCDP if b.rho is not None else _RESERVE_APPROX
        if rowcount(conn.execute(stmt, {"level": b.id, **bound})) != 1:
            session.refresh(b)
            raise _refusal(b, loss)
    _enter(session, [b.id for b in rows], run_id, "reserve", loss)
    return [b.id for b in rows]


def _enter(session: Session, ids: list[int], run_id: str, kind: str, loss: PrivacyLoss) -> None:
    """One ledger entry per level, in one statement."""
    now = utcnow()
    session.connection().execute(_INSERT_ENTRIES, [
        {"budget_id": bid, "run_id": run_id, "kind": kind, "epsilon": loss.epsilon, "delta": loss.delta,
         "created_at": now} for bid in ids])


def _level_ids(session: Session, dataset_id: int, licence_id: int, ids: list[int] | None) -> list[int]:
    return ids if ids is not None else [b.id for b in budget_rows(session, dataset_id, licence_id)]


def charge(session: Session, dataset_id: int, licence_id: int, run_id: str,
           reserved: PrivacyLoss | QueryLoss, spent: PrivacyLoss | QueryLoss, ids: list[int] | None = None) -> QueryLoss:
    """Turn a reservation into a charge (``spent`` ≤ ``reserved``). Returns the loss
    charged, which the run's audit record carries."""
    r = reserved if isinstance(reserved, QueryLoss) else QueryLoss(reserved)
    s_ = spent if isinstance(spent, QueryLoss) else QueryLoss(spent)
    s_ = QueryLoss(PrivacyLoss(min(s_.loss.epsilon, r.loss.epsilon), min(s_.loss.delta, r.loss.delta)),
                   min(s_.rho, r.rho) if s_.rho else r.rho, min(s_.pure_delta, r.pure_delta))
    _settle(session, _level_ids(session, dataset_id, licence_id, ids), run_id, r, s_)
    return s_


def cancel(session: Session, dataset_id: int, licence_id: int, run_id: str, reserved: PrivacyLoss | QueryLoss,
           ids: list[int] | None = None) -> QueryLoss:
    """Give back a reservation whose query never reached the data (it does not
    count towards a query cap either). Returns the loss given back."""
    r = reserved if isinstance(reserved, QueryLoss) else QueryLoss(reserved)
    _settle(session, _level_ids(session, dataset_id, licence_id, ids), run_id, r, None)
    return r


def _moved(column, prefix: str):
    """``column`` moved by the bound loss ``prefix_*``, whichever accounting the
    level keeps (CASE on ``rho``): ε at an approx level, ρ and the pure δ at a zCDP one."""
    zcdp = Budget.rho.is_not(None)
    moves = {"epsilon": case((zcdp, 0.0), else_=_p(f"{prefix}_eps")),
             "delta": case((zcdp, _p(f"{prefix}_pure_delta")), else_=_p(f"{prefix}_delta")),
             "rho": case((zcdp, _p(f"{prefix}_rho")), else_=0.0)}
    return column + moves[column.key.split("_", 1)[1]]


_SETTLE_CHARGE = update(Budget).where(Budget.id == bindparam("level")).values(
    reserved_epsilon=_moved(Budget.reserved_epsilon, "out"), reserved_delta=_moved(Budget.reserved_delta, "out"),
    reserved_rho=_moved(Budget.reserved_rho, "out"), spent_epsilon=_moved(Budget.spent_epsilon, "add"),
    spent_delta=_moved(Budget.spent_delta, "add"), spent_rho=_moved(Budget.spent_rho, "add"))
_SETTLE_CANCEL = update(Budget).where(Budget.id == bindparam("level")).values(
    reserved_epsilon=_moved(Budget.reserved_epsilon, "out"), reserved_delta=_moved(Budget.reserved_delta, "out"),
    reserved_rho=_moved(Budget.reserved_rho, "out"), queries_used=Budget.queries_used - 1)


def _bound(q: QueryLoss, prefix: str, sign: int) -> dict[str, float]:
    return {f"{prefix}_eps": sign * q.loss.epsilon, f"{prefix}_delta": sign * q.loss.delta,
            f"{prefix}_pure_delta": sign * q.pure_delta, f"{prefix}_rho": sign * q.rho}


def _settle(session: Session, ids: list[int], run_id: str, reserved: QueryLoss, spent: QueryLoss | None) -> None:
    """Release ``reserved`` at every level and charge ``spent`` (a ``charge``
    entry), or with ``spent=None`` give the run back its place under the query
    cap (a ``cancel`` entry)."""
    bound = _bound(reserved, "out", -1)
    if spent is not None:
        bound.update(_bound(spent, "add", 1))
    stmt = _SETTLE_CHARGE if spent is not None else _SETTLE_CANCEL
    entry = spent if spent is not None else reserved
    conn = session.connection()
    for bid in ids:     # one level at a time, in lock order (dataset, then licence), as reserve does
        conn.execute(stmt, {"level": bid, **bound})
    _enter(session, ids, run_id, "charge" if spent is not None else "cancel", entry.loss)


def budget_statuses(session: Session, dataset_id: int, licence_id: int | None = None) -> list[BudgetStatus]:
    stmt = select(Budget).where(Budget.dataset_id == dataset_id)
    rows = session.execute(stmt).scalars().all()
    return [status_of(b) for b in rows if b.scope == "dataset" or licence_id is None or b.licence_id == licence_id]
