"""The lifecycle of an account: deactivate (every token and session ends at
once), reactivate, change the role, reset the password; admins only, never on
their own account; every change and every sign-in an audit record. On SQLite
and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from queries.errors import Conflict, Forbidden, InvalidInput, NotFound, SandboxError, Unauthorized
from sandbox.audit import Actor, verify_chain
from sandbox.persistence.models import ApiToken, AuditRecord, User
from sandbox.users import (add_user, authenticate, deactivate_user, issue_token, reactivate_user, reset_password,
                           set_role, user_for_token)
from sandbox.vocabulary import LoginSurface
from web.sessions import session_user, start_session

ADMIN = Actor("admin1", "admin")
PASSWORD = "correct horse battery"


@pytest.fixture
def people(instance):
    for name, role in (("admin1", "admin"), ("admin2", "admin"), ("operator1", "operator"), ("owner1", "owner")):
        add_user(instance, Actor("local:root", "admin"), name, role, PASSWORD)
    return instance


def records(inst, action: str | None = None) -> list[AuditRecord]:
    with inst.store.read() as s:
        q = select(AuditRecord).order_by(AuditRecord.seq)
        if action:
            q = q.where(AuditRecord.action == action)
        rows = list(s.execute(q).scalars())
        s.expunge_all()
        return rows


def state(inst) -> tuple:
    """Everything a refused change must leave as it was."""
    with inst.store.read() as s:
        users = [(u.name, u.role, u.active, u.password_hash) for u in s.execute(select(User).order_by(User.id)).scalars()]
        tokens = [(t.id, t.revoked_at) for t in s.execute(select(ApiToken).order_by(ApiToken.id)).scalars()]
        count = s.execute(select(func.count()).select_from(AuditRecord)).scalar_one()
    return users, tokens, count


def test_deactivation_ends_every_token_and_session_at_once_and_is_audited(people):
    inst = people
    user = authenticate(inst, "operator1", PASSWORD)
    tokens = [issue_token(inst, user), issue_token(inst, user, scopes=["read"])]
    sid = start_session(inst, user)
    assert session_user(inst, sid) is not None

    view = deactivate_user(inst, ADMIN, "operator1")
    assert view.active is False
    for token in tokens:
        with pytest.raises(Unauthorized):
            user_for_token(inst, token)
    assert session_user(inst, sid) is None
    with pytest.raises(Unauthorized) as right_password:
        authenticate(inst, "operator1", PASSWORD)
    assert right_password.value.code == "user_inactive"
    with pytest.raises(Unauthorized) as wrong_password:      # the wrong password learns nothing more
        authenticate(inst, "operator1", "not the password")
    assert wrong_password.value.code == "bad_credentials"
    [rec] = records(inst, "user.deactivate")
    assert (rec.actor, rec.role, rec.object_type) == ("admin1", "admin", "user")
    assert rec.payload == {"name": "operator1", "active": False, "tokens_revoked": 2, "sessions_ended": 1}
    with inst.store.read() as s:
        assert all(t.revoked_at is not None for t in s.execute(select(ApiToken)).scalars())
        assert s.execute(select(User.deactivated_at).where(User.name == "operator1")).scalar_one() is not None

    reactivate_user(inst, Actor("admin2", "admin"), "operator1")
    assert authenticate(inst, "operator1", PASSWORD).name == "operator1"
    with pytest.raises(Unauthorized):                         # old tokens stay revoked
        user_for_token(inst, tokens[0])
    [rec] = records(inst, "user.reactivate")
    assert rec.payload == {"name": "operator1", "active": True} and rec.actor == "admin2"
    with inst.store.read() as s:
        assert verify_chain(s, inst.signer.public).ok


def test_roles_follow_from_the_chain(people):
    inst = people
    set_role(inst, ADMIN, "operator1", "reviewer")
    set_role(inst, Actor("local:root", "admin"), "operator1", "owner")
    set_role(inst, ADMIN, "owner1", "operator")
    moves = [r.payload for r in records(inst, "user.set_role")]
    assert moves[0] == {"name": "operator1", "from": "operator", "to": "reviewer"}
    replayed = {r.payload["name"]: r.payload["role"] for r in records(inst, "user.add")}
    for move in moves:
        assert replayed[move["name"]] == move["from"]
        replayed[move["name"]] = move["to"]
    with inst.store.read() as s:
        assert replayed == {name: role for name, role in s.execute(select(User.name, User.role))}


def test_a_reset_password_is_set_on_the_users_behalf_and_ends_their_tokens(people):
    inst = people
    token = issue_token(inst, authenticate(inst, "owner1", PASSWORD))
    reset_password(inst, ADMIN, "owner1", "a brand new secret")
    with pytest.raises(Unauthorized):
        authenticate(inst, "owner1", PASSWORD)
    assert authenticate(inst, "owner1", "a brand new secret").name == "owner1"
    with pytest.raises(Unauthorized):
        user_for_token(inst, token)
    [rec] = records(inst, "user.reset_password")
    assert (rec.actor, rec.on_behalf_of) == ("admin1", "owner1")
    assert rec.payload == {"name": "owner1", "tokens_revoked": 1, "sessions_ended": 0}
    assert not any("brand new" in str(r.payload) for r in records(inst))
    with inst.store.read() as s:
        assert verify_chain(s, inst.signer.public).ok


@pytest.mark.parametrize(("change", "error", "code"), [
    (lambda i: deactivate_user(i, Actor("owner1", "owner"), "operator1"), Forbidden, "wrong_role"),
    (lambda i: set_role(i, Actor("operator1", "operator"), "operator1", "admin"), Forbidden, "wrong_role"),
    (lambda i: deactivate_user(i, ADMIN, "admin1"), Forbidden, "own_account"),
    (lambda i: set_role(i, ADMIN, "admin1", "owner"), Forbidden, "own_account"),
    (lambda i: reset_password(i, ADMIN, "admin1", "long enough pw"), Forbidden, "own_account"),
    (lambda i: deactivate_user(i, ADMIN, "nobody"), NotFound, "unknown_user"),
    (lambda i: set_role(i, ADMIN, "operator1", "king"), InvalidInput, "invalid_role"),
    (lambda i: set_role(i, ADMIN, "operator1", "operator"), Conflict, "role_unchanged"),
    (lambda i: reactivate_user(i, ADMIN, "operator1"), Conflict, "user_already_active"),
    (lambda i: reset_password(i, ADMIN, "operator1", "short"), InvalidInput, "weak_password"),
], ids=["owner-deactivates", "operator-promotes-self", "own-deactivate", "own-role", "own-password",
        "unknown", "bad-role", "same-role", "reactivate-active", "weak-password"])
def test_refused_changes_change_nothing(people, change, error, code):
    issue_token(people, authenticate(people, "operator1", PASSWORD))
    before = state(people)
    with pytest.raises(error) as info:
        change(people)
    assert info.value.code == code and isinstance(info.value, SandboxError)
    assert state(people) == before


def test_deactivating_twice_is_refused(people):
    deactivate_user(people, ADMIN, "operator1")
    before = state(people)
    with pytest.raises(Conflict) as info:
        deactivate_user(people, ADMIN, "operator1")
    assert info.value.code == "user_already_inactive" and state(people) == before


def test_sign_ins_are_recorded_and_a_failure_tells_nothing_about_the_name(people):
    inst = people
    authenticate(inst, "operator1", PASSWORD, surface=LoginSurface.PAGE)
    [ok] = records(inst, "auth.login")
    assert (ok.actor, ok.role, ok.object_type) == ("operator1", "operator", "user")
    assert ok.payload == {"name": "operator1", "surface": "page", "credential": "password"}

    users_before = state(inst)[0]
    for name in ("operator1", "nobody"):
        with pytest.raises(Unauthorized):
            authenticate(inst, name, "Secret-Guess-42", surface=LoginSurface.API)
    with pytest.raises(Unauthorized):          # a password typed into the name field is not kept
        authenticate(inst, "Hunter2!Password", "x", surface=LoginSurface.CLI)
    known, unknown, malformed = records(inst, "auth.login_failed")
    assert [(r.actor, r.role, r.object_type, r.on_behalf_of) for r in (known, unknown)] == \
        [("public", "public", "login", None)] * 2
    assert known.payload == {"name": "operator1", "surface": "api", "credential": "password",
                             "code": "bad_credentials"}
    assert unknown.payload == {**known.payload, "name": "nobody"}          # the same shape, the same code
    assert (known.object_id, unknown.object_id) == ("operator1", "nobody")
    assert malformed.payload["name"] is None and malformed.object_id == ""
    assert malformed.payload["surface"] == "cli"
    everything = " ".join(str((r.payload, r.object_id)) for r in records(inst))
    assert "Secret-Guess-42" not in everything and "Hunter2" not in everything
    assert state(inst)[0] == users_before                 # nothing was created for the unknown name


def test_a_deactivated_users_attempt_is_recorded_with_its_code(people):
    deactivate_user(people, ADMIN, "owner1")
    with pytest.raises(Unauthorized):
        authenticate(people, "owner1", PASSWORD, surface=LoginSurface.PAGE)
    [rec] = records(people, "auth.login_failed")
    assert rec.payload["code"] == "user_inactive" and records(people, "auth.login") == []
