"""Pages of licence approval modes: the approval queue of owners and delegated
reviewers (templates and query approvals: approve, return, reject with a
reason), and the operator's templates (propose, see status, run with a form of
the parameters) and query approvals (submit, run once approved).

The query approval pages were under /operator/requests and /approvals/requests;
those paths stay as older spellings for one release ("request" names a data
request only)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from queries.errors import InvalidInput, SandboxError
from sandbox.vocabulary import LicenceStatus, Role
from web import access
from web.approval_access import (
    declarations_from_text, parameter_specs, request_of, template_of, visible_requests, visible_templates,
)
from web.auth import allow, principal, user_name

bp = Blueprint("approvals", __name__)

APPROVERS = (Role.OWNER, Role.REVIEWER, Role.ADMIN)


def _active_licences():
    return [lic for lic in access.visible_licences(principal()) if lic.status == LicenceStatus.ACTIVE]


# --- the approval queue ---------------------------------------------------------------

@bp.get("/approvals")
@allow(*APPROVERS)
def queue(error: SandboxError | None = None, status: int = 200):
    p = principal()
    return render_template("approvals.html", error=error,
                           proposed=visible_templates(p, status="proposed"),
                           approved=visible_templates(p, status="approved"),
                           pending=visible_requests(p, status="pending"),
                           decided=[r for r in visible_requests(p) if r.status != "pending"]), status


@bp.post("/approvals/templates/<int:template_id>")
@allow(*APPROVERS)
def decide_template(template_id: int):
    from sandbox.approvals import decide_template as decide

    try:
        decide(access.inst(), user_name(), template_id, request.form.get("decision", ""),
               request.form.get("reason", ""))
    except SandboxError as exc:
        return queue(error=exc, status=exc.status)
    flash("Decision recorded.", "ok")
    return redirect(url_for("approvals.queue"))


@bp.post("/approvals/requests/<int:approval_id>")
@bp.post("/approvals/<int:approval_id>")
@allow(*APPROVERS)
def decide_approval(approval_id: int):
    from sandbox.approvals import decide_request as decide

    try:
        decide(access.inst(), user_name(), approval_id, request.form.get("decision", ""),
               request.form.get("reason", ""))
    except SandboxError as exc:
        return queue(error=exc, status=exc.status)
    flash("Decision recorded.", "ok")
    return redirect(url_for("approvals.queue"))


# --- the operator's templates ----------------------------------------------------------

@bp.get("/operator/templates")
@allow(Role.OPERATOR)
def templates(error: SandboxError | None = None, status: int = 200, form: dict | None = None):
    return render_template("operator_templates.html", templates=visible_templates(principal()),
                           licences=_active_licences(), error=error, form=form or {}), status


@bp.post("/operator/templates")
@allow(Role.OPERATOR)
def propose():
    from sandbox.approvals import propose_template

    f = request.form
    try:
        try:
            eps = float(f.get("epsilon_per_run", ""))
            max_runs = int(f["max_runs"]) if f.get("max_runs", "").strip() else None
        except ValueError:
            raise InvalidInput("ε per run must be a number and the run cap a whole number",
                               code="invalid_form") from None
        tid = propose_template(access.inst(), user_name(), f.get("dataset", ""), title=f.get("title", ""),
                               purpose=f.get("purpose", ""), sql=f.get("sql", ""),
                               parameters=parameter_specs(declarations_from_text(f.get("parameters", ""))),
                               epsilon_per_run=eps, max_runs=max_runs, confidential=bool(f.get("confidential")))
    except SandboxError as exc:
        return templates(error=exc, status=exc.status, form=f.to_dict())
    flash("Template proposed.", "ok")
    return redirect(url_for("approvals.template_page", template_id=tid))


@bp.get("/operator/templates/<int:template_id>")
@allow(Role.OPERATOR)
def template_page(template_id: int, error: SandboxError | None = None, status: int = 200,
                  values: dict | None = None):
    return render_template("operator_template.html", t=template_of(principal(), template_id), error=error,
                           values=values or {}), status


@bp.post("/operator/templates/<int:template_id>/run")
@allow(Role.OPERATOR)
def run_template(template_id: int):
    from sandbox.service import run_query

    t = template_of(principal(), template_id)
    values = {p.name: request.form.get(f"param_{p.name}", "") for p in t.parameters}
    try:
        result = run_query(access.inst(), user_name(), t.dataset, template_id=template_id, params=values)
    except SandboxError as exc:
        return template_page(template_id, error=exc, status=exc.status, values=values)
    return redirect(url_for("operator.run_page", run_id=result.run_id))


# --- the operator's query approvals ----------------------------------------------------------

@bp.get("/operator/requests")
@bp.get("/operator/approvals")
@allow(Role.OPERATOR)
def operator_approvals(error: SandboxError | None = None, status: int = 200, form: dict | None = None):
    return render_template("operator_approvals.html", approvals=visible_requests(principal()),
                           licences=_active_licences(), error=error, form=form or {}), status


@bp.post("/operator/requests")
@bp.post("/operator/approvals")
@allow(Role.OPERATOR)
def submit_approval():
    from sandbox.approvals import request_query

    f = request.form
    try:
        try:
            eps = float(f.get("epsilon", ""))
        except ValueError:
            raise InvalidInput("epsilon must be a number", code="invalid_form") from None
        request_query(access.inst(), user_name(), f.get("dataset", ""), f.get("sql", ""),
                      purpose=f.get("purpose", ""), epsilon=eps)
    except SandboxError as exc:
        return operator_approvals(error=exc, status=exc.status, form=f.to_dict())
    flash("Submitted for approval.", "ok")
    return redirect(url_for("approvals.operator_approvals"))


@bp.post("/operator/requests/<int:approval_id>/run")
@bp.post("/operator/approvals/<int:approval_id>/run")
@allow(Role.OPERATOR)
def run_approval(approval_id: int):
    from sandbox.service import run_query

    try:
        r = request_of(principal(), approval_id)
        result = run_query(access.inst(), user_name(), r.dataset, request_id=approval_id)
    except SandboxError as exc:
        return operator_approvals(error=exc, status=exc.status)
    return redirect(url_for("operator.run_page", run_id=result.run_id))
