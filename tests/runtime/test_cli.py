"""The CLI end to end on a small demo dataset: init, users, dataset, licence,
query check and run, budget refusal, audit verify (and a tampered row named)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from cli_identity import with_password
from sandbox.demo.data import write_all

PASSWORD = "long enough password"

EXPIRES = (date.today() + timedelta(days=30)).isoformat()


def dps(home: Path, *args: str, stdin: str | None = None, check: bool = True,
        settings: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPS_")} | (settings or {})
    args_, stdin = with_password(args, PASSWORD, stdin)
    proc = subprocess.run([sys.executable, "-m", "sandbox.cli", *args_, "--home", str(home)], input=stdin,
                          capture_output=True, text=True, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"dp-sandbox {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    write_all(root / "src", people=3_000)
    h = root / "home"
    dps(h, "init")
    for name, role in [("owner1", "owner"), ("operator1", "operator"), ("operator2", "operator")]:
        dps(h, "user", "add", name, "--role", role, "--password-stdin", stdin="long enough password\n")
    out = dps(h, "dataset", "add", str(root / "src" / "health" / "policy.toml"), "--as", "owner1", "--json")
    assert json.loads(out.stdout)["number"] == 1
    dps(h, "licence", "grant", "--dataset", "health", "--operator", "operator1", "--epsilon", "1.0",
        "--delta", "1e-6", "--purpose", "testing", "--expires", EXPIRES, "--as", "owner1")
    return h


def test_query_check_is_free_and_reports_cost(home):
    out = dps(home, "query", "check", "--as", "operator1", "--dataset", "health", "--json",
              "SELECT sex, COUNT(*) FROM people GROUP BY sex")
    data = json.loads(out.stdout)
    assert data["ok"] is True and data["cost"]["epsilon"] > 0
    lic = json.loads(dps(home, "licence", "list", "--json").stdout)[0]
    assert lic["budget"]["spent"]["epsilon"] == 0


def test_query_check_says_not_ok_where_run_would_refuse_and_gives_every_accuracy(home):
    sql = "SELECT sex, COUNT(*) AS n, AVG(income) AS m, MEDIAN(age) AS med FROM people GROUP BY sex"
    out = dps(home, "query", "check", "--as", "operator1", "--dataset", "health", "--epsilon", "2", sql, check=False)
    assert out.returncode == 1 and out.stdout.startswith("not ok")
    assert "over_query_cap" in out.stdout
    data = json.loads(dps(home, "query", "check", "--as", "operator1", "--dataset", "health", "--json",
                          sql).stdout)
    assert data["ok"] is True and data["refusals"] == []
    assert data["default_epsilon"] == pytest.approx(0.5)      # half the licence's per-query cap of 1.0
    kinds = {a["output"]: a for a in data["accuracy"]}
    assert kinds["n"]["half_width"] > 0 and kinds["med"]["half_width"] > 0
    assert [n for n, _ in kinds["m"]["by_group_size"]] == [100, 1000, 10000]


def test_query_check_refusal_has_code_and_span(home):
    sql = "SELECT person_id FROM people"
    out = dps(home, "query", "check", "--as", "operator1", "--dataset", "health", "--json", sql, check=False)
    assert out.returncode == 1
    data = json.loads(out.stdout)
    assert data["ok"] is False and data["error"]["code"]
    assert "error [" in out.stderr and "^" in out.stderr


@pytest.mark.slow        # an end-to-end run of several seconds: CI runs it in the slow tier
def test_query_run_charges_and_records(home):
    before = json.loads(dps(home, "licence", "list", "--json").stdout)[0]["budget"]["spent"]["epsilon"]
    out = dps(home, "query", "run", "--as", "operator1", "--dataset", "health", "--epsilon", "0.3", "--json",
              "SELECT sex, COUNT(*) AS n FROM people GROUP BY sex")
    data = json.loads(out.stdout)
    assert data["ok"] and data["run_id"] and data["columns"] == ["sex", "n"]
    assert sorted(r[0] for r in data["rows"]) == ["F", "M"]
    assert all(iv[1] is not None for iv in data["intervals"])
    assert data["cost"]["epsilon"] == pytest.approx(0.3)
    after = json.loads(dps(home, "licence", "list", "--json").stdout)[0]["budget"]["spent"]["epsilon"]
    assert after == pytest.approx(before + 0.3)
    human = dps(home, "query", "run", "--as", "operator1", "--dataset", "health", "--epsilon", "0.1",
                "SELECT SUM(income) AS total FROM people")
    assert "charged ε=0.1" in human.stdout


def test_budget_exceeded_is_refused_before_running(home):
    # spend 0.3 of the licence's 1.0 here, so that 0.9 exceeds what is left whichever
    # of the module's other runs this worker has made before
    dps(home, "query", "run", "--as", "operator1", "--dataset", "health", "--epsilon", "0.3",
        "SELECT COUNT(*) FROM people")
    out = dps(home, "query", "run", "--as", "operator1", "--dataset", "health", "--epsilon", "0.9", "--json",
              "SELECT COUNT(*) FROM people", check=False)
    assert out.returncode == 1
    err = json.loads(out.stdout)["error"]
    assert err["code"] == "budget_exceeded"
    assert err["requested"]["epsilon"] == pytest.approx(0.9) and "difference" in err["remaining"]


def test_unlicensed_operator_and_restricted_dataset(home):
    out = dps(home, "query", "run", "--as", "operator2", "--dataset", "health", "--json",
              "SELECT COUNT(*) FROM people", check=False)
    assert json.loads(out.stdout)["error"]["code"] == "no_licence"
    out = dps(home, "query", "check", "--as", "operator1", "--dataset", "nope", "--json",
              "SELECT COUNT(*) FROM people", check=False)
    assert json.loads(out.stdout)["error"]["code"] == "unknown_dataset"


def test_malformed_policy_is_refused_and_nothing_registered(home, tmp_path):
    bad = tmp_path / "policy.toml"
    text = (home.parent / "src" / "health" / "policy.toml").read_text().replace('class = "quasi", min = 0',
                                                                                 'class = "secret", min = 0', 1)
    bad.write_text(text)
    out = dps(home, "dataset", "add", str(bad), "--as", "owner1", check=False)
    assert out.returncode == 1 and "tables.people.columns.age" in out.stderr and "line" in out.stderr
    listed = json.loads(dps(home, "dataset", "list", "--json").stdout)
    assert [d["versions"] for d in listed if d["name"] == "health"] == [1]


def test_audit_verify_and_tampering_is_named(home, tmp_path):
    out = dps(home, "audit", "verify", "--json")
    report = json.loads(out.stdout)
    assert report["ok"] and report["records"] > 5
    # tamper with a copy of the home, as someone with sqlite3 would
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(home, copy)
    con = sqlite3.connect(copy / "store.sqlite")
    con.execute("UPDATE audit_records SET actor = 'mallory' WHERE seq = 4")
    con.commit()
    con.close()
    out = dps(copy, "audit", "verify", check=False)
    assert out.returncode == 1 and "record 4" in out.stdout


def test_usage_errors_exit_non_zero(home):
    out = dps(home, "licence", "grant", "--dataset", "health", check=False)
    assert out.returncode == 2 and "Missing option" in out.stderr
    out = dps(home, "user", "add", "xavier", "--role", "owner", "--password-stdin", stdin="short\n", check=False)
    assert out.returncode == 1 and "weak_password" in out.stderr


def test_accuracy_first_picks_the_smallest_epsilon(home):
    out = dps(home, "query", "check", "--as", "operator1", "--dataset", "health", "--json", "--width", "n=40",
              "SELECT sex, COUNT(*) AS n FROM people GROUP BY sex")
    cost = json.loads(out.stdout)["cost"]
    assert cost["expected_half_width"]["n"] <= 40 and cost["expected_half_width"]["n"] > 35
    tighter = json.loads(dps(home, "query", "check", "--as", "operator1", "--dataset", "health", "--json",
                             "--width", "n=20", "SELECT sex, COUNT(*) AS n FROM people GROUP BY sex").stdout)
    assert tighter["cost"]["epsilon"] > cost["epsilon"]
    out = dps(home, "query", "check", "--as", "operator1", "--dataset", "health", "--json", "--width", "n=0.001",
              "SELECT sex, COUNT(*) AS n FROM people GROUP BY sex", check=False)
    assert json.loads(out.stdout)["error"]["code"] == "accuracy_unreachable"


def test_mock_data_and_open_export(home, tmp_path):
    import duckdb

    dps(home, "dataset", "mock", "health", "--out", str(tmp_path / "mock.duckdb"), "--rows", "40")
    con = duckdb.connect(str(tmp_path / "mock.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT COUNT(*) FROM people").fetchone()[0] == 40
    finally:
        con.close()
    out = dps(home, "dataset", "export", "health", "--table", "people", "--out", str(tmp_path / "x.csv"), check=False)
    assert out.returncode == 1 and "not_open_data" in out.stderr and not (tmp_path / "x.csv").exists()


def test_a_refusal_prints_its_error_once_and_logs_to_the_instance_log(home):
    sql = "SELECT nosuch FROM people"
    out = dps(home, "query", "run", "--as", "operator1", "--dataset", "health", sql, check=False)
    assert out.returncode == 1 and out.stderr.count("unknown_column") == 1, out.stderr
    assert "dp_sandbox" not in out.stderr
    assert "query refused: unknown_column" in (home / "logs" / "dp-sandbox.log").read_text()
    chosen = dps(home, "query", "run", "--as", "operator1", "--dataset", "health", sql, check=False,
                 settings={"DPS_LOG_LEVEL": "INFO"})
    assert chosen.returncode == 1 and "INFO dp_sandbox.service: query refused: unknown_column" in chosen.stderr
