"""Logging: every logger is under ``dp_sandbox``, configured once per process by the
entry points, at ``DPS_LOG_LEVEL``."""

from __future__ import annotations

import ast
import importlib
import logging
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sandbox.logs import ROOT_LOGGER

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("queries", "privacy", "sandbox", "products", "web")
LOGGER_FACTORIES = {"getLogger", "Logger", "private_logger"}


def _logger_calls() -> list[tuple[str, int, ast.expr | None]]:
    calls = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                    if name in LOGGER_FACTORIES:
                        calls.append((str(path.relative_to(ROOT)), node.lineno, node.args[0] if node.args else None))
    return calls


def test_every_logger_the_code_creates_is_named_under_dp_sandbox():
    calls = _logger_calls()
    assert len(calls) >= 5, calls            # the service, the worker, the web app, ... do log
    for where, line, arg in calls:
        if where == "sandbox/logs.py" and isinstance(arg, ast.Name) and arg.id == "name":
            continue                         # private_logger(name, ...) builds the logger its caller names
        literal = arg.value if isinstance(arg, ast.Constant) else None
        named_root = isinstance(arg, ast.Name) and arg.id == "ROOT_LOGGER"
        assert named_root or (isinstance(literal, str) and literal.startswith(ROOT_LOGGER + ".")), \
            f"{where}:{line}: a logger outside {ROOT_LOGGER}.*"


def test_after_importing_every_module_no_logger_is_named_after_a_package():
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            if info.name.rsplit(".", 1)[-1] != "__main__" and ".migrations.versions." not in info.name:
                importlib.import_module(info.name)
    names = list(logging.root.manager.loggerDict)
    assert any(n.startswith(ROOT_LOGGER + ".") for n in names)
    stray = [n for n in names if n.split(".")[0] in PACKAGES]
    assert stray == [], stray


SCRIPT = textwrap.dedent("""
    import logging, sys
    from sandbox.instance import Instance, init_home
    from sandbox.settings import load_settings
    from web.app import create_app

    settings = load_settings(home=sys.argv[1])        # DPS_LOG_LEVEL from the environment
    init_home(settings)
    inst = Instance.open(settings)
    create_app(inst)
    create_app(inst)                                  # configured twice: one handler still
    log = logging.getLogger("dp_sandbox.test")
    log.debug("a debug record")
    log.info("an info record")
    log.warning("a warning record")
    inst.close()
""")


def _run(tmp_path: Path, level: str | None) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPS_")}
    if level is not None:
        env["DPS_LOG_LEVEL"] = level
    home = tmp_path / (level or "default")
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(home)], env={**env, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    return out.stderr, (home / "logs" / "dp-sandbox.log").read_text()


@pytest.mark.parametrize("level, shown, hidden", [
    ("DEBUG", ["a debug record", "an info record", "a warning record"], []),
    (None, ["an info record", "a warning record"], ["a debug record"]),
    ("warning", ["a warning record"], ["a debug record", "an info record"]),
])
def test_the_web_app_logs_to_stderr_and_the_home_at_DPS_LOG_LEVEL(tmp_path, level, shown, hidden):
    stderr, logfile = _run(tmp_path, level)
    for text in (stderr, logfile):
        for line in shown:
            assert text.count(line) == 1, (line, text)
        for line in hidden:
            assert line not in text
    assert "dp_sandbox.test: a warning record" in stderr
    assert ("dp_sandbox.instance: instance opened" in logfile) == (level == "DEBUG")


def _cli(home: Path, *args: str, level: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPS_")}
    if level is not None:
        env["DPS_LOG_LEVEL"] = level
    return subprocess.run([sys.executable, "-m", "sandbox.cli", *args, "--home", str(home)], env=env,
                          capture_output=True, text=True, timeout=180)


def test_the_cli_configures_logging_at_DPS_LOG_LEVEL(tmp_path):
    home = tmp_path / "home"
    assert _cli(home, "init").returncode == 0
    debug = _cli(home, "user", "list", level="DEBUG")
    assert debug.returncode == 0, debug.stderr
    assert debug.stderr.count("DEBUG dp_sandbox.instance: instance opened") == 1
    default = _cli(home, "user", "list")
    assert default.returncode == 0 and "dp_sandbox" not in default.stderr
    bad = _cli(home, "user", "list", level="chatty")
    assert bad.returncode == 1 and "DPS_LOG_LEVEL" in bad.stderr and "Traceback" not in bad.stderr
