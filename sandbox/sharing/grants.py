"""Sharing between departments: the responsibility list, requests and grants.

A dataset's ``[sharing]`` section (see :mod:`queries.sharing_policy`) is independent
of its opening class. The section a dataset is registered with takes effect at
once; a later version that declares a different section only *proposes* a change,
which takes effect when a reviewer approves it (audited either way).

A department user requests named columns for a stated duty (purpose) and legal
basis. An ``unconditional`` dataset is granted at once; a ``conditional`` one
waits for its owner, who approves or refuses — a refusal must name one of the
declared conditions, and a request must name the declared condition it meets, so
no condition beyond those declared can be imposed. Every grant is purpose-bound,
time-limited and revocable, and only users of a ``department`` hold one. Every
refusal raises a specific code inside the transaction, so it changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, UTC
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from queries.errors import Conflict, Forbidden, InvalidInput, NotFound
from queries.policy import DatasetPolicy
from queries.sharing_policy import NOT_SHARED, SharingClass, SharingPolicy
from queries.vocabulary import Classification
from sandbox import audit
from sandbox.audit import Actor
from sandbox.datasets import get_dataset, latest_version, version_policy
from sandbox.instance import Instance
from sandbox.notifications import outbox as notices
from sandbox.persistence.models import (
    Dataset, DatasetVersion, Organisation, ShareRequest, SharingChange, SharingSetting, User,
)
from sandbox.persistence.store import existing_row
from sandbox.organisations import organisation_of
from sandbox.users import actor_of, get_user
from sandbox.vocabulary import OrganisationKind, Role

DEFAULT_GRANT_DAYS = 365
MAX_GRANT_DAYS = 3 * 366


class GrantStatus(StrEnum):
    PENDING = "pending"
    GRANTED = "granted"
    REJECTED = "rejected"
    REVOKED = "revoked"
    EXPIRED = "expired"        # shown, never stored: a granted request past its term


class ShareDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


def as_utc(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- the effective sharing section

def effective_sharing(s: Session, ds: Dataset) -> SharingPolicy:
    setting = s.get(SharingSetting, ds.id)
    return SharingPolicy.from_dict(setting.policy) if setting is not None else NOT_SHARED


def supplied_sharing(s: Session, ds: Dataset) -> SharingPolicy:
    """The sharing section of a dataset that may be supplied; a restricted or
    unshared dataset is refused."""
    if ds.classification == Classification.RESTRICTED:
        raise Forbidden(f"dataset '{ds.name}' is restricted: it is never supplied", code="dataset_restricted",
                        dataset=ds.name)
    sharing = effective_sharing(s, ds)
    if not sharing.shareable:
        raise Forbidden(f"dataset '{ds.name}' is not shareable (sharing class none)", code="not_shareable",
                        dataset=ds.name)
    return sharing


def on_new_version(s: Session, inst: Instance, actor: Actor, ds: Dataset, version: DatasetVersion,
                   policy: DatasetPolicy) -> None:
    """Called in the transaction that registers a version: the first version sets
    the sharing section; a later one that declares a different section proposes a
    change for a reviewer; the grantees of the dataset are notified."""
    declared = policy.sharing or NOT_SHARED
    setting = s.get(SharingSetting, ds.id)
    if setting is None and version.number == 1:
        if policy.sharing is None:            # not shared, as every dataset without a [sharing] section
            return
        s.add(SharingSetting(dataset_id=ds.id, policy=declared.to_dict(), version_number=version.number))
        s.flush()
        audit.append(s, inst.signer, actor, "sharing.set", "dataset", ds.id,
                     {"dataset": ds.name, "version": version.number, **declared.to_dict()})
    else:
        current = SharingPolicy.from_dict(setting.policy) if setting is not None else NOT_SHARED
        if declared != current:
            for old in s.execute(select(SharingChange).where(SharingChange.dataset_id == ds.id,
                                                             SharingChange.status == "pending")).scalars():
                old.status = "superseded"
            change = SharingChange(dataset_id=ds.id, version_number=version.number, previous=current.to_dict(),
                                   proposed=declared.to_dict(), status="pending", proposed_by=ds.owner_id)
            s.add(change)
            s.flush()
            audit.append(s, inst.signer, actor, "sharing.change_propose", "sharing_change", change.id,
                         {"dataset": ds.name, "version": version.number, "from": current.to_dict(),
                          "to": declared.to_dict()})
    notify_grantees(s, inst, actor, ds, version.number)


def notify_grantees(s: Session, inst: Instance, actor: Actor, ds: Dataset, number: int) -> int:
    """Tell the holder of each live grant on the dataset of its new version (a
    ``share_new_version`` notice in the one outbox, see docs/notifications.md)."""
    count = 0
    for req in s.execute(select(ShareRequest).where(ShareRequest.dataset_id == ds.id,
                                                    ShareRequest.status == GrantStatus.GRANTED)).scalars():
        if as_utc(req.expires_at) <= now():
            continue
        count += notices.on_share_new_version(s, inst.settings, req.id, req.requester_id, ds, number)
    if count:
        s.flush()
        audit.append(s, inst.signer, actor, "share.notify", "dataset", ds.id,
                     {"dataset": ds.name, "version": number, "grants": count})
    return count


@dataclass(frozen=True)
class SharingChangeView:
    id: int
    dataset: str
    version: int
    status: str
    previous: dict[str, Any]
    proposed: dict[str, Any]
    reason: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _change_view(s: Session, c: SharingChange) -> SharingChangeView:
    return SharingChangeView(c.id, existing_row(s, Dataset, c.dataset_id).name, c.version_number, c.status, c.previous,
                             c.proposed, c.reason, as_utc(c.created_at).isoformat())


def list_sharing_changes(inst: Instance, *, status: str | None = None) -> list[SharingChangeView]:
    with inst.store.read() as s:
        stmt = select(SharingChange).order_by(SharingChange.id)
        if status:
            stmt = stmt.where(SharingChange.status == status)
        return [_change_view(s, c) for c in s.execute(stmt).scalars()]


def decide_sharing_change(inst: Instance, user: str, change_id: int, decision: str, reason: str = "") -> str:
    """A reviewer approves or rejects a proposed change of a dataset's sharing section."""
    try:
        verdict = ShareDecision(decision)
    except ValueError:
        raise InvalidInput("decision must be approve or reject", code="invalid_decision") from None
    if verdict == ShareDecision.REJECT and not (reason or "").strip():
        raise InvalidInput("a rejection needs a reason", code="missing_reason")
    with inst.store.transaction() as s:
        reviewer = get_user(s, user)
        if reviewer.role != Role.REVIEWER:
            raise Forbidden("a reviewer decides changes of a sharing class", code="wrong_role")
        change = s.get(SharingChange, change_id)
        if change is None:
            raise NotFound(f"no sharing change {change_id}", code="unknown_sharing_change")
        if change.status != "pending":
            raise Conflict(f"sharing change {change_id} is {change.status}", code="not_pending")
        change.status = "approved" if verdict == ShareDecision.APPROVE else "rejected"
        change.decided_by, change.decided_at, change.reason = reviewer.id, now(), (reason or "").strip()
        if verdict == ShareDecision.APPROVE:
            setting = s.get(SharingSetting, change.dataset_id)
            if setting is None:
                setting = SharingSetting(dataset_id=change.dataset_id, policy=change.proposed,
                                         version_number=change.version_number)
                s.add(setting)
            setting.policy, setting.version_number = change.proposed, change.version_number
            setting.approved_by, setting.updated_at = reviewer.id, now()
        s.flush()
        audit.append(s, inst.signer, actor_of(reviewer), "sharing.change_decide", "sharing_change", change.id,
                     {"dataset": existing_row(s, Dataset, change.dataset_id).name, "decision": verdict.value,
                      "reason": change.reason, "to": change.proposed})
        return change.status


