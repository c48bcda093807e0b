"""Notification commands: ``notifications list`` (a user's notices),
``notifications address`` (where they are e-mailed) and ``notifications
deliver`` (send the outbox by webhook and e-mail, once or in a loop)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from sandbox.cli.options import as_option, handles_errors, home_option, json_option, open_instance
from sandbox.cli.output import echo_lines, emit


@click.group("notifications")
def notifications() -> None:
    """Notices for requesters, operators, reviewers and owners, and their delivery."""


@notifications.command("list")
@home_option
@as_option(help="The user whose notices are shown.")
@click.option("--limit", type=int, default=100, show_default=True, help="Most notices shown, newest first.")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True)
@json_option
@handles_errors
def notifications_list(home: Path | None, as_user: str, limit: int, lang: str, as_json: bool) -> None:
    """The user's notices, newest first, with the state of each delivery."""
    from sandbox.notifications.outbox import list_notices

    with open_instance(home) as inst:
        rows = list_notices(inst, as_user, limit=limit, lang=lang)

    def human(form: list[dict]) -> None:
        if not form:
            click.echo("no notices")
        echo_lines(f"{n['id']:<5} {n['created_at'][:19]}  {n['text']}"
                   + "".join(f"  [{d['channel']} {d['status']}]" for d in n["deliveries"]) for n in form)

    emit(rows, as_json, human)


@notifications.command("address")
@home_option
@as_option(help="The user whose address this is.")
@click.argument("email", required=False)
@click.option("--clear", is_flag=True, help="Stop e-mailing this user's notices.")
@json_option
@handles_errors
def notifications_address(home: Path | None, as_user: str, email: str | None, clear: bool, as_json: bool) -> None:
    """Set (or with --clear remove) the e-mail address the user's notices go to
    when SMTP is configured; without EMAIL or --clear, show it."""
    from queries.errors import InvalidInput
    from sandbox.notifications.outbox import get_address, set_address

    if clear and email:
        raise InvalidInput("give an address or --clear, not both", code="conflicting_options")
    with open_instance(home) as inst:
        if clear or email:
            set_address(inst, as_user, None if clear else email)
        current = get_address(inst, as_user)
    emit({"user": as_user, "email": current}, as_json,
         lambda f: click.echo(f"{f['user']}: {f['email'] or 'no e-mail address'}"))


@notifications.command("status")
@home_option
@json_option
@handles_errors
def notifications_status(home: Path | None, as_json: bool) -> None:
    """How the outbox stands (the local administrator): notices, deliveries by
    channel and status (failed ones stay readable by their recipients)."""
    from sandbox.notifications.outbox import outbox_summary

    with open_instance(home) as inst:
        summary = outbox_summary(inst)

    def human(f: dict) -> None:
        click.echo(f"notices {f['notices']}")
        echo_lines(f"{channel}: " + ", ".join(f"{status} {n}" for status, n in sorted(by.items()))
                   for channel, by in sorted(f["deliveries"].items()))

    emit(summary, as_json, human)


@notifications.command("deliver")
@home_option
@click.option("--loop", is_flag=True, help="Keep delivering every DPS_NOTIFY_POLL_S seconds until interrupted.")
@json_option
@handles_errors
def notifications_deliver(home: Path | None, loop: bool, as_json: bool) -> None:
    """Send the due notifications by webhook (DPS_NOTIFY_WEBHOOK_URL) and e-mail
    (DPS_SMTP_HOST), queue the licence-expiry notices, and print what happened.
    Failed attempts are retried with back-off by later passes."""
    from queries.errors import InvalidInput
    from sandbox.notifications.delivery import check_configuration, deliver_due
    from sandbox.notifications.outbox import channels

    with open_instance(home) as inst:
        check_configuration(inst.settings)
        if loop and not channels(inst.settings):
            raise InvalidInput("no channel is configured: set DPS_NOTIFY_WEBHOOK_URL or DPS_SMTP_HOST",
                               code="no_notification_channel")
        try:
            while True:
                report = deliver_due(inst)
                if not loop or report.delivered or report.retrying or report.failed or report.queued:
                    emit(report, as_json, lambda f: click.echo(
                        f"delivered {f['delivered']}, retrying {f['retrying']}, failed {f['failed']}, "
                        f"licence-expiry notices queued {f['queued']}"))
                if not loop:
                    return
                time.sleep(inst.settings.notify_poll_s)
        except KeyboardInterrupt:
            return


COMMANDS = [notifications]
