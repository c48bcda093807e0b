"""CLI calls that act as a user prove who they are: ``--as USER`` goes with
``--password-stdin`` and the password on standard input (see
``sandbox.cli.options.authenticate_cli_user``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from click.testing import CliRunner, Result


def with_password(args: Sequence[str], password: str, stdin: str | None = None) -> tuple[list[str], str | None]:
    """``args`` plus ``--password-stdin`` when they act ``--as`` someone and carry
    no credential yet, and the standard input that goes with them (the password
    line first, then ``stdin``)."""
    args = list(args)
    if "--as" not in args or "--password-stdin" in args:
        return args, stdin
    return [*args, "--password-stdin"], password + "\n" + (stdin or "")


class SignedInRunner(CliRunner):
    """A ``CliRunner`` whose calls acting ``--as`` a user carry ``password``."""

    def __init__(self, password: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.password = password

    def invoke(self, cli: Any, args: Any = None, input: Any = None, **kwargs: Any) -> Result:  # type: ignore[override]
        argv, stdin = with_password(list(args or []), self.password, input)
        return super().invoke(cli, argv, input=stdin, **kwargs)
