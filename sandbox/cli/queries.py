"""Query commands: ``query`` (check, run), ``approval`` (one query submitted for
approval under a licence in ``each`` mode: submit, list, decide) and
``template`` (templates under a licence in ``templates`` mode: propose, list,
decide)."""

from __future__ import annotations

from pathlib import Path

import click

from sandbox.cli.decisions import decision_options, deprecated, emit_decision, renamed
from sandbox.cli.options import as_option, handles_errors, home_option, json_option, open_instance
from sandbox.cli.output import echo_lines, emit, print_table


@click.group()
def query() -> None:
    """Check (free) and run (charged) queries."""


def _width_target(text: str | None) -> tuple[str, float] | None:
    if text is None:
        return None
    name, sep, value = text.rpartition("=")
    try:
        half_width = float(value)
    except ValueError:
        half_width = float("nan")
    if not sep or not name or not half_width > 0:
        raise click.BadParameter("use OUTPUT=HALF_WIDTH with a positive half-width", param_hint="--width")
    return name, half_width


@query.command("check")
@home_option
@as_option(help="The operator.")
@click.option("--dataset", required=True)
@click.option("--epsilon", type=float, default=None)
@click.option("--version", type=int, default=None, help="Dataset version (default: newest).")
@click.option("--width", "width", default=None, metavar="OUTPUT=HALF_WIDTH",
              help="Accuracy first: the smallest ε whose interval for OUTPUT is at most ±HALF_WIDTH.")
@json_option
@click.argument("sql")
@handles_errors
def query_check(home: Path | None, as_user: str, dataset: str, epsilon: float | None, version: int | None,
                width: str | None, as_json: bool, sql: str) -> None:
    """Check a query and show its cost and expected accuracy. No data touched, nothing charged.

    Exits with status 1 when a run at this ε would be refused (per-query cap, budget
    left, query cap), saying why."""
    from sandbox.preview import preview_query

    with open_instance(home) as inst:
        data = preview_query(inst, as_user, dataset, sql, epsilon=epsilon, version=version,
                             target=_width_target(width))

    def human(d: dict) -> None:
        from sandbox.numbers import format_half_width

        c = d["cost"]
        verdict = "ok" if d["ok"] else "not ok"
        click.echo(f"{verdict}: would cost ε={c['epsilon']:g}, δ={c['delta']:g} on version {d['dataset_version']}")
        for r in d["refusals"]:
            limit = ", ".join(f"{k}={v:g}" for k, v in r["limit"].items())
            click.echo(f"  refused at the {r['level']} level: {r['code']} ({limit})")
        level = int((1 - c["alpha"]) * 100)
        for a in d["accuracy"]:
            if a["half_width"] is not None:
                click.echo(f"  {a['output']}: ± {format_half_width(a['half_width'])} ({level}% interval)")
            for n, hw in a["by_group_size"]:
                click.echo(f"  {a['output']}: ± {format_half_width(hw)} for a group of {n} ({level}% interval)")
            if a["note"]:
                click.echo(f"  {a['output']}: {a['note']}")
        for note in d["notes"]:
            click.echo(f"  note: {note}")

    emit(data, as_json, human)
    if not data.ok:
        raise SystemExit(1)


@query.command("run")
@home_option
@as_option(help="The operator.")
@click.option("--dataset", required=True)
@click.option("--epsilon", type=float, default=None)
@click.option("--version", type=int, default=None, help="Dataset version (default: newest).")
@click.option("--template", "template_id", type=int, default=None, help="Run an approved template.")
@click.option("--param", "params", multiple=True, help="A template parameter, NAME=VALUE (repeatable).")
@click.option("--approval", "approval_id", type=int, default=None, help="Run an approved query approval (once).")
@click.option("--request", "old_request_id", type=int, default=None, hidden=True,
              help="Deprecated spelling of --approval.")
@click.option("--width", "width", default=None, metavar="OUTPUT=HALF_WIDTH",
              help="Accuracy first: spend the smallest ε whose interval for OUTPUT is at most ±HALF_WIDTH.")
