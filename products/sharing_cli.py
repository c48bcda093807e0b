"""CLI of sharing between departments: ``org`` (organisations) and ``share``
(responsibility list, requests and grants, exact delivery, objections, on-demand
requests, usage). Registered on ``dp-sandbox`` through the ``dp_sandbox.cli``
entry point; it sits with ``products`` because extracts are signed packages.
Imported when ``dp-sandbox --help`` draws the command tree: only click at the
top, the services inside each command."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from sandbox.cli.decisions import decision_options, deprecated, emit_decision, renamed
from sandbox.cli.options import acting_actor, handles_errors, home_option, json_option
from sandbox.cli.options import as_option as _as
from sandbox.cli.options import open_instance as _open
from sandbox.cli.output import echo_lines
from sandbox.cli.output import emit as _emit
from sandbox.vocabulary import OrganisationKind


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


# --- organisations -------------------------------------------------------------

@click.group()
def org() -> None:
    """Organisations (departments and companies)."""


@org.command("add")
@home_option
@click.argument("name")
@click.option("--kind", type=click.Choice([kind.value for kind in OrganisationKind]), required=True)
@_as(required=False, help="An admin (default: the local administrator).")
@json_option
@handles_errors
def org_add(home: Path | None, name: str, kind: str, as_user: str | None, as_json: bool) -> None:
    """Register an organisation; users join it with `user add --org NAME`."""
    from sandbox.organisations import add_organisation

    with _open(home) as inst:
        view = add_organisation(inst, acting_actor(inst, as_user), name, kind)
    _emit(view.to_dict(), as_json, lambda d: click.echo(f"added organisation {d['name']} ({d['kind']})"))


@org.command("list")
@home_option
@json_option
@handles_errors
def org_list(home: Path | None, as_json: bool) -> None:
    """List organisations with their kind and number of users."""
    from sandbox.organisations import list_organisations

    with _open(home) as inst:
        rows = [o.to_dict() for o in list_organisations(inst)]
    _emit(rows, as_json, lambda r: echo_lines(f"{x['name']:<32} {x['kind']:<11} {x['users']} user(s)" for x in r))


# --- sharing ---------------------------------------------------------------------

@click.group()
def share() -> None:
    """Sharing between departments: list, request, decide, pull, query; sharing changes."""


def _print_grant(d: dict) -> None:
    click.echo(f"request {d['id']}: {d['dataset']} for {d['requester']} ({d['department']})  [{d['status']}]")
    click.echo(f"  columns: {', '.join(d['columns'])}")
    click.echo(f"  purpose: {d['purpose']}  basis: {d['basis']}  until {d['expires_at'][:10]}")
    if d["refusal_condition"]:
        click.echo(f"  refused: condition not met: {d['refusal_condition']}")


@share.command("list")
@home_option
@_as()
@json_option
@handles_errors
def share_list(home: Path | None, as_user: str, as_json: bool) -> None:
    """The sharing responsibility list: what every department provides."""
    from sandbox.sharing.feedback import responsibility_list

    with _open(home) as inst:
        rows = [e.to_dict() for e in responsibility_list(inst, as_user)]

    def human(r: list) -> None:
        for e in r:
            click.echo(f"{e['dataset']:<14} {e['provider']:<28} {e['sharing_class']:<13} "
                       f"{e['update_frequency']:<10} {e['update_status']:<8} objections {e['open_objections']}")
            click.echo(f"  columns: {', '.join(e['columns']) or '-'}")
            for c in e["conditions"]:
                click.echo(f"  condition: {c}")
            click.echo(f"  request: {e['how_to_request']}")

    _emit(rows, as_json, human)


@share.command("request")
@home_option
@click.option("--dataset", required=True)
@click.option("--columns", required=True, help="Comma-separated table.column (or unambiguous column) names.")
@click.option("--purpose", required=True, help="The duty the data is needed for.")
@click.option("--basis", required=True, help="The legal basis.")
@click.option("--condition", default="", help="The declared condition the request meets (conditional classes).")
@click.option("--expires", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="End of the grant's term, YYYY-MM-DD (default: one year).")
@_as(help="The department user requesting.")
@json_option
@handles_errors
def share_request(home: Path | None, dataset: str, columns: str, purpose: str, basis: str, condition: str,
                  expires: datetime | None, as_user: str, as_json: bool) -> None:
    """Request a dataset's columns; unconditional classes are granted at once."""
    from sandbox.sharing.grants import request_share

    with _open(home) as inst:
        view = request_share(inst, as_user, dataset=dataset, columns=_split(columns), purpose=purpose, basis=basis,
                             condition=condition, expires=expires.date() if expires else None)
    _emit(view.to_dict(), as_json, lambda d: click.echo(f"request {d['id']}: {d['status']}"))


