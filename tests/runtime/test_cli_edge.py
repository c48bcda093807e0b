"""The CLI sits at the edge: drawing its help loads no database, engine, web or
SQL code, and the help shows one grammar for decisions."""

from __future__ import annotations

import json
import subprocess
import sys

import click
from click.testing import CliRunner

from sandbox.cli import main

HEAVY = ("flask", "sqlalchemy", "duckdb", "opendp", "polars", "sqlglot", "pyarrow", "pydantic", "alembic")

# Imports sandbox.cli, then asks every group and command of the tree for its help
# (which loads the web and products commands through their entry points), and
# prints the heavy packages that ended up imported.
HELP_EVERYWHERE = """
import json, sys
import click
from sandbox.cli import main

def walk(command, path):
    try:
        main.main(args=[*path, "--help"], prog_name="dp-sandbox", standalone_mode=False)
    except SystemExit:
        pass
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            walk(command.get_command(ctx, name), [*path, name])

after_import = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
walk(main, [])
print(json.dumps({"after_import": after_import,
                  "after_help": sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in HEAVY})}))
"""


def test_help_of_every_command_imports_no_runtime():
    code = f"HEAVY = {HEAVY!r}\n" + HELP_EVERYWHERE
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.splitlines()[-1])
    assert loaded == {"after_import": [], "after_help": []}


def test_the_walk_reaches_the_plugin_commands():
    ctx = click.Context(main)
    names = set(main.list_commands(ctx))
    assert {"serve", "demo", "product", "request", "register", "share", "org", "approval"} <= names


def _help(*path: str) -> str:
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="dp-sandbox")
    assert result.exit_code == 0, result.output
    return result.output


DECIDABLE = {
    ("product",): "approve|return|reject",
    ("template",): "approve|return|reject",
    ("approval",): "approve|reject",
    ("request",): "accept|decline|link",
    ("share",): "approve|reject",
    ("share", "change"): "approve|reject",
}


def test_help_lists_one_grammar_for_decisions():
    for path, verbs in DECIDABLE.items():
        listing = _help(*path)
        assert "  decide " in listing, path
        usage = _help(*path, "decide").splitlines()[0]
        assert usage == f"Usage: dp-sandbox {' '.join(path)} decide [OPTIONS] ID {verbs}", usage
        assert "--reason" in _help(*path, "decide")
    # the older spellings work (tests of each) but are not listed
    for path, old in [(("product",), "review"), (("template",), "approve"), (("template",), "return"),
                      (("template",), "reject"), (("query",), "approve"), (("query",), "reject"),
                      (("query",), "request"), (("query",), "requests"), (("share",), "review-change"),
                      (("share",), "changes")]:
        assert f"  {old} " not in _help(*path), (path, old)
    assert "--request" not in _help("query", "run") and "--approval" in _help("query", "run")
    assert "decide ID VERB" in _help()
