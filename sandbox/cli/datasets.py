"""Dataset and licence commands: ``dataset`` (add, list, show, mock, export,
delegate, reclassify), ``classification`` (list, show, decide) and ``licence``
(grant, extend, top-up, revoke, set-approval, close-expired, list, show)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

import click

from queries.vocabulary import Classification
from sandbox.cli.decisions import decision_options, emit_decision
from sandbox.cli.options import acting_actor, as_option, handles_errors, home_option, json_option, open_instance
from sandbox.cli.output import echo_lines, emit
from sandbox.vocabulary import ApprovalMode, ClassificationChangeStatus, ClassificationDecision

APPROVAL_MODES = [mode.value for mode in ApprovalMode]
# privacy.vocabulary.Accounting's words, written out: importing privacy loads OpenDP, which the
# CLI's start-up does not pay for; tests/test_vocabulary.py checks the two agree
ACCOUNTINGS = ["approx", "zcdp"]


@click.group()
def dataset() -> None:
    """Datasets: add, list, show, mock, export, delegate, reclassify."""


@dataset.command("add")
@home_option
@click.argument("policy", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--version-of", "version_of", default=None, metavar="NAME",
              help="Add the data as a new version of this existing dataset (its budget carries on).")
@as_option(required=False, help="The owner adding it (default: local admin).")
@json_option
@handles_errors
def dataset_add(home: Path | None, policy: Path, version_of: str | None, as_user: str | None, as_json: bool) -> None:
    """Add a dataset (or a new version of it) from its policy file: ingest its
    files, encrypt them and store the version. Data that is already a version of
    another dataset is refused (duplicate_source): add it with --version-of that
    dataset instead."""
    from sandbox.datasets import add_dataset

    def progress(table: str, rows: int) -> None:
        if not as_json:
            click.echo(f"  {table}: {rows:,} rows", err=True)

    with open_instance(home) as inst:
        result = add_dataset(inst, acting_actor(inst, as_user), policy, progress=progress, version_of=version_of)
    emit(result, as_json, lambda r: echo_lines(
        [f"{'added' if r['created'] else 'unchanged'}: {r['dataset']} version {r['number']} "
         f"({r['content_hash'][:12]})"]
        + ([f"classification change {r['classification_change']} waits for a reviewer; "
            f"{r['dataset']} stays {r['classification']}"] if r.get("classification_change") else [])))


@dataset.command("list")
@home_option
@json_option
@handles_errors
def dataset_list(home: Path | None, as_json: bool) -> None:
    """List datasets."""
    from sandbox.datasets import list_datasets

    with open_instance(home) as inst:
        rows = list_datasets(inst)
    emit(rows, as_json, lambda r: echo_lines(
        f"{x['name']:<14} {x['classification']:<12} v{x['versions']:<3} {x['title']}" for x in r))


@dataset.command("show")
@home_option
@click.argument("name")
@click.option("--quality", is_flag=True, help="Include the owner-only quality report.")
@json_option
@handles_errors
def dataset_show(home: Path | None, name: str, quality: bool, as_json: bool) -> None:
    """Show a dataset's metadata, tables and budget."""
    from sandbox.datasets import show_dataset

    with open_instance(home) as inst:
        data = show_dataset(inst, name, include_quality=quality)
    emit(data, True)


@dataset.command("mock")
@home_option
@click.argument("name")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--rows", type=int, default=1000, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["duckdb", "parquet"]), default="duckdb", show_default=True)
@handles_errors
def dataset_mock(home: Path | None, name: str, out: Path, rows: int, fmt: Literal["duckdb", "parquet"]) -> None:
    """Write mock data generated from the policy alone (never a real value), to
    try SQL locally."""
    from sandbox.datasets import get_dataset, latest_version, version_policy
    from sandbox.execution.mock import write_mock

    if not 1 <= rows <= 1_000_000:
        raise click.BadParameter("between 1 and 1,000,000", param_hint="--rows")
    with open_instance(home) as inst, inst.store.read() as s:
        policy = version_policy(latest_version(s, get_dataset(s, name)))
    path = write_mock(policy, out, rows=rows, fmt=fmt)
    click.echo(f"wrote mock data for {name} ({rows} rows per table) to {path}")


