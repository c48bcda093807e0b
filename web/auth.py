"""Who is asking: server-side sessions with CSRF protection for pages, bearer
tokens for the API, role checks on every route, and an in-process login back-off.

Every view is wrapped by ``allow(*roles)``, which records the roles on the view
(``view.allowed_roles``) so that tests can walk every route with every role.
``PUBLIC`` (``"public"``) means anyone, signed in or not.
"""

from __future__ import annotations

import functools
import hmac
import math
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Iterable

from flask import current_app, g, request, session

from queries.errors import Forbidden, InvalidInput, RateLimited, Unauthorized
from sandbox.vocabulary import PUBLIC, Audience, Role

READ_SCOPE = "read"          # a token with only this scope may use GET routes
ALL_SCOPE = "all"
TOKEN_SCOPES = (READ_SCOPE, ALL_SCOPE)


class TooManyAttempts(RateLimited):
    code = "too_many_attempts"
    status = 429


class CsrfFailed(InvalidInput):
    code = "csrf_failed"
    status = 400


@dataclass(frozen=True)
class Principal:
    """The caller of one request."""

    name: str | None
    role: Audience                 # a Role, or PUBLIC when anonymous
    scopes: tuple[str, ...] = (ALL_SCOPE,)
    via: str = "anonymous"         # anonymous | session | token

    @property
    def signed_in(self) -> bool:
        return self.name is not None


ANONYMOUS = Principal(None, PUBLIC)


class LoginLimiter:
    """Slows password guessing without locking the owner out.

    * Per user name, exponential back-off: the first ``free_failures`` failed
      logins cost nothing; each later one doubles the wait before the next
      attempt (``base_delay_s``, 2×, 4×, … up to ``max_delay_s``). A success
      clears the count. Five bad logins from a shared address therefore never
      lock the user out, and a guesser gets one try per ``max_delay_s`` at most.
    * Per client address, at most ``max_address_failures`` failed logins, for
      any user names, within ``window_s`` seconds (password spraying).

    In-process: each server process keeps its own counts. ``clock`` is a
    monotonic clock in seconds (tests give one they can advance)."""

    def __init__(self, free_failures: int = 5, window_s: float = 900.0, *, base_delay_s: float = 1.0,
                 max_delay_s: float = 60.0, max_address_failures: int = 50,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.free_failures = free_failures
        self.window_s = window_s
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.max_address_failures = max_address_failures
        self.clock = clock
        self._user: dict[str, tuple[int, float]] = {}      # name -> (failures, time of the last)
        self._address: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def delay_after(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failed logins of one user."""
        if failures <= self.free_failures:
            return 0.0
        return min(self.base_delay_s * 2 ** (failures - self.free_failures - 1), self.max_delay_s)

    def _recent(self, address: str, now: float) -> deque[float]:
        q = self._address[address]
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def check(self, key: tuple[str, str]) -> None:
        address, name = key
        now = self.clock()
        with self._lock:
            q = self._recent(address, now)
            if len(q) >= self.max_address_failures:
                retry = int(q[0] + self.window_s - now) + 1
                raise TooManyAttempts("too many failed logins from this address; try again later",
                                      retry_after=retry)
            failures, last = self._user.get(name, (0, 0.0))
            wait = last + self.delay_after(failures) - now
            if wait > 0:
                raise TooManyAttempts(f"too many failed logins for this user; try again in {math.ceil(wait)} s",
                                      retry_after=math.ceil(wait))

    def failed(self, key: tuple[str, str]) -> None:
        address, name = key
        now = self.clock()
        with self._lock:
            self._recent(address, now).append(now)
            failures, _ = self._user.get(name, (0, 0.0))
            self._user[name] = (failures + 1, now)

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._user.pop(key[1], None)


def login_key(user_name: str) -> tuple[str, str]:
    return (request.remote_addr or "-", (user_name or "").strip().lower())


def login(user_name: str, password: str):
    """Authenticate through the rate limiter; returns the user. Each attempt the
    limiter lets through is an audit record (``auth.login`` or
    ``auth.login_failed``) naming its surface: ``api`` for a token request,
    ``page`` for the sign-in form."""
    from sandbox.users import authenticate
    from sandbox.vocabulary import LoginSurface

    limiter: LoginLimiter = current_app.extensions["dps_limiter"]
    key = login_key(user_name)
    limiter.check(key)
    surface = LoginSurface.API if is_api_request() else LoginSurface.PAGE
    try:
        user = authenticate(current_app.extensions["dps"], user_name or "", password or "", surface=surface)
    except Unauthorized:
        limiter.failed(key)
        raise
    limiter.succeeded(key)
    return user


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def load_principal() -> None:
    """``before_request``: set ``g.principal`` from the bearer token (API) or the
    session (pages)."""
    from sandbox.users import user_for_token
    from web.sessions import is_session_scope

    inst = current_app.extensions["dps"]
    g.principal = ANONYMOUS
    if is_api_request():
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("use 'Authorization: Bearer <token>'", code="bad_token")
            user, scopes = user_for_token(inst, token.strip())
            if is_session_scope(scopes):
                raise Unauthorized("invalid or revoked token", code="bad_token")
            g.principal = Principal(user.name, Role(user.role), tuple(scopes), "token")
        return
    sid = session.get("sid")
    if sid:
        from web.sessions import session_user

        signed_in = session_user(inst, sid)
        if signed_in is None or signed_in.name != session.get("user") or signed_in.role != session.get("role"):
            session.clear()
            return
        g.principal = Principal(signed_in.name, Role(signed_in.role), (ALL_SCOPE,), "session")
    elif session.get("user"):
        session.clear()       # a cookie from before server-side sessions: sign in again


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    """``before_request`` for pages: every state-changing request carries the
    session's token (form field ``csrf_token`` or header ``X-CSRF-Token``)."""
    if is_api_request() or request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf") or ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfFailed("the form's security token is missing or out of date; reload the page and try again")


def allow(*roles: Audience) -> Callable:
    """Restrict a view to ``roles`` (``PUBLIC``: anyone)."""
    for r in roles:
        if r != PUBLIC and r not in set(Role):
            raise ValueError(f"unknown role {r}")

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            p: Principal = g.principal
            if PUBLIC not in roles:
                if not p.signed_in:
                    raise Unauthorized("sign in first" if not is_api_request() else "this needs a bearer token",
                                       code="not_signed_in")
                if p.role not in roles:
                    raise Forbidden(f"this needs the role {' or '.join(roles)}", code="wrong_role")
            if (p.via == "token" and request.method not in ("GET", "HEAD")
                    and ALL_SCOPE not in p.scopes):
                raise Forbidden("this token is read-only", code="insufficient_scope")
            return view(*args, **kwargs)

        mark_roles(wrapper, roles)
        return wrapper

    return decorate


def mark_roles(view: Any, roles: Iterable[str]) -> None:
    """Record on a view the roles it admits (``view.allowed_roles``), so that tests
    can walk every route with every role. ``view`` is any function: mypy does not
    model attributes set on functions."""
    view.allowed_roles = frozenset(roles)


def principal() -> Principal:
    return g.principal


def user_name() -> str:
    """The signed-in caller's name, for the views that ``allow`` only signed-in
    roles (there it is always set; elsewhere an anonymous caller is refused)."""
    name = principal().name
    if name is None:
        raise Unauthorized("sign in first" if not is_api_request() else "this needs a bearer token",
                           code="not_signed_in")
    return name


def actor():
    from sandbox.audit import Actor

    p = g.principal
    return Actor(p.name or PUBLIC, p.role)
