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
from sandbox.persistence.store import lock_for_update
from sandbox.vocabulary import PUBLIC, Credential, LoginSurface, Role

USER_NAME = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")
MIN_PASSWORD = 8
TOKEN_PREFIX = "dps_"

_hasher = PasswordHasher()


def actor_of(user: User) -> Actor:
    return Actor(user.name, user.role)


def actor_for_owner(session: Session, user: User, owner_id: int) -> Actor:
    """``user`` deciding in the queue of the owner ``owner_id`` (a delegated
    reviewer, an admin): the record names the owner as the one on whose behalf
    they acted. The owner deciding for themselves is just ``actor_of``."""
    if user.id == owner_id:
        return actor_of(user)
    owner = session.get(User, owner_id)
    return Actor(user.name, user.role, on_behalf_of=owner.name if owner is not None else None)


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
        return [_view(u) for u in s.execute(select(User).order_by(User.name)).scalars()]


def get_user(session: Session, name: str) -> User:
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no user named '{name}'", code="unknown_user")
    return user


def find_user(inst: Instance, name: str) -> User:
    with inst.store.read() as s:
        return get_user(s, name)


def authenticate(inst: Instance, name: str, password: str, *, surface: LoginSurface | None = None) -> User:
    """The user, if the password matches; one message for every failure of the
    name or password. A deactivated user who gives the right password is told
    so (``user_inactive``). With ``surface``, the attempt is an audit record
    (``auth.login`` or ``auth.login_failed``, see ``record_login``)."""
    with inst.store.read() as s:
        user = s.execute(select(User).where(User.name == name)).scalar_one_or_none()
    failure: Unauthorized | None = None
    if user is None:
        _hasher.hash(password or "x")   # same work either way
        failure = Unauthorized("wrong user name or password", code="bad_credentials")
    else:
        try:
            _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            failure = Unauthorized("wrong user name or password", code="bad_credentials")
        else:
            if not user.active:
                failure = Unauthorized(f"the account '{user.name}' is deactivated; ask an administrator",
                                       code="user_inactive")
    if surface is not None:
        record_login(inst, surface, Credential.PASSWORD, name, None if failure else user,
                     code=failure.code if failure else None)
    if failure is not None:
        raise failure
    assert user is not None
    return user


def record_login(inst: Instance, surface: LoginSurface, credential: Credential, name: str,
                 user: User | None, *, code: str | None = None) -> None:
    """The audit record of a sign-in, in its own transaction: ``auth.login`` by the
    user (object ``user:ID``), or ``auth.login_failed`` by the public (object
    ``login:NAME``) with the refusal ``code``. A failed attempt records the same
    fields whether or not the name exists, never the password, and the attempted
    name only when it is shaped like a user name (a password typed into the name
    field is not kept); nothing else is written for it."""
    with inst.store.transaction() as s:
        if user is not None:
            audit.append(s, inst.signer, actor_of(user), "auth.login", "user", user.id,
                         {"name": user.name, "surface": str(surface), "credential": str(credential)})
            return
        shown = name if USER_NAME.match(name or "") else None
        audit.append(s, inst.signer, Actor(PUBLIC, PUBLIC), "auth.login_failed", "login", shown or "",
                     {"name": shown, "surface": str(surface), "credential": str(credential),
                      "code": code or "bad_credentials"})


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


# --- the lifecycle of an account (admins only) -------------------------------------


def require_admin(actor: Actor) -> None:
    """Refuse anyone but an admin (a user with the role ``admin`` or the local administrator)."""
    if actor.role != Role.ADMIN:
        raise Forbidden("only an administrator can change users", code="wrong_role")


