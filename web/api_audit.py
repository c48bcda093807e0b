"""The audit trail over the API: ``GET /api/v1/audit`` lists records, newest
first, filtered (``sandbox.audit.view``). An admin sees every record; an owner
the records about their own datasets."""

from __future__ import annotations

from typing import Any

from sandbox.vocabulary import Role
from web.api import api
from web.auth import actor
from web.schemas import AuditEntryOut, AuditListQuery


@api.route("/audit", roles=(Role.OWNER, Role.ADMIN), query=AuditListQuery, response=AuditEntryOut, many=True,
           summary="The audit trail, newest first (an owner sees the records about their datasets)", tag="admin")
def list_audit(query: AuditListQuery) -> tuple[list[dict[str, Any]], dict[str, int]]:
    from sandbox.audit.view import AuditFilter, list_audit as listed
    from web import access

    filt = AuditFilter.parse(actor=query.actor, action=query.action, object=query.object, dataset=query.dataset,
                             since=query.since, until=query.until)
    page = listed(access.inst(), actor(), filt, limit=query.per_page, offset=(query.page - 1) * query.per_page)
    return [e.to_dict() for e in page.entries], {"page": query.page, "per_page": query.per_page, "total": page.total}