@share.command("decide")
@click.option("--condition", default="", help="For a refusal: the declared condition that is not met.")
@decision_options(("approve", "reject"), as_help="The dataset's owner.")
def share_decide(home: Path | None, object_id: int, decision: str, reason: str, as_user: str, as_json: bool,
                 condition: str) -> None:
    """Grant or refuse a conditional sharing request (a refusal names a declared condition)."""
    from sandbox.sharing.grants import decide_share

    with _open(home) as inst:
        view = decide_share(inst, as_user, object_id, decision, reason=reason, condition=condition)
    emit_decision("sharing_request", object_id, decision, view.status, reason, as_json)


@share.command("revoke")
@home_option
@click.argument("request_id", type=int)
@click.option("--reason", default="")
@_as(help="The dataset's owner, an admin or the holder.")
@json_option
@handles_errors
def share_revoke(home: Path | None, request_id: int, reason: str, as_user: str, as_json: bool) -> None:
    """Revoke a grant (or withdraw a pending request)."""
    from sandbox.sharing.grants import revoke_share

    with _open(home) as inst:
        view = revoke_share(inst, as_user, request_id, reason)
    _emit(view.to_dict(), as_json, lambda d: click.echo(f"request {d['id']}: {d['status']}"))


@share.command("requests")
@home_option
@click.option("--dataset", default=None)
@click.option("--status", default=None)
@_as()
@json_option
@handles_errors
def share_requests(home: Path | None, dataset: str | None, status: str | None, as_user: str, as_json: bool) -> None:
    """Requests and grants the user may see."""
    from sandbox.sharing.grants import list_shares

    with _open(home) as inst:
        rows = [v.to_dict() for v in list_shares(inst, as_user, dataset=dataset, status=status)]
    _emit(rows, as_json, lambda r: echo_lines(
        f"{x['id']:<4} {x['status']:<9} {x['dataset']:<12} {x['requester']:<12} {', '.join(x['columns'])}" for x in r))


@share.command("show")
@home_option
@click.argument("request_id", type=int)
@_as()
@json_option
@handles_errors
def share_show(home: Path | None, request_id: int, as_user: str, as_json: bool) -> None:
    """One request or grant."""
    from sandbox.sharing.grants import show_share

    with _open(home) as inst:
        view = show_share(inst, as_user, request_id)
    _emit(view.to_dict(), as_json, _print_grant)


@share.command("pull")
@home_option
@click.argument("request_id", type=int)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "json"]), default="parquet", show_default=True)
@click.option("--table", default=None, help="The table (when the grant covers several).")
@click.option("--where", default=None, help="A row filter over the granted columns.")
@click.option("--version", type=int, default=None, help="Dataset version (default: newest).")
@click.option("--since-version", type=int, default=None, help="Incremental: only rows not in this version.")
@click.option("--incremental", is_flag=True, help="Incremental since the last version this grant pulled.")
@_as(help="The grant's holder.")
@json_option
@handles_errors
def share_pull(home: Path | None, request_id: int, out: Path, fmt: str, table: str | None, where: str | None,
               version: int | None, since_version: int | None, incremental: bool, as_user: str,
               as_json: bool) -> None:
    """Write an exact extract of the granted columns, with a signed manifest."""
    from products.sharing_extract import write_extract

    with _open(home) as inst:
        receipt = write_extract(inst, as_user, request_id, out, fmt, table=table, where=where, version=version,
                                since_version=since_version, incremental=incremental)
    _emit(receipt.to_dict(), as_json, lambda d: click.echo(
        f"wrote {d['rows']:,} rows of {d['dataset']}.{d['table']} v{d['version']}"
        f"{' (since v' + str(d['base_version']) + ')' if d['base_version'] else ''} to {d['path']}"
        f" (+ .manifest.json, .manifest.sig)"))


@share.command("query")
@home_option
@click.argument("request_id", type=int)
@click.argument("sql")
@click.option("--version", type=int, default=None)
@_as(help="The grant's holder.")
@json_option
@handles_errors
def share_query(home: Path | None, request_id: int, sql: str, version: int | None, as_user: str,
                as_json: bool) -> None:
    """Exact SQL over the granted columns, in the isolated worker."""
    from sandbox.sharing.delivery import run_shared_query

    with _open(home) as inst:
        result = run_shared_query(inst, as_user, request_id, sql, version=version)

    def human(d: dict) -> None:
        click.echo("\t".join(d["columns"]))
        for row in d["rows"]:
            click.echo("\t".join("" if v is None else str(v) for v in row))
        if d["truncated"]:
            click.echo(f"(cut at {len(d['rows'])} rows)", err=True)

    _emit(result.to_dict(), as_json, human)


