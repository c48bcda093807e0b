"""Delivering the outbox: webhooks and e-mail, at least once.

A pass first gives each notice a delivery row per channel this process is
configured for (``skipped`` for e-mail to someone without an address), for the
notices the channel covers (written after it was first configured, see
:func:`~sandbox.notifications.outbox.start_channels`). It then claims the due deliveries of the channels this process is configured
for (one short transaction: each claimed delivery counts an attempt and is
leased until the attempt's time limit has surely passed, so a deliverer that
dies mid-send leaves it to be retried, never lost), sends each outside any
transaction, then records the outcome: ``delivered``; or, after a failure, a
retry at ``notify_retry_s · 2^(attempts-1)`` (at most an hour) until
``notify_max_attempts``, then ``failed``. Delivered and failed are audited
(``notification.deliver``, ``notification.fail``). Several deliverers may run
at once (the web server, ``notifications deliver --loop``): on PostgreSQL they
skip each other's locked rows, on SQLite the write lock serialises the claims.
Since delivery is at least once, receivers deduplicate by ``X-DPS-Delivery``.

Webhook requests are ``POST`` with a JSON body and the headers
``X-DPS-Event`` (the kind), ``X-DPS-Delivery`` (the notification id),
``X-DPS-Timestamp`` (Unix seconds) and ``X-DPS-Signature: sha256=<hex>``, the
HMAC-SHA256 under ``DPS_NOTIFY_WEBHOOK_SECRET`` of ``<timestamp>.<body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import smtplib
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from queries.errors import InvalidInput
from sandbox import audit
from sandbox.audit import SYSTEM
from sandbox.instance import Instance
from sandbox.notifications.messages import notice_text
from sandbox.notifications.outbox import channels, queue_expiring, start_channels
from sandbox.notifications.vocabulary import AUDIENCE, Channel, DeliveryStatus, NoticeKind
from sandbox.persistence.models import (
    Notification, NotificationAddress, NotificationChannel, NotificationDelivery, User,
)
from sandbox.persistence.store import existing_row, rowcount
from sandbox.settings import Settings

log = logging.getLogger("dp_sandbox.notifications")

MAX_BACKOFF_S = 3600.0
CLAIM_BATCH = 50


class DeliveryError(Exception):
    """A delivery that did not go through; its text is short and quotes no data."""


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    notification_id: int
    channel: Channel
    attempt: int
    body: dict[str, Any]
    email: str | None


@dataclass
class PassReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    queued: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "retrying": self.retrying, "failed": self.failed,
                "queued": self.queued}


def check_configuration(settings: Settings) -> None:
    """Refuse a webhook configuration that cannot deliver signed bodies."""
    if not settings.notify_webhook_url:
        return
    parts = urlsplit(settings.notify_webhook_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("DPS_NOTIFY_WEBHOOK_URL must be an http:// or https:// URL", code="invalid_setting",
                           setting="notify_webhook_url")
    if not settings.notify_webhook_secret:
        raise InvalidInput("DPS_NOTIFY_WEBHOOK_URL needs DPS_NOTIFY_WEBHOOK_SECRET to sign its bodies",
                           code="webhook_secret_missing", setting="notify_webhook_secret")


def backoff(settings: Settings, attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones."""
    return min(MAX_BACKOFF_S, settings.notify_retry_s * 2 ** max(0, attempts - 1))


def _lease(settings: Settings) -> timedelta:
    return timedelta(seconds=max(60.0, 3 * settings.notify_timeout_s))


def notice_body(s: Session, n: Notification) -> dict[str, Any]:
    """What a webhook receives (and an e-mail says): the notice's kind, object,
    facts and text. No address, reason, SQL or data value."""
    kind = NoticeKind(n.kind)
    recipient = existing_row(s, User, n.recipient_id).name if n.recipient_id is not None else None
    created = n.created_at if n.created_at.tzinfo else n.created_at.replace(tzinfo=UTC)
    return {"id": n.id, "kind": str(kind), "audience": AUDIENCE[kind], "recipient": recipient,
            "object_type": n.object_type, "object_id": n.object_id, "facts": dict(n.facts),
            "text": notice_text(kind, n.facts, "en"), "created_at": created.isoformat()}


