"""`dp-sandbox demo`: sets up everything, runs the thin path once, and a second
run neither fails nor duplicates anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _dps(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPS_")}
    return subprocess.run([sys.executable, "-m", "sandbox.cli", *args, "--home", str(home)], capture_output=True,
                          text=True, env=env, timeout=600)


@pytest.mark.slow        # the whole demo twice, in subprocesses: CI runs it in the slow tier
def test_demo_twice(tmp_path):
    home = tmp_path / "demo-home"
    first = _dps(home, "demo", "--no-serve", "--people", "5000")
    assert first.returncode == 0, first.stderr
    assert "ran: SELECT sex, COUNT(*)" in first.stdout and "demo ready" in first.stdout
    for role in ("owner1", "operator1", "reviewer1", "reviewer2", "admin1"):
        assert role in first.stdout
    assert "--as NAME --password-stdin" in first.stdout        # --as needs the user's credential
    second = _dps(home, "demo", "--no-serve", "--people", "5000")
    assert second.returncode == 0, second.stderr
    assert "already added" in second.stdout and "ran:" not in second.stdout
    datasets = json.loads(_dps(home, "dataset", "list", "--json").stdout)
    assert sorted((d["name"], d["classification"], d["versions"]) for d in datasets) == [
        ("health", "conditional", 1), ("tax", "restricted", 1), ("transport", "open", 1)]
    licences = json.loads(_dps(home, "licence", "list", "--json").stdout)
    assert len(licences) == 1 and licences[0]["budget"]["spent"]["epsilon"] == pytest.approx(1.0)
    report = json.loads(_dps(home, "audit", "verify", "--json").stdout)
    assert report["ok"]
