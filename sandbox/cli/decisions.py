"""One grammar for every decision, and the older spellings kept for one release.

Every object someone decides on takes the same shape::

    dp-sandbox NOUN decide ID VERB [--reason TEXT] --as USER [--json]

where VERB is one the object supports (``approve|return|reject`` for products and
templates, ``approve|reject`` for query approvals, sharing requests and sharing
changes, ``accept|decline|link`` for data requests). With ``--json`` every
decision prints one shape, :func:`decision_form`.

An older spelling (``query approve ID``, ``product review ID approve``, ...) is a
hidden command that prints a one-line note on stderr and then does exactly what
the new spelling does; docs/cli.md lists them.
"""

from __future__ import annotations

from typing import Any, TypeVar
from collections.abc import Callable, Sequence

import click

from sandbox.cli.options import as_option, handles_errors, home_option, json_option
from sandbox.cli.output import emit

F = TypeVar("F", bound=Callable[..., Any])


def decision_options(verbs: Sequence[str], *, as_help: str, reason_help: str = "Why (recorded with the decision).",
                     reason_required: bool = False) -> Callable[[F], F]:
    """The arguments of every ``decide`` command: ``ID VERB``, ``--reason``, ``--as``,
    ``--home``, ``--json``; the callback receives ``object_id`` and ``decision``."""

    def decorate(fn: F) -> F:
        for option in (handles_errors, json_option, as_option(help=as_help),
                       click.option("--reason", required=reason_required, default="", help=reason_help),
                       click.argument("decision", metavar="|".join(verbs), type=click.Choice(list(verbs))),
                       click.argument("object_id", metavar="ID", type=int),
                       home_option):
            fn = option(fn)
        return fn

    return decorate


def decision_form(kind: str, object_id: int, decision: str, status: str, reason: str = "") -> dict[str, Any]:
    """The JSON form of a decision, the same for every kind of object: what was
    decided on (``kind``: ``product``, ``template``, ``query_approval``,
    ``data_request``, ``sharing_request`` or ``sharing_change``; and ``id``), the
    verb, the object's status after it, and the reason given."""
    return {"ok": True, "kind": kind, "id": object_id, "decision": decision,
            "status": str(getattr(status, "value", status)), "reason": (reason or "").strip()}


def emit_decision(kind: str, object_id: int, decision: str, status: str, reason: str, as_json: bool) -> None:
    emit(decision_form(kind, object_id, decision, status, reason), as_json,
         lambda d: click.echo(f"{d['kind'].replace('_', ' ')} {d['id']}: {d['status']}"
                              + (f" ({d['reason']})" if d["reason"] else "")))


def deprecated(old: str, new: str) -> None:
    """The one-line note an older spelling prints on stderr."""
    click.echo(f"note: 'dp-sandbox {old}' is deprecated and goes in the next release; "
               f"use 'dp-sandbox {new}'", err=True)


def renamed(target: click.Command, old: str, new: str) -> click.Command:
    """A hidden command named after the last word of ``old`` that notes the new
    spelling and runs ``target`` with the same arguments."""
    callback = target.callback
    assert callback is not None

    def forward(*args: Any, **kwargs: Any) -> Any:
        deprecated(old, new)
        return callback(*args, **kwargs)

    return click.Command(old.split()[-1], params=list(target.params), callback=forward, hidden=True,
                         help=f"Deprecated spelling of 'dp-sandbox {new}'.")
