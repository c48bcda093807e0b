"""The state must follow from the audit chain: budgets (spent, reserved, query
counts, totals), ledger entries, licences and users are recomputed from the records,
and an edit made in the store behind the chain's back is reported with its object.
On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import delete, select, update

from sandbox.audit import Actor
from sandbox.licences import extend_licence, revoke_licence, top_up_licence
from sandbox.persistence.models import Budget, LedgerEntry, Licence, QueryRun, User
from sandbox.audit.reconcile import reconcile_state
from sandbox.service import run_query
from sandbox.users import add_user
from scenario import OWNER, PASSWORD, build

SQL = "SELECT COUNT(*) AS n FROM people"


@pytest.fixture
def busy(instance, tmp_path_factory):
    """Two licences (approx and zCDP), runs charged on both, one revoked, one extended and topped up."""
    lid = build(instance, tmp_path_factory.getbasetemp() / "src-reconcile", epsilon=3.0)
    from sandbox.licences import grant_licence

    zl = grant_licence(instance, OWNER, dataset="health", operator="operator2", epsilon=2.0, delta=1e-7,
                       purpose="zcdp", expires=date.today() + timedelta(days=10), accounting="zcdp")
    for eps in (0.3, 0.2):
        run_query(instance, "operator1", "health", SQL, epsilon=eps)
    run_query(instance, "operator2", "health", "SELECT city, COUNT(*) AS n FROM people GROUP BY city", epsilon=0.4)
    top_up_licence(instance, OWNER, lid, epsilon=1.0)
    extend_licence(instance, OWNER, lid, date.today() + timedelta(days=60))
    run_query(instance, "operator1", "health", SQL, epsilon=0.25)
    revoke_licence(instance, OWNER, zl, "done")
    return instance, lid, zl


def _licence_budget(inst, lid: int) -> int:
    with inst.store.read() as s:
        return s.execute(select(Budget.id).where(Budget.licence_id == lid)).scalar_one()


def _messages(inst) -> list[str]:
    report = reconcile_state(inst)
    assert report.ok == (not report.mismatches)
    return [m.message() for m in report.mismatches]


def test_an_untouched_store_follows_from_the_chain(busy):
    inst, _, _ = busy
    report = reconcile_state(inst)
    assert report.ok, report.lines()
    assert report.checked == {"budgets": 3, "ledger entries": 16, "licences": 2, "users": 5}
    assert report.lines()[0].startswith("state follows from the chain")


def test_a_refund_edited_into_the_store_is_reported(busy):
    inst, lid, _ = busy
    bid = _licence_budget(inst, lid)
    with inst.store.transaction() as s:
        spent = s.get(Budget, bid).spent_epsilon
        s.execute(update(Budget).where(Budget.id == bid).values(spent_epsilon=0.2))
    assert _messages(inst) == [f"budget {bid}: spent_epsilon 0.2 in the store, {spent:.10g} from the chain"]


def test_a_dataset_level_and_query_count_edit_is_reported(busy):
    inst, _, _ = busy
    with inst.store.transaction() as s:
        b = s.execute(select(Budget).where(Budget.scope == "dataset")).scalar_one()
        bid, used = b.id, b.queries_used
        b.spent_delta = 0.0
        b.queries_used = used - 1
    messages = _messages(inst)
    assert len(messages) == 2
    assert messages[0].startswith(f"budget {bid}: spent_delta 0 in the store, ")
    assert messages[1] == f"budget {bid}: queries_used {used - 1} in the store, {used} from the chain"


def test_a_raised_total_and_a_zcdp_refund_are_reported(busy):
    inst, lid, zl = busy
    bid, zid = _licence_budget(inst, lid), _licence_budget(inst, zl)
    with inst.store.transaction() as s:
        s.execute(update(Budget).where(Budget.id == bid).values(epsilon=9.0))
        s.execute(update(Budget).where(Budget.id == zid).values(spent_rho=0.0))
    messages = _messages(inst)
    assert f"budget {bid}: epsilon 9 in the store, 4 from the chain" in messages
    assert any(m.startswith(f"budget {zid}: spent_rho 0 in the store, ") for m in messages)
    assert len(messages) == 2


def test_a_dataset_total_raised_in_the_store_is_reported(busy):
    """The dataset's budget is recorded when it is set (budget.set), at registration too."""
    inst, _, _ = busy
    with inst.store.transaction() as s:
        b = s.execute(select(Budget).where(Budget.scope == "dataset")).scalar_one()
        bid = b.id
        b.epsilon, b.max_epsilon_per_query = 100.0, 5.0
    assert _messages(inst) == [f"budget {bid}: epsilon 100 in the store, 10 from the chain",
                               f"budget {bid}: max_epsilon_per_query 5 in the store, 1 from the chain"]