# ---------------------------------------------------------------- who may receive

def department_of(s: Session, user: User) -> Organisation:
    """The user's department, or the refusal that says why they cannot hold grants."""
    if not user.active:
        raise Forbidden("the account is disabled", code="user_inactive")
    org = organisation_of(s, user)
    if org is None:
        raise Forbidden("only users of a registered department can request or hold sharing grants",
                        code="not_a_department")
    if org.kind != OrganisationKind.DEPARTMENT:
        raise Forbidden("users of a company cannot hold sharing grants; companies use licences "
                        "(authorized operation)", code="company_not_eligible")
    return org


def may_see_list(s: Session, user: User) -> None:
    if user.role in (Role.OWNER, Role.REVIEWER, Role.ADMIN):
        return
    department_of(s, user)


def dataset_columns(policy: DatasetPolicy) -> dict[str, str | None]:
    """Every ``table.column`` of a dataset version with its type category."""
    return {f"{t.name}.{c.name}": c.type for t in policy.tables for c in t.columns}


def resolve_columns(requested: list[str], sharing: SharingPolicy, policy: DatasetPolicy) -> list[str]:
    """Requested names (``table.column``, or a bare column that is unambiguous among
    the shareable ones) → shareable ``table.column`` names, or a specific refusal."""
    names = [n.strip() for n in requested if n and n.strip()]
    if not names:
        raise InvalidInput("name at least one column", code="no_columns")
    every = dataset_columns(policy)
    out: list[str] = []
    for name in names:
        if "." in name:
            candidates = [name] if name in sharing.columns else []
            exists = name in every
        else:
            candidates = [c for c in sharing.columns if c.split(".", 1)[1] == name]
            exists = any(c.split(".", 1)[1] == name for c in every)
        if len(candidates) > 1:
            raise InvalidInput(f"column '{name}' is in several tables; write table.column", code="ambiguous_column",
                               column=name)
        if not candidates:
            if exists:
                raise Forbidden(f"column '{name}' is not shareable", code="column_not_shareable", column=name)
            raise NotFound(f"the dataset has no column '{name}'", code="unknown_column", column=name)
        if candidates[0] not in out:
            out.append(candidates[0])
    return out


