"""The fixed words of the runtime, one ``StrEnum`` each (see ``queries.vocabulary`` for
what a member is and where every vocabulary is documented).

Product states live here rather than in ``products/``: revoking a licence cancels its
pending products, and ``sandbox/`` may not import ``products/``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal


class Role(StrEnum):
    """A user's role (``users.role``): what a signed-in person may do."""

    OWNER = "owner"                 # registers datasets, grants licences, sets budgets
    OPERATOR = "operator"           # holds licences, runs queries, drafts products
    REVIEWER = "reviewer"           # reviews drafts and, when delegated, templates and requests
    ADMIN = "admin"                 # users, keys, settings; acts for any owner


PUBLIC: Final = "public"
"""The role of a caller who is not signed in. No user holds it; a view allowed to
``PUBLIC`` is open to everyone, signed in or not."""

SYSTEM: Final = "system"
"""The role of the platform itself in the audit log (start-up, scheduled work)."""

Audience = Role | Literal["public"]
"""Who a view or an API route lets through: a role, or anyone."""


class LoginSurface(StrEnum):
    """Where someone signed in (the ``surface`` of ``auth.login`` and ``auth.login_failed`` records)."""

    PAGE = "page"                   # the sign-in form of the web pages
    API = "api"                     # POST /api/v1/tokens
    CLI = "cli"                     # a command run --as USER


class Credential(StrEnum):
    """What a person signed in with (the ``credential`` of ``auth.login`` and ``auth.login_failed`` records)."""

    PASSWORD = "password"
    TOKEN = "token"                 # an API token (DPS_TOKEN in the CLI)


class OrganisationKind(StrEnum):
    """What an organisation is (``organisations.kind``): only a department's users hold sharing grants."""

    DEPARTMENT = "department"
    COMPANY = "company"           # reaches sensitive data only through licences and differential privacy


class ChainAction(StrEnum):
    """Audit records about the audit chain itself (``audit_records.action``)."""

    KEY_ROTATE = "key.rotate"               # the signing key replaced; signed by the outgoing key
    HEAD_PUBLISH = "audit.head_publish"     # the chain's head published (register, disclosure report)


class HeadPlace(StrEnum):
    """Where a signed chain head was published (``audit_published_heads.place``)."""

    REGISTER = "register"
    DISCLOSURE_REPORT = "disclosure_report"


class OperationAction(StrEnum):
    """Audit records of operating the instance (``audit_records.action``; see docs/operations.md)."""

    ROTATE_MASTER = "key.rotate_master"     # every data key re-wrapped under a new master key
    BACKUP = "instance.backup"              # a backup taken: its manifest's SHA-256 and the audit head it holds
    RESTORE = "instance.restore"            # this home brought back from a backup; stored paths re-pointed


class ApprovalMode(StrEnum):
    """What must be approved before a query runs under a licence (``licences.approval_mode``)."""

    AUTOMATIC = "automatic"         # any query that passes the checks runs
    TEMPLATES = "templates"         # only approved templates run, with allowed parameter values
    EACH = "each"                   # every query is approved first, and runs once


class LicenceStatus(StrEnum):
    """A licence's status (``licences.status``)."""

    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"             # shown, never stored: an active licence past its end


class ProductState(StrEnum):
    """Where a data product is in its life (``products.state``)."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    RETURNED = "returned"
    APPROVED = "approved"
    RELEASED = "released"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    CANCELLED = "cancelled"         # its licence was revoked before release


PENDING_PRODUCT_STATES = (ProductState.DRAFT, ProductState.SUBMITTED, ProductState.RETURNED,
                          ProductState.APPROVED)
"""Not yet released, rejected, withdrawn or cancelled."""

FINAL_PRODUCT_STATES = (ProductState.REJECTED, ProductState.WITHDRAWN, ProductState.CANCELLED)


class RunStatus(StrEnum):
    """A query run's stored status (``query_runs.status``)."""

    RESERVED = "reserved"           # its loss is reserved and it is running
    CHARGED = "charged"             # it released a result and its loss was charged
    FAILED = "failed"               # it released nothing (its error code says whether it was charged)


class ClassificationChangeStatus(StrEnum):
    """Where a request to move a dataset to a less protected class stands
    (``classification_changes.status``)."""

    PENDING = "pending"             # waiting for a reviewer; the dataset keeps its class
    APPROVED = "approved"           # a reviewer approved it and the dataset moved
    REJECTED = "rejected"           # a reviewer refused it, with a reason
    SUPERSEDED = "superseded"       # a later request or a move to a more protected class replaced it


class ClassificationDecision(StrEnum):
    """What a reviewer decides on a classification change request."""

    APPROVE = "approve"
    REJECT = "reject"


class ReadAction(StrEnum):
    """The audit records of reads (``audit_records.action``): each is written in its
    own transaction once the read is allowed (``sandbox.audit.view``)."""

    DATASET_DOWNLOAD = "dataset.download"   # an open dataset's table, downloaded in clear
    PRODUCT_DOWNLOAD = "product.download"   # a product's zip or one of its tables
    PRODUCT_FILE = "product.file"           # one file of a released product package
    QUERY_PREVIEW = "query.preview"         # a query checked and costed (nothing charged)
    QUERY_REFUSE = "query.refuse"           # a query refused before any budget was touched
    RUN_DOWNLOAD = "run.download"           # a run's released (noisy) result, downloaded by its operator