def test_a_role_edited_is_reported(busy):
    inst, _, _ = busy
    with inst.store.transaction() as s:
        s.execute(update(User).where(User.name == "operator1").values(role="admin"))
        s.execute(update(User).where(User.name == "reviewer1").values(active=False))
    assert _messages(inst) == ["user operator1: role admin in the store, operator from the chain",
                               "user reviewer1: active False in the store, True from the chain"]


def test_a_user_inserted_behind_the_chain_is_reported(busy):
    inst, _, _ = busy
    with inst.store.transaction() as s:
        s.add(User(name="mallory", role="admin", password_hash="x"))
    assert _messages(inst) == ["user mallory: user row in the store, not in the chain"]
    add_user(inst, Actor("setup", "admin"), "trudy", "reviewer", PASSWORD)     # an audited one is fine
    assert _messages(inst) == ["user mallory: user row in the store, not in the chain"]


def test_a_licence_expiry_pushed_out_is_reported(busy):
    inst, lid, zl = busy
    with inst.store.transaction() as s:
        lic = s.get(Licence, lid)
        recorded = lic.expires_at
        lic.expires_at = recorded + timedelta(days=365)
        s.get(Licence, zl).status = "active"                   # and a revoked licence brought back
    messages = _messages(inst)
    assert len(messages) == 2
    assert messages[0].startswith(f"licence {lid}: expires_at ")
    assert str(recorded.year + 1) in messages[0].split(" in the store")[0]
    assert messages[1] == f"licence {zl}: status active in the store, revoked from the chain"


def test_a_ledger_row_deleted_is_reported(busy):
    inst, lid, _ = busy
    bid = _licence_budget(inst, lid)
    with inst.store.transaction() as s:
        entry = s.execute(select(LedgerEntry).where(LedgerEntry.budget_id == bid, LedgerEntry.kind == "charge")
                          .order_by(LedgerEntry.id).limit(1)).scalar_one()
        run_id = entry.run_id
        s.execute(delete(LedgerEntry).where(LedgerEntry.id == entry.id))
    assert _messages(inst) == [f"ledger budget {bid} run {run_id}: charge entry in the chain, missing from the store"]


def test_a_ledger_amount_edited_or_row_added_is_reported(busy):
    inst, lid, _ = busy
    bid = _licence_budget(inst, lid)
    with inst.store.transaction() as s:
        entry = s.execute(select(LedgerEntry).where(LedgerEntry.budget_id == bid, LedgerEntry.kind == "charge")
                          .order_by(LedgerEntry.id).limit(1)).scalar_one()
        entry.epsilon = 0.01
        s.add(LedgerEntry(budget_id=bid, run_id="forged", kind="charge", epsilon=0.5, delta=0.0))
    messages = _messages(inst)
    assert f"ledger budget {bid} run forged: charge entry in the store, not in the chain" in messages
    assert any(m.startswith(f"ledger budget {bid} run {entry.run_id}: charge epsilon 0.01 in the store, ")
               for m in messages)


def test_a_run_in_flight_is_reserved_on_both_sides(busy):
    """A reservation whose run has not finished yet is state, not a mismatch."""
    from privacy.model import PrivacyLoss
    from sandbox import audit, ledger

    inst, lid, _ = busy
    with inst.store.transaction() as s:
        lic = s.get(Licence, lid)
        levels = ledger.reserve(s, lic.dataset_id, lid, "in-flight", ledger.QueryLoss(PrivacyLoss(0.1, 0.0)))
        audit.append(s, inst.signer, Actor("operator1", "operator"), "query.reserve", "query_run", "in-flight",
                     {"levels": levels, "reserved": ledger.QueryLoss(PrivacyLoss(0.1, 0.0)).to_payload()})
    assert reconcile_state(inst).ok
    with inst.store.transaction() as s:
        s.execute(update(Budget).where(Budget.licence_id == lid).values(reserved_epsilon=0.0))
    assert _messages(inst) == [f"budget {_licence_budget(inst, lid)}: reserved_epsilon 0 in the store, "
                               "0.1 from the chain"]


