"""Owner pages: add a dataset, budget gauges, licences (grant, revoke, approval
mode) and reviewers delegated to decide templates and query approvals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from queries.errors import InvalidInput, SandboxError
from queries.vocabulary import Classification
from sandbox.vocabulary import ApprovalMode, Role
from web import access
from web.auth import actor, allow, principal, user_name

HIGH_EPSILON, HIGH_DELTA = 5.0, 1e-6     # above these a grant is flagged to the owner

bp = Blueprint("owner", __name__, url_prefix="/owner")


@bp.get("/datasets")
@allow(Role.OWNER, Role.ADMIN)
def datasets():
    rows = [(d, access.dataset_budget(principal(), d.name)) for d in access.owned_datasets(principal())]
    return render_template("owner_datasets.html", datasets=rows)


# /owner/register is the older spelling of /owner/add, kept for one release ("register"
# names the transparency register only).
@bp.get("/register")
@bp.get("/add")
@allow(Role.OWNER, Role.ADMIN)
def add_form():
    return render_template("owner_add.html", error=None, done=None)


@bp.post("/register")
@bp.post("/add")
@allow(Role.OWNER, Role.ADMIN)
def add_submit():
    try:
        done = access.add_upload(request.files.get("policy"), request.files.getlist("files"))
    except SandboxError as exc:
        return render_template("owner_add.html", error=exc, done=None), exc.status
    return render_template("owner_add.html", error=None, done=done), 201


@bp.get("/datasets/<name>")
@allow(Role.OWNER, Role.ADMIN)
def dataset_admin(name: str):
    return _dataset_page(name)


def _dataset_page(name: str, error: SandboxError | None = None, status: int = 200):
    budget = access.dataset_budget(principal(), name)
    d = access.dataset_detail(principal(), name)
    licences = access.visible_licences(principal(), dataset=name)

    users = [u for u in access.users_list() if u.active]
    operators = [u.name for u in users if u.role == Role.OPERATOR]
    reviewers = [u.name for u in users if u.role == Role.REVIEWER]
    from sandbox.classification import list_changes

    return render_template("owner_dataset.html", d=d, levels=budget.levels, licences=licences,
                           operators=operators, reviewers=reviewers, approval_modes=list(ApprovalMode), error=error,
                           today=date.today().isoformat(), classifications=list(Classification),
                           changes=list(reversed(list_changes(access.inst(), dataset=name)))), status


@bp.post("/datasets/<name>/licences")
@allow(Role.OWNER, Role.ADMIN)
def grant(name: str):
    from sandbox.licences import grant_licence

    f = request.form
    try:
        try:
            expires = date.fromisoformat(f.get("expires", ""))
            epsilon = float(f.get("epsilon", ""))
            delta = float(f.get("delta") or 0)
        except ValueError:
            raise InvalidInput("epsilon and delta must be numbers and the expiry a date (YYYY-MM-DD)",
                               code="invalid_form") from None
        tables = [t.strip() for t in f.get("tables", "").split(",") if t.strip()] or None
        grant_licence(access.inst(), actor(), dataset=name, operator=f.get("operator", ""), epsilon=epsilon,
                      delta=delta, purpose=f.get("purpose", ""), expires=expires, tables=tables,
                      approval=f.get("approval") or ApprovalMode.AUTOMATIC)
    except SandboxError as exc:
        return _dataset_page(name, exc, exc.status)
    flash("Licence granted.", "ok")
    if epsilon > HIGH_EPSILON or delta > HIGH_DELTA:
        flash("Warning: this licence allows more than ε = 5 or δ = 1e-6. Such a budget protects the people in the "
              "data weakly; check that the purpose needs it, or revoke the licence and grant a smaller one.",
              "warning")
    return redirect(url_for("owner.dataset_admin", name=name))


def _licence_action(change: Callable[[], object], done: str) -> ResponseReturnValue:
    """Make one change to a licence from its dataset's page (the form names the
    dataset): back to that page with a note, or with the error shown on it."""
    name = request.form.get("dataset", "")
    try:
        change()
    except SandboxError as exc:
        if name:
            return _dataset_page(name, exc, exc.status)
        raise
    flash(done, "ok")
    return redirect(url_for("owner.dataset_admin", name=name) if name else url_for("owner.datasets"))


def _form_number(field: str, message: str) -> float:
    try:
        return float(request.form.get(field) or 0)
    except ValueError:
        raise InvalidInput(message, code="invalid_form") from None


@bp.post("/licences/<int:licence_id>/revoke")
@allow(Role.OWNER, Role.ADMIN)
def revoke(licence_id: int):
    from sandbox.licences import revoke_licence

    return _licence_action(lambda: revoke_licence(access.inst(), actor(), licence_id,
                                                  request.form.get("reason", "")), "Licence revoked.")


@bp.post("/licences/<int:licence_id>/extend")
@allow(Role.OWNER, Role.ADMIN)
def extend(licence_id: int):
    from sandbox.licences import extend_licence

    def change() -> None:
        try:
            until = date.fromisoformat(request.form.get("until", ""))
        except ValueError:
            raise InvalidInput("the new end date must be a date (YYYY-MM-DD)", code="invalid_form") from None
        extend_licence(access.inst(), actor(), licence_id, until)

    return _licence_action(change, "Licence extended.")


@bp.post("/licences/<int:licence_id>/top-up")
@allow(Role.OWNER, Role.ADMIN)
def top_up(licence_id: int):
    from sandbox.licences import top_up_licence

    def change() -> None:
        epsilon = _form_number("epsilon", "ε and δ must be numbers")
        delta = _form_number("delta", "ε and δ must be numbers")
        top_up_licence(access.inst(), actor(), licence_id, epsilon=epsilon, delta=delta)

    return _licence_action(change, "Licence budget topped up.")


@bp.post("/licences/<int:licence_id>/approval")
@allow(Role.OWNER, Role.ADMIN)
def set_approval(licence_id: int):
    from sandbox.approvals import set_approval_mode

    return _licence_action(lambda: set_approval_mode(access.inst(), actor(), licence_id,
                                                     request.form.get("mode", ""), request.form.get("reason", "")),
                           "Approval mode changed.")


@bp.post("/datasets/<name>/delegates")
@allow(Role.OWNER, Role.ADMIN)
def delegate(name: str):
    from sandbox.approvals import delegate as delegate_reviewer

    try:
        delegate_reviewer(access.inst(), user_name(), name, request.form.get("reviewer", ""))
    except SandboxError as exc:
        return _dataset_page(name, exc, exc.status)
    flash("Reviewer delegated.", "ok")
    return redirect(url_for("owner.dataset_admin", name=name))


@bp.post("/datasets/<name>/reclassify")
@allow(Role.OWNER, Role.ADMIN)
def reclassify(name: str):
    from sandbox.classification import reclassify as change_class

    try:
        done = change_class(access.inst(), actor(), name, request.form.get("to", ""), request.form.get("reason", ""))
    except SandboxError as exc:
        return _dataset_page(name, exc, exc.status)
    flash("Class changed." if done.status == "applied" else "Class change requested: a reviewer decides it.", "ok")
    return redirect(url_for("owner.dataset_admin", name=name))
