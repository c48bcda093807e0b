"""Licence approval modes end to end: templates, per-query requests, caps under
concurrency. Nothing is charged for a refused run."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from queries.errors import Conflict, Forbidden, InvalidInput
from sandbox.approvals import (decide_request, decide_template, parse_parameter_spec, propose_template,
                               request_query, set_approval_mode)
from sandbox.persistence.models import Budget, QueryRun
from sandbox.service import check_query, run_query
from scenario import OWNER, build

TEMPLATE = "SELECT COUNT(*) AS n FROM people WHERE city = :city AND age >= :min_age"
SPECS = [parse_parameter_spec("city:string:Oslo|Bergen|Hamar"), parse_parameter_spec("min_age:integer:0..120")]


def _spent(inst) -> float:
    with inst.store.read() as s:
        return s.execute(select(Budget.spent_epsilon).where(Budget.scope == "licence")).scalar_one()


def _runs(inst) -> int:
    with inst.store.read() as s:
        return len(s.execute(select(QueryRun)).scalars().all())


@pytest.fixture
def templated(instance, tmp_path_factory):
    lid = build(instance, tmp_path_factory.getbasetemp() / "src-approvals", approval="templates")
    return instance, lid


def test_templates_mode_refuses_free_sql_but_previews_it(templated):
    inst, _ = templated
    assert check_query(inst, "operator1", "health", "SELECT COUNT(*) FROM people").cost.loss.epsilon > 0
    with pytest.raises(Forbidden) as info:
        run_query(inst, "operator1", "health", "SELECT COUNT(*) FROM people")
    assert info.value.code == "template_required"
    assert _spent(inst) == 0 and _runs(inst) == 0


def test_template_lifecycle_and_parameter_domains(templated):
    inst, _ = templated
    tid = propose_template(inst, "operator1", "health", title="Adults per city", purpose="planning", sql=TEMPLATE,
                           parameters=SPECS, epsilon_per_run=0.2, max_runs=3)
    with pytest.raises(Conflict) as info:
        run_query(inst, "operator1", "health", template_id=tid, params={"city": "Oslo", "min_age": "18"})
    assert info.value.code == "template_not_approved"
    with pytest.raises(Forbidden):
        decide_template(inst, "reviewer1", tid, "approve")        # not delegated
    decide_template(inst, "owner1", tid, "approve")
    for city in ("Oslo", "Bergen"):
        result = run_query(inst, "operator1", "health", template_id=tid, params={"city": city, "min_age": "18"})
        assert result.release.loss.epsilon == pytest.approx(0.2)
    for bad in ({"city": "Paris", "min_age": "18"}, {"city": "Oslo' OR '1'='1", "min_age": "18"},
                {"city": "Oslo", "min_age": "18 OR 1=1"}):
        with pytest.raises(InvalidInput) as info:
            run_query(inst, "operator1", "health", template_id=tid, params=bad)
        assert info.value.code == "parameter_out_of_domain"
    assert _spent(inst) == pytest.approx(0.4) and _runs(inst) == 2
    run_query(inst, "operator1", "health", template_id=tid, params={"city": "Hamar", "min_age": "0"})
    with pytest.raises(Conflict) as info:
        run_query(inst, "operator1", "health", template_id=tid, params={"city": "Hamar", "min_age": "1"})
    assert info.value.code == "template_cap_reached"
    assert _spent(inst) == pytest.approx(0.6)


def test_template_must_match_its_placeholders(templated):
    inst, _ = templated
    with pytest.raises(InvalidInput) as info:
        propose_template(inst, "operator1", "health", title="t", purpose="p", sql=TEMPLATE, parameters=SPECS[:1],
                         epsilon_per_run=0.1)
    assert info.value.code == "parameter_mismatch"


def test_template_run_cap_holds_under_concurrency(templated):
    inst, _ = templated
    # the template cap is under test, not the per-operator limit on runs in flight
    inst.settings = inst.settings.replace(max_concurrent_runs=100)
    tid = propose_template(inst, "operator1", "health", title="t", purpose="p", sql=TEMPLATE, parameters=SPECS,
                           epsilon_per_run=0.05, max_runs=4)
    decide_template(inst, "owner1", tid, "approve")
    outcomes: list[str] = []

    def worker() -> None:
        try:
            run_query(inst, "operator1", "health", template_id=tid, params={"city": "Oslo", "min_age": "30"})
            outcomes.append("ok")
        except Conflict as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 4 and outcomes.count("template_cap_reached") == 8
    assert _spent(inst) == pytest.approx(0.2)


def test_each_mode_request_runs_exactly_once(instance, tmp_path_factory):
    build(instance, tmp_path_factory.getbasetemp() / "src-each", approval="each")
    with pytest.raises(Forbidden) as info:
        run_query(instance, "operator1", "health", "SELECT COUNT(*) FROM people")
    assert info.value.code == "approval_required"
    rid = request_query(instance, "operator1", "health", "SELECT COUNT(*) AS n FROM people", purpose="size",
                        epsilon=0.1)
    with pytest.raises(Conflict) as info:
        run_query(instance, "operator1", "health", request_id=rid)
    assert info.value.code == "request_not_approved"
    assert _spent(instance) == 0
    decide_request(instance, "owner1", rid, "approve")
    run_query(instance, "operator1", "health", request_id=rid)
    with pytest.raises(Conflict) as info:
        run_query(instance, "operator1", "health", request_id=rid)
    assert info.value.code == "request_already_ran"
    assert _spent(instance) == pytest.approx(0.1) and _runs(instance) == 1


def test_mode_change_is_audited_and_takes_effect(instance, tmp_path_factory):
    lid = build(instance, tmp_path_factory.getbasetemp() / "src-mode")
    run_query(instance, "operator1", "health", "SELECT COUNT(*) FROM people", epsilon=0.1)
    set_approval_mode(instance, OWNER, lid, "each", "tighter review")
    with pytest.raises(Forbidden):
        run_query(instance, "operator1", "health", "SELECT COUNT(*) FROM people", epsilon=0.1)
    from sandbox.audit import verify_chain
    from sandbox.persistence.models import AuditRecord

    with instance.store.read() as s:
        assert verify_chain(s, instance.signer.public).ok
        rec = s.execute(select(AuditRecord).where(AuditRecord.action == "licence.set_approval")).scalar_one()
        assert rec.payload == {"from": "automatic", "to": "each", "reason": "tighter review"}
