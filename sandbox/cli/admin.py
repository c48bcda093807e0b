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
@json_option
@handles_errors
def audit_verify(home: Path | None, as_json: bool) -> None:
    """Check the whole hash chain and every signature; report the first bad record."""
    from sandbox.audit import verify_chain

    with open_instance(home) as inst, inst.store.read() as s:
        report = verify_chain(s, inst.signer.public)
    emit(report, as_json, lambda r: click.echo(
        f"audit chain intact: {r['records']} records" if r["ok"]
        else f"audit chain BROKEN at record {r['first_bad_seq']}: {r['reason']}"))
    if not report.ok:
        sys.exit(1)


@click.group()
def keys() -> None:
    """Instance keys."""


@keys.command("show")
@home_option
@json_option
@handles_errors
def keys_show(home: Path | None, as_json: bool) -> None:
    """Print the public signing key (PEM) and its id."""
    with open_instance(home) as inst:
        data = {"key_id": inst.signer.key_id(), "public_key_pem": inst.signer.public_pem(), "algorithm": "Ed25519"}
    emit(data, as_json, lambda d: click.echo(f"key id {d['key_id']} (Ed25519)\n{d['public_key_pem']}"))


COMMANDS = [init, user, audit_group, keys]
