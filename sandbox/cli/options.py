"""What every command shares: ``--home``, ``--json``, ``--as``, opening the
instance, the acting person, and turning a ``SandboxError`` into a message and
exit status 1.

This module is imported when ``dp-sandbox --help`` draws the command tree, so it
imports only click and the standard library; the runtime (SQLAlchemy, the
store, the services) is imported inside the functions that need it.
"""

from __future__ import annotations

import functools
import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from collections.abc import Callable

import click

if TYPE_CHECKING:
    from sandbox.audit import Actor
    from sandbox.instance import Instance
    from sandbox.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def home_option(fn: F) -> F:
    return click.option("--home", envvar="DPS_HOME", type=click.Path(file_okay=False, path_type=Path),
                        default=None, help="Instance home directory (env DPS_HOME).")(fn)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(fn)


def as_option(required: bool = True, help: str = "The accountable user.") -> Callable[[F], F]:
    """``--as USER`` and ``--password-stdin``: the person the command acts as, who
    must prove it (see ``authenticate_cli_user``) before the command runs. Optional
    where the command may act as the local administrator or the public (say which
    in ``help``)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            password_stdin = kwargs.pop("password_stdin", False)
            name = kwargs.get("as_user")
            meta = click.get_current_context().meta
            if name and meta.get("dps.authenticated") != name:   # once per command line
                authenticate_cli_user(kwargs.get("home"), name, password_stdin)
                meta["dps.authenticated"] = name
            return fn(*args, **kwargs)

        checked = handles_errors(wrapper)
        checked = click.option("--password-stdin", "password_stdin", is_flag=True,
                               help="Read USER's password from standard input (or set DPS_TOKEN to "
                                    "one of USER's API tokens; a terminal prompts).")(checked)
        return click.option("--as", "as_user", metavar="USER", required=required, default=None,
                            help=help)(checked)  # type: ignore[return-value]

    return decorate


CREDENTIAL_HELP = ("--as USER needs USER's credential: pipe the password with --password-stdin, "
                   "set DPS_TOKEN to one of USER's API tokens, or run on a terminal to be prompted")


def authenticate_cli_user(home: Path | None, name: str, password_stdin: bool) -> None:
    """Prove that the caller is ``name``: with ``DPS_TOKEN`` (a live API token of
    that user), a password on standard input (``--password-stdin``), or a prompt
    when standard input is a terminal. Anything else is refused with
    ``credential_required``; a wrong credential with ``bad_credentials`` (a token
    of someone else: ``identity_mismatch``). Each check of a credential is an
    audit record, ``auth.login`` or ``auth.login_failed`` with the surface ``cli``."""
    import os

    from queries.errors import Unauthorized
    from sandbox.users import authenticate, record_login, user_for_token
    from sandbox.vocabulary import Credential, LoginSurface

    token = os.environ.get("DPS_TOKEN", "")
    if token and not password_stdin:
        with open_instance(home) as inst:
            try:
                user, scopes = user_for_token(inst, token)
                if "all" not in scopes:   # a read-only token, or a page session's id
                    raise Unauthorized("DPS_TOKEN must be an API token with the scope 'all'",
                                       code="insufficient_scope")
                if user.name != name:
                    raise Unauthorized("DPS_TOKEN belongs to another user than --as", code="identity_mismatch")
            except Unauthorized as refused:
                record_login(inst, LoginSurface.CLI, Credential.TOKEN, name, None, code=refused.code)
                raise
            record_login(inst, LoginSurface.CLI, Credential.TOKEN, name, user)
        return
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin is not None and sys.stdin.isatty():
        password = getpass.getpass(f"password for {name}: ")
    else:
        raise Unauthorized(CREDENTIAL_HELP, code="credential_required")
    with open_instance(home) as inst:
        authenticate(inst, name, password, surface=LoginSurface.CLI)


def local_actor() -> Actor:
    """The local administrator: whoever can read the home directory."""
    from sandbox.audit import Actor
    from sandbox.vocabulary import Role

    try:
        login = getpass.getuser()
    except Exception:  # no login name (containers)
        login = "unknown"
    return Actor(f"local:{login}", Role.ADMIN)


def acting_actor(inst: Instance, as_user: str | None) -> Actor:
    """The actor of ``--as USER``, or the local administrator without it."""
    from sandbox.users import actor_of, find_user

    return actor_of(find_user(inst, as_user)) if as_user else local_actor()


def instance_settings(home: Path | None, **overrides: Any) -> Settings:
    """The settings of the instance at ``home`` (flags, then ``DPS_*`` variables).
    Every command that reads settings comes here, so this is where the CLI
    configures logging. The ``dp_sandbox`` loggers go to stderr at ``DPS_LOG_LEVEL``
    when it is set; otherwise only warnings and errors do, since a command already
    prints its own outcome (the instance log still records at the default level)."""
    import os

    from sandbox.logs import configure_logging
    from sandbox.settings import load_settings

    settings = load_settings(home=str(home) if home else None, **overrides)
    chosen = "DPS_LOG_LEVEL" in os.environ or "log_level" in overrides
    configure_logging(settings.log_level if chosen else "WARNING")
    return settings


def open_instance(home: Path | None, **overrides: Any) -> Instance:
    from sandbox.instance import Instance

    return Instance.open(instance_settings(home, **overrides))


def handles_errors(fn: F) -> F:
    """Map SandboxError to a message on stderr and exit status 1 (with ``--json``,
    the error shape is also printed on stdout)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            from queries.errors import SandboxError

            if not isinstance(exc, SandboxError):
                raise
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

    return wrapper  # type: ignore[return-value]
