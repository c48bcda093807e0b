"""Instance commands: ``init``, ``user``, ``audit`` and ``keys``."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click

from sandbox.cli.options import (acting_actor, as_option, handles_errors, home_option, instance_settings, json_option,
                                 local_actor, open_instance)
from sandbox.cli.output import echo_lines, emit
from sandbox.vocabulary import Role


@click.command()
@home_option
@handles_errors
def init(home: Path | None) -> None:
    """Create the instance home: store, signing key and master key."""
    from sandbox.instance import init_home

    settings = instance_settings(home)
    created = init_home(settings)
    click.echo(f"{'initialised' if created else 'already initialised'}: {settings.home_path}")


# --- users -----------------------------------------------------------------

@click.group()
def user() -> None:
    """Users and roles."""


@user.command("add")
@home_option
@click.argument("name")
@click.option("--role", type=click.Choice([role.value for role in Role]), required=True)
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from standard input.")
@click.option("--display-name", default="", help="Full name shown in the transparency register.")
@click.option("--organisation", default="", help="Organisation (for operators: the licensed company or department).")
@click.option("--org", default=None, help="A registered organisation (dp-sandbox org add); departments may hold sharing grants.")
@handles_errors
def user_add(home: Path | None, name: str, role: str, password_stdin: bool, display_name: str,
             organisation: str, org: str | None) -> None:
    """Add a user; the password is read from standard input."""
    from sandbox.users import add_user

    password = sys.stdin.readline().rstrip("\r\n")
    with open_instance(home) as inst:
        u = add_user(inst, local_actor(), name, role, password, display_name=display_name,
                     organisation=organisation, org=org)
        click.echo(f"added user {u.name} ({u.role})")


@user.command("list")
@home_option
@json_option
@handles_errors
def user_list(home: Path | None, as_json: bool) -> None:
    """List users and their roles."""
    from sandbox.users import list_users

    with open_instance(home) as inst:
        rows = list_users(inst)
    emit(rows, as_json, lambda r: echo_lines(f"{x['name']:<16} {x['role']:<9} "
                                             f"{'active' if x['active'] else 'deactivated':<11} {x['organisation']}"
                                             for x in r))


ADMIN_HELP = "An admin user acting (default: the local administrator)."


def _changed(view: object, as_json: bool, what: str) -> None:
    emit(view, as_json, lambda v: click.echo(f"{what}: {v['name']} ({v['role']}, "
                                             f"{'active' if v['active'] else 'deactivated'})"))


@user.command("deactivate")
@home_option
@click.argument("name")
@as_option(required=False, help=ADMIN_HELP)
@json_option
def user_deactivate(home: Path | None, name: str, as_user: str | None, as_json: bool) -> None:
    """Deactivate a user: their API tokens and page sessions end at once, and
    they can no longer sign in anywhere."""
    from sandbox.users import deactivate_user

    with open_instance(home) as inst:
        _changed(deactivate_user(inst, acting_actor(inst, as_user), name), as_json, "deactivated")


@user.command("reactivate")
@home_option
@click.argument("name")
@as_option(required=False, help=ADMIN_HELP)
@json_option
def user_reactivate(home: Path | None, name: str, as_user: str | None, as_json: bool) -> None:
    """Let a deactivated user sign in again (their old tokens stay revoked)."""
    from sandbox.users import reactivate_user

    with open_instance(home) as inst:
        _changed(reactivate_user(inst, acting_actor(inst, as_user), name), as_json, "reactivated")


@user.command("set-role")
@home_option
@click.argument("name")
@click.option("--role", type=click.Choice([role.value for role in Role]), required=True, help="The new role.")
@as_option(required=False, help=ADMIN_HELP)
@json_option
def user_set_role(home: Path | None, name: str, role: str, as_user: str | None, as_json: bool) -> None:
    """Change a user's role."""
    from sandbox.users import set_role

    with open_instance(home) as inst:
        _changed(set_role(inst, acting_actor(inst, as_user), name, role), as_json, "role changed")