# ---------------------------------------------------------------- requests and grants

@dataclass(frozen=True)
class ShareGrantView:
    id: int
    dataset: str
    provider: str
    requester: str
    department: str
    columns: tuple[str, ...]
    purpose: str
    basis: str
    condition: str
    status: GrantStatus
    expires_at: str
    created_at: str
    decided_at: str | None
    reason: str
    refusal_condition: str
    revoke_reason: str
    last_version: int | None

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["columns"] = list(self.columns)
        d["status"] = self.status.value
        return d


def provider_name(s: Session, ds: Dataset) -> str:
    owner = s.get(User, ds.owner_id)
    org = organisation_of(s, owner) if owner else None
    return org.name if org is not None else (ds.publisher or (owner.organisation if owner else "") or "")


def status_of(req: ShareRequest) -> GrantStatus:
    if req.status == GrantStatus.GRANTED and as_utc(req.expires_at) <= now():
        return GrantStatus.EXPIRED
    return GrantStatus(req.status)


def grant_view(s: Session, req: ShareRequest) -> ShareGrantView:
    ds = existing_row(s, Dataset, req.dataset_id)
    return ShareGrantView(
        req.id, ds.name, provider_name(s, ds), existing_row(s, User, req.requester_id).name,
        existing_row(s, Organisation, req.org_id).name,
        tuple(req.columns), req.purpose, req.basis, req.condition, status_of(req), as_utc(req.expires_at).isoformat(),
        as_utc(req.created_at).isoformat(), as_utc(req.decided_at).isoformat() if req.decided_at else None,
        req.reason, req.refusal_condition, req.revoke_reason, req.last_version)