@dataset.command("export")
@home_option
@click.argument("name")
@click.option("--table", required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--version", type=int, default=None)
@handles_errors
def dataset_export(home: Path | None, name: str, table: str, out: Path, fmt: Literal["csv", "parquet"],
                   version: int | None) -> None:
    """Export a table of an OPEN dataset in clear."""
    from queries.errors import Forbidden
    from queries.vocabulary import Classification
    from sandbox.datasets import get_dataset, get_version
    from sandbox.execution.storage import VersionFile, export_clear

    with open_instance(home) as inst:
        with inst.store.read() as s:
            ds = get_dataset(s, name)
            if ds.classification != Classification.OPEN:
                raise Forbidden(f"dataset '{name}' is {ds.classification}: only open datasets are exported in clear",
                                code="not_open_data")
            path = VersionFile.of(get_version(s, ds, version))
        export_clear(path, inst.master_key, table, fmt, out)
    click.echo(f"exported {name}.{table} to {out}")


@dataset.command("delegate")
@home_option
@click.argument("name")
@click.option("--reviewer", required=True, help="The reviewer who may decide templates and query approvals.")
@as_option(help="The dataset's owner.")
@handles_errors
def dataset_delegate(home: Path | None, name: str, reviewer: str, as_user: str) -> None:
    """Let a reviewer decide the dataset's query templates and query approvals."""
    from sandbox.approvals import delegate

    with open_instance(home) as inst:
        delegate(inst, as_user, name, reviewer)
    click.echo(f"{reviewer} may now decide templates and query approvals on {name}")


@dataset.command("reclassify")
@home_option
@click.argument("name")
@click.option("--to", "to", required=True, type=click.Choice([c.value for c in Classification]),
              help="The new class.")
@click.option("--reason", required=True, help="Why (recorded, and shown to the reviewer).")
@as_option(required=False, help="The dataset's owner (default: local admin).")
@json_option
@handles_errors
def dataset_reclassify(home: Path | None, name: str, to: str, reason: str, as_user: str | None,
                       as_json: bool) -> None:
    """Move a dataset to another class: a more protected class applies at once; a
    less protected one (restricted → conditional → open) is a request that a
    reviewer approves or rejects ('classification decide')."""
    from sandbox.classification import reclassify

    with open_instance(home) as inst:
        result = reclassify(inst, acting_actor(inst, as_user), name, to, reason)
    emit(result, as_json, lambda r: click.echo(
        f"{r['dataset']}: {r['from_class']} → {r['to_class']}" if r["status"] == "applied" else
        f"classification change {r['change_id']}: {r['dataset']} {r['from_class']} → {r['to_class']} "
        "waits for a reviewer"))


# --- classification changes ---------------------------------------------------

@click.group()
def classification() -> None:
    """Requests to move datasets to a less protected class: list, show, decide (a reviewer)."""


@classification.command("list")
@home_option
@click.option("--status", type=click.Choice([s.value for s in ClassificationChangeStatus]), default=None)
@click.option("--dataset", default=None)
@json_option
@handles_errors
def classification_list(home: Path | None, status: str | None, dataset: str | None, as_json: bool) -> None:
    """Classification change requests, oldest first."""
    from sandbox.classification import list_changes

    with open_instance(home) as inst:
        rows = list_changes(inst, status=status, dataset=dataset)
    emit(rows, as_json, lambda r: echo_lines(
        f"{x['id']:<4} {x['status']:<10} {x['dataset']:<12} {x['from_class']} → {x['to_class']}  "
        f"by {x['requested_by']}: {x['reason']}" for x in r))


@classification.command("show")
@home_option
@click.argument("change_id", metavar="ID", type=int)
@json_option
@handles_errors
def classification_show(home: Path | None, change_id: int, as_json: bool) -> None:
    """One classification change request."""
    from sandbox.classification import get_change

    with open_instance(home) as inst:
        view = get_change(inst, change_id)
    emit(view, True)


@classification.command("decide")
@decision_options([d.value for d in ClassificationDecision], as_help="A reviewer (not the one who asked).",
                  reason_help="Why (needed for either decision).", reason_required=True)
def classification_decide(home: Path | None, object_id: int, decision: str, reason: str, as_user: str,
                          as_json: bool) -> None:
    """Approve or reject moving a dataset to a less protected class."""
    from sandbox.classification import decide_change

    with open_instance(home) as inst:
        status = decide_change(inst, as_user, object_id, decision, reason)
    emit_decision("classification_change", object_id, decision, status, reason, as_json)


# --- licences --------------------------------------------------------------

@click.group()
def licence() -> None:
    """Licences: grant, extend, top-up, revoke, set-approval, close-expired, list, show."""


@licence.command("grant")
@home_option
@click.option("--dataset", required=True)
@click.option("--operator", required=True)
@click.option("--epsilon", type=float, required=True)
@click.option("--delta", type=float, default=0.0, show_default=True)
@click.option("--purpose", required=True)
@click.option("--expires", type=click.DateTime(formats=["%Y-%m-%d"]), required=True, help="YYYY-MM-DD")
@click.option("--table", "tables", multiple=True, help="Limit the licence to these tables (repeatable).")
@click.option("--approval", type=click.Choice(APPROVAL_MODES), default="automatic", show_default=True)
@click.option("--accounting", type=click.Choice(ACCOUNTINGS), default="approx", show_default=True)
@click.option("--min-epsilon", "min_epsilon", type=float, default=None,
              help="Floor on one query's ε (at least the dataset's; default: the dataset's).")
@click.option("--max-queries", "max_queries", type=int, default=None, help="Most queries the licence may run.")
@as_option(required=False, help="The granting owner (default: local admin).")
@json_option
@handles_errors
def licence_grant(home: Path | None, dataset: str, operator: str, epsilon: float, delta: float, purpose: str,
                  expires: datetime, tables: tuple[str, ...], approval: str, accounting: str,
                  min_epsilon: float | None, max_queries: int | None, as_user: str | None, as_json: bool) -> None:
    """Grant an operator a licence with a budget on a dataset."""
    from sandbox.licences import grant_licence

    with open_instance(home) as inst:
        lid = grant_licence(inst, acting_actor(inst, as_user), dataset=dataset, operator=operator, epsilon=epsilon,
                            delta=delta, purpose=purpose, expires=expires.date(), tables=list(tables) or None,
                            approval=approval, accounting=accounting, min_epsilon_per_query=min_epsilon,
                            max_queries=max_queries)
    emit({"ok": True, "licence_id": lid}, as_json, lambda r: click.echo(f"granted licence {r['licence_id']}"))


@licence.command("revoke")
@home_option
@click.argument("licence_id", type=int)
@click.option("--reason", default="", help="Why (recorded in the audit log and the transparency register).")
@as_option(required=False, help="The owner revoking it (default: local admin).")
@handles_errors
def licence_revoke(home: Path | None, licence_id: int, reason: str, as_user: str | None) -> None:
    """Revoke a licence."""
    from sandbox.licences import revoke_licence

    with open_instance(home) as inst:
        revoke_licence(inst, acting_actor(inst, as_user), licence_id, reason)
    click.echo(f"revoked licence {licence_id}")


@licence.command("set-approval")
@home_option
@click.argument("licence_id", type=int)
@click.argument("mode", type=click.Choice(APPROVAL_MODES))
@click.option("--reason", default="")
@as_option(required=False, help="The owner changing it (default: local admin).")
@handles_errors
def licence_set_approval(home: Path | None, licence_id: int, mode: str, reason: str, as_user: str | None) -> None:
    """Change how much approval a licence's queries need before they run."""
    from sandbox.approvals import set_approval_mode

    with open_instance(home) as inst:
        set_approval_mode(inst, acting_actor(inst, as_user), licence_id, mode, reason)
    click.echo(f"licence {licence_id}: approval mode {mode}")


@licence.command("extend")
@home_option
@click.argument("licence_id", type=int)
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), required=True,
              help="The new end date, YYYY-MM-DD (later than the current one).")