@user.command("reset-password")
@home_option
@click.argument("name")
@click.option("--new-password-stdin", is_flag=True,
              help="Read the new password from standard input (after the admin's own password line when "
                   "--as and --password-stdin are given too); without it a terminal prompts twice.")
@as_option(required=False, help=ADMIN_HELP)
@json_option
def user_reset_password(home: Path | None, name: str, new_password_stdin: bool, as_user: str | None,
                        as_json: bool) -> None:
    """Give a user a new password; their API tokens and page sessions end."""
    from sandbox.users import reset_password

    password = _new_password(name, new_password_stdin)
    with open_instance(home) as inst:
        _changed(reset_password(inst, acting_actor(inst, as_user), name, password), as_json, "password reset")


def _new_password(name: str, from_stdin: bool) -> str:
    from queries.errors import InvalidInput

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if sys.stdin is None or not sys.stdin.isatty():
        raise InvalidInput("give the new password with --new-password-stdin, or run on a terminal to be prompted",
                           code="password_required")
    first = getpass.getpass(f"new password for {name}: ")
    if getpass.getpass("again: ") != first:
        raise InvalidInput("the two passwords differ", code="password_mismatch")
    return first


# --- audit and keys ----------------------------------------------------------

@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log."""


@audit_group.command("verify")
@home_option
@click.option("--published", "published_files", multiple=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A saved transparency register or disclosure report (JSON); the chain must hold its published "
                   "head and its pinned signing keys. Repeatable.")
@json_option
@handles_errors
def audit_verify(home: Path | None, published_files: tuple[Path, ...], as_json: bool) -> None:
    """Check the whole hash chain, every signature, the signing-key history, the key
    on disk and every published head (a cut tail shows); report the first bad record.
    Then reconcile the state with the chain: budgets, ledger entries, licences and
    users must follow from the records; every difference is reported with its object."""
    from sandbox.audit import published_from_document, verify_chain

    published = [published_from_document(_read_json(f)) for f in published_files]
    from sandbox.audit.reconcile import reconcile_state

    with open_instance(home) as inst:
        with inst.store.read() as s:
            report = verify_chain(s, inst.signer.public, published=published)
        state = reconcile_state(inst)
    emit({**report.to_dict(), "state": state.to_dict()}, as_json, lambda r: echo_lines([
        f"audit chain intact: {r['records']} records" if r["ok"]
        else f"audit chain BROKEN at record {r['first_bad_seq']}: {r['reason']}",
        *(f"  problem: {p}" for p in r["problems"][1:]),
        f"  checked against {r['published_heads']} published head(s); signing keys: {', '.join(r['keys']) or '-'}",
        *state.lines()]))
    if not report.ok or not state.ok:
        sys.exit(1)


def _read_json(path: Path) -> object:
    import json

    from queries.errors import InvalidInput

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise InvalidInput(f"{path} is not a readable JSON file", code="invalid_published_head") from None


@audit_group.command("export")
@home_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The JSON Lines file (one record per line); the public keys go to OUT.keys.json.")
@click.option("--since", type=int, default=0, show_default=True, help="Only records after this sequence number.")
@json_option
@handles_errors
def audit_export(home: Path | None, out: Path, since: int, as_json: bool) -> None:
    """Export the audit chain for a third party: every hashed field, the signature
    and key id of each record, and the public keys (see docs/audit.md)."""
    from sandbox.audit import export_chain

    with open_instance(home) as inst, inst.store.read() as s:
        result = export_chain(s, out, since=since)
    emit(result, as_json, lambda r: click.echo(f"exported {r['records']} records to {r['out']} "
                                               f"(public keys: {r['keys']})"))


@audit_group.command("list")
@home_option
@click.option("--actor", default=None, help="Who acted, or on whose behalf.")
@click.option("--action", default=None, help="An action (query.run) or a family of actions (query.*).")
@click.option("--object", "object_", default=None, metavar="TYPE[:ID]", help="The object: licence, licence:3, …")
@click.option("--dataset", default=None, help="Every record about this dataset.")
@click.option("--since", default=None, metavar="TIME", help="From this ISO date or date-time (inclusive, UTC).")
@click.option("--until", default=None, metavar="TIME",
              help="Up to this ISO date-time (exclusive); a date alone includes that whole day.")
@click.option("--limit", type=int, default=100, show_default=True, help="At most this many records (1 to 10000).")
@as_option(required=False, help="A dataset owner, who sees the records about their datasets "
                                "(default: the local administrator, who sees every record).")
@json_option
def audit_list(home: Path | None, actor: str | None, action: str | None, object_: str | None,
               dataset: str | None, since: str | None, until: str | None, limit: int, as_user: str | None,
               as_json: bool) -> None:
    """Read the audit trail, newest first: who did what, on which object, when."""
    from sandbox.audit.view import AuditFilter, list_audit

    filt = AuditFilter.parse(actor=actor, action=action, object=object_, dataset=dataset, since=since, until=until)
    with open_instance(home) as inst:
        page = list_audit(inst, acting_actor(inst, as_user), filt, limit=limit)
    emit(page, as_json, _print_audit_page)


def _print_audit_page(page: dict) -> None:
    for e in page["entries"]:
        who = e["actor"] + (f" for {e['on_behalf_of']}" if e.get("on_behalf_of") else "")
        facts = " ".join(f"{k}={v}" for k, v in e["payload"].items()
                         if k != "sql" and isinstance(v, (str, int, float)) and not isinstance(v, bool)
                         and len(str(v)) <= 60)
        click.echo(f"#{e['seq']:<6} {e['time'][:19].replace('T', ' ')}  {who} ({e['role']})  {e['action']}  "
                   f"{e['object_type']}:{e['object_id']}" + (f"  [{e['dataset']}]" if e["dataset"] else "")
                   + (f"  {facts}" if facts else ""))
        if e["sql"]:
            click.echo("        sql: " + " ".join(e["sql"].split()))
    shown = len(page["entries"])
    click.echo(f"{shown} of {page['total']} matching records" + (" (newest first; raise --limit for more)"
                                                                 if shown < page["total"] else ""))


@click.group()
def keys() -> None:
    """Instance keys."""


@keys.command("show")
@home_option
@json_option
@handles_errors
def keys_show(home: Path | None, as_json: bool) -> None:
    """Print the public signing key (PEM), its id and fingerprint, and the key history."""
    from sandbox.audit import signing_key_document

    with open_instance(home) as inst:
        data = signing_key_document(inst)
    emit(data, as_json, lambda d: echo_lines([
        f"key id {d['key_id']} (Ed25519), fingerprint {d['fingerprint']}", d["public_key_pem"].rstrip(),
        *(f"history: {k['key_id']} signed records {k['from_seq']}–{k['until_seq'] or 'now'}"
          for k in d["history"])]))


@keys.command("rotate-signing")
@home_option
@json_option
@handles_errors
def keys_rotate_signing(home: Path | None, as_json: bool) -> None:
    """Replace the signing key with a new one. The rotation is an audit record
    signed by the old key; old records and products keep verifying with it."""
    from sandbox.audit import rotate_signing_key
    from sandbox.operations.masterkey import operations_lock

    with open_instance(home) as inst, operations_lock(inst.settings, exclusive=True):   # never during a backup
        result = rotate_signing_key(inst, local_actor())
    emit(result, as_json, lambda r: click.echo(f"signing key rotated: {r['old_key_id']} → {r['new_key_id']} "
                                               f"(fingerprint {r['new_fingerprint']}, record {r['seq']})"))


COMMANDS = [init, user, audit_group, keys]
