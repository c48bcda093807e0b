"""CLI commands that need the web app: ``demo`` and ``serve``. The web app
(Flask, the API) is imported inside them, never when ``dp-sandbox --help``
lists them."""

from __future__ import annotations

from pathlib import Path

import click

from sandbox.cli.options import handles_errors, home_option, instance_settings, open_instance


@click.command()
@home_option
@click.option("--no-serve", is_flag=True, help="Set up and run the demo queries, then exit.")
@click.option("--port", type=int, default=None, help="Port of the web app.")
@click.option("--people", type=int, default=100_000, show_default=True, help="Size of the synthetic population.")
@handles_errors
def demo(home: Path | None, no_serve: bool, port: int | None, people: int) -> None:
    """Create a demo instance with synthetic data, users and a licence; run the
    thin path; serve the web app."""
    from sandbox.demo.run import run_demo
    from web.serve import serve_app

    settings = instance_settings(home or Path("./dp-sandbox-home"), port=port)
    inst = run_demo(settings, people=people, echo=click.echo)
    if no_serve:
        inst.close()
        return
    serve_app(inst, host=settings.host, port=settings.port)


@click.command()
@home_option
@click.option("--host", default=None, help="Address to listen on.")
@click.option("--port", type=int, default=None, help="Port to listen on.")
@click.option("--threads", type=int, default=8, show_default=True, help="Request threads of the server.")
@handles_errors
def serve(home: Path | None, host: str | None, port: int | None, threads: int) -> None:
    """Serve the web app and the JSON API with waitress. Several server processes
    may share one home (SQLite in WAL mode, or PostgreSQL). When a webhook or SMTP
    is configured, a background thread delivers notifications too."""
    from sandbox.notifications.delivery import start_background
    from web.serve import serve_app

    inst = open_instance(home, host=host, port=port)
    deliverer = start_background(inst)
    if deliverer is not None:
        click.echo(f"delivering notifications every {inst.settings.notify_poll_s:g} s", err=True)
    try:
        serve_app(inst, host=inst.settings.host, port=inst.settings.port, threads=threads)
    finally:
        if deliverer is not None:
            deliverer.stop(timeout=2 * inst.settings.notify_timeout_s)


def register(main: click.Group) -> None:
    main.add_command(demo)
    main.add_command(serve)