def _expiry(expires: date | None) -> datetime:
    if expires is None:
        return now() + timedelta(days=DEFAULT_GRANT_DAYS)
    at = datetime.combine(expires, time(23, 59, 59), tzinfo=UTC)
    if at <= now():
        raise InvalidInput("the end of the grant's term is in the past", code="invalid_expiry")
    if at > now() + timedelta(days=MAX_GRANT_DAYS):
        raise InvalidInput(f"a grant lasts at most {MAX_GRANT_DAYS} days", code="invalid_expiry")
    return at


def request_share(inst: Instance, user: str, *, dataset: str, columns: list[str], purpose: str, basis: str,
                  condition: str = "", expires: date | None = None) -> ShareGrantView:
    """File a request; an unconditional dataset is granted in the same transaction."""
    if not (purpose or "").strip():
        raise InvalidInput("state the duty the data is needed for (purpose)", code="missing_purpose")
    if not (basis or "").strip():
        raise InvalidInput("state the legal basis", code="missing_basis")
    expires_at = _expiry(expires)
    condition = (condition or "").strip()
    with inst.store.transaction() as s:
        requester = get_user(s, user)
        org = department_of(s, requester)
        ds = get_dataset(s, dataset)
        sharing = supplied_sharing(s, ds)
        granted_columns = resolve_columns(columns, sharing, version_policy(latest_version(s, ds)))
        if sharing.cls == SharingClass.CONDITIONAL:
            if not condition:
                raise InvalidInput("name the declared condition the request meets", code="condition_required")
            if condition not in sharing.conditions:
                raise InvalidInput("the condition is not one the provider declared", code="undeclared_condition")
        elif condition:
            raise InvalidInput("an unconditionally shareable dataset declares no conditions",
                               code="undeclared_condition")
        req = ShareRequest(dataset_id=ds.id, requester_id=requester.id, org_id=org.id, columns=granted_columns,
                           purpose=purpose.strip(), basis=basis.strip(), condition=condition,
                           status=GrantStatus.PENDING.value, expires_at=expires_at)
        s.add(req)
        s.flush()
        me = actor_of(requester)
        audit.append(s, inst.signer, me, "share.request", "share_request", req.id, {
            "dataset": ds.name, "department": org.name, "columns": granted_columns, "purpose": req.purpose,
            "basis": req.basis, "condition": condition, "expires": expires_at.isoformat()})
        if sharing.cls == SharingClass.UNCONDITIONAL:
            req.status, req.decided_at, req.reason = GrantStatus.GRANTED.value, now(), "unconditional class"
            s.flush()
            audit.append(s, inst.signer, audit.SYSTEM, "share.grant", "share_request", req.id,
                         {"dataset": ds.name, "recipient": requester.name, "automatic": True})
        return grant_view(s, req)


