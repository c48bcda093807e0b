"""Users: argon2 password hashes, random API tokens stored only as hashes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from queries.errors import Conflict, InvalidInput, Unauthorized
from sandbox.audit import Actor, verify_chain
from sandbox.persistence.models import ApiToken, User
from sandbox.users import add_user, authenticate, issue_token, revoke_token, user_for_token

ADMIN = Actor("admin", "admin")


def test_passwords_are_hashed_with_argon2(instance):
    add_user(instance, ADMIN, "alice", "operator", "correct horse battery")
    with instance.store.read() as s:
        stored = s.execute(select(User.password_hash).where(User.name == "alice")).scalar_one()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert authenticate(instance, "alice", "correct horse battery").name == "alice"
    with pytest.raises(Unauthorized) as wrong:
        authenticate(instance, "alice", "wrong password")
    with pytest.raises(Unauthorized) as unknown:
        authenticate(instance, "nobody", "wrong password")
    assert wrong.value.message == unknown.value.message     # no user enumeration


def test_bad_users_are_refused_and_change_nothing(instance):
    add_user(instance, ADMIN, "alice", "operator", "correct horse battery")
    for args, code in [(("Bob!", "operator", "long enough pw"), "invalid_user_name"),
                       (("bob", "king", "long enough pw"), "invalid_role"),
                       (("bob", "operator", "short"), "weak_password")]:
        with pytest.raises(InvalidInput) as info:
            add_user(instance, ADMIN, *args)
        assert info.value.code == code
    with pytest.raises(Conflict):
        add_user(instance, ADMIN, "alice", "owner", "another password")
    with instance.store.read() as s:
        assert s.execute(select(User.name)).scalars().all() == ["alice"]
        assert verify_chain(s, instance.signer.public).records == 1


def test_tokens_are_stored_hashed_and_can_be_revoked(instance):
    user = add_user(instance, ADMIN, "alice", "operator", "correct horse battery")
    token = issue_token(instance, user, scopes=["queries"], days=1)
    with instance.store.read() as s:
        row = s.execute(select(ApiToken)).scalar_one()
    assert token not in (row.token_hash, row.prefix) and len(row.token_hash) == 64
    found, scopes = user_for_token(instance, token)
    assert found.name == "alice" and scopes == ["queries"]
    with pytest.raises(Unauthorized):
        user_for_token(instance, token + "x")
    revoke_token(instance, user, row.prefix)
    with pytest.raises(Unauthorized):
        user_for_token(instance, token)
