"""The classification commands and 'dataset add --version-of' through the command
line, on SQLite and PostgreSQL: output, --json, and refusals as 'error [code]' with
exit status 1 that change nothing."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from cli_identity import with_password
from sandbox.cli import main
from sandbox.datasets import add_dataset, list_datasets
from sandbox.demo.data import write_transport
from scenario import OWNER, PASSWORD, build


def _cli(inst):
    home = str(inst.home)
    runner = CliRunner(env={"DPS_DATABASE_URL": inst.settings.database_url})

    def call(*args: str, code: int = 0):
        argv, stdin = with_password([*args, "--home", home], PASSWORD)
        result = runner.invoke(main, argv, input=stdin)
        assert result.exit_code == code, result.output + result.stderr
        return result

    return call


def test_reclassify_and_decide_on_the_command_line(make_instance, store_url, tmp_path):
    inst = make_instance(store_url)
    build(inst, tmp_path / "health", people=300)
    add_dataset(inst, OWNER, write_transport(tmp_path / "transport"))
    cli = _cli(inst)

    raised = cli("dataset", "reclassify", "transport", "--to", "restricted", "--reason", "complaint received",
                 "--as", "owner1")
    assert raised.stdout == "transport: open → restricted\n"
    asked = json.loads(cli("dataset", "reclassify", "transport", "--to", "open", "--reason", "complaint answered",
                           "--as", "owner1", "--json").stdout)
    assert asked == {"dataset": "transport", "from_class": "restricted", "to_class": "open", "status": "pending",
                     "change_id": asked["change_id"]}
    cid = asked["change_id"]

    refused = cli("dataset", "reclassify", "health", "--to", "open", "--reason", "publish", "--as", "owner1", code=1)
    assert "open_with_identifiers" in refused.stderr and "people.person_id" in refused.stderr
    assert "wrong_role" in cli("classification", "decide", str(cid), "approve", "--reason", "mine",
                               "--as", "owner1", code=1).stderr
    assert "missing_reason" in cli("classification", "decide", str(cid), "approve", "--as", "reviewer1",
                                   code=1).stderr
    assert {d.name: d.classification for d in list_datasets(inst)}["transport"] == "restricted"

    listed = cli("classification", "list", "--status", "pending")
    assert listed.stdout.startswith(f"{cid:<4} pending    transport    restricted → open  by owner1: complaint answered")
    decided = json.loads(cli("classification", "decide", str(cid), "approve", "--reason", "counts only",
                             "--as", "reviewer1", "--json").stdout)
    assert decided == {"ok": True, "kind": "classification_change", "id": cid, "decision": "approve",
                       "status": "approved", "reason": "counts only"}
    shown = json.loads(cli("classification", "show", str(cid)).stdout)
    assert (shown["status"], shown["decided_by"], shown["decision_reason"]) == ("approved", "reviewer1",
                                                                               "counts only")
    assert json.loads(cli("dataset", "show", "transport").stdout)["classification"] == "open"
    assert "not_pending" in cli("classification", "decide", str(cid), "reject", "--reason", "late",
                                "--as", "reviewer2", code=1).stderr


def test_the_same_data_is_added_as_a_version_of_its_dataset(make_instance, store_url, tmp_path):
    inst = make_instance(store_url)
    build(inst, tmp_path / "health", people=300)
    cli = _cli(inst)
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "health", copy)
    policy = copy / "policy.toml"
    policy.write_text(policy.read_text(encoding="utf-8").replace('name = "health"', 'name = "health_copy"'),
                      encoding="utf-8")

    refused = cli("dataset", "add", str(policy), "--as", "owner1", code=1)
    assert "duplicate_source" in refused.stderr and "--version-of health" in refused.stderr
    assert "health_copy" not in {d.name for d in list_datasets(inst)}

    policy.write_text(policy.read_text(encoding="utf-8").replace('classification = "conditional"',
                                                                 'classification = "restricted"'),
                      encoding="utf-8")
    added = cli("dataset", "add", str(policy), "--version-of", "health", "--as", "owner1", "--json")
    body = json.loads(added.stdout)
    assert (body["dataset"], body["number"], body["created"], body["classification"]) == \
        ("health", 2, True, "restricted")
