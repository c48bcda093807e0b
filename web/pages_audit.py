"""The audit trail as a page (``/audit``): every record for an admin, the records
about their own datasets for an owner, filtered by actor, action, object, dataset
and time (``sandbox.audit.view``). The dataset page of an owner links here with
its dataset filled in."""

from __future__ import annotations

import math

from flask import Blueprint, render_template, request

from queries.errors import SandboxError
from sandbox.vocabulary import Role
from web import access
from web.auth import actor, allow
from web.pagination import MAX_PER_PAGE, Page

bp = Blueprint("audit", __name__)

PER_PAGE = 50
FIELDS = ("actor", "action", "object", "dataset", "since", "until")


@bp.get("/audit")
@allow(Role.OWNER, Role.ADMIN)
def audit_page():
    from sandbox.audit.view import AuditFilter, list_audit

    form = {name: request.args.get(name, "").strip() for name in FIELDS}
    number = request.args.get("page", 1, type=int) or 1
    per_page = min(max(request.args.get("per_page", PER_PAGE, type=int) or PER_PAGE, 1), MAX_PER_PAGE)
    try:
        filt = AuditFilter.parse(**{k: v or None for k, v in form.items()})
        listed = list_audit(access.inst(), actor(), filt, limit=per_page, offset=(max(number, 1) - 1) * per_page)
    except SandboxError as exc:
        return render_template("audit.html", form=form, pg=None, error=exc), exc.status
    pg = Page(list(listed.entries), max(number, 1), max(1, math.ceil(listed.total / per_page)), listed.total,
              per_page, "page")
    return render_template("audit.html", form=form, pg=pg, error=None)
