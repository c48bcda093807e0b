"""Data requests: anyone asks for data (what, why, contact); owners triage them.

Statuses: open → accepted | declined; accepted or open → closed when a linked
product is released. The list is public; the contact is shown only to the
dataset's owner, admins, and the signed-in user who filed it.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from products.lifecycle import iso, now
from products.model import DataRequestView
from products.reasons import clean_reason, required_reason
from products.vocabulary import DataRequestStatus
from queries.errors import Conflict, Forbidden, InvalidInput, NotFound
from queries.vocabulary import member_of
from sandbox import audit
from sandbox.audit import Actor
from sandbox.instance import Instance
from sandbox.notifications import outbox as notices
from sandbox.persistence.models import DataRequest, Dataset, Product, ProductVersion, User
from sandbox.users import actor_of, get_user
from sandbox.vocabulary import ProductState, Role

REQUEST_DECISIONS = ("accept", "decline", "link")
PUBLIC = Actor("public", "public")
_CONTACT = re.compile(r"^\S+@\S+\.\S+$|^\+?[0-9 ()-]{6,}$")


def _view(s: Session, r: DataRequest, viewer: User | None) -> DataRequestView:
    ds = s.get(Dataset, r.dataset_id) if r.dataset_id else None
    show = viewer is not None and (viewer.role == Role.ADMIN or (ds is not None and ds.owner_id == viewer.id)
                                   or (ds is None and viewer.role == Role.OWNER) or r.filed_by == viewer.id)
    return DataRequestView(r.id, r.title, r.description, ds.name if ds else None, r.status, r.reason, r.product_id,
                           iso(r.created_at), iso(r.decided_at), iso(r.closed_at), r.contact if show else None)


def file_request(inst: Instance, user: str | None, *, title: str, description: str, contact: str,
                 dataset: str | None = None) -> DataRequestView:
    """File a request (signed in or anonymous)."""
    title, description, contact = (title or "").strip(), (description or "").strip(), (contact or "").strip()
    if not title or not description:
        raise InvalidInput("a data request needs a title (what) and a description (why)", code="missing_fields")
    if len(title) > 300 or len(description) > 10000:
        raise InvalidInput("the title or description is too long", code="too_long")
    if not _CONTACT.match(contact) or len(contact) > 300:
        raise InvalidInput("give an e-mail address or a phone number as contact", code="invalid_contact")
    with inst.store.transaction() as s:
        u = get_user(s, user) if user else None
        ds_id = None
        if dataset:
            ds = s.execute(select(Dataset).where(Dataset.name == dataset)).scalar_one_or_none()
            if ds is None:
                raise NotFound(f"no dataset named '{dataset}'", code="unknown_dataset", dataset=dataset)
            ds_id = ds.id
        r = DataRequest(title=title, description=description, contact=contact, dataset_id=ds_id, status=DataRequestStatus.OPEN,
                        reason="", filed_by=u.id if u else None, created_at=now())
        s.add(r)
        s.flush()
        audit.append(s, inst.signer, actor_of(u) if u else PUBLIC, "data_request.file", "data_request", r.id,
                     {"title": title, "dataset": dataset})   # the contact stays out of the audit payload
        notices.on_request_filed(s, inst.settings, r)
        return _view(s, r, u)


def list_data_requests(inst: Instance, user: str | None, *, status: str | None = None) -> list[DataRequestView]:
    if status is not None and member_of(DataRequestStatus, status) is None:
        raise InvalidInput(f"status must be one of {', '.join(DataRequestStatus)}", code="invalid_status")
    with inst.store.read() as s:
        u = get_user(s, user) if user else None
        stmt = select(DataRequest).order_by(DataRequest.id)
        if status:
            stmt = stmt.where(DataRequest.status == status)
        return [_view(s, r, u) for r in s.execute(stmt).scalars()]


def get_data_request(inst: Instance, user: str | None, request_id: int) -> DataRequestView:
    """One request, as its requester follows it (public; the contact as in the list)."""
    with inst.store.read() as s:
        u = get_user(s, user) if user else None
        r = s.get(DataRequest, request_id)
        if r is None:
            raise NotFound(f"no data request {request_id}", code="unknown_data_request")
        return _view(s, r, u)


def decide_data_request(inst: Instance, user: str, request_id: int, decision: str, reason: str = "",
                        product_id: int | None = None) -> DataRequestView:
    """The dataset's owner (any owner for requests naming no dataset) or an
    admin accepts, declines (with a reason) or links a product."""
    if decision not in REQUEST_DECISIONS:
        raise InvalidInput(f"decision must be one of {', '.join(REQUEST_DECISIONS)}", code="invalid_decision")
    reason = required_reason(reason, "declining needs a reason") if decision == "decline" else clean_reason(reason)
    if decision == "link" and product_id is None:
        raise InvalidInput("linking needs a product id", code="missing_product")
    with inst.store.transaction() as s:
        u = get_user(s, user)
        r = s.get(DataRequest, request_id)
        if r is None:
            raise NotFound(f"no data request {request_id}", code="unknown_data_request")
        ds = s.get(Dataset, r.dataset_id) if r.dataset_id else None
        if not (u.role == Role.ADMIN or (ds is not None and ds.owner_id == u.id) or (ds is None and u.role == Role.OWNER)):
            raise Forbidden("only the dataset's owner or an admin triages this request", code="not_owner")
        if r.status in (DataRequestStatus.DECLINED, DataRequestStatus.CLOSED):
            raise Conflict(f"the request is already {r.status}", code="wrong_state")
        old = r.status
        if decision == "link":
            p = s.get(Product, product_id)
            if p is None:
                raise NotFound(f"no product {product_id}", code="unknown_product")
            if ds is not None and p.dataset_id != ds.id:
                raise InvalidInput("the product is on another dataset than the request", code="mixed_datasets")
            r.product_id = p.id
            released = s.execute(select(ProductVersion.id).where(ProductVersion.product_id == p.id,
                                                                 ProductVersion.released_at.is_not(None))).first()
            r.status = (DataRequestStatus.CLOSED if released and p.state == ProductState.RELEASED
                        else DataRequestStatus.ACCEPTED)
            if r.status == DataRequestStatus.CLOSED:
                r.closed_at = now()
        else:
            r.status = DataRequestStatus.ACCEPTED if decision == "accept" else DataRequestStatus.DECLINED
        r.reason = reason or r.reason
        r.decided_by, r.decided_at = u.id, now()
        audit.append(s, inst.signer, actor_of(u), f"data_request.{decision}", "data_request", r.id, {
            "from": old, "to": r.status, "reason": reason, "product": r.product_id})
        notices.on_request_answered(s, inst.settings, r)
        return _view(s, r, u)


def close_requests_for(s: Session, inst: Instance, actor: Actor, product_id: int) -> int:
    """Close the open or accepted requests linked to a product just released."""
    rows = s.execute(select(DataRequest).where(DataRequest.product_id == product_id,
                                               DataRequest.status.in_((DataRequestStatus.OPEN, DataRequestStatus.ACCEPTED)))).scalars().all()
    for r in rows:
        old = r.status
        r.status, r.closed_at = DataRequestStatus.CLOSED, now()
        audit.append(s, inst.signer, actor, "data_request.close", "data_request", r.id,
                     {"from": old, "to": DataRequestStatus.CLOSED, "product": product_id})
        notices.on_request_answered(s, inst.settings, r)
    return len(rows)