@share.command("verify")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The instance's public key (PEM); default: the key in the manifest.")
@json_option
@handles_errors
def share_verify(path: Path, key_file: Path | None, as_json: bool) -> None:
    """Check an extract against its signed manifest, offline."""
    import sys

    from products.sharing_extract import verify_extract

    report = verify_extract(path, key_file.read_bytes() if key_file else None)
    _emit(report.to_dict(), as_json, lambda d: click.echo(
        f"valid: {d['subject']} (key {d['key_id']})" if d["ok"] else "INVALID: " + "; ".join(d["problems"])))
    if not report.ok:
        sys.exit(1)


@share.group("change")
def share_change() -> None:
    """Proposed changes of datasets' sharing sections: list, decide (a reviewer)."""


@share_change.command("list")
@home_option
@click.option("--status", default=None)
@json_option
@handles_errors
def share_change_list(home: Path | None, status: str | None, as_json: bool) -> None:
    """Proposed changes of sharing sections (a reviewer decides them)."""
    from sandbox.sharing.grants import list_sharing_changes

    with _open(home) as inst:
        rows = [c.to_dict() for c in list_sharing_changes(inst, status=status)]
    _emit(rows, as_json, lambda r: echo_lines(
        f"{x['id']:<4} {x['status']:<10} {x['dataset']:<12} v{x['version']}: {x['previous']['cls']} → "
        f"{x['proposed']['cls']}" for x in r))


@share_change.command("decide")
@decision_options(("approve", "reject"), as_help="A reviewer.", reason_help="Why (needed to reject).")
def share_change_decide(home: Path | None, object_id: int, decision: str, reason: str, as_user: str,
                        as_json: bool) -> None:
    """Approve or reject a change of a dataset's sharing section."""
    from sandbox.sharing.grants import decide_sharing_change

    with _open(home) as inst:
        status = decide_sharing_change(inst, as_user, object_id, decision, reason)
    emit_decision("sharing_change", object_id, decision, status, reason, as_json)


# The older spellings, for one release.
share.add_command(renamed(share_change_list, "share changes", "share change list"))


@share.command("review-change", hidden=True,
               help="Deprecated spelling of 'dp-sandbox share change decide ID VERB'.")
@home_option
@click.argument("change_id", type=int)
@click.argument("decision", type=click.Choice(["approve", "reject"]))
@click.option("--reason", default="")
@_as(help="A reviewer.")
@click.pass_context
def share_review_change(ctx: click.Context, home: Path | None, change_id: int, decision: str, reason: str,
                        as_user: str) -> None:
    deprecated("share review-change ID VERB", "share change decide ID VERB")
    ctx.invoke(share_change_decide, home=home, object_id=change_id, decision=decision, reason=reason,
               as_user=as_user)


@share.command("object")
@home_option
@click.argument("request_id", type=int)
@click.option("--columns", required=True, help="Comma-separated granted columns the objection is about.")
@click.option("--text", "description", required=True, help="What is wrong with the values.")
@click.option("--version", type=int, default=None, help="The version objected to (default: newest).")
@_as(help="The grant's holder.")
@json_option
@handles_errors
def share_object(home: Path | None, request_id: int, columns: str, description: str, version: int | None,
                 as_user: str, as_json: bool) -> None:
    """File a quality objection under a grant; the owner must answer it."""
    from sandbox.sharing.feedback import file_objection

    with _open(home) as inst:
        view = file_objection(inst, as_user, request_id, columns=_split(columns), description=description,
                              version=version)
    _emit(view.to_dict(), as_json, lambda d: click.echo(f"objection {d['id']}: {d['status']}"))


@share.command("answer")
@home_option
@click.argument("objection_id", type=int)
@click.option("--correction-version", type=int, default=None, help="The new version that corrects the values.")
@click.option("--explanation", default="", help="Why the values stand (or a note on the correction).")
@_as(help="The dataset's owner.")
@json_option
@handles_errors
def share_answer(home: Path | None, objection_id: int, correction_version: int | None, explanation: str,
                 as_user: str, as_json: bool) -> None:
    """Answer a quality objection with a correction (a newer version) or an explanation."""
    from sandbox.sharing.feedback import answer_objection

    with _open(home) as inst:
        view = answer_objection(inst, as_user, objection_id, explanation=explanation,
                                correction_version=correction_version)
    _emit(view.to_dict(), as_json, lambda d: click.echo(f"objection {d['id']}: {d['status']}"))


