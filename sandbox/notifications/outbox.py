"""The notification outbox: who is told what, written with the change.

Each ``on_*`` function is called once, inside the transaction of the change it
reports, and adds one :class:`~sandbox.persistence.models.Notification` per
recipient. It only inserts rows: it never contacts anything, so it never
blocks or fails the change. A deliverer (:mod:`sandbox.notifications.delivery`,
in the web server or ``notifications deliver``) sends them later, at least
once, through the channels configured in its own process; a channel covers
every notice written after it was first configured in any process
(``notification_channels``), so the process making a change need not be
configured for delivery itself.

A notice's ``facts`` are ids, names, numbers and states: never data values,
SQL, reasons or other free text, so a webhook or an e-mail carries nothing
sensitive. Requesters follow the object itself (the request, the product) for
the reasons.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from queries.errors import InvalidInput
from sandbox import audit
from sandbox.audit import SYSTEM, Actor
from sandbox.instance import Instance
from sandbox.notifications.vocabulary import AUDIENCE, Channel, DeliveryStatus, NoticeKind
from sandbox.persistence.approval_models import ApprovalDelegate, QueryRequest, QueryTemplate
from sandbox.persistence.models import (
    DataRequest, Dataset, DatasetVersion, Licence, Notification, NotificationAddress, NotificationChannel,
    NotificationDelivery, Product, User,
)
from sandbox.persistence.store import existing_row
from sandbox.settings import Settings
from sandbox.vocabulary import LicenceStatus, ProductState, Role

_ADDRESS_PART = r"[^@\s\x00-\x1f\x7f]+"
EMAIL = re.compile(rf"{_ADDRESS_PART}@{_ADDRESS_PART}\.{_ADDRESS_PART}")   # used with fullmatch
Fact = str | int | float | bool | None


def _utc(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def channels(settings: Settings) -> tuple[Channel, ...]:
    """The channels this process delivers through."""
    out = []
    if settings.notify_webhook_url:
        out.append(Channel.WEBHOOK)
    if settings.smtp_host:
        out.append(Channel.EMAIL)
    return tuple(out)


def start_channels(s: Session, settings: Settings, since_id: int | None = None) -> None:
    """Record the first time each channel of ``settings`` is seen: it covers the
    notices after ``since_id`` (default: every notice written from now on).
    Idempotent and race-free (INSERT ... ON CONFLICT DO NOTHING)."""
    on = channels(settings)
    if not on:
        return
    if since_id is None:
        since_id = int(s.execute(select(func.max(Notification.id))).scalar() or 0)
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    for channel in on:
        s.execute(insert(NotificationChannel).values(channel=str(channel), since_id=since_id,
                                                     started_at=datetime.now(UTC)).on_conflict_do_nothing())


def _clean_facts(facts: dict[str, Fact]) -> dict[str, Fact]:
    for key, value in facts.items():
        if not isinstance(value, str | int | float | bool) and value is not None:
            raise TypeError(f"notification fact {key!r} is not a scalar")
    return dict(facts)


def notify(s: Session, settings: Settings, kind: NoticeKind, object_type: str, object_id: Any, *,
           users: Iterable[int | None] = (), address: str | None = None, facts: dict[str, Fact] | None = None,
           dedup_key: str | None = None) -> int:
    """Add ``kind`` for each active user of ``users`` (ids; duplicates and None
    are skipped) and for ``address`` (an e-mail without an account). Returns
    how many notices were written."""
    facts = _clean_facts(facts or {})
    written = 0
    seen: set[int] = set()
    recipients: list[tuple[int | None, str | None]] = []
    for uid in users:
        if uid is None or uid in seen:
            continue
        seen.add(uid)
        user = s.get(User, uid)
        if user is None or not user.active:
            continue
        recipients.append((uid, None))
    if address is not None and EMAIL.fullmatch(address):
        recipients.append((None, address))
    for uid, email in recipients:
        n = Notification(kind=kind, recipient_id=uid, address=email, object_type=object_type,
                         object_id=str(object_id), facts=facts,
                         dedup_key=None if dedup_key is None else f"{dedup_key}:{uid}",
                         created_at=datetime.now(UTC))
        s.add(n)
        s.flush()
        if written == 0:
            start_channels(s, settings, n.id - 1)
        written += 1
    return written


def _users_with_role(s: Session, role: Role, *, excluding: int | None = None) -> list[int]:
    return [u for u in s.execute(select(User.id).where(User.role == role, User.active.is_(True))
                                 .order_by(User.id)).scalars() if u != excluding]


def _approvers(s: Session, ds: Dataset) -> list[int]:
    """Who decides templates and query requests on ``ds``: its owner and the reviewers it delegated to."""
    delegates = s.execute(select(ApprovalDelegate.user_id).where(ApprovalDelegate.dataset_id == ds.id)
                          .order_by(ApprovalDelegate.id)).scalars()
    return [ds.owner_id, *delegates]


# ---------------------------------------------------------------- requesters

def on_request_filed(s: Session, settings: Settings, r: DataRequest) -> int:
    return notify(s, settings, NoticeKind.REQUEST_FILED, "data_request", r.id, users=[r.filed_by],
                  address=None if r.filed_by else r.contact, facts={"request": r.id, "title": r.title[:200]})


def on_request_answered(s: Session, settings: Settings, r: DataRequest) -> int:
    kind = NoticeKind.REQUEST_CLOSED if r.status == "closed" else NoticeKind.REQUEST_ANSWERED
    return notify(s, settings, kind, "data_request", r.id, users=[r.filed_by],
                  address=None if r.filed_by else r.contact,
                  facts={"request": r.id, "title": r.title[:200], "status": str(r.status), "product": r.product_id})


# ---------------------------------------------------------------- owners and operators: approvals

def on_approval_waiting(s: Session, settings: Settings, item: QueryTemplate | QueryRequest) -> int:
    ds = existing_row(s, Dataset, item.dataset_id)
    what = "template" if isinstance(item, QueryTemplate) else "query_request"
    return notify(s, settings, NoticeKind.APPROVAL_WAITING, what, item.id, users=_approvers(s, ds),
                  facts={"what": what, "id": item.id, "dataset": ds.name, "licence": item.licence_id})


def on_approval_decided(s: Session, settings: Settings, item: QueryTemplate | QueryRequest) -> int:
    ds = existing_row(s, Dataset, item.dataset_id)
    if isinstance(item, QueryTemplate):
        what, operator = "template", item.author_id
    else:
        what, operator = "query_request", item.operator_id
    return notify(s, settings, NoticeKind.APPROVAL_DECIDED, what, item.id, users=[operator],
                  facts={"what": what, "id": item.id, "dataset": ds.name, "status": str(item.status)})


# ---------------------------------------------------------------- products

def on_product_submitted(s: Session, settings: Settings, p: Product) -> int:
    """Every reviewer but the author hears of a product waiting for review."""
    return notify(s, settings, NoticeKind.PRODUCT_WAITING, "product", p.id,
                  users=_users_with_role(s, Role.REVIEWER, excluding=p.author_id),
                  facts={"product": p.id, "title": p.title[:200], "state": str(p.state)})


def on_product_decided(s: Session, settings: Settings, p: Product) -> int:
    """The author hears of a review (an approval, a return, a rejection) and of the release."""
    kind = {ProductState.RELEASED: NoticeKind.PRODUCT_RELEASED, ProductState.RETURNED: NoticeKind.PRODUCT_RETURNED,
            ProductState.REJECTED: NoticeKind.PRODUCT_RETURNED}.get(ProductState(p.state), NoticeKind.PRODUCT_REVIEWED)
    return notify(s, settings, kind, "product", p.id, users=[p.author_id],
                  facts={"product": p.id, "title": p.title[:200], "state": str(p.state)})


def on_classification_waiting(s: Session, settings: Settings, change_id: int, ds: Dataset, to: str) -> int:
    """A request to move ``ds`` to a less protected class waits for a reviewer
    (any reviewer but the dataset's owner)."""
    return notify(s, settings, NoticeKind.CLASSIFICATION_WAITING, "classification_change", change_id,
                  users=_users_with_role(s, Role.REVIEWER, excluding=ds.owner_id),
                  facts={"request": change_id, "dataset": ds.name, "from": str(ds.classification), "to": str(to)})


# ---------------------------------------------------------------- licences and versions

def _live_licences(s: Session, dataset_id: int) -> list[Licence]:
    current = datetime.now(UTC)
    return [lic for lic in s.execute(select(Licence).where(Licence.dataset_id == dataset_id,
                                                           Licence.status == LicenceStatus.ACTIVE)
                                     .order_by(Licence.id)).scalars()
            if _utc(lic.expires_at) > current]


def on_new_version(s: Session, settings: Settings, version: DatasetVersion) -> int:
    """Every operator holding a live licence on the dataset hears of its new version."""
    if version.number == 1:
        return 0
    ds = existing_row(s, Dataset, version.dataset_id)
    written = 0
    for lic in _live_licences(s, ds.id):
        written += notify(s, settings, NoticeKind.NEW_VERSION, "dataset_version", version.id, users=[lic.operator_id],
                          facts={"dataset": ds.name, "version": version.number, "licence": lic.id})
    return written


def on_licence_revoked(s: Session, settings: Settings, lic: Licence) -> int:
    ds = existing_row(s, Dataset, lic.dataset_id)
    return notify(s, settings, NoticeKind.LICENCE_REVOKED, "licence", lic.id, users=[lic.operator_id],
                  facts={"licence": lic.id, "dataset": ds.name})


def on_share_new_version(s: Session, settings: Settings, grant_id: int, grantee_id: int, ds: Dataset,
                         number: int) -> int:
    """The holder of a live sharing grant hears of the dataset's new version
    (once per grant and version)."""
    return notify(s, settings, NoticeKind.SHARE_NEW_VERSION, "share_request", grant_id, users=[grantee_id],
                  dedup_key=f"share_new_version:{grant_id}:{number}",
                  facts={"dataset": ds.name, "version": number, "grant": grant_id})


def queue_expiring(inst: Instance, actor: Actor = SYSTEM) -> int:
    """Tell each operator once when a live licence of theirs ends within
    ``notify_expiry_days`` (once per licence and end date: an extended licence
    is announced again before its new end). Audited as ``notification.queue``."""
    horizon = datetime.now(UTC) + timedelta(days=inst.settings.notify_expiry_days)
    written = 0
    with inst.store.read() as s:
        ids = [lic.id for lic in s.execute(select(Licence).where(Licence.status == LicenceStatus.ACTIVE)
                                           .order_by(Licence.id)).scalars()
               if datetime.now(UTC) < _utc(lic.expires_at) <= horizon]
    for lic_id in ids:
        try:
            with inst.store.transaction() as s:
                lic = existing_row(s, Licence, lic_id)
                end = _utc(lic.expires_at)
                key = f"licence_expiring:{lic.id}:{end.isoformat()}"
                if s.execute(select(Notification.id).where(Notification.dedup_key == f"{key}:{lic.operator_id}")
                             ).first() is not None:
                    continue
                ds = existing_row(s, Dataset, lic.dataset_id)
                count = notify(s, inst.settings, NoticeKind.LICENCE_EXPIRING, "licence", lic.id,
                               users=[lic.operator_id], dedup_key=key,
                               facts={"licence": lic.id, "dataset": ds.name, "expires_at": end.isoformat()})
                if count:
                    audit.append(s, inst.signer, actor, "notification.queue", "licence", lic.id,
                                 {"kind": NoticeKind.LICENCE_EXPIRING, "expires_at": end.isoformat(),
                                  "recipients": count})
                written += count
        except IntegrityError:      # another deliverer wrote the same notice first
            continue
    return written


# ---------------------------------------------------------------- reading

@dataclass(frozen=True)
class DeliveryView:
    channel: Channel
    status: DeliveryStatus
    attempts: int
    delivered_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"channel": str(self.channel), "status": str(self.status), "attempts": self.attempts,
                "delivered_at": self.delivered_at}


