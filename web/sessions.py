"""Server-side sign-in sessions for the pages.

The session cookie (signed by Flask) carries a random session id; the store keeps
only its SHA-256, as an ``ApiToken`` row with the single scope ``session`` (so
several web workers sharing one store agree on it). Signing out revokes the row:
a copy of the cookie taken before stops working at once. A session id is never
accepted as a bearer token by the API, nor a bearer token as a session.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, UTC

from sqlalchemy import select

from sandbox import audit
from sandbox.audit import Actor
from sandbox.instance import Instance
from sandbox.persistence.models import ApiToken, User
from sandbox.vocabulary import PUBLIC

SESSION_SCOPE = "session"
SESSION_PREFIX = "dpss_"
SESSION_HOURS = 12


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


def start_session(inst: Instance, user: User, hours: int = SESSION_HOURS) -> str:
    """A new session of ``user``; returns its id (kept only in the signed cookie)."""
    sid = SESSION_PREFIX + secrets.token_urlsafe(32)
    with inst.store.transaction() as s:
        row = ApiToken(user_id=user.id, token_hash=_hash(sid), prefix=sid[:12], scopes=[SESSION_SCOPE],
                       expires_at=datetime.now(UTC) + timedelta(hours=hours))
        s.add(row)
        s.flush()
        audit.append(s, inst.signer, Actor(user.name, user.role), "session.start", "session", row.id, {})
    return sid


def session_user(inst: Instance, sid: str) -> User | None:
    """The active user of a live session, or None (unknown, ended, expired, user disabled)."""
    if not isinstance(sid, str) or not sid.startswith(SESSION_PREFIX):
        return None
    with inst.store.read() as s:
        row = s.execute(select(ApiToken).where(ApiToken.token_hash == _hash(sid))).scalar_one_or_none()
        if row is None or row.revoked_at is not None or SESSION_SCOPE not in (row.scopes or []):
            return None
        expires = row.expires_at   # set on every session; one without it is taken as expired
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if expires is None or expires < datetime.now(UTC):
            return None
        user = s.get(User, row.user_id)
        if user is None or not user.active:
            return None
        s.expunge(user)
        return user


def end_session(inst: Instance, sid: str) -> None:
    """Revoke a session (idempotent; an unknown id changes nothing)."""
    if not isinstance(sid, str) or not sid.startswith(SESSION_PREFIX):
        return
    with inst.store.transaction() as s:
        row = s.execute(select(ApiToken).where(ApiToken.token_hash == _hash(sid))).scalar_one_or_none()
        if row is None or row.revoked_at is not None or SESSION_SCOPE not in (row.scopes or []):
            return
        row.revoked_at = datetime.now(UTC)
        user = s.get(User, row.user_id)
        audit.append(s, inst.signer, Actor(user.name if user else PUBLIC, user.role if user else PUBLIC),
                     "session.end", "session", row.id, {})


def is_session_scope(scopes: list[str] | tuple[str, ...]) -> bool:
    return SESSION_SCOPE in scopes