@json_option
@click.argument("sql", required=False)
@handles_errors
def query_run(home: Path | None, as_user: str, dataset: str, epsilon: float | None, version: int | None,
              template_id: int | None, params: tuple[str, ...], approval_id: int | None,
              old_request_id: int | None, width: str | None, as_json: bool, sql: str | None) -> None:
    """Run a query: its privacy loss is charged to the licence and dataset budgets.

    Under a licence in `templates` mode, run an approved template with --template
    and --param; in `each` mode, run an approved query approval with --approval."""
    from sandbox.service import run_query

    if old_request_id is not None:
        deprecated("query run --request ID", "query run --approval ID")
        approval_id = approval_id if approval_id is not None else old_request_id
    values = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter("use NAME=VALUE", param_hint="--param")
        values[name.strip()] = value
    if sql is None and template_id is None and approval_id is None:
        raise click.UsageError("give SQL, --template or --approval")
    with open_instance(home) as inst:
        result = run_query(inst, as_user, dataset, sql, epsilon=epsilon, version=version,
                           template_id=template_id, params=values or None, request_id=approval_id,
                           target=_width_target(width))

    def human(d: dict) -> None:
        click.echo(f"run {d['run_id']} on version {d['dataset_version']}: charged ε={d['cost']['epsilon']:g}, "
                   f"δ={d['cost']['delta']:g}")
        print_table(d)

    emit(result, as_json, human)


@query.command("list")
@home_option
@as_option(help="The operator (their own runs), a reviewer or an admin (every run).")
@click.option("--dataset", default=None)
@json_option
@handles_errors
def query_list(home: Path | None, as_user: str, dataset: str | None, as_json: bool) -> None:
    """List query runs, newest first (GET /api/v1/queries)."""
    from sandbox.service import list_runs

    with open_instance(home) as inst:
        rows = list_runs(inst, as_user, dataset)
    emit(rows, as_json, lambda r: echo_lines(
        f"{x['run_id'][:8]}  {x['status']:<8} ε={x['epsilon']:g}  {x['created_at'][:19]}  {' '.join(x['sql'].split())}"
        for x in r))


@query.command("show")
@home_option
@as_option(help="The operator who ran it, a reviewer or an admin.")
@json_option
@click.argument("run_id")
@handles_errors
def query_show(home: Path | None, as_user: str, as_json: bool, run_id: str) -> None:
    """Show a stored run and its released result (GET /api/v1/queries/RUN_ID)."""
    from sandbox.service import get_run

    with open_instance(home) as inst:
        run = get_run(inst, as_user, run_id)

    def human(d: dict) -> None:
        click.echo(f"run {d['run_id']} on {d['dataset']} version {d['version']}: {d['status']}, "
                   f"charged ε={d['epsilon']:g}, δ={d['delta']:g}")
        click.echo("  " + " ".join(d["sql"].split()))
        if d["result"]:
            print_table(d["result"])

    emit(run, as_json, human)


# --- query approvals (licences in ``each`` mode) ------------------------------------

@click.group()
def approval() -> None:
    """Query approvals: one query submitted for approval before it runs
    (licences in `each` mode). Submit, list, decide; run with `query run --approval ID`."""


@approval.command("submit")
@home_option
@as_option(help="The operator.")
@click.option("--dataset", required=True)
@click.option("--purpose", required=True)
@click.option("--epsilon", type=float, required=True)
@json_option
@click.argument("sql")
@handles_errors
def approval_submit(home: Path | None, as_user: str, dataset: str, purpose: str, epsilon: float, as_json: bool,
                    sql: str) -> None:
    """Submit a query for approval. Nothing is charged until it runs."""
    from sandbox.approvals import request_query

    with open_instance(home) as inst:
        aid = request_query(inst, as_user, dataset, sql, purpose=purpose, epsilon=epsilon)
    emit({"ok": True, "approval_id": aid}, as_json,
         lambda d: click.echo(f"submitted query approval {d['approval_id']}"))


@approval.command("list")
@home_option
@click.option("--dataset", default=None)
@click.option("--status", default=None)
@json_option
@handles_errors
def approval_list(home: Path | None, dataset: str | None, status: str | None, as_json: bool) -> None:
    """List query approvals (the approvers' queue)."""
    from sandbox.approvals import list_requests

    with open_instance(home) as inst:
        rows = list_requests(inst, dataset=dataset, status=status)
    emit(rows, as_json, lambda r: echo_lines(f"{x['id']:<4} {x['status']:<9} ε={x['epsilon']:g}  {x['purpose']}"
                                   for x in r))


@approval.command("decide")
@decision_options(("approve", "reject"), as_help="The owner or a delegated reviewer.",
                  reason_help="Why (needed to reject).")
def approval_decide(home: Path | None, object_id: int, decision: str, reason: str, as_user: str,
                    as_json: bool) -> None:
    """Approve a query (the operator may then run it once) or reject it."""
    from sandbox.approvals import decide_request

    with open_instance(home) as inst:
        status = decide_request(inst, as_user, object_id, decision, reason)
    emit_decision("query_approval", object_id, decision, status, reason, as_json)


