"""Reading the audit trail (``sandbox.audit.view``, ``dp-sandbox audit list``) and
the records of reads (previews, refused queries), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from queries.errors import BudgetExceeded, Forbidden, InvalidInput, QueryRejected

PASSWORD = "correct horse battery"
COUNT_SQL = "SELECT COUNT(*) AS n FROM people"


@pytest.fixture(scope="module")
def health_policy(tmp_path_factory):
    from sandbox.demo.data import write_health

    return write_health(tmp_path_factory.mktemp("health"), people=300)


@pytest.fixture
def trail(instance, health_policy, tmp_path):
    """health (owner1) with a licence for operator1 and one charged run; transport
    (owner2, open data)."""
    from sandbox.audit import SYSTEM, Actor
    from sandbox.datasets import add_dataset
    from sandbox.demo.data import write_transport
    from sandbox.licences import grant_licence
    from sandbox.service import run_query
    from sandbox.users import add_user

    for name, role in (("owner1", "owner"), ("owner2", "owner"), ("operator1", "operator"),
                       ("reviewer1", "reviewer"), ("admin1", "admin")):
        add_user(instance, SYSTEM, name, role, PASSWORD)
    add_dataset(instance, Actor("owner1", "owner"), health_policy)
    transport = write_transport(tmp_path / "transport")
    transport.write_text(transport.read_text(encoding="utf-8").replace('"owner1"', '"owner2"'), encoding="utf-8")
    add_dataset(instance, Actor("owner2", "owner"), transport)
    grant_licence(instance, Actor("owner1", "owner"), dataset="health", operator="operator1", epsilon=1.0,
                  delta=1e-6, purpose="audit trail tests", expires=date.today() + timedelta(days=5))
    result = run_query(instance, "operator1", "health", COUNT_SQL, epsilon=0.25)
    return instance, result.run_id


def _spent(inst) -> list[tuple[float, float]]:
    from sandbox.persistence.models import Budget, LedgerEntry

    with inst.store.read() as s:
        budgets = [(b.spent_epsilon, b.spent_delta) for b in s.execute(select(Budget).order_by(Budget.id)).scalars()]
        budgets.append((len(s.execute(select(LedgerEntry)).scalars().all()), 0.0))
    return budgets


def _listed(inst, who, **filters):
    from sandbox.audit.view import AuditFilter, list_audit

    limit = filters.pop("limit", 1000)
    return list_audit(inst, who, AuditFilter.parse(**filters), limit=limit)


ADMIN = ("admin1", "admin")


def test_admin_sees_every_record_newest_first_and_filters(trail):
    from sandbox.audit import Actor, verify_chain

    inst, run_id = trail
    admin = Actor(*ADMIN)
    page = _listed(inst, admin)
    seqs = [e.seq for e in page.entries]
    assert seqs == sorted(seqs, reverse=True) and page.total == len(seqs) >= 10
    assert {"user.add", "dataset.register", "licence.grant", "query.reserve", "query.run"} <= {e.action for e in page.entries}

    run = _listed(inst, admin, action="query.run").entries
    assert len(run) == 1 and run[0].object_id == run_id and run[0].actor == "operator1"
    assert run[0].sql == COUNT_SQL and run[0].dataset == "health" and run[0].payload["epsilon"] > 0
    family = _listed(inst, admin, action="query.*").entries
    assert {e.action for e in family} == {"query.reserve", "query.run"}
    assert [e.object_id for e in _listed(inst, admin, object=f"query_run:{run_id}").entries] == [run_id, run_id]
    assert {e.object_type for e in _listed(inst, admin, object="licence").entries} == {"licence"}
    assert {e.actor for e in _listed(inst, admin, actor="owner2").entries} == {"owner2"}
    health = _listed(inst, admin, dataset="health").entries
    assert {e.dataset for e in health} == {"health"}
    assert {"dataset.register", "licence.grant", "query.run"} <= {e.action for e in health}

    newest = page.entries[0].time
    assert _listed(inst, admin, since=newest).entries[0].seq == page.entries[0].seq
    assert _listed(inst, admin, until=newest).total == page.total - 1
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert _listed(inst, admin, since=tomorrow).total == 0
    assert _listed(inst, admin, until=datetime.now(UTC).date().isoformat()).total == page.total  # the whole day
    limited = _listed(inst, admin, limit=3)
    assert len(limited.entries) == 3 and limited.total == page.total
    with inst.store.read() as s:
        assert verify_chain(s, inst.signer.public).ok       # reading wrote nothing and broke nothing


@pytest.mark.parametrize("filters, code", [
    ({"since": "yesterday"}, "bad_time"),
    ({"until": "2026-13-01"}, "bad_time"),
    ({"since": "2026-03-02", "until": "2026-03-01"}, "bad_time_range"),
    ({"object": "licence:3:4"}, "bad_object_filter"),
    ({"object": "Licence; drop"}, "bad_object_filter"),
    ({"action": "query run"}, "bad_action_filter"),
])
def test_bad_filters_are_refused_with_their_code(filters, code):
    from sandbox.audit.view import AuditFilter

    with pytest.raises(InvalidInput) as err:
        AuditFilter.parse(**filters)
    assert err.value.code == code


def test_owner_sees_the_records_about_their_own_datasets_only(trail):
    from sandbox.audit import Actor

    inst, run_id = trail
    mine = _listed(inst, Actor("owner1", "owner")).entries
    assert mine and {e.dataset for e in mine} == {"health"}
    actions = {e.action for e in mine}
    assert {"dataset.register", "dataset.version", "licence.grant", "query.reserve", "query.run"} <= actions
    assert "user.add" not in actions                                    # not about a dataset
    run = next(e for e in mine if e.action == "query.run")
    assert (run.actor, run.sql, run.object_id) == ("operator1", COUNT_SQL, run_id)
    theirs = _listed(inst, Actor("owner2", "owner")).entries
    assert theirs and {e.dataset for e in theirs} == {"transport"}
    assert _listed(inst, Actor("owner2", "owner"), dataset="health").total == 0   # a filter never widens the scope
    for who in (Actor("operator1", "operator"), Actor("reviewer1", "reviewer")):
        with pytest.raises(Forbidden) as err:
            _listed(inst, who)
        assert err.value.code == "audit_not_allowed"


def test_on_whose_behalf_is_shown_and_filtered(trail):
    from sandbox import audit
    from sandbox.audit import Actor

    inst, _ = trail
    with inst.store.transaction() as s:
        audit.append(s, inst.signer, Actor("admin1", "admin", on_behalf_of="owner2"), "user.reset_password",
                     "user", 2, {"name": "owner2"})
    entries = _listed(inst, Actor(*ADMIN), actor="owner2", action="user.*").entries
    assert [(e.actor, e.on_behalf_of, e.action) for e in entries] == [("admin1", "owner2", "user.reset_password")]
    assert _listed(inst, Actor(*ADMIN), actor="admin1").entries[0].on_behalf_of == "owner2"


def test_a_classification_change_is_in_its_owners_view(trail):
    from sandbox.audit import Actor
    from sandbox.classification import reclassify

    inst, _ = trail
    owner = Actor("owner1", "owner")
    reclassify(inst, owner, "health", "restricted", "under review")          # more protected: at once
    reclassify(inst, owner, "health", "conditional", "review done")          # less protected: a request
    mine = _listed(inst, Actor("owner1", "owner"), object="classification_change").entries
    assert mine and {e.dataset for e in mine} == {"health"}
    assert _listed(inst, Actor("owner2", "owner"), object="classification_change").total == 0


def test_a_refused_query_is_recorded_with_its_code_and_sql_and_charges_nothing(trail):
    from sandbox.audit import Actor, verify_chain
    from sandbox.service import run_query

    inst, _ = trail
    before = _spent(inst)
    bad = "SELECT name FROM people"
    with pytest.raises(QueryRejected) as rejected:
        run_query(inst, "operator1", "health", bad, epsilon=0.1)
    with pytest.raises(BudgetExceeded):
        run_query(inst, "operator1", "health", COUNT_SQL, epsilon=5.0)
    assert _spent(inst) == before
    refusals = _listed(inst, Actor("owner1", "owner"), action="query.refuse").entries
    assert [(e.payload["code"], e.sql, e.actor) for e in refusals] == [
        ("budget_exceeded", COUNT_SQL, "operator1"), (rejected.value.code, bad, "operator1")]
    assert refusals[0].payload["epsilon"] == 5.0 and refusals[0].dataset == "health"
    with inst.store.read() as s:
        assert verify_chain(s, inst.signer.public).ok


def test_a_preview_is_recorded_with_its_outcome(trail):
    from sandbox.audit import Actor
    from sandbox.preview import preview_query

    inst, _ = trail
    before = _spent(inst)
    preview_query(inst, "operator1", "health", COUNT_SQL, epsilon=0.1, target=None)
    preview_query(inst, "operator1", "health", COUNT_SQL, epsilon=0.9, target=None)   # more than is left
    with pytest.raises(QueryRejected):
        preview_query(inst, "operator1", "health", "SELECT name FROM people", epsilon=0.1, target=None)
    assert _spent(inst) == before
    previews = _listed(inst, Actor(*ADMIN), action="query.preview").entries
    outcomes = [e.payload["outcome"] for e in reversed(previews)]
    assert outcomes[0] == "ok" and outcomes[1] == "budget_exceeded" and outcomes[2] not in ("ok", "budget_exceeded")
    assert all(e.actor == "operator1" and e.dataset == "health" and e.sql for e in previews)


def test_audit_list_on_the_command_line(trail, monkeypatch):
    from sandbox.cli import main
    from cli_identity import SignedInRunner

    inst, run_id = trail
    home = str(inst.settings.home_path)
    monkeypatch.setenv("DPS_DATABASE_URL", inst.settings.database_url)
    runner = SignedInRunner(PASSWORD)
    out = runner.invoke(main, ["audit", "list", "--home", home, "--action", "query.run"])
    assert out.exit_code == 0, out.output
    assert f"query_run:{run_id}" in out.output and "operator1" in out.output and f"sql: {COUNT_SQL}" in out.output
    assert "1 of 1 matching records" in out.output
    as_owner = runner.invoke(main, ["audit", "list", "--home", home, "--as", "owner2", "--json", "--limit", "500"])
    assert as_owner.exit_code == 0, as_owner.output
    body = json.loads(as_owner.output)
    assert body["total"] == len(body["entries"]) > 0 and {e["dataset"] for e in body["entries"]} == {"transport"}
    refused = runner.invoke(main, ["audit", "list", "--home", home, "--as", "operator1"])
    assert refused.exit_code == 1 and "audit_not_allowed" in refused.output + (refused.stderr or "")
    bad = runner.invoke(main, ["audit", "list", "--home", home, "--since", "last week"])
    assert bad.exit_code == 1 and "not an ISO date" in bad.output + (bad.stderr or "")
    wrong = runner.invoke(main, ["audit", "list", "--home", home, "--limit", "0"])
    assert wrong.exit_code == 1 and "the limit is 1 to 10000" in wrong.output + (wrong.stderr or "")
