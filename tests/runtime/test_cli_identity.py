"""The command line's identity: ``--as USER`` proves itself with a password on
standard input, an API token in ``DPS_TOKEN`` or a terminal prompt (a real pty);
every check is an ``auth.login`` / ``auth.login_failed`` record with the surface
``cli``; a deactivated user can do nothing; the ``user`` lifecycle commands for
admins. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import pty
import select
import sys
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select as sql_select

from queries.errors import Unauthorized
from sandbox.audit import Actor
from sandbox.cli import main
from sandbox.persistence.models import ApiToken, AuditRecord, User
from sandbox.users import add_user, authenticate, issue_token, user_for_token

PASSWORD = "correct horse battery"


@pytest.fixture
def cli(instance):
    for name, role in (("admin1", "admin"), ("admin2", "admin"), ("operator1", "operator"), ("owner1", "owner")):
        add_user(instance, Actor("local:root", "admin"), name, role, PASSWORD)
    env = {"DPS_HOME": str(instance.settings.home_path), "DPS_DATABASE_URL": instance.settings.database_url,
           "DPS_TOKEN": ""}

    def run(*args: str, stdin: str | None = None, token: str = ""):
        result = CliRunner().invoke(main, list(args), input=stdin, env={**env, "DPS_TOKEN": token})
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    run.inst = instance          # type: ignore[attr-defined]
    run.env = env                # type: ignore[attr-defined]
    return run


def records(inst, action: str) -> list[AuditRecord]:
    with inst.store.read() as s:
        rows = list(s.execute(sql_select(AuditRecord).where(AuditRecord.action == action)
                              .order_by(AuditRecord.seq)).scalars())
        s.expunge_all()
        return rows


def role_of(inst, name: str) -> str:
    with inst.store.read() as s:
        return s.execute(sql_select(User.role).where(User.name == name)).scalar_one()


def record_count(inst) -> int:
    with inst.store.read() as s:
        return s.execute(sql_select(func.count()).select_from(AuditRecord)).scalar_one()


def test_a_password_on_stdin_proves_the_user_and_is_recorded(cli):
    r = cli("user", "set-role", "operator1", "--role", "reviewer", "--as", "admin1", "--password-stdin",
            stdin=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert "role changed: operator1 (reviewer, active)" in r.output
    [login] = records(cli.inst, "auth.login")
    assert login.actor == "admin1"
    assert login.payload == {"name": "admin1", "surface": "cli", "credential": "password"}
    [change] = records(cli.inst, "user.set_role")
    assert change.actor == "admin1" and change.payload == {"name": "operator1", "from": "operator", "to": "reviewer"}


def test_without_a_credential_nothing_runs(cli):
    before = record_count(cli.inst)
    r = cli("user", "deactivate", "operator1", "--as", "admin1")     # standard input is no terminal
    assert r.exit_code == 1 and "credential_required" in r.output
    r = cli("user", "deactivate", "operator1", "--as", "admin1", "--password-stdin", stdin="wrong password\n")
    assert r.exit_code == 1 and "bad_credentials" in r.output
    assert role_of(cli.inst, "operator1") == "operator"
    [failed] = records(cli.inst, "auth.login_failed")
    assert failed.payload == {"name": "admin1", "surface": "cli", "credential": "password", "code": "bad_credentials"}
    assert "wrong password" not in json.dumps(failed.payload)
    assert record_count(cli.inst) == before + 1 and records(cli.inst, "user.deactivate") == []


def test_dps_token_proves_its_own_user_only(cli):
    inst = cli.inst
    admin_token = issue_token(inst, authenticate(inst, "admin1", PASSWORD))
    r = cli("user", "set-role", "owner1", "--role", "reviewer", "--as", "admin1", token=admin_token)
    assert r.exit_code == 0, r.output
    [login] = records(inst, "auth.login")
    assert login.payload == {"name": "admin1", "surface": "cli", "credential": "token"}

    r = cli("user", "set-role", "owner1", "--role", "owner", "--as", "admin2", token=admin_token)
    assert r.exit_code == 1 and "identity_mismatch" in r.output
    read_only = issue_token(inst, authenticate(inst, "admin2", PASSWORD), scopes=["read"])
    r = cli("user", "set-role", "owner1", "--role", "owner", "--as", "admin2", token=read_only)
    assert r.exit_code == 1 and "insufficient_scope" in r.output
    r = cli("user", "set-role", "owner1", "--role", "owner", "--as", "admin2", token="dps_not-a-token")
    assert r.exit_code == 1 and "bad_token" in r.output
    assert role_of(inst, "owner1") == "reviewer"
    codes = [(r.payload["name"], r.payload["credential"], r.payload["code"]) for r in records(inst, "auth.login_failed")]
    assert codes == [("admin2", "token", "identity_mismatch"), ("admin2", "token", "insufficient_scope"),
                     ("admin2", "token", "bad_token")]


def test_a_deactivated_user_can_do_nothing_from_the_command_line(cli):
    inst = cli.inst
    token = issue_token(inst, authenticate(inst, "admin2", PASSWORD))
    r = cli("user", "deactivate", "admin2")                     # the local administrator
    assert r.exit_code == 0 and "deactivated: admin2" in r.output
    [rec] = records(inst, "user.deactivate")
    assert rec.actor.startswith("local:") and rec.payload["tokens_revoked"] == 1
    before = record_count(inst)
    r = cli("user", "set-role", "owner1", "--role", "reviewer", "--as", "admin2", "--password-stdin",
            stdin=PASSWORD + "\n")
    assert r.exit_code == 1 and "user_inactive" in r.output
    r = cli("user", "set-role", "owner1", "--role", "reviewer", "--as", "admin2", token=token)
    assert r.exit_code == 1 and "bad_token" in r.output
    assert role_of(inst, "owner1") == "owner" and record_count(inst) == before + 2   # the two failed sign-ins
    r = cli("user", "reactivate", "admin2", "--as", "admin1", "--password-stdin", stdin=PASSWORD + "\n", )
    assert r.exit_code == 0 and "reactivated: admin2 (admin, active)" in r.output


def test_only_an_admin_changes_users_and_never_their_own_account(cli):
    before_roles = {n: role_of(cli.inst, n) for n in ("owner1", "operator1")}
    r = cli("user", "deactivate", "operator1", "--as", "owner1", "--password-stdin", stdin=PASSWORD + "\n")
    assert r.exit_code == 1 and "wrong_role" in r.output
    r = cli("user", "set-role", "admin1", "--role", "owner", "--as", "admin1", "--password-stdin",
            stdin=PASSWORD + "\n")
    assert r.exit_code == 1 and "own_account" in r.output
    r = cli("user", "deactivate", "nobody")
    assert r.exit_code == 1 and "unknown_user" in r.output
    r = cli("user", "set-role", "owner1", "--role", "king")
    assert r.exit_code == 2 and "king" in r.output
    assert {n: role_of(cli.inst, n) for n in before_roles} == before_roles
    assert records(cli.inst, "user.set_role") == [] and records(cli.inst, "user.deactivate") == []


def test_reset_password_reads_the_admins_then_the_new_password(cli):
    inst = cli.inst
    token = issue_token(inst, authenticate(inst, "owner1", PASSWORD))
    r = cli("user", "reset-password", "owner1", "--new-password-stdin", "--as", "admin1", "--password-stdin",
            "--json", stdin=PASSWORD + "\n" + "the owner's new secret\n")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["name"] == "owner1"
    assert authenticate(inst, "owner1", "the owner's new secret").name == "owner1"
    with inst.store.read() as s:
        assert s.execute(sql_select(ApiToken.revoked_at)).scalar_one() is not None
    with pytest.raises(Unauthorized):
        user_for_token(inst, token)
    [rec] = records(inst, "user.reset_password")
    assert (rec.actor, rec.on_behalf_of) == ("admin1", "owner1")
    r = cli("user", "reset-password", "owner1")                  # no terminal to prompt on
    assert r.exit_code == 1 and "password_required" in r.output
    r = cli("user", "reset-password", "owner1", "--new-password-stdin", stdin="short\n")
    assert r.exit_code == 1 and "weak_password" in r.output
    assert authenticate(inst, "owner1", "the owner's new secret").name == "owner1"


# --- a real terminal -------------------------------------------------------------

def on_terminal(env: dict[str, str], args: list[str], answers: list[str], timeout: float = 120.0) -> tuple[int, str]:
    """Run ``dp-sandbox ARGS`` with a pseudo-terminal as its controlling terminal,
    answering each prompt (a line ending in ': ') with the next of ``answers``."""
    pid, fd = pty.fork()
    if pid == 0:                                  # the child: the pty is its terminal
        os.execve(sys.executable, [sys.executable, "-m", "sandbox.cli", *args],
                  {**{k: v for k, v in os.environ.items() if not k.startswith("DPS_")}, **env})
    out = b""
    pending = list(answers)
    deadline = time.monotonic() + timeout        # a guard against a hang, not a measurement
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:                       # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
            if pending and out.rstrip(b" ").endswith(b":"):
                os.write(fd, (pending.pop(0) + "\n").encode())
        else:
            os.kill(pid, 9)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_a_terminal_prompts_for_the_password_without_echoing_it(cli):
    env = {k: v for k, v in cli.env.items() if k != "DPS_TOKEN"}
    code, out = on_terminal(env, ["user", "set-role", "operator1", "--role", "reviewer", "--as", "admin1"],
                            [PASSWORD])
    assert code == 0, out
    assert "password for admin1:" in out and PASSWORD not in out        # getpass turns echo off
    assert role_of(cli.inst, "operator1") == "reviewer"
    [login] = records(cli.inst, "auth.login")
    assert login.payload == {"name": "admin1", "surface": "cli", "credential": "password"}

    code, out = on_terminal(env, ["user", "set-role", "operator1", "--role", "owner", "--as", "admin1"],
                            ["not the password"])
    assert code == 1 and "bad_credentials" in out
    assert role_of(cli.inst, "operator1") == "reviewer"


def test_a_terminal_prompts_twice_for_a_new_password(cli):
    env = {k: v for k, v in cli.env.items() if k != "DPS_TOKEN"}
    code, out = on_terminal(env, ["user", "reset-password", "owner1"], ["first new secret", "second new secret"])
    assert code == 1 and "password_mismatch" in out
    code, out = on_terminal(env, ["user", "reset-password", "owner1"], ["agreed new secret"] * 2)
    assert code == 0, out
    assert "new password for owner1:" in out and "agreed new secret" not in out
    assert authenticate(cli.inst, "owner1", "agreed new secret").name == "owner1"


def test_user_list_shows_who_is_deactivated_and_their_token_is_gone(cli):
    inst = cli.inst
    token = issue_token(inst, authenticate(inst, "operator1", PASSWORD))
    assert cli("user", "deactivate", "operator1", "--as", "admin1", "--password-stdin",
               stdin=PASSWORD + "\n").exit_code == 0
    r = cli("user", "list", "--json")
    assert {u["name"]: u["active"] for u in json.loads(r.output)}["operator1"] is False
    listed = {line.split()[0]: line.split()[2] for line in cli("user", "list").output.splitlines()}
    assert listed["operator1"] == "deactivated" and listed["owner1"] == "active"
    with pytest.raises(Unauthorized):
        user_for_token(inst, token)
