"""What bounds a run before it touches data: the floor on ε, the query cap, bad
numbers, and the response-time grid. Each refusal has its code and leaves the
ledger and the runs as they were; the audit chain gains only the refusal's own
``query.refuse`` record."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from queries.errors import InvalidInput, SandboxError
from sandbox.audit import Actor
from sandbox.licences import grant_licence
from sandbox.persistence.models import AuditRecord, Budget, QueryRun
from sandbox.service import check_query, response_deadline, run_query
from sandbox.vocabulary import ReadAction
from scenario import OWNER, build

SQL = "SELECT sex, COUNT(*) AS n FROM people GROUP BY sex"


@pytest.fixture
def world(instance, tmp_path_factory):
    lid = build(instance, tmp_path_factory.getbasetemp() / "src-limits", epsilon=1.0)
    return instance, lid


def _state(inst):
    with inst.store.read() as s:
        budgets = [(b.scope, b.spent_epsilon, b.reserved_epsilon, b.queries_used)
                   for b in s.execute(select(Budget).order_by(Budget.id)).scalars()]
        runs = s.execute(select(func.count()).select_from(QueryRun)).scalar_one()
        audit = s.execute(select(func.count()).select_from(AuditRecord)
                          .where(AuditRecord.action != ReadAction.QUERY_REFUSE)).scalar_one()
    return budgets, runs, audit


def _refusals(inst) -> list[str]:
    """The codes of the refusals recorded so far, oldest first."""
    with inst.store.read() as s:
        return [r.payload["code"] for r in s.execute(select(AuditRecord).where(
            AuditRecord.action == ReadAction.QUERY_REFUSE).order_by(AuditRecord.seq)).scalars()]


def test_bad_or_tiny_epsilons_are_refused_before_anything_is_reserved(world):
    inst, _ = world
    before = _state(inst)
    cases = {1e-300: "epsilon_below_floor", 1e-12: "epsilon_below_floor", 0.0099: "epsilon_below_floor",
             5e-324: "invalid_budget", 1e-320: "invalid_budget", math.nan: "invalid_budget",
             math.inf: "invalid_budget", -1.0: "invalid_budget", 0.0: "invalid_budget", "1": "invalid_budget",
             True: "invalid_budget"}
    for epsilon, code in cases.items():
        for call in (run_query, check_query):          # the free preview says the same
            with pytest.raises(InvalidInput) as info:
                call(inst, "operator1", "health", SQL, epsilon=epsilon)
            assert (info.value.code, info.value.status) == (code, 400), epsilon
    with pytest.raises(InvalidInput) as info:
        run_query(inst, "operator1", "health", SQL, epsilon=1e-300)
    assert info.value.fields["floor"] == pytest.approx(0.01)
    assert _state(inst) == before
    assert _refusals(inst) == [*cases.values(), "epsilon_below_floor"]    # each run refused is on record


def test_an_exhausted_licence_answers_nothing_at_a_vanishing_epsilon(world):
    inst, _ = world
    for _ in range(2):
        run_query(inst, "operator1", "health", SQL, epsilon=0.5)
    before = _state(inst)
    for eps in (1e-300, 1e-12, 1e-9):
        with pytest.raises(SandboxError) as info:
            run_query(inst, "operator1", "health", SQL, epsilon=eps)
        assert info.value.code == "epsilon_below_floor"
    with pytest.raises(SandboxError) as info:
        run_query(inst, "operator1", "health", SQL, epsilon=0.01)
    assert info.value.code == "budget_exceeded"
    assert _state(inst) == before


def test_an_accuracy_target_never_goes_under_the_floor(world):
    inst, _ = world
    checked = check_query(inst, "operator1", "health", SQL, target=("n", 1e9))
    assert checked.cost.loss.epsilon == pytest.approx(0.01)
    for bad in (0.0, -1.0, math.nan, math.inf, 5e-324):
        with pytest.raises(InvalidInput) as info:
            check_query(inst, "operator1", "health", SQL, target=("n", bad))
        assert info.value.code == "invalid_target"


def test_a_licence_may_raise_the_floor_and_cap_its_queries(instance, tmp_path_factory):
    build(instance, tmp_path_factory.getbasetemp() / "src-limits2", epsilon=1.0)
    lid = grant_licence(instance, OWNER, dataset="health", operator="operator2", epsilon=1.0, delta=1e-6,
                        purpose="capped", expires=date.today() + timedelta(days=5), min_epsilon_per_query=0.1,
                        max_queries=2)
    with pytest.raises(InvalidInput) as info:
        run_query(instance, "operator2", "health", SQL, epsilon=0.05)
    assert info.value.code == "epsilon_below_floor" and info.value.fields["floor"] == pytest.approx(0.1)
    for _ in range(2):
        run_query(instance, "operator2", "health", SQL, epsilon=0.1)
    before = _state(instance)
    with pytest.raises(SandboxError) as info:
        run_query(instance, "operator2", "health", SQL, epsilon=0.1)
    assert info.value.code == "query_limit_reached" and info.value.status == 403
    assert _state(instance) == before
    with instance.store.read() as s:
        b = s.execute(select(Budget).where(Budget.licence_id == lid)).scalar_one()
        assert (b.queries_used, b.max_queries, b.min_epsilon_per_query) == (2, 2, pytest.approx(0.1))


def test_a_licence_cannot_lower_the_floor_or_set_it_above_the_cap(world):
    inst, _ = world
    common = dict(dataset="health", operator="operator2", epsilon=1.0, delta=1e-6, purpose="p",
                  expires=date.today() + timedelta(days=5))
    low = grant_licence(inst, OWNER, min_epsilon_per_query=0.001, **common)
    with inst.store.read() as s:
        assert s.execute(select(Budget.min_epsilon_per_query).where(Budget.licence_id == low)).scalar_one() == \
            pytest.approx(0.01)
    for bad in ({"min_epsilon_per_query": 2.0}, {"min_epsilon_per_query": -1.0}, {"max_queries": 0}):
        with pytest.raises(InvalidInput) as info:
            grant_licence(inst, OWNER, **{**common, **bad})
        assert info.value.code == "invalid_budget"


def test_the_policy_declares_the_floor(instance, tmp_path):
    from sandbox.datasets import add_dataset
    from sandbox.demo.data import write_health
    from sandbox.users import add_user

    add_user(instance, Actor("setup", "admin"), "owner1", "owner", "long enough password")
    policy = write_health(tmp_path / "src", people=300)
    text = policy.read_text()
    policy.write_text(text.replace("[budget]\n", "[budget]\nmin_epsilon_per_query = 0.05\n", 1))
    add_dataset(instance, OWNER, policy)
    with instance.store.read() as s:
        b = s.execute(select(Budget).where(Budget.scope == "dataset")).scalar_one()
        assert b.min_epsilon_per_query == pytest.approx(0.05)


def test_response_deadline_is_the_first_grid_point_at_or_after_the_duration():
    assert response_deadline(0.01, 0.05, 2.0) == pytest.approx(0.05)
    assert response_deadline(0.05, 0.05, 2.0) == pytest.approx(0.05)
    assert response_deadline(0.051, 0.05, 2.0) == pytest.approx(0.1)
    assert response_deadline(0.3, 0.05, 2.0) == pytest.approx(0.4)
    assert response_deadline(0.3, 0.05, 0.0) == pytest.approx(0.3)      # grid off: only the floor
    assert response_deadline(0.01, 0.0, 2.0) == pytest.approx(0.01)     # no floor: no padding
    # durations anywhere in one grid interval answer at the same moment
    assert len({response_deadline(d, 0.05, 2.0) for d in (0.101, 0.15, 0.19999)}) == 1


def test_a_run_that_fails_on_the_data_has_one_outcome_and_is_charged(make_instance, tmp_path):
    """A damaged version fails only once the run reads it: the operator sees run_failed
    (one message, an error id), the run is charged and stored as run_failed, and the
    operator is not left with a run in flight."""
    from queries.errors import RunFailed

    inst = make_instance(query_timeout_s=1.0)
    build(inst, tmp_path / "src", epsilon=1.0)
    with inst.store.read() as s:
        from sandbox.persistence.models import DatasetVersion

        path = s.execute(select(DatasetVersion.path)).scalar_one()
    with open(path, "r+b") as fh:       # flip bytes inside the first encrypted chunk
        fh.seek(200)
        chunk = fh.read(64)
        fh.seek(200)
        fh.write(bytes(b ^ 0xFF for b in chunk))
    for _ in range(2):                  # twice: the first failure left nothing in flight
        with pytest.raises(RunFailed) as info:
            run_query(inst, "operator1", "health", SQL, epsilon=0.1)
        assert (info.value.code, info.value.status) == ("run_failed", 422)
        assert info.value.message.startswith(RunFailed.MESSAGE)
    with inst.store.read() as s:
        runs = s.execute(select(QueryRun)).scalars().all()
        assert {(r.status, r.error_code) for r in runs} == {("failed", "run_failed")}
        lic = s.execute(select(Budget).where(Budget.scope == "licence")).scalar_one()
        assert lic.spent_epsilon == pytest.approx(0.2) and abs(lic.reserved_epsilon) < 1e-12
