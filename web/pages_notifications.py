"""The signed-in user's notifications page: their notices, newest first, with
the state of each delivery, and the e-mail address they go to. Thin: the rules
are in ``sandbox.notifications``."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from sandbox.vocabulary import Role
from web import access, i18n
from web.auth import allow, user_name

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

PER_PAGE = 50


@bp.get("/")
@allow(*Role)
def notices_page():
    from sandbox.notifications.outbox import count_notices, get_address, list_notices

    inst, me = access.inst(), user_name()
    try:
        page = max(1, min(int(request.args.get("page", "1")), 1_000_000))
    except ValueError:
        page = 1
    notices = list_notices(inst, me, limit=PER_PAGE, offset=(page - 1) * PER_PAGE, lang=i18n.current_language())
    total = count_notices(inst, me)
    return render_template("notifications.html", notices=[n.to_dict() for n in notices], page=page,
                           pages=max(1, -(-total // PER_PAGE)), total=total, email=get_address(inst, me))


@bp.post("/address")
@allow(*Role)
def address_submit():
    from sandbox.notifications.outbox import set_address

    email = request.form.get("email", "").strip()
    set_address(access.inst(), user_name(), email or None)
    flash(i18n.translate("E-mail address saved.") if email else i18n.translate("Notices are no longer e-mailed."))
    return redirect(url_for("notifications.notices_page"))
