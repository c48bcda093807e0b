"""The product commands of ``dp-sandbox``, through click's runner."""

from __future__ import annotations

import json

import pytest

from cli_identity import SignedInRunner
from products_world import CITY_ROWS, CITY_SQL, PASSWORD, build_world
from sandbox.cli import main


@pytest.mark.slow        # an end-to-end run of several seconds: CI runs it in the slow tier
def test_product_commands_end_to_end(make_instance, tmp_path):
    w = build_world(make_instance())
    home = str(w.inst.home)
    run = w.run(CITY_SQL, CITY_ROWS)
    cli = SignedInRunner(PASSWORD)

    def ok(*args):
        result = cli.invoke(main, [*args[:2], "--home", home, *args[2:]] if args[0] in ("product", "request", "catalog")
                            else [args[0], "--home", home, *args[1:]])
        assert result.exit_code == 0, result.output
        return result.output

    pid = ok("product", "draft", "--as", "operator1", "--title", "Visits by city", "--run", run).strip()
    assert pid.isdigit()
    assert json.loads(ok("product", "show", "--as", "operator1", pid, "--json"))["state"] == "draft"
    ok("product", "submit", "--as", "operator1", pid)
    refused = cli.invoke(main, ["product", "decide", "--home", home, "--as", "operator1", pid, "approve"])
    assert refused.exit_code == 1 and "self_review" in refused.output
    assert ok("product", "decide", "--as", "reviewer1", pid, "approve", "--reason", "fine") == \
        f"product {pid}: submitted (fine)\n"
    # the older spelling 'product review ID VERB' decides alike, with a note on stderr
    old = cli.invoke(main, ["product", "review", "--home", home, "--as", "reviewer2", pid, "approve",
                            "--reason", "fine", "--json"])
    assert old.exit_code == 0, old.output
    assert old.stderr.startswith("note: 'dp-sandbox product review ID VERB' is deprecated and goes in the next "
                                 "release; use 'dp-sandbox product decide ID VERB'\n")
    assert json.loads(old.stdout) == {"ok": True, "kind": "product", "id": int(pid), "decision": "approve",
                                      "status": "approved", "reason": "fine"}
    assert "released product" in ok("product", "release", "--as", "operator1", pid)
    exported = ok("product", "export", pid, "--out", str(tmp_path / "out")).strip()
    verified = cli.invoke(main, ["verify", exported])
    assert verified.exit_code == 0 and verified.output.startswith("OK:"), verified.output
    (tmp_path / "out" / f"product-{pid}-v1" / "tables" / "table_1.csv").write_text("tampered\n")
    failed = cli.invoke(main, ["verify", exported, "--json"])
    assert failed.exit_code == 1 and json.loads(failed.output)["ok"] is False
    assert json.loads(ok("product", "list", "--json"))[0]["state"] == "released"
    doc = json.loads(ok("catalog", "export", "--format", "jsonld"))
    assert any(n.get("@id", "").endswith(f"/products/{pid}/v1") for n in doc["@graph"])
    reg = json.loads(ok("register", "--json"))
    assert reg["products"][0]["id"] == int(pid)
    report = json.loads(ok("register", "--year", "2030", "--json"))
    assert cli.invoke(main, ["verify", report["path"]]).exit_code == 0
    ok("request", "file", "--title", "More data", "--description", "research", "--contact", "a@b.org",
       "--dataset", "health")
    listed = json.loads(ok("request", "list", "--json"))
    assert "contact" not in listed[0]
    assert ok("request", "decide", "--as", "owner1", "1", "accept") == "data request 1: accepted\n"
    out = ok("product", "withdraw", "--as", "admin1", pid, "--reason", "superseded")
    assert "withdrawn: superseded" in out
