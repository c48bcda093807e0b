"""The ``dp-sandbox`` command line.

Every command takes ``--home`` (or ``DPS_HOME``); commands that print results
take ``--json``. Errors go to stderr with a non-zero exit (with ``--json`` the
error shape is also printed on stdout). ``--as USER`` names the accountable
person; commands without it act as the local administrator (the person with
access to the home directory), recorded as ``local:<login>``.
"""

from __future__ import annotations

import functools
import getpass
import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from queries.errors import SandboxError
from sandbox.audit import Actor
from sandbox.settings import load_settings


def _local_actor() -> Actor:
    try:
        login = getpass.getuser()
    except Exception:  # no login name (containers)
        login = "unknown"
    return Actor(f"local:{login}", "admin")


def home_option(fn: Callable) -> Callable:
    return click.option("--home", envvar="DPS_HOME", type=click.Path(file_okay=False, path_type=Path),
                        default=None, help="Instance home directory (env DPS_HOME).")(fn)


def json_option(fn: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(fn)


def _settings(home: Path | None, **overrides: Any):
    return load_settings(home=str(home) if home else None, **overrides)


def _open(home: Path | None, **overrides: Any):
    from sandbox.instance import Instance

    return Instance.open(_settings(home, **overrides))


def _emit(data: Any, as_json: bool, human: Callable[[Any], None] | None = None) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    elif human is not None:
        human(data)
    else:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def handles_errors(fn: Callable) -> Callable:
    """Map SandboxError to a message on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SandboxError as exc:
            if kwargs.get("as_json"):
                click.echo(json.dumps({"ok": False, "error": exc.to_dict()}, ensure_ascii=False, default=str))
            span = getattr(exc, "span", None)
            click.echo(f"error [{exc.code}]: {exc.message}", err=True)
            sql = kwargs.get("sql")
            if span is not None and sql:
                line = sql.splitlines()[span.line - 1] if sql.splitlines() else sql
                width = max(1, min(span.end - span.start, len(line) - span.column + 1))
                click.echo(f"  {line}\n  {' ' * (span.column - 1)}{'^' * width}", err=True)
            sys.exit(1)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dp-sandbox")
def main() -> None:
    """dp-sandbox: differentially private queries over sensitive public data,
    reviewed and released as signed data products."""


@main.command()
@home_option
@handles_errors
def init(home: Path | None) -> None:
    """Create the instance home: store, signing key and master key."""
    from sandbox.instance import init_home

    settings = _settings(home)
    created = init_home(settings)
    click.echo(f"{'initialised' if created else 'already initialised'}: {settings.home_path}")


# --- users -----------------------------------------------------------------

@main.group()
def user() -> None:
    """Users and roles."""


@user.command("add")
@home_option
@click.argument("name")
@click.option("--role", type=click.Choice(["owner", "operator", "reviewer", "admin"]), required=True)
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from standard input.")
@click.option("--display-name", default="", help="Full name shown in the register.")
@click.option("--organisation", default="", help="Organisation (for operators: the licensed company or department).")
@click.option("--org", default=None, help="A registered organisation (dp-sandbox org add); departments may hold sharing grants.")
@handles_errors
def user_add(home: Path | None, name: str, role: str, password_stdin: bool, display_name: str,
             organisation: str, org: str | None) -> None:
    """Add a user; the password is read from standard input."""
    from sandbox.users import add_user

    password = sys.stdin.readline().rstrip("\r\n")
    with _open(home) as inst:
        u = add_user(inst, _local_actor(), name, role, password, display_name=display_name, organisation=organisation,
                     org=org)
        click.echo(f"added user {u.name} ({u.role})")


@user.command("list")
@home_option
@json_option
@handles_errors
def user_list(home: Path | None, as_json: bool) -> None:
    """List users and their roles."""
    from sqlalchemy import select

    from sandbox.persistence.models import User

    with _open(home) as inst, inst.store.read() as s:
        rows = [{"name": u.name, "role": u.role, "active": u.active, "organisation": u.organisation}
                for u in s.execute(select(User).order_by(User.name)).scalars()]
    _emit(rows, as_json, lambda r: [click.echo(f"{x['name']:<16} {x['role']:<9} {x['organisation']}") for x in r])


# --- datasets --------------------------------------------------------------

@main.group()
def dataset() -> None:
    """Datasets: register, list, show."""


@dataset.command("add")
@home_option
@click.argument("policy", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--as", "as_user", default=None, help="The owner registering it (default: local admin).")
@json_option
@handles_errors
def dataset_add(home: Path | None, policy: Path, as_user: str | None, as_json: bool) -> None:
    """Register a dataset (or a new version of it) from its policy file."""
    from sandbox.datasets import add_dataset
    from sandbox.users import actor_of, find_user

    def progress(table: str, rows: int) -> None:
        if not as_json:
            click.echo(f"  {table}: {rows:,} rows", err=True)

    with _open(home) as inst:
        actor = actor_of(find_user(inst, as_user)) if as_user else _local_actor()
        result = add_dataset(inst, actor, policy, progress=progress)
    _emit(result.to_dict(), as_json, lambda r: click.echo(
        f"{'registered' if r['created'] else 'unchanged'}: {r['dataset']} version {r['number']} "
        f"({r['content_hash'][:12]})"))


@dataset.command("list")
@home_option
@json_option
@handles_errors
def dataset_list(home: Path | None, as_json: bool) -> None:
    """List datasets."""
    from sandbox.datasets import list_datasets

    with _open(home) as inst:
        rows = list_datasets(inst)
    _emit(rows, as_json, lambda r: [click.echo(
        f"{x['name']:<14} {x['classification']:<12} v{x['versions']:<3} {x['title']}") for x in r])


@dataset.command("show")
@home_option
@click.argument("name")
@click.option("--quality", is_flag=True, help="Include the owner-only quality report.")
@json_option
@handles_errors
def dataset_show(home: Path | None, name: str, quality: bool, as_json: bool) -> None:
    """Show a dataset's metadata, tables and budget."""
    from sandbox.datasets import show_dataset

    with _open(home) as inst:
        data = show_dataset(inst, name, include_quality=quality)
    _emit(data, True)


@dataset.command("mock")
@home_option
@click.argument("name")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--rows", type=int, default=1000, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["duckdb", "parquet"]), default="duckdb", show_default=True)
@handles_errors
def dataset_mock(home: Path | None, name: str, out: Path, rows: int, fmt: str) -> None:
    """Write mock data generated from the policy alone (never a real value), to
    try SQL locally."""
    from sandbox.datasets import get_dataset, latest_version, version_policy
    from sandbox.execution.mock import write_mock

    if not 1 <= rows <= 1_000_000:
        raise click.BadParameter("between 1 and 1,000,000", param_hint="--rows")
    with _open(home) as inst, inst.store.read() as s:
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
def dataset_export(home: Path | None, name: str, table: str, out: Path, fmt: str, version: int | None) -> None:
    """Export a table of an OPEN dataset in clear."""
    from queries.errors import Forbidden
    from sandbox.datasets import get_dataset, get_version
    from sandbox.execution.storage import export_clear

    with _open(home) as inst:
        with inst.store.read() as s:
            ds = get_dataset(s, name)
            if ds.classification != "open":
                raise Forbidden(f"dataset '{name}' is {ds.classification}: only open datasets are exported in clear",
                                code="not_open_data")
            path = Path(get_version(s, ds, version).path)
        export_clear(path, inst.master_key, table, fmt, out)
    click.echo(f"exported {name}.{table} to {out}")


@dataset.command("delegate")
@home_option
@click.argument("name")
@click.option("--reviewer", required=True, help="The reviewer who may decide templates and requests.")
@click.option("--as", "as_user", required=True, help="The dataset's owner.")
@handles_errors
def dataset_delegate(home: Path | None, name: str, reviewer: str, as_user: str) -> None:
    """Let a reviewer decide the dataset's query templates and requests."""
    from sandbox.approvals import delegate

    with _open(home) as inst:
        delegate(inst, as_user, name, reviewer)
    click.echo(f"{reviewer} may now decide templates and requests on {name}")


# --- licences --------------------------------------------------------------

@main.group()
def licence() -> None:
    """Licences: grant, revoke, list."""


@licence.command("grant")
@home_option
@click.option("--dataset", required=True)
@click.option("--operator", required=True)
@click.option("--epsilon", type=float, required=True)
@click.option("--delta", type=float, default=0.0, show_default=True)
@click.option("--purpose", required=True)
@click.option("--expires", type=click.DateTime(formats=["%Y-%m-%d"]), required=True, help="YYYY-MM-DD")
@click.option("--table", "tables", multiple=True, help="Limit the licence to these tables (repeatable).")
@click.option("--approval", type=click.Choice(["automatic", "templates", "each"]), default="automatic",
              show_default=True)
@click.option("--accounting", type=click.Choice(["approx", "zcdp"]), default="approx", show_default=True)
@click.option("--min-epsilon", "min_epsilon", type=float, default=None,
              help="Floor on one query's ε (at least the dataset's; default: the dataset's).")
@click.option("--max-queries", "max_queries", type=int, default=None, help="Most queries the licence may run.")
@click.option("--as", "as_user", default=None, help="The granting owner (default: local admin).")
@json_option
@handles_errors
def licence_grant(home: Path | None, dataset: str, operator: str, epsilon: float, delta: float, purpose: str,
                  expires, tables: tuple[str, ...], approval: str, accounting: str, min_epsilon: float | None,
                  max_queries: int | None, as_user: str | None, as_json: bool) -> None:
    """Grant an operator a licence with a budget on a dataset."""
    from sandbox.licences import grant_licence
    from sandbox.users import actor_of, find_user

    with _open(home) as inst:
        actor = actor_of(find_user(inst, as_user)) if as_user else _local_actor()
        lid = grant_licence(inst, actor, dataset=dataset, operator=operator, epsilon=epsilon, delta=delta,
                            purpose=purpose, expires=expires.date(), tables=list(tables) or None,
                            approval=approval, accounting=accounting, min_epsilon_per_query=min_epsilon,
                            max_queries=max_queries)
    _emit({"ok": True, "licence_id": lid}, as_json, lambda r: click.echo(f"granted licence {r['licence_id']}"))


@licence.command("revoke")
@home_option
@click.argument("licence_id", type=int)
@click.option("--reason", default="", help="Why (recorded in the audit log and the register).")
@click.option("--as", "as_user", default=None)
@handles_errors
def licence_revoke(home: Path | None, licence_id: int, reason: str, as_user: str | None) -> None:
    """Revoke a licence."""
    from sandbox.licences import revoke_licence
    from sandbox.users import actor_of, find_user

    with _open(home) as inst:
        actor = actor_of(find_user(inst, as_user)) if as_user else _local_actor()
        revoke_licence(inst, actor, licence_id, reason)
    click.echo(f"revoked licence {licence_id}")


@licence.command("set-approval")
@home_option
@click.argument("licence_id", type=int)
@click.argument("mode", type=click.Choice(["automatic", "templates", "each"]))
@click.option("--reason", default="")
@click.option("--as", "as_user", default=None)
@handles_errors
def licence_set_approval(home: Path | None, licence_id: int, mode: str, reason: str, as_user: str | None) -> None:
    """Change how much approval a licence's queries need before they run."""
    from sandbox.approvals import set_approval_mode
    from sandbox.users import actor_of, find_user

    with _open(home) as inst:
        actor = actor_of(find_user(inst, as_user)) if as_user else _local_actor()
        set_approval_mode(inst, actor, licence_id, mode, reason)
    click.echo(f"licence {licence_id}: approval mode {mode}")


@licence.command("list")
@home_option
@click.option("--dataset", default=None)
@json_option
@handles_errors
def licence_list(home: Path | None, dataset: str | None, as_json: bool) -> None:
    """List licences with their budgets."""
    from sandbox.licences import list_licences

    with _open(home) as inst:
        rows = list_licences(inst, dataset=dataset)
    _emit(rows, as_json, lambda r: [click.echo(
        f"{x['id']:<4} {x['dataset']:<10} {x['operator']:<12} {x['status']:<8} "
        f"ε left {x['budget']['remaining']['epsilon']:.3g}  {x['purpose']}") for x in r])


# --- queries ---------------------------------------------------------------

@main.group()
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


def _print_table(result: dict) -> None:
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


@query.command("check")
@home_option
@click.option("--as", "as_user", required=True, help="The operator.")
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

    with _open(home) as inst:
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

    _emit(data, as_json, human)
    if not data["ok"]:
        raise SystemExit(1)


@query.command("run")
@home_option
@click.option("--as", "as_user", required=True, help="The operator.")
@click.option("--dataset", required=True)
@click.option("--epsilon", type=float, default=None)
@click.option("--version", type=int, default=None, help="Dataset version (default: newest).")
@click.option("--template", "template_id", type=int, default=None, help="Run an approved template.")
@click.option("--param", "params", multiple=True, help="A template parameter, NAME=VALUE (repeatable).")
@click.option("--request", "request_id", type=int, default=None, help="Run an approved query request (once).")
@click.option("--width", "width", default=None, metavar="OUTPUT=HALF_WIDTH",
              help="Accuracy first: spend the smallest ε whose interval for OUTPUT is at most ±HALF_WIDTH.")
@json_option
@click.argument("sql", required=False)
@handles_errors
def query_run(home: Path | None, as_user: str, dataset: str, epsilon: float | None, version: int | None,
              template_id: int | None, params: tuple[str, ...], request_id: int | None, width: str | None,
              as_json: bool, sql: str | None) -> None:
    """Run a query: its privacy loss is charged to the licence and dataset budgets.

    Under a licence in `templates` mode, run an approved template with --template
    and --param; in `each` mode, run an approved request with --request."""
    from sandbox.service import run_query

    values = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter("use NAME=VALUE", param_hint="--param")
        values[name.strip()] = value
    if sql is None and template_id is None and request_id is None:
        raise click.UsageError("give SQL, --template or --request")
    with _open(home) as inst:
        result = run_query(inst, as_user, dataset, sql, epsilon=epsilon, version=version,
                           template_id=template_id, params=values or None, request_id=request_id,
                           target=_width_target(width))
    data = result.to_dict()

    def human(d: dict) -> None:
        click.echo(f"run {d['run_id']} on version {d['dataset_version']}: charged ε={d['cost']['epsilon']:g}, "
                   f"δ={d['cost']['delta']:g}")
        _print_table(d)

    _emit(data, as_json, human)


@query.command("request")
@home_option
@click.option("--as", "as_user", required=True, help="The operator.")
@click.option("--dataset", required=True)
@click.option("--purpose", required=True)
@click.option("--epsilon", type=float, required=True)
@json_option
@click.argument("sql")
@handles_errors
def query_request(home: Path | None, as_user: str, dataset: str, purpose: str, epsilon: float, as_json: bool,
                  sql: str) -> None:
    """Submit a query for approval (licences in `each` mode). Nothing is charged until it runs."""
    from sandbox.approvals import request_query

    with _open(home) as inst:
        rid = request_query(inst, as_user, dataset, sql, purpose=purpose, epsilon=epsilon)
    _emit({"ok": True, "request_id": rid}, as_json, lambda d: click.echo(f"submitted request {d['request_id']}"))


def _decide_request(home: Path | None, as_user: str, request_id: int, decision: str, reason: str) -> None:
    from sandbox.approvals import decide_request

    with _open(home) as inst:
        status = decide_request(inst, as_user, request_id, decision, reason)
    click.echo(f"request {request_id}: {status}")


@query.command("approve")
@home_option
@click.option("--as", "as_user", required=True, help="The owner or a delegated reviewer.")
@click.option("--reason", default="")
@click.argument("request_id", type=int)
@handles_errors
def query_approve(home: Path | None, as_user: str, reason: str, request_id: int) -> None:
    """Approve a query request; the operator may then run it once."""
    _decide_request(home, as_user, request_id, "approve", reason)


@query.command("reject")
@home_option
@click.option("--as", "as_user", required=True, help="The owner or a delegated reviewer.")
@click.option("--reason", required=True)
@click.argument("request_id", type=int)
@handles_errors
def query_reject(home: Path | None, as_user: str, reason: str, request_id: int) -> None:
    """Reject a query request."""
    _decide_request(home, as_user, request_id, "reject", reason)


@query.command("requests")
@home_option
@click.option("--dataset", default=None)
@click.option("--status", default=None)
@json_option
@handles_errors
def query_requests(home: Path | None, dataset: str | None, status: str | None, as_json: bool) -> None:
    """List query requests (the owner's approval queue)."""
    from sandbox.approvals import list_requests

    with _open(home) as inst:
        rows = list_requests(inst, dataset=dataset, status=status)
    _emit(rows, as_json, lambda r: [click.echo(f"{x['id']:<4} {x['status']:<9} ε={x['epsilon']:g}  {x['purpose']}")
                                    for x in r])


# --- templates -------------------------------------------------------------

@main.group()
def template() -> None:
    """Query templates (licences in `templates` mode)."""


@template.command("propose")
@home_option
@click.option("--as", "as_user", required=True, help="The operator.")
@click.option("--dataset", required=True)
@click.option("--title", required=True)
@click.option("--purpose", required=True)
@click.option("--epsilon", type=float, required=True, help="ε charged per run.")
@click.option("--max-runs", type=int, default=None)
@click.option("--max-epsilon", type=float, default=None, help="Cap on the template's total ε.")
@click.option("--param", "params", multiple=True,
              help="Declare a parameter: NAME:TYPE:a|b|c or NAME:TYPE:lo..hi (TYPE: string, integer, float, date).")
@click.option("--confidential", is_flag=True, help="Keep the SQL out of the public register.")
@json_option
@click.argument("sql")
@handles_errors
def template_propose(home: Path | None, as_user: str, dataset: str, title: str, purpose: str, epsilon: float,
                     max_runs: int | None, max_epsilon: float | None, params: tuple[str, ...], confidential: bool,
                     as_json: bool, sql: str) -> None:
    """Propose a query template with named :parameters for the owner's approval."""
    from sandbox.approvals import parse_parameter_spec, propose_template

    specs = [parse_parameter_spec(p) for p in params]
    with _open(home) as inst:
        tid = propose_template(inst, as_user, dataset, title=title, purpose=purpose, sql=sql, parameters=specs,
                               epsilon_per_run=epsilon, max_runs=max_runs, max_epsilon=max_epsilon,
                               confidential=confidential)
    _emit({"ok": True, "template_id": tid}, as_json, lambda d: click.echo(f"proposed template {d['template_id']}"))


def _template_decision(decision: str, reason_required: bool):
    @click.option("--as", "as_user", required=True, help="The owner or a delegated reviewer.")
    @click.option("--reason", required=reason_required, default="")
    @click.argument("template_id", type=int)
    @home_option
    @handles_errors
    def command(home: Path | None, as_user: str, reason: str, template_id: int) -> None:
        from sandbox.approvals import decide_template

        with _open(home) as inst:
            status = decide_template(inst, as_user, template_id, decision, reason)
        click.echo(f"template {template_id}: {status}")

    return command


template.command("approve", help="Approve a proposed template.")(_template_decision("approve", False))
template.command("return", help="Return a template with comments.")(_template_decision("return", True))
template.command("reject", help="Reject a template.")(_template_decision("reject", True))


@template.command("list")
@home_option
@click.option("--dataset", default=None)
@click.option("--status", default=None)
@json_option
@handles_errors
def template_list(home: Path | None, dataset: str | None, status: str | None, as_json: bool) -> None:
    """List templates with their status and use."""
    from sandbox.approvals import list_templates

    with _open(home) as inst:
        rows = list_templates(inst, dataset=dataset, status=status)
    _emit(rows, as_json, lambda r: [click.echo(
        f"{x['id']:<4} {x['status']:<9} runs {x['runs_used']}/{x['max_runs'] or '∞'}  {x['title']}") for x in r])


# --- audit and keys ----------------------------------------------------------

@main.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log."""


@audit_group.command("verify")
@home_option
@json_option
@handles_errors
def audit_verify(home: Path | None, as_json: bool) -> None:
    """Check the whole hash chain and every signature; report the first bad record."""
    from sandbox.audit import verify_chain

    with _open(home) as inst, inst.store.read() as s:
        report = verify_chain(s, inst.signer.public)
    _emit(report.to_dict(), as_json, lambda r: click.echo(
        f"audit chain intact: {r['records']} records" if r["ok"]
        else f"audit chain BROKEN at record {r['first_bad_seq']}: {r['reason']}"))
    if not report.ok:
        sys.exit(1)


@main.group()
def keys() -> None:
    """Instance keys."""


@keys.command("show")
@home_option
@json_option
@handles_errors
def keys_show(home: Path | None, as_json: bool) -> None:
    """Print the public signing key (PEM) and its id."""
    with _open(home) as inst:
        data = {"key_id": inst.signer.key_id(), "public_key_pem": inst.signer.public_pem(), "algorithm": "Ed25519"}
    _emit(data, as_json, lambda d: click.echo(f"key id {d['key_id']} (Ed25519)\n{d['public_key_pem']}"))


def _load_plugins() -> None:
    """Commands of the packages above ``sandbox/`` (``web``, ``products``) register
    themselves through the ``dp_sandbox.cli`` entry-point group, so the runtime
    never imports them."""
    from importlib.metadata import entry_points

    # Run as ``python -m sandbox.cli``, this module is ``__main__``: plugins that
    # import ``sandbox.cli`` must get this very module, not a second copy.
    sys.modules.setdefault("sandbox.cli", sys.modules[__name__])
    for ep in entry_points(group="dp_sandbox.cli"):
        ep.load()(main)


_load_plugins()

if __name__ == "__main__":  # pragma: no cover
    main()
