"""The README's test command runs the default tier only; CI runs the slow tier
as its own step, and installs every prerequisite the README names."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _test_command() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- test-command -->", 1)[1]
    return re.search(r"```sh\n(.*?)\n```", block, re.S).group(1)


def test_the_readme_command_leaves_the_slow_tier_out_and_ci_runs_it_after():
    cmd = _test_command()
    assert '-m "not slow"' in cmd
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme_at = ci.index('bash -euo pipefail -c "$test_command"')
    slow_at = ci.index("-m slow\n", readme_at)
    assert readme_at < slow_at


def test_ci_installs_every_prerequisite_the_readme_names():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    packages = re.findall(r"^\| [^|]+ \| `([a-z0-9-]+)` \|", text, re.M)
    assert {"postgresql", "chromium", "fonts-wqy-zenhei"} <= set(packages)
    for pkg in packages:
        assert f"need_apt+=({pkg})" in ci, pkg


def test_the_slow_marker_selects_the_statistical_tests():
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "-m", "slow", str(ROOT / "tests" / "privacy" / "test_noise_statistics.py"),
                          str(ROOT / "tests" / "web" / "test_login.py")],
                         capture_output=True, text=True, cwd=ROOT)
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    assert ids and all("test_noise_statistics" in i for i in ids), out.stdout[-2000:]


def test_ci_runs_the_lint_gate_before_the_tests():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lint_at = ci.index(".venv/bin/ruff check .\n")
    assert lint_at < ci.index('bash -euo pipefail -c "$test_command"')
    assert "[tool.ruff.lint]" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_ci_runs_the_type_gate_over_every_package_before_the_tests():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    type_at = ci.index("\n.venv/bin/mypy\n")
    assert ci.index(".venv/bin/ruff check .\n") < type_at < ci.index('bash -euo pipefail -c "$test_command"')
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file())
    assert packages == ["privacy", "products", "queries", "sandbox", "web"]
    assert sorted(config["tool"]["mypy"]["files"]) == packages
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["*"]
    for package in packages:
        assert (ROOT / package / "py.typed").is_file(), package


def test_ci_runs_the_spark_tier_after_the_readme_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme_at = ci.index('bash -euo pipefail -c "$test_command"')
    assert ci.index("-m spark\n", readme_at) > readme_at
    assert "'.[dev,spark]'" in ci