def _managed(s: Session, actor: Actor, name: str) -> User:
    """The user ``name`` locked for the change, after the checks every change shares:
    the actor is an admin and is not changing their own account (another admin or
    the local administrator must)."""
    require_admin(actor)
    user = s.execute(lock_for_update(select(User).where(User.name == name), s)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no user named '{name}'", code="unknown_user")
    if actor.name == user.name:
        raise Forbidden("an administrator cannot deactivate, reactivate, change the role of or reset the "
                        "password of their own account here; another administrator must", code="own_account")
    return user


def _revoke_credentials(s: Session, user: User) -> tuple[int, int]:
    """Revoke every live API token and page session of ``user``: (tokens, sessions)."""
    now = datetime.now(UTC)
    tokens = sessions = 0
    for row in s.execute(select(ApiToken).where(ApiToken.user_id == user.id,
                                                ApiToken.revoked_at.is_(None))).scalars():
        row.revoked_at = now
        if "session" in (row.scopes or []):
            sessions += 1
        else:
            tokens += 1
    return tokens, sessions


def deactivate_user(inst: Instance, actor: Actor, name: str) -> UserView:
    """Deactivate ``name``: every token and page session ends in the same
    transaction, and the user can no longer sign in on any surface."""
    with inst.store.transaction() as s:
        user = _managed(s, actor, name)
        if not user.active:
            raise Conflict(f"user '{name}' is already deactivated", code="user_already_inactive")
        user.active = False
        user.deactivated_at = datetime.now(UTC)
        tokens, sessions = _revoke_credentials(s, user)
        audit.append(s, inst.signer, actor, "user.deactivate", "user", user.id,
                     {"name": user.name, "active": False, "tokens_revoked": tokens, "sessions_ended": sessions})
        return _view(user)


def reactivate_user(inst: Instance, actor: Actor, name: str) -> UserView:
    """Let a deactivated user sign in again (their old tokens stay revoked)."""
    with inst.store.transaction() as s:
        user = _managed(s, actor, name)
        if user.active:
            raise Conflict(f"user '{name}' is already active", code="user_already_active")
        user.active = True
        user.deactivated_at = None
        audit.append(s, inst.signer, actor, "user.reactivate", "user", user.id, {"name": user.name, "active": True})
        return _view(user)


def set_role(inst: Instance, actor: Actor, name: str, role: str) -> UserView:
    """Change ``name``'s role. The record's payload ``{"name", "from", "to"}``
    lets the roles be recomputed from the chain. Page sessions opened under the
    old role end at their next request; tokens act with the new role."""
    new = member_of(Role, role)
    if new is None:
        raise InvalidInput(f"role must be one of {', '.join(Role)}", code="invalid_role")
    with inst.store.transaction() as s:
        user = _managed(s, actor, name)
        old = user.role
        if old == new:
            raise Conflict(f"user '{name}' already has the role {new}", code="role_unchanged")
        user.role = new
        audit.append(s, inst.signer, actor, "user.set_role", "user", user.id,
                     {"name": user.name, "from": str(old), "to": str(new)})
        return _view(user)


def reset_password(inst: Instance, actor: Actor, name: str, password: str) -> UserView:
    """Give ``name`` a new password, chosen by an admin acting on the user's
    behalf. Every token and page session of the user ends with it. The record
    never holds the password or its hash."""
    if len(password or "") < MIN_PASSWORD:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD} characters", code="weak_password")
    with inst.store.transaction() as s:
        user = _managed(s, actor, name)
        user.password_hash = _hasher.hash(password)
        user.password_changed_at = datetime.now(UTC)
        tokens, sessions = _revoke_credentials(s, user)
        audit.append(s, inst.signer, Actor(actor.name, actor.role, on_behalf_of=user.name), "user.reset_password",
                     "user", user.id, {"name": user.name, "tokens_revoked": tokens, "sessions_ended": sessions})
        return _view(user)


def _view(user: User) -> UserView:
    return UserView(user.name, user.role, user.active, user.display_name or "", user.organisation or "",
                    user.created_at.isoformat())


def get_user_view(inst: Instance, name: str) -> UserView:
    with inst.store.read() as s:
        return _view(get_user(s, name))