ENSURE_BATCH = 500


def ensure_deliveries(inst: Instance) -> int:
    """Add the missing delivery rows of this process's channels; returns how many."""
    on = channels(inst.settings)
    if not on:
        return 0
    added = 0
    try:
        with inst.store.transaction() as s:
            start_channels(s, inst.settings)
            for channel in on:
                start = existing_row(s, NotificationChannel, str(channel))
                has_row = (select(NotificationDelivery.id)
                           .where(NotificationDelivery.notification_id == Notification.id,
                                  NotificationDelivery.channel == str(channel)).exists())
                for n in s.execute(select(Notification).where(Notification.id > start.since_id, ~has_row)
                                   .order_by(Notification.id).limit(ENSURE_BATCH)).scalars():
                    status = DeliveryStatus.PENDING
                    if channel == Channel.EMAIL and _email_of(s, n) is None:
                        status = DeliveryStatus.SKIPPED
                    s.add(NotificationDelivery(notification_id=n.id, channel=str(channel), status=status,
                                               attempts=0, next_attempt_at=n.created_at, last_error=""))
                    added += 1
                s.flush()
    except IntegrityError:      # another deliverer added the same rows first
        return 0
    return added


def _email_of(s: Session, n: Notification) -> str | None:
    if n.address is not None:
        return n.address
    if n.recipient_id is None:
        return None
    addr = s.get(NotificationAddress, n.recipient_id)
    return addr.email if addr is not None else None


def claim(inst: Instance, limit: int = CLAIM_BATCH) -> list[Claim]:
    """Lease up to ``limit`` due deliveries of this process's channels."""
    on = channels(inst.settings)
    if not on:
        return []
    current = datetime.now(UTC)
    with inst.store.transaction() as s:
        stmt = (select(NotificationDelivery)
                .where(NotificationDelivery.status == DeliveryStatus.PENDING,
                       NotificationDelivery.channel.in_([str(c) for c in on]),
                       NotificationDelivery.next_attempt_at <= current)
                .order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id).limit(limit))
        if s.get_bind().dialect.name != "sqlite":
            stmt = stmt.with_for_update(skip_locked=True)
        claims = []
        for d in s.execute(stmt).scalars().all():
            d.attempts += 1
            d.next_attempt_at = current + _lease(inst.settings)
            n = existing_row(s, Notification, d.notification_id)
            claims.append(Claim(d.id, n.id, Channel(d.channel), d.attempts, notice_body(s, n), _email_of(s, n)))
        return claims


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def send_webhook(settings: Settings, c: Claim) -> None:
    body = json.dumps(c.body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    timestamp = str(int(time.time()))
    parts = urlsplit(settings.notify_webhook_url)
    conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_class(parts.hostname or "", parts.port, timeout=settings.notify_timeout_s)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", path, body=body, headers={
            "Content-Type": "application/json; charset=utf-8", "User-Agent": "dp-sandbox",
            "X-DPS-Event": c.body["kind"], "X-DPS-Delivery": str(c.notification_id),
            "X-DPS-Timestamp": timestamp,
            "X-DPS-Signature": sign(settings.notify_webhook_secret, timestamp, body)})
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as e:
        raise DeliveryError(f"webhook unreachable ({type(e).__name__})") from None
    finally:
        conn.close()
    if not 200 <= status < 300:
        raise DeliveryError(f"webhook answered HTTP {status}")


def send_email(settings: Settings, c: Claim) -> None:
    if c.email is None:
        raise DeliveryError("the recipient has no e-mail address any more")
    kind = NoticeKind(c.body["kind"])
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = c.email
    msg["Subject"] = " ".join(f"[dp-sandbox] {c.body['text']}".split())[:200]   # one line, whatever the title
    msg["X-DPS-Delivery"] = str(c.notification_id)
    msg.set_content(f"{c.body['text']}\n\n{notice_text(kind, c.body['facts'], 'zh')}\n\n"
                    "dp-sandbox notifications list --as " + (c.body["recipient"] or "-") + "\n")
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.notify_timeout_s) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            smtp.send_message(msg)
    except smtplib.SMTPResponseException as e:
        raise DeliveryError(f"SMTP server answered {e.smtp_code}") from None
    except (OSError, smtplib.SMTPException) as e:
        raise DeliveryError(f"SMTP server unreachable ({type(e).__name__})") from None