# The older spellings under ``query``, for one release.
query.add_command(renamed(approval_submit, "query request", "approval submit"))
query.add_command(renamed(approval_list, "query requests", "approval list"))


def _old_query_decision(verb: str) -> click.Command:
    @click.command(verb, hidden=True, help=f"Deprecated spelling of 'dp-sandbox approval decide ID {verb}'.")
    @home_option
    @as_option(help="The owner or a delegated reviewer.")
    @click.option("--reason", default="")
    @click.argument("request_id", type=int)
    @click.pass_context
    def command(ctx: click.Context, home: Path | None, as_user: str, reason: str, request_id: int) -> None:
        deprecated(f"query {verb} ID", f"approval decide ID {verb}")
        ctx.invoke(approval_decide, home=home, object_id=request_id, decision=verb, reason=reason, as_user=as_user)

    return command


query.add_command(_old_query_decision("approve"))
query.add_command(_old_query_decision("reject"))


# --- templates -------------------------------------------------------------

@click.group()
def template() -> None:
    """Query templates (licences in `templates` mode): propose, list, decide."""


@template.command("propose")
@home_option
@as_option(help="The operator.")
@click.option("--dataset", required=True)
@click.option("--title", required=True)
@click.option("--purpose", required=True)
@click.option("--epsilon", type=float, required=True, help="ε charged per run.")
@click.option("--max-runs", type=int, default=None)
@click.option("--max-epsilon", type=float, default=None, help="Cap on the template's total ε.")
@click.option("--param", "params", multiple=True,
              help="Declare a parameter: NAME:TYPE:a|b|c or NAME:TYPE:lo..hi (TYPE: string, integer, float, date).")
@click.option("--confidential", is_flag=True, help="Keep the SQL out of the transparency register.")
@json_option
@click.argument("sql")
@handles_errors
def template_propose(home: Path | None, as_user: str, dataset: str, title: str, purpose: str, epsilon: float,
                     max_runs: int | None, max_epsilon: float | None, params: tuple[str, ...], confidential: bool,
                     as_json: bool, sql: str) -> None:
    """Propose a query template with named :parameters for the owner's approval."""
    from sandbox.approvals import parse_parameter_spec, propose_template

    specs = [parse_parameter_spec(p) for p in params]
    with open_instance(home) as inst:
        tid = propose_template(inst, as_user, dataset, title=title, purpose=purpose, sql=sql, parameters=specs,
                               epsilon_per_run=epsilon, max_runs=max_runs, max_epsilon=max_epsilon,
                               confidential=confidential)
    emit({"ok": True, "template_id": tid}, as_json, lambda d: click.echo(f"proposed template {d['template_id']}"))


@template.command("decide")
@decision_options(("approve", "return", "reject"), as_help="The owner or a delegated reviewer.",
                  reason_help="Why (needed to return or reject).")
def template_decide(home: Path | None, object_id: int, decision: str, reason: str, as_user: str,
                    as_json: bool) -> None:
    """Approve a proposed template, return it with comments, or reject it."""
    from sandbox.approvals import decide_template

    with open_instance(home) as inst:
        status = decide_template(inst, as_user, object_id, decision, reason)
    emit_decision("template", object_id, decision, status, reason, as_json)


def _old_template_decision(verb: str) -> click.Command:
    @click.command(verb, hidden=True, help=f"Deprecated spelling of 'dp-sandbox template decide ID {verb}'.")
    @home_option
    @as_option(help="The owner or a delegated reviewer.")
    @click.option("--reason", default="")
    @click.argument("template_id", type=int)
    @click.pass_context
    def command(ctx: click.Context, home: Path | None, as_user: str, reason: str, template_id: int) -> None:
        deprecated(f"template {verb} ID", f"template decide ID {verb}")
        ctx.invoke(template_decide, home=home, object_id=template_id, decision=verb, reason=reason,
                   as_user=as_user)

    return command


for _verb in ("approve", "return", "reject"):
    template.add_command(_old_template_decision(_verb))


@template.command("list")
@home_option
@click.option("--dataset", default=None)
@click.option("--status", default=None)
@json_option
@handles_errors
def template_list(home: Path | None, dataset: str | None, status: str | None, as_json: bool) -> None:
    """List templates with their status and use."""
    from sandbox.approvals import list_templates

    with open_instance(home) as inst:
        rows = list_templates(inst, dataset=dataset, status=status)
    emit(rows, as_json, lambda r: echo_lines(
        f"{x['id']:<4} {x['status']:<9} runs {x['runs_used']}/{x['max_runs'] or '∞'}  {x['title']}" for x in r))


COMMANDS = [query, approval, template]
