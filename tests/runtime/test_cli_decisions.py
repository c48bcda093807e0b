"""Query approvals and templates decided through the CLI: one grammar
(``NOUN decide ID VERB --reason``), one JSON shape, and the older spellings
still working for one release with a note on stderr."""

from __future__ import annotations

import json

import pytest

from click.testing import CliRunner

from sandbox.cli import main
from cli_identity import with_password
from scenario import PASSWORD, build

OLD_NOTE = "is deprecated and goes in the next release"


def _cli(home: str):
    runner = CliRunner()

    def call(*args: str, code: int = 0):
        argv, stdin = with_password([*args, "--home", home], PASSWORD)
        result = runner.invoke(main, argv, input=stdin)
        assert result.exit_code == code, result.output
        return result

    return call


@pytest.mark.slow        # an end-to-end run of several seconds: CI runs it in the slow tier
def test_query_approvals_decide_and_run(make_instance, tmp_path):
    inst = make_instance()
    build(inst, tmp_path / "src", approval="each")
    cli = _cli(str(inst.home))

    submitted = cli("approval", "submit", "--as", "operator1", "--dataset", "health", "--purpose", "size",
                    "--epsilon", "0.1", "--json", "SELECT COUNT(*) AS n FROM people")
    aid = json.loads(submitted.stdout)["approval_id"]
    assert json.loads(cli("approval", "list", "--json").stdout)[0]["status"] == "pending"
    refused = cli("approval", "decide", str(aid), "reject", "--as", "owner1", code=1)
    assert "missing_reason" in refused.stderr
    decided = cli("approval", "decide", str(aid), "approve", "--as", "owner1", "--json")
    assert json.loads(decided.stdout) == {"ok": True, "kind": "query_approval", "id": aid, "decision": "approve",
                                          "status": "approved", "reason": ""}
    ran = cli("query", "run", "--as", "operator1", "--dataset", "health", "--approval", str(aid), "--json")
    assert json.loads(ran.stdout)["cost"]["epsilon"] > 0

    # the older spellings: 'query request', 'query requests', 'query approve|reject', 'query run --request'
    old = cli("query", "request", "--as", "operator1", "--dataset", "health", "--purpose", "again",
              "--epsilon", "0.1", "--json", "SELECT COUNT(*) AS n FROM people")
    assert OLD_NOTE in old.stderr and "approval submit" in old.stderr
    second = json.loads(old.stdout)["approval_id"]
    listed = cli("query", "requests", "--json")
    assert OLD_NOTE in listed.stderr and {r["id"] for r in json.loads(listed.stdout)} == {aid, second}
    approved = cli("query", "approve", str(second), "--as", "owner1")
    assert approved.stderr.startswith("note: 'dp-sandbox query approve ID' is deprecated")
    assert approved.stdout == f"query approval {second}: approved\n"
    ran = cli("query", "run", "--as", "operator1", "--dataset", "health", "--request", str(second))
    assert "--approval ID" in ran.stderr and ran.stdout.startswith("run ")
    third = json.loads(cli("approval", "submit", "--as", "operator1", "--dataset", "health", "--purpose", "no",
                           "--epsilon", "0.1", "--json", "SELECT COUNT(*) AS n FROM people").stdout)["approval_id"]
    rejected = cli("query", "reject", str(third), "--as", "owner1", "--reason", "not needed")
    assert OLD_NOTE in rejected.stderr and rejected.stdout == f"query approval {third}: rejected (not needed)\n"


def test_templates_decide(make_instance, tmp_path):
    inst = make_instance()
    build(inst, tmp_path / "src", approval="templates")
    cli = _cli(str(inst.home))

    def propose(title: str) -> int:
        out = cli("template", "propose", "--as", "operator1", "--dataset", "health", "--title", title,
                  "--purpose", "planning", "--epsilon", "0.2", "--param", "city:string:Oslo|Bergen", "--json",
                  "SELECT COUNT(*) AS n FROM people WHERE city = :city")
        return json.loads(out.stdout)["template_id"]

    first, second, third = propose("one"), propose("two"), propose("three")
    returned = cli("template", "decide", str(first), "return", "--reason", "name the age band", "--as", "owner1",
                   "--json")
    assert json.loads(returned.stdout) == {"ok": True, "kind": "template", "id": first, "decision": "return",
                                           "status": "returned", "reason": "name the age band"}
    assert "missing_reason" in cli("template", "decide", str(second), "reject", "--as", "owner1", code=1).stderr
    assert cli("template", "decide", str(second), "approve", "--as", "owner1").stdout == f"template {second}: approved\n"

    # the older spelling 'template approve|return|reject ID'
    old = cli("template", "reject", str(third), "--reason", "duplicate", "--as", "owner1")
    assert old.stderr.startswith("note: 'dp-sandbox template reject ID' is deprecated")
    assert old.stdout == f"template {third}: rejected (duplicate)\n"
    statuses = {t["id"]: t["status"] for t in json.loads(cli("template", "list", "--json").stdout)}
    assert statuses == {first: "returned", second: "approved", third: "rejected"}
