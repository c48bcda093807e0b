"""Instance commands: ``init``, ``user``, ``audit`` and ``keys``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sandbox.cli.options import handles_errors, home_option, instance_settings, json_option, local_actor, open_instance
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
    emit(rows, as_json, lambda r: echo_lines(f"{x['name']:<16} {x['role']:<9} {x['organisation']}" for x in r))


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
    on disk and every published head (a cut tail shows); report the first bad record."""
    from sandbox.audit import published_from_document, verify_chain

    published = [published_from_document(_read_json(f)) for f in published_files]

    with open_instance(home) as inst:
        with inst.store.read() as s:
            report = verify_chain(s, inst.signer.public, published=published)
    emit(report, as_json, lambda r: echo_lines([
        f"audit chain intact: {r['records']} records" if r["ok"]
        else f"audit chain BROKEN at record {r['first_bad_seq']}: {r['reason']}",
        *(f"  problem: {p}" for p in r["problems"][1:]),
        f"  checked against {r['published_heads']} published head(s); signing keys: {', '.join(r['keys']) or '-'}",
    ]))
    if not report.ok:
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


@click.group()
def keys() -> None:
    """Instance keys."""


@keys.command("show")
@home_option
@json_option
@handles_errors
def keys_show(home: Path | None, as_json: bool) -> None:
    """Print the public signing key (PEM), its id and fingerprint, and the key history."""
    from sandbox.audit import key_history

    with open_instance(home) as inst:
        with inst.store.read() as s:
            history = [k.to_dict() for k in key_history(s)]
        data = {"key_id": inst.signer.key_id(), "fingerprint": inst.signer.fingerprint(),
                "public_key_pem": inst.signer.public_pem(), "algorithm": "Ed25519", "history": history}
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

    with open_instance(home) as inst:
        result = rotate_signing_key(inst, local_actor())
    emit(result, as_json, lambda r: click.echo(f"signing key rotated: {r['old_key_id']} → {r['new_key_id']} "
                                               f"(fingerprint {r['new_fingerprint']}, record {r['seq']})"))


COMMANDS = [init, user, audit_group, keys]
