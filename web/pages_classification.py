"""Pages of governed classification: the queue of requests to move datasets to a
less protected class, where a reviewer approves or rejects each with a reason
(owners and admins see it too)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from queries.errors import SandboxError
from sandbox.vocabulary import ClassificationChangeStatus, Role
from web import access
from web.auth import allow, principal, user_name

bp = Blueprint("classification", __name__)


@bp.get("/classification")
@allow(Role.OWNER, Role.REVIEWER, Role.ADMIN)
def queue(error: SandboxError | None = None, status: int = 200):
    from sandbox.classification import list_changes

    changes = list_changes(access.inst(), owner=user_name() if principal().role == Role.OWNER else None)
    pending = [c for c in changes if c.status == ClassificationChangeStatus.PENDING]
    decided = [c for c in reversed(changes) if c.status != ClassificationChangeStatus.PENDING]
    return render_template("classification.html", pending=pending, decided=decided, error=error,
                           may_decide=principal().role == Role.REVIEWER), status


@bp.post("/classification/<int:change_id>/decide")
@allow(Role.REVIEWER)
def decide(change_id: int):
    from sandbox.classification import decide_change

    try:
        decide_change(access.inst(), user_name(), change_id, request.form.get("decision", ""),
                      request.form.get("reason", ""))
    except SandboxError as exc:
        return queue(error=exc, status=exc.status)
    flash("Decision recorded.", "ok")
    return redirect(url_for("classification.queue"))
