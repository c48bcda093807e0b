"""Operations commands of the local administrator: ``backup``, ``restore`` and
``keys rotate-master`` (added to the ``keys`` group of ``sandbox.cli.admin``).
See docs/operations.md."""

from __future__ import annotations

from pathlib import Path

import click

from sandbox.cli.admin import keys
from sandbox.cli.options import handles_errors, home_option, instance_settings, json_option, local_actor, open_instance
from sandbox.cli.output import emit


@click.command("backup")
@home_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="A new (or empty) directory for the backup.")
@json_option
@handles_errors
def backup_command(home: Path | None, out: Path, as_json: bool) -> None:
    """Copy the store, keys, data and product files into OUT, with a manifest of
    their SHA-256 (the instance may be running)."""
    from sandbox.operations.backup import backup

    report = backup(instance_settings(home), out, local_actor())
    emit(report, as_json, lambda r: click.echo(
        f"backup of {r['files']} files ({r['bytes']} bytes, {r['store']} store, audit record {r['audit_seq']}) "
        f"in {r['out']}\nmanifest sha256 {r['manifest_sha256']}"))


@click.command("restore")
@click.argument("backup_dir", metavar="DIR", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The new home (it must not exist, or be empty).")
@click.option("--database-url", default=None,
              help="For a PostgreSQL backup: an empty database to restore the store into (env DPS_DATABASE_URL).")
@json_option
@handles_errors
def restore_command(backup_dir: Path, home: Path, database_url: str | None, as_json: bool) -> None:
    """Bring a backup back as a new home; check it with 'dp-sandbox audit verify'."""
    from sandbox.operations.backup import restore

    settings = instance_settings(home, database_url=database_url)
    report = restore(backup_dir, settings, local_actor())
    hint = "DPS_DATABASE_URL=... " if report.store == "postgresql" else ""
    emit(report, as_json, lambda r: click.echo(
        f"restored {r['files']} files into {r['home']} ({r['paths']} stored paths moved; audit record "
        f"{r['audit_seq']})\ncheck it: {hint}dp-sandbox audit verify --home {r['home']}"))


@keys.command("rotate-master")
@home_option
@json_option
@handles_errors
def rotate_master_command(home: Path | None, as_json: bool) -> None:
    """Re-wrap every data key under a new master key (one transaction, audited);
    the old key file is replaced only once that has committed."""
    from sandbox.operations.masterkey import rotate_master_key

    with open_instance(home) as inst:
        rotation = rotate_master_key(inst, local_actor())
    emit(rotation, as_json, lambda r: click.echo(
        f"master key rotated: {r['from']} -> {r['to']}, {r['versions']} data keys re-wrapped "
        f"(audit record {r['audit_seq']})"))


COMMANDS = [backup_command, restore_command]
