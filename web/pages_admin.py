"""Admin pages: users and roles, keys, settings, audit-chain status."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from queries.errors import SandboxError
from sandbox.vocabulary import Role
from web import access
from web.auth import actor, allow
from web.i18n_settings import SETTINGS_ZH

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _overview(error: SandboxError | None = None, status: int = 200):
    return render_template("admin.html", users=access.users_list(), key=access.signing_key(),
                           settings=access.settings_overview(), chain=access.audit_report(), error=error,
                           settings_zh=SETTINGS_ZH, roles=list(Role)), status


@bp.get("/")
@allow(Role.ADMIN)
def overview():
    return _overview()


@bp.post("/users")
@allow(Role.ADMIN)
def add_user():
    from sandbox.users import add_user as add

    f = request.form
    try:
        add(access.inst(), actor(), f.get("name", ""), f.get("role", ""), f.get("password", ""),
            display_name=f.get("display_name", ""), organisation=f.get("organisation", ""))
    except SandboxError as exc:
        return _overview(exc, exc.status)
    flash("User added.", "ok")
    return redirect(url_for("admin.overview"))
