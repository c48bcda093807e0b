"""Flask app factory: pages per role, the JSON API, errors and security headers."""

from __future__ import annotations

import logging
import math
import uuid
from http import HTTPStatus
from typing import Any
from collections.abc import Mapping

from flask import Flask, g, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from queries.errors import InternalError, SandboxError, Unauthorized
from sandbox.instance import Instance
from sandbox.logs import configure_logging
from sandbox.vocabulary import PUBLIC
from web import auth, i18n
from web.error_text import error_text
from web.openapi import PROBLEM_TYPE

log = logging.getLogger("dp_sandbox.web")

MAX_ID = 2**31 - 1

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def problem(status: int, code: str, detail: str, **fields: Any):
    body = {"type": PROBLEM_TYPE + code, "title": HTTPStatus(status).phrase, "status": status,
            "detail": detail, "code": code}
    body.update({k: v for k, v in fields.items() if k not in body})
    resp = jsonify(body)
    resp.status_code = status
    resp.mimetype = "application/problem+json"
    if status == 429 and "retry_after" in fields:
        resp.headers["Retry-After"] = str(fields["retry_after"])
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="dp-sandbox"'
    return resp


class IdConverter(IntegerConverter):
    """``<int:...>`` in URLs: 0 to 2**31 - 1 (what every store holds in an id column)."""

    def __init__(self, url_map, *args, **kwargs) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def create_app(inst: Instance, config: Mapping[str, Any] | None = None) -> Flask:
    configure_logging(inst.settings.log_level)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=inst.session_secret,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(inst.settings.secure_cookies),
        SESSION_COOKIE_NAME="dps_session",
        MAX_CONTENT_LENGTH=512 * 1024 * 1024,
        LOGIN_MAX_FAILURES=5,
        LOGIN_WINDOW_S=300.0,
    )
    app.config.update(config or {})
    app.url_map.converters["int"] = IdConverter
    app.extensions["dps"] = inst
    app.extensions["dps_limiter"] = auth.LoginLimiter(app.config["LOGIN_MAX_FAILURES"], app.config["LOGIN_WINDOW_S"])

    from web.api import bp as api_bp
    from web.pages_approvals import bp as approvals_bp
    from web.pages_admin import bp as admin_bp
    from web.pages_operator import bp as operator_bp
    from web.pages_owner import bp as owner_bp
    from web.pages_public import bp as public_bp
    from web.pages_sharing import bp as sharing_bp
    from web.pages_users import bp as users_bp

    for bp in (public_bp, owner_bp, operator_bp, admin_bp, approvals_bp, sharing_bp, users_bp, api_bp):
        app.register_blueprint(bp)
    from web.pages_audit import bp as audit_bp

    app.register_blueprint(audit_bp)
    from web.pages_notifications import bp as notifications_bp

    app.register_blueprint(notifications_bp)
    from web.pages_classification import bp as classification_bp

    app.register_blueprint(classification_bp)
    from web import products_views

    products_views.register(app)
    from sandbox.numbers import format_estimate, format_half_width, format_plain

    app.jinja_env.filters.update(plain=format_plain, estimate=format_estimate, half_width=format_half_width)
    app.jinja_env.globals["e_to"] = lambda x: math.exp(min(float(x), 700.0))
    from web.pagination import paginate

    app.jinja_env.globals["paginate"] = paginate
    from web.i18n_terms import check_text, note_text, term

    app.jinja_env.filters["term"] = lambda value, kind: term(value, kind, i18n.current_language())
    app.jinja_env.filters["check_text"] = lambda check: check_text(check, i18n.current_language())
    app.jinja_env.filters["note_text"] = lambda note: note_text(str(note), i18n.current_language())
    auth.mark_roles(app.view_functions["static"], {PUBLIC})

    app.before_request(auth.load_principal)
    app.before_request(auth.check_csrf)

    @app.before_request
    def remember_language():
        lang = request.args.get("lang")
        if lang in i18n.LANGUAGES and not auth.is_api_request():
            from flask import session

            session["lang"] = lang

    @app.after_request
    def security_headers(resp):
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "same-origin"
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    @app.context_processor
    def template_globals():
        lang = i18n.current_language()
        return {"_": lambda text: i18n.translate(text, lang), "lang": lang, "languages": i18n.LANGUAGE_NAMES,
                "csrf_token": auth.csrf_token, "me": getattr(g, "principal", auth.ANONYMOUS),
                "localized_error": lambda error, **kw: error_text(error, lang, **kw)}

    @app.errorhandler(SandboxError)
    def sandbox_error(exc: SandboxError):
        if auth.is_api_request():
            fields = {k: v for k, v in exc.to_dict().items() if k not in ("code", "message")}
            return problem(exc.status, exc.code, exc.message, kind=exc.kind, **fields)
        if isinstance(exc, Unauthorized) and request.method == "GET":
            return redirect(url_for("public.login_form", next=request.full_path.rstrip("?")))
        return render_template("error.html", status=exc.status, code=exc.code, message=exc.message,
                               error=exc), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(status, "http_error")
        if auth.is_api_request():
            return problem(status, code, exc.description or HTTPStatus(status).phrase)
        return render_template("error.html", status=status, code=code, message=exc.description), status

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        # the exception's text and traceback go to the log only: they may quote anything
        error = InternalError(uuid.uuid4().hex[:12])
        log.exception("unexpected error (error id %s)", error.error_id)
        return sandbox_error(error)

    return app
