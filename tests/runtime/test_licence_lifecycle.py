"""A licence's life: extended, topped up (never above the dataset's total),
expired and revoked with distinct codes, and the end of a licence cancelling its
pending templates and query approval requests. Each change is audited, and the
state still follows from the chain afterwards. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from queries.errors import Conflict, Forbidden, InvalidInput
from sandbox.approvals import decide_request, decide_template, parse_parameter_spec, propose_template, request_query
from sandbox.audit import Actor
from sandbox.licences import (close_expired, extend_licence, get_licence, grant_licence, list_licences,
                              revoke_licence, top_up_licence)
from sandbox.persistence.approval_models import QueryRequest, QueryTemplate
from sandbox.persistence.models import AuditRecord, Budget, Licence
from sandbox.audit.reconcile import reconcile_state
from sandbox.service import run_query
from scenario import OWNER, build

SQL = "SELECT COUNT(*) AS n FROM people"
TEMPLATE = "SELECT COUNT(*) AS n FROM people WHERE city = :city"
SPECS = [parse_parameter_spec("city:string:Oslo|Bergen")]


@pytest.fixture
def licensed(instance, tmp_path_factory):
    lid = build(instance, tmp_path_factory.getbasetemp() / "src-lifecycle", epsilon=2.0)
    return instance, lid


def _records(inst, action: str) -> list[AuditRecord]:
    with inst.store.read() as s:
        return list(s.execute(select(AuditRecord).where(AuditRecord.action == action)
                              .order_by(AuditRecord.seq)).scalars())


def _time_passes(inst, lid: int) -> None:
    """The licence's end goes by (its row's end moved to a minute ago)."""
    with inst.store.transaction() as s:
        s.get(Licence, lid).expires_at = datetime.now(UTC) - timedelta(minutes=1)


def test_extend_moves_the_end_later_and_is_audited(licensed):
    inst, lid = licensed
    before = get_licence(inst, lid).expires_at
    until = date.today() + timedelta(days=90)
    view = extend_licence(inst, OWNER, lid, until)
    assert view.expires_at.startswith(until.isoformat()) and view.status == "active"
    (rec,) = _records(inst, "licence.extend")
    assert rec.actor == "owner1" and rec.payload == {"from": before, "to": view.expires_at}
    for day, code in ((date.today() + timedelta(days=10), "invalid_expiry"),      # earlier than the current end
                      (date.today() - timedelta(days=1), "invalid_expiry")):      # in the past
        with pytest.raises(InvalidInput) as info:
            extend_licence(inst, OWNER, lid, day)
        assert info.value.code == code
    with pytest.raises(Forbidden):
        extend_licence(inst, Actor("operator1", "operator"), lid, until + timedelta(days=1))
    assert get_licence(inst, lid).expires_at == view.expires_at
    assert reconcile_state(inst).ok


def test_an_expired_licence_shows_expired_refuses_runs_and_comes_back_when_extended(licensed):
    inst, lid = licensed
    _time_passes(inst, lid)
    assert [v.status for v in list_licences(inst)] == ["expired"]
    assert get_licence(inst, lid).status == "expired"
    with pytest.raises(Forbidden) as info:
        run_query(inst, "operator1", "health", SQL, epsilon=0.1)
    assert info.value.code == "licence_expired"
    with pytest.raises(Conflict) as info:
        top_up_licence(inst, OWNER, lid, epsilon=0.5)
    assert info.value.code == "licence_expired"
    extend_licence(inst, OWNER, lid, date.today() + timedelta(days=5))
    assert get_licence(inst, lid).status == "active"
    assert run_query(inst, "operator1", "health", SQL, epsilon=0.1).release.loss.epsilon > 0


def test_revoked_and_expired_have_distinct_codes(licensed):
    inst, lid = licensed
    revoke_licence(inst, OWNER, lid, "purpose ended")
    _time_passes(inst, lid)                       # revoked and past its end: it says revoked
    with pytest.raises(Forbidden) as info:
        run_query(inst, "operator1", "health", SQL, epsilon=0.1)
    assert info.value.code == "licence_revoked"
    assert get_licence(inst, lid).status == "revoked"
    with pytest.raises(Conflict) as info:
        extend_licence(inst, OWNER, lid, date.today() + timedelta(days=60))
    assert info.value.code == "licence_revoked"
    # a newer licence that expired: the newest one says why
    newer = grant_licence(inst, OWNER, dataset="health", operator="operator1", epsilon=1.0, delta=1e-7,
                          purpose="again", expires=date.today() + timedelta(days=3))
    _time_passes(inst, newer)
    with pytest.raises(Forbidden) as info:
        run_query(inst, "operator1", "health", SQL, epsilon=0.1)
    assert info.value.code == "licence_expired"


def test_top_up_adds_budget_up_to_the_dataset_total(licensed):
    inst, lid = licensed
    run_query(inst, "operator1", "health", SQL, epsilon=1.0)
    run_query(inst, "operator1", "health", SQL, epsilon=1.0)
    with pytest.raises(Exception) as info:
        run_query(inst, "operator1", "health", SQL, epsilon=0.5)
    assert getattr(info.value, "code", "") == "budget_exceeded"
    view = top_up_licence(inst, OWNER, lid, epsilon=3.0)
    assert view.budget.total.epsilon == pytest.approx(5.0) and view.budget.total.delta == pytest.approx(1e-6)
    assert view.budget.remaining.epsilon == pytest.approx(3.0)
    assert run_query(inst, "operator1", "health", SQL, epsilon=0.5).release.loss.epsilon > 0
    (rec,) = _records(inst, "licence.top_up")
    assert rec.payload["added"] == {"epsilon": 3.0, "delta": 0.0} and rec.payload["epsilon"] == 5.0
    # the dataset's total is ε = 10, δ = 1e-6 (its policy): never above it
    for eps, delta in ((5.5, 0.0), (0.1, 1e-7)):
        with pytest.raises(InvalidInput) as info:
            top_up_licence(inst, OWNER, lid, epsilon=eps, delta=delta)
        assert info.value.code == "budget_above_total"
    for eps in (0.0, -1.0):
        with pytest.raises(InvalidInput) as info:
            top_up_licence(inst, OWNER, lid, epsilon=eps)
        assert info.value.code == "invalid_budget"
    with pytest.raises(Forbidden):
        top_up_licence(inst, Actor("operator1", "operator"), lid, epsilon=1.0)
    with inst.store.read() as s:
        b = s.execute(select(Budget).where(Budget.licence_id == lid)).scalar_one()
        assert (b.epsilon, b.delta) == (pytest.approx(5.0), pytest.approx(1e-6))
    assert len(_records(inst, "licence.top_up")) == 1
    assert reconcile_state(inst).ok


def test_top_up_of_a_zcdp_licence_recomputes_rho(instance, tmp_path_factory):
    lid = build(instance, tmp_path_factory.getbasetemp() / "src-lifecycle-zcdp", epsilon=2.0, accounting="zcdp")
    with instance.store.read() as s:
        rho_before = s.execute(select(Budget.rho).where(Budget.licence_id == lid)).scalar_one()
    run_query(instance, "operator1", "health", SQL, epsilon=0.5)
    view = top_up_licence(instance, OWNER, lid, epsilon=2.0)
    with instance.store.read() as s:
        b = s.execute(select(Budget).where(Budget.licence_id == lid)).scalar_one()
    assert b.rho > rho_before and b.rho_delta == pytest.approx(5e-7)
    assert view.budget.total.epsilon == pytest.approx(4.0) and view.budget.remaining.epsilon > 3.0
    assert reconcile_state(instance).ok


def _pending_work(inst, lid: int) -> tuple[int, int, int]:
    """A proposed template, an approved template and a pending request on the licence."""
    with inst.store.transaction() as s:
        s.get(Licence, lid).approval_mode = "templates"
    proposed = propose_template(inst, "operator1", "health", title="t1", purpose="p", sql=TEMPLATE,
                                parameters=SPECS, epsilon_per_run=0.1)
    approved = propose_template(inst, "operator1", "health", title="t2", purpose="p", sql=TEMPLATE,
                                parameters=SPECS, epsilon_per_run=0.1)
    decide_template(inst, "owner1", approved, "approve")
    with inst.store.transaction() as s:
        s.get(Licence, lid).approval_mode = "each"
    request = request_query(inst, "operator1", "health", SQL, purpose="size", epsilon=0.1)
    return proposed, approved, request


def _statuses(inst, templates: tuple[int, ...], request: int) -> tuple[list[str], str]:
    with inst.store.read() as s:
        return [s.get(QueryTemplate, t).status for t in templates], s.get(QueryRequest, request).status


def test_revoke_cancels_pending_templates_and_requests(licensed):
    inst, lid = licensed
    proposed, approved, request = _pending_work(inst, lid)
    revoke_licence(inst, OWNER, lid, "ended")
    assert _statuses(inst, (proposed, approved), request) == (["cancelled", "cancelled"], "cancelled")
    assert [(r.object_id, r.payload["from"]) for r in _records(inst, "template.cancel")] == [
        (str(proposed), "proposed"), (str(approved), "approved")]
    (rec,) = _records(inst, "request.cancel")
    assert rec.object_id == str(request) and rec.actor == "owner1" and rec.payload["reason"] == "licence revoked"
    with pytest.raises(Conflict) as info:
        decide_request(inst, "owner1", request, "approve")
    assert info.value.code == "request_not_pending"
    with pytest.raises(Conflict) as info:
        decide_template(inst, "owner1", proposed, "approve")
    assert info.value.code == "template_not_pending"
    assert _statuses(inst, (proposed, approved), request) == (["cancelled", "cancelled"], "cancelled")


def test_expiry_cancels_pending_templates_and_requests(licensed):
    inst, lid = licensed
    proposed, approved, request = _pending_work(inst, lid)
    _time_passes(inst, lid)
    # deciding first closes the expired licence: the request is cancelled, so the approval is refused
    with pytest.raises(Conflict) as info:
        decide_request(inst, "owner1", request, "approve")
    assert info.value.code == "request_not_pending"
    assert _statuses(inst, (proposed, approved), request) == (["cancelled", "cancelled"], "cancelled")
    (expire,) = _records(inst, "licence.expire")
    assert expire.actor == "system" and expire.object_id == str(lid)
    assert {r.payload["reason"] for r in _records(inst, "template.cancel")} == {"licence expired"}
    assert close_expired(inst) == []                # nothing pending is left: nothing more happens
    assert len(_records(inst, "licence.expire")) == 1


def test_close_expired_leaves_active_licences_alone(licensed):
    inst, lid = licensed
    proposed, approved, request = _pending_work(inst, lid)
    assert close_expired(inst) == []
    assert _statuses(inst, (proposed, approved), request) == (["proposed", "approved"], "pending")
    assert close_expired(inst, now=datetime.now(UTC) + timedelta(days=400)) == [lid]
    assert _statuses(inst, (proposed, approved), request) == (["cancelled", "cancelled"], "cancelled")


def test_licence_commands(licensed, monkeypatch):
    from cli_identity import SignedInRunner
    from sandbox.cli import main
    from scenario import PASSWORD

    inst, lid = licensed
    monkeypatch.setenv("DPS_DATABASE_URL", inst.settings.database_url)
    runner = SignedInRunner(PASSWORD)
    home = ["--home", str(inst.home)]

    def cli(*args: str, code: int = 0):
        result = runner.invoke(main, [*args, *home])
        assert result.exit_code == code, result.output
        return result

    until = (date.today() + timedelta(days=120)).isoformat()
    extended = json.loads(cli("licence", "extend", str(lid), "--until", until, "--as", "owner1", "--json").stdout)
    assert extended["expires_at"].startswith(until) and extended["status"] == "active"
    topped = cli("licence", "top-up", str(lid), "--epsilon", "1.5", "--as", "owner1")
    assert topped.stdout.startswith(f"licence {lid}: budget ε=3.5")
    refused = cli("licence", "top-up", str(lid), "--epsilon", "100", "--as", "owner1", code=1)
    assert "budget_above_total" in refused.stderr and "Traceback" not in refused.output
    refused = cli("licence", "extend", str(lid), "--until", "2001-01-01", "--as", "owner1", code=1)
    assert "invalid_expiry" in refused.stderr
    refused = cli("licence", "extend", "999", "--until", until, code=1)
    assert "unknown_licence" in refused.stderr
    shown = json.loads(cli("licence", "show", str(lid), "--json").stdout)
    assert shown["budget"]["total"]["epsilon"] == pytest.approx(3.5)
    _time_passes(inst, lid)
    listed = cli("licence", "list")
    assert " expired " in listed.stdout
    assert json.loads(cli("licence", "list", "--json").stdout)[0]["status"] == "expired"
    assert "expired" in cli("licence", "show", str(lid)).stdout
    assert json.loads(cli("licence", "close-expired", "--json").stdout) == {"closed": []}
    verified = cli("audit", "verify", code=1)      # the row's end was moved by hand: reported
    assert f"licence {lid}: expires_at" in verified.stdout


def test_a_per_query_cap_clipped_by_a_small_total_grows_with_a_top_up(licensed):
    """A licence of ε = 0.5 on a dataset whose per-query cap is ε = 1 had a per-query
    cap of 0.5; topped up to 1.5, one query may spend up to the dataset's cap again."""
    inst, _ = licensed
    small = grant_licence(inst, OWNER, dataset="health", operator="operator2", epsilon=0.5, delta=1e-8,
                          purpose="small", expires=date.today() + timedelta(days=3))
    assert get_licence(inst, small).budget.per_query.epsilon == pytest.approx(0.5)
    view = top_up_licence(inst, OWNER, small, epsilon=1.0, delta=1e-7)
    assert view.budget.per_query.epsilon == pytest.approx(1.0)           # the dataset's cap
    assert view.budget.per_query.delta == pytest.approx(1e-7)            # the dataset's δ cap
    assert run_query(inst, "operator2", "health", SQL, epsilon=0.8).release.loss.epsilon > 0.5
    assert reconcile_state(inst).ok