SENDERS = {Channel.WEBHOOK: send_webhook, Channel.EMAIL: send_email}


def record_outcome(inst: Instance, c: Claim, error: str | None) -> DeliveryStatus:
    """Write what one attempt came to (only while the delivery is still pending)."""
    current = datetime.now(UTC)
    settings = inst.settings
    with inst.store.transaction() as s:
        pending = (NotificationDelivery.id == c.delivery_id) & (NotificationDelivery.status == DeliveryStatus.PENDING)
        if error is None:
            status = DeliveryStatus.DELIVERED
            changed = rowcount(s.execute(update(NotificationDelivery).where(pending).values(
                status=status, delivered_at=current, last_error="")))
            if changed:
                audit.append(s, inst.signer, SYSTEM, "notification.deliver", "notification", c.notification_id,
                             {"channel": str(c.channel), "attempts": c.attempt})
            return status
        if c.attempt >= settings.notify_max_attempts:
            status = DeliveryStatus.FAILED
            changed = rowcount(s.execute(update(NotificationDelivery).where(pending).values(
                status=status, last_error=error[:300])))
            if changed:
                audit.append(s, inst.signer, SYSTEM, "notification.fail", "notification", c.notification_id,
                             {"channel": str(c.channel), "attempts": c.attempt, "error": error[:300]})
            return status
        s.execute(update(NotificationDelivery).where(pending).values(
            next_attempt_at=current + timedelta(seconds=backoff(settings, c.attempt)), last_error=error[:300]))
        return DeliveryStatus.PENDING


def deliver_due(inst: Instance, *, limit: int = CLAIM_BATCH) -> PassReport:
    """One pass: queue the licence-expiry notices that are due, then claim and
    send the due deliveries (in batches of ``limit`` until none is due)."""
    check_configuration(inst.settings)
    report = PassReport(queued=queue_expiring(inst))
    while ensure_deliveries(inst) == ENSURE_BATCH:
        pass
    while True:
        claims = claim(inst, limit)
        for c in claims:
            try:
                SENDERS[c.channel](inst.settings, c)
                error = None
            except DeliveryError as e:
                error = str(e)
            except Exception as e:      # a message that cannot be built or sent: a failed attempt, never a stuck one
                error = f"{c.channel} delivery failed ({type(e).__name__})"
            if error is not None:
                report.errors.append(error)
            status = record_outcome(inst, c, error)
            if status == DeliveryStatus.DELIVERED:
                report.delivered += 1
            elif status == DeliveryStatus.FAILED:
                report.failed += 1
            else:
                report.retrying += 1
        if len(claims) < limit:
            return report


class Deliverer:
    """Delivers the outbox every ``notify_poll_s`` seconds in a daemon thread
    until :meth:`stop` (the web server's background delivery)."""

    def __init__(self, inst: Instance) -> None:
        check_configuration(inst.settings)
        self.inst = inst
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name="dps-notifications", daemon=True)

    def start(self) -> Deliverer:
        self._thread.start()
        return self

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                report = deliver_due(self.inst)
                if report.delivered or report.failed or report.retrying:
                    log.info("notifications: %d delivered, %d retrying, %d failed",
                             report.delivered, report.retrying, report.failed)
            except Exception:   # the loop outlives a store hiccup; the traceback names no data
                log.exception("notification delivery pass failed")
            self._stop.wait(self.inst.settings.notify_poll_s)

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._thread.join(timeout)


def start_background(inst: Instance) -> Deliverer | None:
    """A started :class:`Deliverer` when a webhook or SMTP is configured, else None."""
    if not channels(inst.settings):
        return None
    deliverer = Deliverer(inst)
    with inst.store.transaction() as s:     # from now on, every notice written is covered
        start_channels(s, inst.settings)
    return deliverer.start()