def decide_share(inst: Instance, user: str, request_id: int, decision: str, *, reason: str = "",
                 condition: str = "") -> ShareGrantView:
    """The dataset's owner grants or refuses a pending conditional request."""
    try:
        verdict = ShareDecision(decision)
    except ValueError:
        raise InvalidInput("decision must be approve or reject", code="invalid_decision") from None
    condition = (condition or "").strip()
    with inst.store.transaction() as s:
        decider = get_user(s, user)
        req = _get_request(s, request_id)
        ds = existing_row(s, Dataset, req.dataset_id)
        if decider.id != ds.owner_id:
            raise Forbidden("only the dataset's owner decides its sharing requests", code="not_dataset_owner")
        if req.status != GrantStatus.PENDING:
            raise Conflict(f"request {request_id} is {req.status}, not pending", code="not_pending")
        sharing = effective_sharing(s, ds)
        if verdict == ShareDecision.REJECT:
            if not condition:
                raise InvalidInput("a refusal must name the declared condition that is not met",
                                   code="refusal_condition_required")
            if condition not in sharing.conditions:
                raise InvalidInput("a refusal can only name a declared condition; this one is not declared",
                                   code="undeclared_condition")
            req.status, req.refusal_condition = GrantStatus.REJECTED.value, condition
        else:
            if condition:
                raise InvalidInput("a grant imposes no condition beyond those declared", code="undeclared_condition")
            if ds.classification == Classification.RESTRICTED or not sharing.shareable:
                raise Forbidden(f"dataset '{ds.name}' is not shareable", code="not_shareable", dataset=ds.name)
            withdrawn = [c for c in req.columns if c not in sharing.columns]
            if withdrawn:
                raise Forbidden(f"column '{withdrawn[0]}' is no longer shareable", code="column_not_shareable",
                                column=withdrawn[0])
            department_of(s, existing_row(s, User, req.requester_id))
            req.status = GrantStatus.GRANTED.value
        req.decided_by, req.decided_at, req.reason = decider.id, now(), (reason or "").strip()
        s.flush()
        audit.append(s, inst.signer, actor_of(decider), "share.decide", "share_request", req.id, {
            "dataset": ds.name, "decision": verdict.value, "reason": req.reason, "condition": condition})
        return grant_view(s, req)


def revoke_share(inst: Instance, user: str, request_id: int, reason: str = "") -> ShareGrantView:
    """End a grant (or withdraw a pending request): its owner, an admin, or the holder."""
    with inst.store.transaction() as s:
        who = get_user(s, user)
        req = _get_request(s, request_id)
        ds = existing_row(s, Dataset, req.dataset_id)
        if who.id not in (ds.owner_id, req.requester_id) and who.role != Role.ADMIN:
            raise Forbidden("only the dataset's owner, an admin or the holder can revoke a grant",
                            code="not_dataset_owner")
        if req.status not in (GrantStatus.GRANTED, GrantStatus.PENDING):
            raise Conflict(f"request {request_id} is {req.status}", code="not_revocable")
        req.status, req.revoked_by, req.revoked_at = GrantStatus.REVOKED.value, who.id, now()
        req.revoke_reason = (reason or "").strip()
        s.flush()
        audit.append(s, inst.signer, actor_of(who), "share.revoke", "share_request", req.id,
                     {"dataset": ds.name, "reason": req.revoke_reason})
        return grant_view(s, req)


def _get_request(s: Session, request_id: int) -> ShareRequest:
    req = s.get(ShareRequest, request_id)
    if req is None:
        raise NotFound(f"no sharing request {request_id}", code="unknown_share_request")
    return req


def list_shares(inst: Instance, user: str, *, dataset: str | None = None,
                status: str | None = None) -> list[ShareGrantView]:
    """Requests the user may see: their own, those on datasets they own, all for admins and reviewers."""
    with inst.store.read() as s:
        who = get_user(s, user)
        stmt = select(ShareRequest).order_by(ShareRequest.id)
        if dataset:
            stmt = stmt.where(ShareRequest.dataset_id == get_dataset(s, dataset).id)
        views = []
        for req in s.execute(stmt).scalars():
            ds = existing_row(s, Dataset, req.dataset_id)
            if who.role not in (Role.ADMIN, Role.REVIEWER) and who.id not in (req.requester_id, ds.owner_id):
                continue
            view = grant_view(s, req)
            if status and view.status != status:
                continue
            views.append(view)
        return views


def show_share(inst: Instance, user: str, request_id: int) -> ShareGrantView:
    with inst.store.read() as s:
        who = get_user(s, user)
        req = _get_request(s, request_id)
        ds = existing_row(s, Dataset, req.dataset_id)
        if who.role not in (Role.ADMIN, Role.REVIEWER) and who.id not in (req.requester_id, ds.owner_id):
            raise Forbidden("only the holder, the dataset's owner, reviewers and admins see a request",
                            code="not_grantee")
        return grant_view(s, req)
