"""How commands print: one JSON form for ``--json`` (and for commands without a
human form), the API's (``sandbox.views.json_form``), and a table of noisy values
with their intervals."""

from __future__ import annotations

import json
from typing import Any
from collections.abc import Callable, Iterable

import click

from sandbox.views import json_form


def emit(data: Any, as_json: bool, human: Callable[[Any], Any] | None = None) -> None:
    """Print ``data`` as JSON with ``--json`` (or when there is no human form),
    else through ``human``, which receives the JSON form."""
    form = json_form(data)
    if as_json or human is None:
        click.echo(json.dumps(form, indent=2, ensure_ascii=False, default=str))
    else:
        human(form)


def echo_lines(lines: Iterable[str]) -> None:
    """Print each line (a human form that is one line per row)."""
    for line in lines:
        click.echo(line)


def print_table(result: dict) -> None:
    """Values with their intervals, digits chosen from each interval's width (sandbox.numbers)."""
    from sandbox.numbers import format_estimate

    cols = result["columns"]
    shown = [[format_estimate(v, iv) for v, iv in zip(row, ivs)]
             for row, ivs in zip(result["rows"], result["intervals"] or [[None] * len(cols)] * len(result["rows"]))]
    width = max([18, *(len(c) for c in cols), *(len(x) for r in shown for v, iv in r for x in (v, iv or ""))])
    click.echo("  ".join(f"{c:>{width}}" for c in cols))
    for cells in shown:
        click.echo("  ".join(f"{v:>{width}}" for v, _ in cells))
        if any(iv for _, iv in cells):
            click.echo("  ".join(f"{iv or '':>{width}}" for _, iv in cells))