@as_option(required=False, help="The dataset's owner (default: local admin).")
@json_option
@handles_errors
def licence_extend(home: Path | None, licence_id: int, until: datetime, as_user: str | None, as_json: bool) -> None:
    """Move a licence's end date later (an expired licence becomes active again)."""
    from sandbox.licences import extend_licence

    with open_instance(home) as inst:
        view = extend_licence(inst, acting_actor(inst, as_user), licence_id, until.date())
    emit(view, as_json, lambda r: click.echo(f"licence {r['id']}: runs until {r['expires_at'][:10]} ({r['status']})"))


@licence.command("top-up")
@home_option
@click.argument("licence_id", type=int)
@click.option("--epsilon", type=float, required=True, help="ε added to the licence's budget.")
@click.option("--delta", type=float, default=0.0, show_default=True, help="δ added to the licence's budget.")
@as_option(required=False, help="The dataset's owner (default: local admin).")
@json_option
@handles_errors
def licence_top_up(home: Path | None, licence_id: int, epsilon: float, delta: float, as_user: str | None,
                   as_json: bool) -> None:
    """Add ε (and δ) to a licence's budget, never above the dataset's total."""
    from sandbox.licences import top_up_licence

    with open_instance(home) as inst:
        view = top_up_licence(inst, acting_actor(inst, as_user), licence_id, epsilon=epsilon, delta=delta)
    emit(view, as_json, lambda r: click.echo(
        f"licence {r['id']}: budget ε={r['budget']['total']['epsilon']:g}, δ={r['budget']['total']['delta']:g} "
        f"(ε left {r['budget']['remaining']['epsilon']:.3g})"))


