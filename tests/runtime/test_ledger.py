"""The budget ledger: reservations never overspend, under real concurrency from
several processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
from datetime import datetime, timedelta, UTC

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings, strategies as st
from sqlalchemy import func, select

from concurrency_workers import reserve_and_charge
from privacy.model import TOLERANCE, PrivacyLoss
from queries.errors import BudgetExceeded, InvalidInput
from sandbox import ledger
from sandbox.audit import verify_chain
from sandbox.persistence.models import Budget, Dataset, LedgerEntry, Licence, User


def _budgets(inst, *, dataset_eps: float, licence_eps: float, per_query: float = 1.0) -> tuple[int, int]:
    with inst.store.transaction() as s:
        u = User(name="owner", role="owner", password_hash="x")
        op = User(name="op", role="operator", password_hash="x")
        s.add_all([u, op])
        s.flush()
        ds = Dataset(name="d", title="d", owner_id=u.id, classification="conditional", privacy_unit="pid")
        s.add(ds)
        s.flush()
        lic = Licence(dataset_id=ds.id, operator_id=op.id, purpose="p", granted_by=u.id,
                      expires_at=datetime.now(UTC) + timedelta(days=1))
        s.add(lic)
        s.flush()
        s.add(Budget(scope="dataset", dataset_id=ds.id, epsilon=dataset_eps, delta=1e-6,
                     max_epsilon_per_query=per_query, max_delta_per_query=1e-7))
        s.add(Budget(scope="licence", dataset_id=ds.id, licence_id=lic.id, epsilon=licence_eps, delta=1e-6,
                     max_epsilon_per_query=per_query, max_delta_per_query=1e-7))
        return ds.id, lic.id


def test_reserve_refuses_with_requested_remaining_and_difference(instance):
    ds, lic = _budgets(instance, dataset_eps=2.0, licence_eps=1.0)
    with instance.store.transaction() as s:
        ledger.reserve(s, ds, lic, "r1", PrivacyLoss(0.8))
    with pytest.raises(BudgetExceeded) as info:
        with instance.store.transaction() as s:
            ledger.reserve(s, ds, lic, "r2", PrivacyLoss(0.5))
    err = info.value
    assert err.level == "licence"
    assert err.requested["epsilon"] == 0.5
    assert err.remaining["epsilon"] == pytest.approx(0.2)
    assert err.remaining["difference"]["epsilon"] == pytest.approx(0.3)
    # the refusal changed nothing, at either level
    with instance.store.read() as s:
        rows = {b.scope: b for b in s.execute(select(Budget)).scalars()}
        assert rows["dataset"].reserved_epsilon == pytest.approx(0.8)
        assert rows["licence"].reserved_epsilon == pytest.approx(0.8)
        assert s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one() == 2


def test_per_query_cap_and_dataset_level(instance):
    ds, lic = _budgets(instance, dataset_eps=1.0, licence_eps=5.0, per_query=0.6)
    with pytest.raises(BudgetExceeded) as info:
        with instance.store.transaction() as s:
            ledger.reserve(s, ds, lic, "r1", PrivacyLoss(0.7))
    assert info.value.level == "dataset_per_query"
    for i in range(2):
        with instance.store.transaction() as s:
            ledger.reserve(s, ds, lic, f"ok{i}", PrivacyLoss(0.5))
    with pytest.raises(BudgetExceeded) as info:
        with instance.store.transaction() as s:
            ledger.reserve(s, ds, lic, "r3", PrivacyLoss(0.1))
    assert info.value.level == "dataset"


def test_charge_and_cancel_move_reservations(instance):
    ds, lic = _budgets(instance, dataset_eps=2.0, licence_eps=1.0)
    with instance.store.transaction() as s:
        ledger.reserve(s, ds, lic, "a", PrivacyLoss(0.4))
        ledger.reserve(s, ds, lic, "b", PrivacyLoss(0.4))
    with instance.store.transaction() as s:
        ledger.charge(s, ds, lic, "a", PrivacyLoss(0.4), PrivacyLoss(0.3))
        ledger.cancel(s, ds, lic, "b", PrivacyLoss(0.4))
    with instance.store.read() as s:
        st_ = {x.scope: x for x in ledger.budget_statuses(s, ds, lic)}
    assert st_["licence"].spent.epsilon == pytest.approx(0.3)
    assert st_["licence"].reserved.epsilon == pytest.approx(0.0, abs=1e-12)
    assert st_["licence"].remaining.epsilon == pytest.approx(0.7)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.1])
def test_invalid_losses_are_refused(bad):
    with pytest.raises(InvalidInput):
        PrivacyLoss(bad)


@settings(max_examples=200, deadline=None)
@given(total=st.floats(0.1, 20), shares=st.integers(1, 50))
def test_k_equal_shares_fit_exactly(total, shares):
    """Property: a budget admits exactly k shares of total/k (float rounding never
    refuses the last one nor admits one more)."""
    budget = PrivacyLoss(total)
    each = PrivacyLoss(total / shares)
    spent = PrivacyLoss(0.0)
    admitted = 0
    for _ in range(shares + 3):
        if budget.covers(spent + each):
            spent = spent + each
            admitted += 1
    assert admitted == shares


@pytest.mark.parametrize("over", [0.5, 2.0])
@pytest.mark.parametrize("limit", ["epsilon", "per_query_epsilon", "per_query_delta"])
def test_covers_and_the_ledger_share_one_tolerance(instance, limit, over):
    """A loss a hair past a limit (``over`` times the relative tolerance) fits both
    ``PrivacyLoss.covers`` and the ledger's conditional update, or neither."""
    per_query = 5.0 if limit == "epsilon" else 1.0
    ds, lic = _budgets(instance, dataset_eps=1.0 if limit == "epsilon" else 5.0, licence_eps=5.0,
                       per_query=per_query)
    bound = PrivacyLoss(1.0, 1e-6) if limit == "epsilon" else PrivacyLoss(1.0, 1e-7)
    hair = 1 + over * TOLERANCE.relative
    loss = PrivacyLoss(1.0, 1e-7 * hair) if limit == "per_query_delta" else PrivacyLoss(hair, 1e-8)
    fits = bound.covers(loss)
    assert fits == (over < 1)
    try:
        with instance.store.transaction() as s:
            ledger.reserve(s, ds, lic, "edge", loss)
        reserved = True
    except BudgetExceeded:
        reserved = False
    assert reserved == fits


@pytest.mark.slow
def test_concurrent_reservations_never_overspend(instance):
    """200 attempts from 4 processes at a budget that admits exactly 10."""
    ds, lic = _budgets(instance, dataset_eps=3.0, licence_eps=1.0, per_query=1.0)
    pem = instance.signer.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption())
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Event()
        with ctx.Pool(4) as pool:
            results = [pool.apply_async(reserve_and_charge, (instance.store.url, pem, ds, lic, 50, 0.1, start))
                       for _ in range(4)]
            start.set()
            outcomes = [r.get(timeout=300) for r in results]
    assert sum(ok for ok, _ in outcomes) == 10
    assert sum(refused for _, refused in outcomes) == 190
    with instance.store.read() as s:
        b = s.execute(select(Budget).where(Budget.scope == "licence")).scalar_one()
        assert b.spent_epsilon == pytest.approx(1.0)
        assert b.spent_epsilon <= 1.0 * (1 + 1e-9)
        assert b.reserved_epsilon == pytest.approx(0.0, abs=1e-9)
        charges = s.execute(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "charge",
                                                                               LedgerEntry.budget_id == b.id))
        assert charges.scalar_one() == 10
        report = verify_chain(s, instance.signer.public)
        assert report.ok and report.records == 20