def test_audit_verify_reports_the_state(busy, monkeypatch):
    from cli_identity import SignedInRunner
    from sandbox.cli import main

    inst, lid, _ = busy
    monkeypatch.setenv("DPS_DATABASE_URL", inst.settings.database_url)
    runner = SignedInRunner(PASSWORD)
    ok = runner.invoke(main, ["audit", "verify", "--home", str(inst.home)])
    assert ok.exit_code == 0, ok.output
    assert "state follows from the chain: 3 budgets, 16 ledger entries, 2 licences, 5 users" in ok.stdout
    bid = _licence_budget(inst, lid)
    with inst.store.transaction() as s:
        s.execute(update(Budget).where(Budget.id == bid).values(spent_epsilon=0.2))
        s.execute(delete(QueryRun))          # runs are not state the chain recomputes; budgets are
    bad = runner.invoke(main, ["audit", "verify", "--home", str(inst.home), "--json"])
    assert bad.exit_code == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is True and report["state"]["ok"] is False
    assert [m["message"] for m in report["state"]["mismatches"]] == [
        f"budget {bid}: spent_epsilon 0.2 in the store, 0.75 from the chain"]
    human = runner.invoke(main, ["audit", "verify", "--home", str(inst.home)])
    assert human.exit_code == 1 and "state DIFFERS from the chain in 1 place(s)" in human.stdout


@pytest.mark.slow        # many processes for several seconds: CI runs it in the slow tier
def test_state_read_while_runs_commit_from_other_processes_always_follows(instance, tmp_path_factory):
    """Processes run queries while the state is reconciled again and again: each
    reconciliation reads the records and the tables in one snapshot, so a run
    committing meanwhile is never a mismatch; at the end the budget that admits
    k queries has charged k, and the state still follows from the chain."""
    import multiprocessing as mp

    from concurrency_workers import run_queries

    lid = build(instance, tmp_path_factory.getbasetemp() / "src-reconcile-conc", epsilon=1.0)
    reports = []
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Event()
        with ctx.Pool(3) as pool:
            jobs = [pool.apply_async(run_queries, (str(instance.home), instance.settings.database_url, 6, 0.1, start))
                    for _ in range(3)]
            start.set()
            while not all(j.ready() for j in jobs):
                reports.append(reconcile_state(instance))
            outcomes = [j.get(timeout=600) for j in jobs]
    assert sum(ok for ok, _ in outcomes) == 10 and sum(r for _, r in outcomes) == 8
    assert reports and all(r.ok for r in reports), [r.lines() for r in reports if not r.ok][:1]
    final = reconcile_state(instance)
    assert final.ok and final.checked["ledger entries"] == 2 * 2 * 10
    with instance.store.read() as s:
        assert s.execute(select(Budget.spent_epsilon).where(Budget.licence_id == lid)).scalar_one() == \
            pytest.approx(1.0)


def test_records_written_before_runs_named_their_levels_still_reconcile(instance, tmp_path_factory):
    """A chain from an earlier release: runs recorded with their dataset, licence and
    (ε, δ) only. The levels are found through the store's index, and a refund is still found."""
    from privacy.model import PrivacyLoss
    from sandbox import audit, ledger

    lid = build(instance, tmp_path_factory.getbasetemp() / "src-reconcile-legacy", epsilon=2.0)
    operator = Actor("operator1", "operator")
    for n, (eps, charged) in enumerate(((0.3, True), (0.2, False), (0.4, True))):
        run_id = f"legacy-{n}"
        loss = PrivacyLoss(eps, 0.0)
        with instance.store.transaction() as s:
            lic = s.get(Licence, lid)
            ledger.reserve(s, lic.dataset_id, lid, run_id, loss)
            audit.append(s, instance.signer, operator, "query.reserve", "query_run", run_id,
                         {"dataset": "health", "version": 1, "licence": lid, "epsilon": eps, "delta": 0.0})
        with instance.store.transaction() as s:
            lic = s.get(Licence, lid)
            (ledger.charge(s, lic.dataset_id, lid, run_id, loss, loss) if charged
             else ledger.cancel(s, lic.dataset_id, lid, run_id, loss))
            audit.append(s, instance.signer, operator, "query.run" if charged else "query.fail", "query_run", run_id,
                         {"status": "charged" if charged else "failed", "error_code": None if charged else "key_error",
                          "epsilon": eps if charged else 0.0, "delta": 0.0})
    assert reconcile_state(instance).ok
    bid = _licence_budget(instance, lid)
    with instance.store.transaction() as s:
        s.execute(update(Budget).where(Budget.id == bid).values(spent_epsilon=0.3, queries_used=3))
    assert _messages(instance) == [f"budget {bid}: spent_epsilon 0.3 in the store, 0.7 from the chain",
                                   f"budget {bid}: queries_used 3 in the store, 2 from the chain"]