@licence.command("show")
@home_option
@click.argument("licence_id", type=int)
@json_option
@handles_errors
def licence_show(home: Path | None, licence_id: int, as_json: bool) -> None:
    """Show one licence: status, end date and budget."""
    from sandbox.licences import get_licence

    with open_instance(home) as inst:
        view = get_licence(inst, licence_id)
    emit(view, as_json, lambda r: echo_lines([
        f"licence {r['id']}: {r['dataset']} for {r['operator']} — {r['status']}",
        f"  purpose: {r['purpose']}",
        f"  runs until {r['expires_at']}; approval {r['approval_mode']}; accounting {r['accounting']}",
        *([f"  budget ε={r['budget']['total']['epsilon']:g} δ={r['budget']['total']['delta']:g}; "
           f"spent ε={r['budget']['spent']['epsilon']:.3g}; left ε={r['budget']['remaining']['epsilon']:.3g}"]
          if r['budget'] else [])]))


@licence.command("close-expired")
@home_option
@json_option
@handles_errors
def licence_close_expired(home: Path | None, as_json: bool) -> None:
    """Cancel the pending templates and query approval requests of every licence
    past its end (run it from a scheduler; deciding on one does it too)."""
    from sandbox.licences import close_expired

    with open_instance(home) as inst:
        closed = close_expired(inst)
    emit({"closed": closed}, as_json, lambda r: click.echo(
        f"closed {len(r['closed'])} expired licence(s)" + (f": {', '.join(map(str, r['closed']))}" if r['closed']
                                                             else "")))


@licence.command("list")
@home_option
@click.option("--dataset", default=None)
@json_option
@handles_errors
def licence_list(home: Path | None, dataset: str | None, as_json: bool) -> None:
    """List licences with their budgets."""
    from sandbox.licences import list_licences

    with open_instance(home) as inst:
        rows = list_licences(inst, dataset=dataset)
    emit(rows, as_json, lambda r: echo_lines(
        f"{x['id']:<4} {x['dataset']:<10} {x['operator']:<12} {x['status']:<8} "
        f"ε left {x['budget']['remaining']['epsilon']:.3g}  {x['purpose']}" for x in r))


COMMANDS = [dataset, classification, licence]
