"""Admin pages of the user lifecycle: one user's page with deactivate, reactivate,
change role and reset password (each a form with the session's CSRF token; each
change an audit record)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, flash, redirect, render_template, request, url_for

from queries.errors import SandboxError
from sandbox.vocabulary import Role
from web import access
from web.auth import actor, allow

bp = Blueprint("users", __name__, url_prefix="/admin/users")


def _page(name: str, error: SandboxError | None = None, status: int = 200):
    from sandbox.users import get_user_view

    return render_template("user_admin.html", u=get_user_view(access.inst(), name), roles=list(Role),
                           error=error, self_page=actor().name == name), status


@bp.get("/<name>")
@allow(Role.ADMIN)
def user_page(name: str):
    return _page(name)


def _change(name: str, change: Callable[[], object], done: str):
    try:
        change()
    except SandboxError as exc:
        return _page(name, exc, exc.status)
    flash(done, "ok")
    return redirect(url_for("users.user_page", name=name))


@bp.post("/<name>/deactivate")
@allow(Role.ADMIN)
def deactivate(name: str):
    from sandbox.users import deactivate_user

    return _change(name, lambda: deactivate_user(access.inst(), actor(), name), "User deactivated.")


@bp.post("/<name>/reactivate")
@allow(Role.ADMIN)
def reactivate(name: str):
    from sandbox.users import reactivate_user

    return _change(name, lambda: reactivate_user(access.inst(), actor(), name), "User reactivated.")


@bp.post("/<name>/role")
@allow(Role.ADMIN)
def set_role(name: str):
    from sandbox.users import set_role as change_role

    role = request.form.get("role", "")
    return _change(name, lambda: change_role(access.inst(), actor(), name, role), "Role changed.")


@bp.post("/<name>/password")
@allow(Role.ADMIN)
def reset_password(name: str):
    from sandbox.users import reset_password as reset

    password = request.form.get("password", "")
    return _change(name, lambda: reset(access.inst(), actor(), name, password), "Password reset.")
