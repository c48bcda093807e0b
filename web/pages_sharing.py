"""Pages of sharing between departments: the responsibility list, a request form
per dataset, the department user's requests and grants (pull, exact SQL, quality
objections), the owner's decisions, and usage figures for owners and admins.

Thin: every rule is in ``sandbox.sharing`` and ``products.sharing_extract``."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from queries.errors import InvalidInput, SandboxError
from sandbox.vocabulary import Role
from web import access
from web.auth import allow, user_name

bp = Blueprint("sharing", __name__, url_prefix="/sharing")

ALL = tuple(Role)


def _me() -> str:
    return user_name()


@bp.get("/")
@allow(*ALL)
def responsibility_list():
    from sandbox.sharing.feedback import responsibility_list as entries

    return render_template("sharing_list.html", entries=[e.to_dict() for e in entries(access.inst(), _me())])


@bp.get("/datasets/<name>")
@allow(*ALL)
def request_form(name: str):
    from sandbox.sharing.feedback import responsibility_list as entries

    found = [e.to_dict() for e in entries(access.inst(), _me()) if e.dataset == name]
    if not found:
        raise InvalidInput(f"dataset '{name}' is not on the responsibility list", code="not_shareable")
    return render_template("sharing_request.html", entry=found[0])


@bp.post("/datasets/<name>")
@allow(*ALL)
def request_submit(name: str):
    from sandbox.sharing.grants import request_share

    f = request.form
    expires = None
    if f.get("expires"):
        try:
            expires = date.fromisoformat(f["expires"])
        except ValueError:
            raise InvalidInput("the end of the term must be a date (YYYY-MM-DD)", code="invalid_form") from None
    view = request_share(access.inst(), _me(), dataset=name, columns=f.getlist("columns"),
                         purpose=f.get("purpose", ""), basis=f.get("basis", ""), condition=f.get("condition", ""),
                         expires=expires)
    flash("Access granted." if view.status.value == "granted" else "Request sent to the provider.", "ok")
    return redirect(url_for("sharing.grant_page", request_id=view.id))


@bp.get("/mine")
@allow(*ALL)
def mine():
    from sandbox.organisations import list_organisations
    from sandbox.sharing.grants import list_shares
    from sandbox.sharing.feedback import list_demands, notifications

    inst = access.inst()
    mine = [v.to_dict() for v in list_shares(inst, _me()) if v.requester == _me()]
    departments = [o.name for o in list_organisations(inst) if o.kind.value == "department"]
    return render_template("sharing_mine.html", grants=mine, notices=[n.to_dict() for n in notifications(inst, _me())],
                           demands=[d.to_dict() for d in list_demands(inst, _me())], departments=departments)


@bp.post("/demands")
@allow(*ALL)
def demand_submit():
    from sandbox.sharing.feedback import file_demand

    f = request.form
    try:
        days = int(f.get("days") or 15)
    except ValueError:
        raise InvalidInput("the deadline is a number of days", code="invalid_form") from None
    file_demand(access.inst(), _me(), provider=f.get("provider", ""), title=f.get("title", ""),
                description=f.get("description", ""), purpose=f.get("purpose", ""), basis=f.get("basis", ""),
                days=days)
    flash("Request sent to the provider.", "ok")
    return redirect(url_for("sharing.mine"))


def _grant_page(request_id: int, *, result=None, error: SandboxError | None = None, sql: str = "",
                status: int = 200):
    from sandbox.sharing.grants import show_share
    from sandbox.sharing.feedback import list_objections

    inst = access.inst()
    grant = show_share(inst, _me(), request_id)
    objections = [o.to_dict() for o in list_objections(inst, _me()) if o.request_id == request_id]
    tables = sorted({c.split(".", 1)[0] for c in grant.columns})
    return render_template("sharing_grant.html", g=grant.to_dict(), objections=objections, tables=tables,
                           result=result, error=error, sql=sql, holder=grant.requester == _me()), status


@bp.get("/grants/<int:request_id>")
@allow(*ALL)
def grant_page(request_id: int):
    return _grant_page(request_id)


@bp.post("/grants/<int:request_id>/extract")
@allow(*ALL)
def pull(request_id: int):
    from products.sharing_extract import extract_zip

    f = request.form
    since = f.get("since_version") or None
    try:
        since_version = int(since) if since else None
    except ValueError:
        raise InvalidInput("the base version is a number", code="invalid_form") from None
    data, name = extract_zip(access.inst(), _me(), request_id, f.get("format", "parquet"),
                             table=f.get("table") or None, where=f.get("where") or None,
                             since_version=since_version, incremental=f.get("incremental") == "on")
    resp = Response(data, mimetype="application/zip")
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return resp


@bp.post("/grants/<int:request_id>/query")
@allow(*ALL)
def query(request_id: int):
    from sandbox.sharing.delivery import run_shared_query

    sql = request.form.get("sql", "")
    try:
        result = run_shared_query(access.inst(), _me(), request_id, sql).to_dict()
    except SandboxError as exc:
        return _grant_page(request_id, error=exc, sql=sql, status=exc.status)
    return _grant_page(request_id, result=result, sql=sql)


@bp.post("/grants/<int:request_id>/objections")
@allow(*ALL)
def object(request_id: int):
    from sandbox.sharing.feedback import file_objection

    f = request.form
    file_objection(access.inst(), _me(), request_id, columns=f.getlist("columns"), description=f.get("description", ""))
    flash("Objection filed.", "ok")
    return redirect(url_for("sharing.grant_page", request_id=request_id))


@bp.post("/grants/<int:request_id>/revoke")
@allow(*ALL)
def revoke(request_id: int):
    from sandbox.sharing.grants import revoke_share

    revoke_share(access.inst(), _me(), request_id, request.form.get("reason", ""))
    flash("Grant revoked.", "ok")
    return redirect(url_for("sharing.grant_page", request_id=request_id))


@bp.get("/decisions")
@allow(Role.OWNER, Role.REVIEWER, Role.ADMIN)
def decisions():
    from sandbox.datasets import list_datasets
    from sandbox.sharing.grants import list_sharing_changes, list_shares
    from sandbox.sharing.feedback import list_demands, list_objections, responsibility_list

    inst = access.inst()
    me = _me()
    owned = {d.name for d in list_datasets(inst) if d.owner == me}
    conditions = {e.dataset: list(e.conditions) for e in responsibility_list(inst, me)}
    pending = [v.to_dict() for v in list_shares(inst, me, status="pending") if v.dataset in owned]
    grants = [v.to_dict() for v in list_shares(inst, me) if v.dataset in owned and v.status.value != "pending"]
    objections = [o.to_dict() for o in list_objections(inst, me, status="open") if o.dataset in owned]
    demands = [d.to_dict() for d in list_demands(inst, me, status="open")]
    changes = [c.to_dict() for c in list_sharing_changes(inst, status="pending")]
    return render_template("sharing_owner.html", pending=pending, grants=grants, objections=objections,
                           demands=demands, changes=changes, conditions=conditions, owned=sorted(owned))


@bp.post("/requests/<int:request_id>/decide")
@allow(Role.OWNER)
def decide(request_id: int):
    from sandbox.sharing.grants import decide_share

    f = request.form
    decide_share(access.inst(), _me(), request_id, f.get("decision", ""), reason=f.get("reason", ""),
                 condition=f.get("condition", "") if f.get("decision") == "reject" else "")
    flash("Decision recorded.", "ok")
    return redirect(url_for("sharing.decisions"))


@bp.post("/objections/<int:objection_id>/answer")
@allow(Role.OWNER)
def answer(objection_id: int):
    from sandbox.sharing.feedback import answer_objection

    f = request.form
    version = f.get("correction_version") or None
    try:
        correction = int(version) if version else None
    except ValueError:
        raise InvalidInput("the correction is a version number", code="invalid_form") from None
    answer_objection(access.inst(), _me(), objection_id, explanation=f.get("explanation", ""),
                     correction_version=correction)
    flash("Decision recorded.", "ok")
    return redirect(url_for("sharing.decisions"))


@bp.post("/demands/<int:demand_id>/answer")
@allow(*ALL)
def respond(demand_id: int):
    from sandbox.sharing.feedback import answer_demand

    f = request.form
    answer_demand(access.inst(), _me(), demand_id, dataset=f.get("dataset") or None, reason=f.get("reason", ""))
    flash("Decision recorded.", "ok")
    return redirect(url_for("sharing.decisions"))


@bp.post("/changes/<int:change_id>/decide")
@allow(Role.REVIEWER)
def review_change(change_id: int):
    from sandbox.sharing.grants import decide_sharing_change

    f = request.form
    decide_sharing_change(access.inst(), _me(), change_id, f.get("decision", ""), f.get("reason", ""))
    flash("Decision recorded.", "ok")
    return redirect(url_for("sharing.decisions"))


@bp.get("/usage")
@allow(Role.OWNER, Role.REVIEWER, Role.ADMIN)
def usage():
    from sandbox.sharing.usage import sharing_usage, usage_totals

    rows = sharing_usage(access.inst(), user=_me())
    return render_template("sharing_usage.html", rows=[r.to_dict() for r in rows], totals=usage_totals(rows))