@dataclass(frozen=True)
class NoticeView:
    id: int
    kind: NoticeKind
    audience: str
    object_type: str
    object_id: str
    facts: dict[str, Fact]
    text: str
    created_at: str
    deliveries: tuple[DeliveryView, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": str(self.kind), "audience": self.audience, "object_type": self.object_type,
                "object_id": self.object_id, "facts": dict(self.facts), "text": self.text,
                "created_at": self.created_at, "deliveries": [d.to_dict() for d in self.deliveries]}


def notice_view(s: Session, n: Notification, lang: str = "en") -> NoticeView:
    from sandbox.notifications.messages import notice_text

    kind = NoticeKind(n.kind)
    deliveries = s.execute(select(NotificationDelivery).where(NotificationDelivery.notification_id == n.id)
                           .order_by(NotificationDelivery.id)).scalars()
    return NoticeView(n.id, kind, AUDIENCE[kind], n.object_type, n.object_id, dict(n.facts),
                      notice_text(kind, n.facts, lang), _utc(n.created_at).isoformat(),
                      tuple(DeliveryView(Channel(d.channel), DeliveryStatus(d.status), d.attempts,
                                         _utc(d.delivered_at).isoformat() if d.delivered_at else None)
                            for d in deliveries))


def list_notices(inst: Instance, user: str, *, limit: int = 100, offset: int = 0,
                 lang: str = "en") -> list[NoticeView]:
    """The user's notices, newest first (``offset`` of them skipped)."""
    from sandbox.users import get_user

    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000", code="invalid_limit")
    if offset < 0:
        raise InvalidInput("offset must not be negative", code="invalid_limit")
    with inst.store.read() as s:
        who = get_user(s, user)
        rows = s.execute(select(Notification).where(Notification.recipient_id == who.id)
                         .order_by(Notification.id.desc()).offset(offset).limit(limit)).scalars().all()
        return [notice_view(s, n, lang) for n in rows]


