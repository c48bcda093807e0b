"""Sharing requests and sharing changes decided through the CLI: the one
decision grammar and JSON shape, and the older spellings ('share review-change',
'share changes') still working with a note on stderr."""

from __future__ import annotations

import json

from cli_identity import SignedInRunner
from sharing_world import PASSWORD

from sandbox.cli import main
from sharing_world import CONDITIONS, write_registry

OLD_NOTE = "is deprecated and goes in the next release"


def test_sharing_decisions(sqlite_world):
    from sandbox.audit import Actor
    from sandbox.datasets import add_dataset

    inst = sqlite_world.inst
    runner = SignedInRunner(PASSWORD)

    def cli(*args: str, code: int = 0):
        result = runner.invoke(main, [*args, "--home", str(inst.home)])
        assert result.exit_code == code, result.output
        return result

    def ask(condition: str) -> int:
        out = cli("share", "request", "--dataset", "benefits", "--columns", "amount", "--purpose", "Check claims",
                  "--basis", "Benefits Act s. 4", "--condition", condition, "--as", "taxclerk", "--json")
        return json.loads(out.stdout)["id"]

    first, second = ask(CONDITIONS[0]), ask(CONDITIONS[1])
    refused = cli("share", "decide", str(first), "reject", "--reason", "no", "--as", "owner1", code=1)
    assert "refusal_condition_required" in refused.stderr
    rejected = cli("share", "decide", str(first), "reject", "--reason", "no assessment",
                   "--condition", CONDITIONS[1], "--as", "owner1", "--json")
    assert json.loads(rejected.stdout) == {"ok": True, "kind": "sharing_request", "id": first,
                                           "decision": "reject", "status": "rejected", "reason": "no assessment"}
    granted = cli("share", "decide", str(second), "approve", "--as", "owner1")
    assert granted.stdout == f"sharing request {second}: granted\n"

    def propose_change(folder: str, column: str) -> int:
        narrower = f'[sharing]\nclass = "unconditional"\ncolumns = ["people.{column}"]\nupdate_frequency = "monthly"'
        add_dataset(inst, Actor("owner1", "owner"), write_registry(sqlite_world.source / folder, sharing=narrower))
        pending = json.loads(cli("share", "change", "list", "--status", "pending", "--json").stdout)
        return pending[-1]["id"]

    change = propose_change("r2", "age")
    assert "wrong_role" in cli("share", "change", "decide", str(change), "approve", "--as", "owner1",
                               code=1).stderr
    decided = cli("share", "change", "decide", str(change), "approve", "--reason", "narrower is fine",
                  "--as", "reviewer1", "--json")
    assert json.loads(decided.stdout) == {"ok": True, "kind": "sharing_change", "id": change,
                                          "decision": "approve", "status": "approved",
                                          "reason": "narrower is fine"}

    # the older spellings
    listed = cli("share", "changes", "--json")
    assert OLD_NOTE in listed.stderr and "share change list" in listed.stderr
    assert [c["id"] for c in json.loads(listed.stdout)] == [change]
    later = propose_change("r3", "city")
    old = cli("share", "review-change", str(later), "reject", "--reason", "keep it", "--as", "reviewer1")
    assert old.stderr.startswith("note: 'dp-sandbox share review-change ID VERB' is deprecated")
    assert old.stdout == f"sharing change {later}: rejected (keep it)\n"
