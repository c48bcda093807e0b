"""Users, roles, passwords (argon2) and API tokens (random, stored only as hashes)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, UTC
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from queries.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from queries.vocabulary import member_of
from sandbox import audit
from sandbox.audit import Actor
from sandbox.instance import Instance
from sandbox.persistence.models import ApiToken, User
from sandbox.vocabulary import Role

USER_NAME = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")
MIN_PASSWORD = 8
TOKEN_PREFIX = "dps_"

_hasher = PasswordHasher()


def actor_of(user: User) -> Actor:
    return Actor(user.name, user.role)


def add_user(inst: Instance, actor: Actor, name: str, role: str, password: str, *,
             display_name: str = "", organisation: str = "", org: str | None = None) -> User:
    if not USER_NAME.match(name or ""):
        raise InvalidInput("user name must be 2-64 lower-case letters, digits, '.', '_' or '-', starting with a letter",
                           code="invalid_user_name")
    if member_of(Role, role) is None:
        raise InvalidInput(f"role must be one of {', '.join(Role)}", code="invalid_role")
    if len(password or "") < MIN_PASSWORD:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD} characters", code="weak_password")
    with inst.store.transaction() as s:
        if s.execute(select(User).where(User.name == name)).scalar_one_or_none():
            raise Conflict(f"user '{name}' already exists", code="user_exists")
        org_id = None
        if org:
            from sandbox.organisations import get_organisation

            registered = get_organisation(s, org)
            org_id, organisation = registered.id, registered.name
        user = User(name=name, role=role, password_hash=_hasher.hash(password),
                    display_name=display_name, organisation=organisation, org_id=org_id)
        s.add(user)
        s.flush()
        audit.append(s, inst.signer, actor, "user.add", "user", user.id,
                     {"name": name, "role": role, **({"org": organisation} if org_id else {})})
    return user


@dataclass(frozen=True, slots=True)
class UserView:
    """A user as the administrator sees them (never a password hash or token)."""

    name: str
    role: str
    active: bool
    display_name: str
    organisation: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "active": self.active, "display_name": self.display_name,
                "organisation": self.organisation, "created_at": self.created_at}


def list_users(inst: Instance) -> list[UserView]:
    """Every user, by name."""
    with inst.store.read() as s:
        return [UserView(u.name, u.role, u.active, u.display_name or "", u.organisation or "",
                         u.created_at.isoformat())
                for u in s.execute(select(User).order_by(User.name)).scalars()]


def get_user(session: Session, name: str) -> User:
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no user named '{name}'", code="unknown_user")
    return user


def find_user(inst: Instance, name: str) -> User:
    with inst.store.read() as s:
        return get_user(s, name)


def authenticate(inst: Instance, name: str, password: str) -> User:
    """The user, if the password matches; one message for every failure."""
    with inst.store.read() as s:
        user = s.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None or not user.active:
        _hasher.hash(password or "x")   # same work either way
        raise Unauthorized("wrong user name or password", code="bad_credentials")
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise Unauthorized("wrong user name or password", code="bad_credentials") from None
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(inst: Instance, user: User, *, scopes: list[str] | None = None,
                days: int = 30) -> str:
    """A new API token; only its hash is stored. Returns the token text (shown once)."""
    if days <= 0 or days > 366:
        raise InvalidInput("a token lives 1 to 366 days", code="invalid_token_lifetime")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with inst.store.transaction() as s:
        row = ApiToken(user_id=user.id, token_hash=_token_hash(token), prefix=token[:10],
                       scopes=scopes or ["all"], expires_at=datetime.now(UTC) + timedelta(days=days))
        s.add(row)
        s.flush()
        audit.append(s, inst.signer, actor_of(user), "token.issue", "token", row.id,
                     {"prefix": row.prefix, "scopes": row.scopes, "days": days})
    return token


def user_for_token(inst: Instance, token: str) -> tuple[User, list[str]]:
    with inst.store.read() as s:
        row = s.execute(select(ApiToken).where(ApiToken.token_hash == _token_hash(token or ""))).scalar_one_or_none()
        if row is None or row.revoked_at is not None:
            raise Unauthorized("invalid or revoked token", code="bad_token")
        expires = row.expires_at   # set on every token; one without it is taken as expired
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if expires is None or expires < datetime.now(UTC):
            raise Unauthorized("token expired", code="token_expired")
        user = s.get(User, row.user_id)
        if user is None or not user.active:
            raise Unauthorized("invalid or revoked token", code="bad_token")
        return user, list(row.scopes)


def revoke_token(inst: Instance, user: User, prefix: str) -> None:
    with inst.store.transaction() as s:
        row = s.execute(select(ApiToken).where(ApiToken.prefix == prefix)).scalar_one_or_none()
        if row is None:
            raise NotFound("no such token", code="unknown_token")
        if row.user_id != user.id and user.role != Role.ADMIN:
            raise Forbidden("only the token's holder or an admin can revoke it")
        row.revoked_at = datetime.now(UTC)
        audit.append(s, inst.signer, actor_of(user), "token.revoke", "token", row.id, {"prefix": prefix})