def count_notices(inst: Instance, user: str) -> int:
    from sandbox.users import get_user

    with inst.store.read() as s:
        who = get_user(s, user)
        return int(s.execute(select(func.count()).select_from(Notification)
                             .where(Notification.recipient_id == who.id)).scalar_one())


@dataclass(frozen=True)
class OutboxSummary:
    """How the outbox stands: notices, and deliveries by channel and status."""

    notices: int
    deliveries: dict[str, dict[str, int]]
    channels: dict[str, int]          # each configured channel and the last notice before it started

    def to_dict(self) -> dict[str, Any]:
        return {"notices": self.notices, "deliveries": {c: dict(v) for c, v in self.deliveries.items()},
                "channels": dict(self.channels)}


def outbox_summary(inst: Instance) -> OutboxSummary:
    with inst.store.read() as s:
        notices = int(s.execute(select(func.count()).select_from(Notification)).scalar_one())
        counts: dict[str, dict[str, int]] = {}
        for channel, status, n in s.execute(select(NotificationDelivery.channel, NotificationDelivery.status,
                                                   func.count()).group_by(NotificationDelivery.channel,
                                                                          NotificationDelivery.status)):
            counts.setdefault(channel, {})[status] = int(n)
        started = {c.channel: c.since_id for c in s.execute(select(NotificationChannel)).scalars()}
        return OutboxSummary(notices, counts, started)


def set_address(inst: Instance, user: str, email: str | None) -> None:
    """Set (or, with None, clear) where the user's notices are e-mailed. Audited
    as ``notification.address`` (the address itself stays out of the record)."""
    from sandbox.users import actor_of, get_user

    if email is not None:
        email = email.strip()
        if not EMAIL.fullmatch(email) or len(email) > 300:
            raise InvalidInput("give an e-mail address (name@domain)", code="invalid_email")
    with inst.store.transaction() as s:
        who = get_user(s, user)
        row = s.get(NotificationAddress, who.id)
        if email is None:
            if row is not None:
                s.delete(row)
        elif row is None:
            s.add(NotificationAddress(user_id=who.id, email=email, updated_at=datetime.now(UTC)))
        else:
            row.email, row.updated_at = email, datetime.now(UTC)
        audit.append(s, inst.signer, actor_of(who), "notification.address", "user", who.id,
                     {"user": who.name, "email_set": email is not None})


def get_address(inst: Instance, user: str) -> str | None:
    from sandbox.users import get_user

    with inst.store.read() as s:
        row = s.get(NotificationAddress, get_user(s, user).id)
        return row.email if row is not None else None