@share.command("objections")
@home_option
@click.option("--dataset", default=None)
@click.option("--status", default=None)
@_as()
@json_option
@handles_errors
def share_objections(home: Path | None, dataset: str | None, status: str | None, as_user: str,
                     as_json: bool) -> None:
    """Quality objections the user filed or must answer."""
    from sandbox.sharing.feedback import list_objections

    with _open(home) as inst:
        rows = [o.to_dict() for o in list_objections(inst, as_user, dataset=dataset, status=status)]
    _emit(rows, as_json, lambda r: echo_lines(
        f"{x['id']:<4} {x['status']:<10} {x['dataset']} v{x['version']} {', '.join(x['columns'])} "
        f"({x['age_days']} days)  {x['description']}" for x in r))


@share.command("demand")
@home_option
@click.option("--provider", required=True, help="The department that should hold the data.")
@click.option("--title", required=True)
@click.option("--description", required=True)
@click.option("--purpose", required=True)
@click.option("--basis", required=True)
@click.option("--days", type=int, default=15, show_default=True, help="Response deadline, in days.")
@_as(help="The department user asking.")
@json_option
@handles_errors
def share_demand(home: Path | None, provider: str, title: str, description: str, purpose: str, basis: str,
                 days: int, as_user: str, as_json: bool) -> None:
    """Ask a department for data that no one lists, with a tracked response deadline."""
    from sandbox.sharing.feedback import file_demand

    with _open(home) as inst:
        view = file_demand(inst, as_user, provider=provider, title=title, description=description,
                           purpose=purpose, basis=basis, days=days)
    _emit(view.to_dict(), as_json, lambda d: click.echo(f"on-demand request {d['id']}: due {d['due_at'][:10]}"))


@share.command("respond")
@home_option
@click.argument("demand_id", type=int)
@click.option("--dataset", default=None, help="The shareable dataset now listed for it.")
@click.option("--reason", default="", help="Why not (when declining).")
@_as(help="A user of the addressed department.")
@json_option
@handles_errors
def share_respond(home: Path | None, demand_id: int, dataset: str | None, reason: str, as_user: str,
                  as_json: bool) -> None:
    """Answer an on-demand request: list a dataset for it, or decline with a reason."""
    from sandbox.sharing.feedback import answer_demand

    with _open(home) as inst:
        view = answer_demand(inst, as_user, demand_id, dataset=dataset, reason=reason)
    _emit(view.to_dict(), as_json, lambda d: click.echo(f"on-demand request {d['id']}: {d['status']}"))


@share.command("demands")
@home_option
@click.option("--status", default=None)
@_as()
@json_option
@handles_errors
def share_demands(home: Path | None, status: str | None, as_user: str, as_json: bool) -> None:
    """On-demand requests to or from the user's department, with their deadlines."""
    from sandbox.sharing.feedback import list_demands

    with _open(home) as inst:
        rows = [d.to_dict() for d in list_demands(inst, as_user, status=status)]
    _emit(rows, as_json, lambda r: echo_lines(
        f"{x['id']:<4} {x['status']:<9} due {x['due_at'][:10]}{' OVERDUE' if x['overdue'] else ''}  "
        f"{x['department']} → {x['provider']}: {x['title']}" for x in r))


@share.command("notifications")
@home_option
@_as()
@json_option
@handles_errors
def share_notifications(home: Path | None, as_user: str, as_json: bool) -> None:
    """The user's sharing notifications (new versions of datasets they hold grants on)."""
    from sandbox.sharing.feedback import notifications

    with _open(home) as inst:
        rows = [n.to_dict() for n in notifications(inst, as_user)]
    _emit(rows, as_json, lambda r: echo_lines(
        f"{x['created_at'][:19]}  {x['dataset']} version {x['version']} (grant {x['request_id']})" for x in r))


@share.command("usage")
@home_option
@click.option("--year", type=int, default=None)
@_as(help="An owner (their datasets), a reviewer or an admin (all).")
@json_option
@handles_errors
def share_usage(home: Path | None, year: int | None, as_user: str, as_json: bool) -> None:
    """Usage figures: pulls, queries, rows and grants per month, dataset and recipient."""
    from queries.errors import Forbidden
    from sandbox.sharing.usage import may_see_usage, sharing_usage

    with _open(home) as inst:
        if not may_see_usage(inst, as_user):
            raise Forbidden("usage figures are for owners, reviewers and admins", code="wrong_role")
        rows = [u.to_dict() for u in sharing_usage(inst, year=year, user=as_user)]
    _emit(rows, as_json, lambda r: echo_lines(
        f"{x['month']}  {x['dataset']:<12} {x['provider']:<24} → {x['recipient']:<24} pulls {x['pulls']:<5} "
        f"queries {x['queries']:<5} rows {x['rows']:<10} grants {x['grants']}" for x in r))


def register(main: click.Group) -> None:
    main.add_command(org)
    main.add_command(share)
