"""The fixed words of notifications (documented in docs/vocabulary.md)."""

from __future__ import annotations

from enum import StrEnum


class NoticeKind(StrEnum):
    """What a notification reports (``notifications.kind``)."""

    REQUEST_FILED = "request_filed"                   # requester: their data request was filed
    REQUEST_ANSWERED = "request_answered"             # requester: accepted, declined or linked to a product
    REQUEST_CLOSED = "request_closed"                 # requester: the product answering it was released
    APPROVAL_DECIDED = "approval_decided"             # operator: their template or query request was decided
    PRODUCT_REVIEWED = "product_reviewed"             # operator: a reviewer approved their product
    PRODUCT_RELEASED = "product_released"             # operator: their product was released
    PRODUCT_RETURNED = "product_returned"             # operator: their product was returned or rejected
    NEW_VERSION = "new_version"                       # operator: a new version of a dataset they hold a licence on
    LICENCE_REVOKED = "licence_revoked"               # operator: their licence was revoked
    LICENCE_EXPIRING = "licence_expiring"             # operator: their licence ends soon
    PRODUCT_WAITING = "product_waiting"               # reviewer: a product waits for review
    CLASSIFICATION_WAITING = "classification_waiting"  # reviewer: a classification change waits
    APPROVAL_WAITING = "approval_waiting"             # owner: a template or query request waits
    SHARE_NEW_VERSION = "share_new_version"           # grantee: a new version of a dataset shared with them


class Channel(StrEnum):
    """How a notification leaves the instance (``notification_deliveries.channel``)."""

    WEBHOOK = "webhook"
    EMAIL = "email"


class DeliveryStatus(StrEnum):
    """Where one channel's delivery stands (``notification_deliveries.status``)."""

    PENDING = "pending"         # not yet delivered; retried with back-off
    DELIVERED = "delivered"     # the webhook answered 2xx, or the SMTP server accepted the message
    FAILED = "failed"           # out of attempts; the notice stays readable in the CLI, API and pages
    SKIPPED = "skipped"         # e-mail only: the recipient has no address to send it to


AUDIENCE: dict[NoticeKind, str] = {
    NoticeKind.REQUEST_FILED: "requester", NoticeKind.REQUEST_ANSWERED: "requester",
    NoticeKind.REQUEST_CLOSED: "requester",
    NoticeKind.APPROVAL_DECIDED: "operator", NoticeKind.PRODUCT_REVIEWED: "operator",
    NoticeKind.PRODUCT_RELEASED: "operator", NoticeKind.PRODUCT_RETURNED: "operator",
    NoticeKind.NEW_VERSION: "operator", NoticeKind.LICENCE_REVOKED: "operator",
    NoticeKind.LICENCE_EXPIRING: "operator",
    NoticeKind.PRODUCT_WAITING: "reviewer", NoticeKind.CLASSIFICATION_WAITING: "reviewer",
    NoticeKind.APPROVAL_WAITING: "owner",
    NoticeKind.SHARE_NEW_VERSION: "grantee",
}
"""Whom each kind of notice is for."""
