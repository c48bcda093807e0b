"""A licence with zCDP accounting composes ρ across its queries: for the same
(ε, δ) it admits more queries than sequential (ε, δ) composition, and OpenDP's
conversion of the ρ it spent never exceeds the licence's ε."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from privacy.accounting import zcdp_epsilon
from queries.errors import BudgetExceeded, InvalidInput
from sandbox.ledger import budget_statuses
from sandbox.licences import grant_licence
from sandbox.persistence.models import Budget, Licence
from sandbox.service import run_query
from scenario import OWNER, build

SQL = "SELECT sex, COUNT(*) AS n FROM people GROUP BY sex"


def _admitted(inst, epsilon: float, limit: int = 200) -> int:
    n = 0
    for _ in range(limit):
        try:
            run_query(inst, "operator1", "health", SQL, epsilon=epsilon)
        except BudgetExceeded as exc:
            assert exc.level == "licence"
            return n
        n += 1
    raise AssertionError("the licence never ran out")


@pytest.mark.slow
@pytest.mark.parametrize("accounting", ["approx", "zcdp"])
def test_zcdp_licence_admits_more_and_never_overspends(instance, tmp_path_factory, accounting):
    build(instance, tmp_path_factory.getbasetemp() / f"src-{accounting}", epsilon=0.5, accounting=accounting)
    # The dataset level composes sequentially in (ε, δ), and every zCDP query spends its
    # conversion δ there too: give it room so that the licence level is what runs out.
    with instance.store.transaction() as s:
        ds_budget = s.execute(select(Budget).where(Budget.scope == "dataset")).scalar_one()
        ds_budget.delta = 1e-3
    admitted = _admitted(instance, 0.05)
    with instance.store.read() as s:
        lic = s.execute(select(Budget).where(Budget.scope == "licence")).scalar_one()
        status = next(b for b in budget_statuses(s, lic.dataset_id, lic.licence_id) if b.scope == "licence")
    if accounting == "approx":
        assert admitted == 10
        assert lic.spent_epsilon == pytest.approx(0.5)
    else:
        assert admitted >= 20, admitted          # ρ composes: far more than 10 queries of ε = 0.05
        assert lic.spent_rho <= lic.rho * (1 + 1e-9)
        assert zcdp_epsilon(lic.spent_rho, lic.rho_delta) <= 0.5 * (1 + 1e-9)
        assert status.accounting == "zcdp" and status.spent.epsilon <= 0.5 * (1 + 1e-9)
        assert status.remaining.epsilon < 0.05      # exhausted in ε terms too
        assert lic.reserved_rho == pytest.approx(0.0, abs=1e-12)


def test_zcdp_licence_needs_delta(instance, tmp_path_factory):
    build(instance, tmp_path_factory.getbasetemp() / "src-zcdp-delta")
    from datetime import date, timedelta

    with pytest.raises(InvalidInput) as info:
        grant_licence(instance, OWNER, dataset="health", operator="operator2", epsilon=1.0, delta=0.0,
                      purpose="p", expires=date.today() + timedelta(days=3), accounting="zcdp")
    assert info.value.code == "invalid_budget"
    with instance.store.read() as s:
        assert len(s.execute(select(Licence)).scalars().all()) == 1
