"""Quality objections, on-demand requests and the provider's record on the
responsibility list, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sqlalchemy import select

from sharing_world import HEALTH, write_registry
from test_grants import refused


def test_objection_answered_by_a_new_version(world):
    from sandbox.audit import Actor
    from sandbox.datasets import add_dataset
    from sandbox.sharing.grants import request_share
    from sandbox.sharing.feedback import answer_objection, file_objection, list_objections, responsibility_list

    inst = world.inst
    grant = request_share(inst, "taxclerk", dataset="registry", columns=["age", "city"], purpose="p", basis="b")
    refused(inst, "column_not_granted", file_objection, inst, "taxclerk", grant.id, columns=["people.income"],
            description="incomes look wrong")
    refused(inst, "not_grantee", file_objection, inst, "taxboss", grant.id, columns=["people.age"],
            description="ages look wrong")
    objection = file_objection(inst, "taxclerk", grant.id, columns=["people.age"],
                               description="ages of 80 and over are missing")
    entry = {e.dataset: e for e in responsibility_list(inst, "taxboss")}["registry"]
    assert (entry.open_objections, entry.oldest_objection_days) == (1, 0)

    refused(inst, "not_dataset_owner", answer_objection, inst, "taxclerk", objection.id, explanation="fine")
    refused(inst, "not_a_correction", answer_objection, inst, "owner1", objection.id, correction_version=1)
    refused(inst, "unknown_version", answer_objection, inst, "owner1", objection.id, correction_version=2)
    add_dataset(inst, Actor("owner1", "owner"), write_registry(world.source / "fixed", rows=14, shift=3))
    answered = answer_objection(inst, "owner1", objection.id, correction_version=2,
                                explanation="ages recomputed from the civil register")
    assert (answered.status.value, answered.correction_version) == ("corrected", 2)
    assert list_objections(inst, "taxclerk", status="open") == []
    entry = {e.dataset: e for e in responsibility_list(inst, "taxboss")}["registry"]
    assert (entry.open_objections, entry.oldest_objection_days, entry.latest_version) == (0, None, 2)
    refused(inst, "already_answered", answer_objection, inst, "owner1", objection.id, explanation="again")


def test_on_demand_request_with_a_tracked_deadline(world):
    from sandbox.persistence.models import ShareDemand
    from sandbox.sharing.feedback import answer_demand, file_demand, list_demands, responsibility_list

    inst = world.inst
    refused(inst, "not_a_department", file_demand, inst, "taxclerk", provider="Acme Analytics", title="t",
            description="d", purpose="p", basis="b")
    refused(inst, "company_not_eligible", file_demand, inst, "acme", provider=HEALTH, title="t",
            description="d", purpose="p", basis="b")
    demand = file_demand(inst, "taxclerk", provider=HEALTH, title="Deaths by month",
                         description="Monthly deaths to close tax files", purpose="Close files of the deceased",
                         basis="Tax Act s. 40", days=10)
    assert demand.status.value == "open" and not demand.overdue
    # the deadline passes without an answer
    with inst.store.transaction() as s:
        row = s.get(ShareDemand, demand.id)
        row.due_at = row.created_at - timedelta(days=1)
    entry = {e.dataset: e for e in responsibility_list(inst, "taxclerk")}["registry"]
    assert (entry.open_demands, entry.overdue_demands) == (1, 1)
    refused(inst, "not_provider", answer_demand, inst, "taxboss", demand.id, reason="not us")
    refused(inst, "missing_reason", answer_demand, inst, "owner1", demand.id)
    done = answer_demand(inst, "owner1", demand.id, dataset="registry", reason="registry lists dates of death")
    assert (done.status.value, done.dataset, done.overdue) == ("listed", "registry", True)   # answered late
    assert [d.id for d in list_demands(inst, "taxclerk")] == [demand.id]
    with inst.store.read() as s:
        assert s.execute(select(ShareDemand.status)).scalar_one() == "listed"


@pytest.mark.slow        # an end-to-end run of several seconds: CI runs it in the slow tier
def test_cli_share_flow(sqlite_world, tmp_path):
    """The commands of the issue, end to end through the CLI (SQLite)."""
    import json

    from cli_identity import SignedInRunner
    from sharing_world import PASSWORD

    from sandbox.cli import main

    inst = sqlite_world.inst
    home = ["--home", str(inst.home)]
    run = SignedInRunner(PASSWORD).invoke

    r = run(main, ["share", "list", *home, "--as", "taxclerk", "--json"])
    assert r.exit_code == 0, r.output
    assert [e["dataset"] for e in json.loads(r.output)] == ["benefits", "registry"]
    r = run(main, ["share", "request", *home, "--dataset", "registry", "--columns", "age,city",
                   "--purpose", "Plan offices", "--basis", "Tax Act s. 3", "--as", "taxclerk", "--json"])
    grant = json.loads(r.output)
    assert grant["status"] == "granted"
    out = tmp_path / "e.csv"
    r = run(main, ["share", "pull", str(grant["id"]), *home, "--out", str(out), "--format", "csv",
                   "--where", "city = 'Oslo'", "--as", "taxclerk"])
    assert r.exit_code == 0, r.output
    assert len(out.read_text().splitlines()) == 1 + 4
    r = run(main, ["share", "verify", str(out)])
    assert r.exit_code == 0 and r.output.startswith("valid:"), r.output
    r = run(main, ["share", "query", str(grant["id"]), "SELECT COUNT(*) AS n FROM people", *home,
                   "--as", "taxclerk", "--json"])
    assert json.loads(r.output)["rows"] == [[12]]
    r = run(main, ["share", "query", str(grant["id"]), "SELECT income FROM people", *home, "--as", "taxclerk"])
    assert r.exit_code == 1 and "error [column_not_granted]" in r.output
    r = run(main, ["share", "request", *home, "--dataset", "registry", "--columns", "age", "--purpose", "p",
                   "--basis", "b", "--as", "acme"])
    assert r.exit_code == 1 and "error [company_not_eligible]" in r.output
    r = run(main, ["share", "usage", *home, "--as", "owner1", "--json"])
    [usage] = json.loads(r.output)
    assert (usage["pulls"], usage["queries"], usage["rows"], usage["grants"]) == (1, 1, 5, 1)
    r = run(main, ["org", "add", "Statistics Office", "--kind", "department", *home])
    assert r.exit_code == 0, r.output
    r = run(main, ["user", "add", "statman", "--role", "operator", "--org", "Statistics Office",
                   "--password-stdin", *home], input="correct horse battery\n")
    assert r.exit_code == 0, r.output
    r = run(main, ["org", "list", *home, "--json"])
    assert {o["name"]: o["users"] for o in json.loads(r.output)}["Statistics Office"] == 1
