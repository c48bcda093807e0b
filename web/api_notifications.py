"""The caller's notifications over the API: ``GET /api/v1/notifications`` (newest
first, with each delivery's state) and ``GET``/``PUT
/api/v1/notifications/address`` (where they are e-mailed when SMTP is
configured). Rules live in ``sandbox.notifications``."""

from __future__ import annotations

from typing import Any

from sandbox.vocabulary import Role
from web import access
from web.api import api
from web.auth import user_name
from web.schemas import NoticeAddressIn, NoticeAddressOut, NoticeListQuery, NoticeOut

SIGNED_IN = tuple(Role)


@api.route("/notifications", roles=SIGNED_IN, query=NoticeListQuery, response=NoticeOut, many=True,
           summary="The caller's notifications, newest first, with the state of each delivery", tag="notifications")
def list_notifications(query: NoticeListQuery) -> tuple[list[dict[str, Any]], dict[str, int]]:
    from sandbox.notifications.outbox import count_notices, list_notices

    inst, me = access.inst(), user_name()
    rows = list_notices(inst, me, limit=query.per_page, offset=(query.page - 1) * query.per_page, lang=query.lang)
    return [n.to_dict() for n in rows], {"page": query.page, "per_page": query.per_page,
                                         "total": count_notices(inst, me)}


@api.route("/notifications/address", roles=SIGNED_IN, response=NoticeAddressOut,
           summary="Where the caller's notifications are e-mailed", tag="notifications")
def show_address() -> dict[str, Any]:
    from sandbox.notifications.outbox import get_address

    me = user_name()
    return {"user": me, "email": get_address(access.inst(), me)}


@api.route("/notifications/address", "PUT", roles=SIGNED_IN, body=NoticeAddressIn, response=NoticeAddressOut,
           summary="Set (or with null clear) where the caller's notifications are e-mailed", tag="notifications")
def set_address(body: NoticeAddressIn) -> dict[str, Any]:
    from sandbox.notifications.outbox import get_address, set_address as store

    inst, me = access.inst(), user_name()
    store(inst, me, body.email)
    return {"user": me, "email": get_address(inst, me)}
