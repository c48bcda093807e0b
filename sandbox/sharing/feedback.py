"""The responsibility list, dynamic updates, quality objections and on-demand requests.

"Whoever manages is responsible": each provider's entry shows whether it met its
declared update frequency, its open quality objections and their age, and its
on-demand requests past their deadline. A grantee objects to specific columns of a
version; the owner answers with a correction (a newer version) or an explanation.
A department asks for data that no one lists from the department that should hold
it, which must answer by a tracked deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from queries.errors import Conflict, Forbidden, InvalidInput, NotFound
from queries.sharing_policy import SharingClass
from queries.vocabulary import Classification
from sandbox import audit
from sandbox.datasets import get_dataset, get_version, latest_version
from sandbox.instance import Instance
from sandbox.persistence.models import (
    Dataset, DatasetVersion, Organisation, ShareDemand, ShareObjection, SharingChange, User,
)
from sandbox.persistence.store import existing_row
from sandbox.organisations import get_organisation, organisation_of
from sandbox.sharing.grants import (
    GrantStatus, _get_request, as_utc, department_of, effective_sharing, may_see_list, now, provider_name, status_of,
)
from sandbox.users import actor_of, get_user
from sandbox.vocabulary import Role

DEFAULT_RESPONSE_DAYS = 15


class UpdateStatus(StrEnum):
    ON_TIME = "on_time"
    OVERDUE = "overdue"
    NO_PROMISE = "irregular"


class ObjectionStatus(StrEnum):
    OPEN = "open"
    CORRECTED = "corrected"
    EXPLAINED = "explained"


class DemandStatus(StrEnum):
    OPEN = "open"
    LISTED = "listed"
    DECLINED = "declined"


# ---------------------------------------------------------------- the responsibility list

@dataclass(frozen=True)
class ResponsibilityEntry:
    dataset: str
    title: str
    provider: str
    owner: str
    sharing_class: str
    columns: tuple[str, ...]
    update_frequency: str
    conditions: tuple[str, ...]
    how_to_request: str
    latest_version: int
    last_updated: str
    update_status: UpdateStatus
    open_objections: int
    oldest_objection_days: int | None
    open_demands: int
    overdue_demands: int
    pending_change: bool

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["columns"], d["conditions"] = list(self.columns), list(self.conditions)
        d["update_status"] = self.update_status.value
        return d


def update_status(frequency_days: int | None, last: DatasetVersion) -> UpdateStatus:
    if frequency_days is None:
        return UpdateStatus.NO_PROMISE
    return UpdateStatus.ON_TIME if now() - as_utc(last.created_at) <= timedelta(days=frequency_days) \
        else UpdateStatus.OVERDUE


def _provider_org(s: Session, ds: Dataset) -> Organisation | None:
    owner = s.get(User, ds.owner_id)
    return organisation_of(s, owner) if owner else None


def responsibility_list(inst: Instance, user: str) -> list[ResponsibilityEntry]:
    """Every dataset that declares a sharing section, with its provider's record."""
    with inst.store.read() as s:
        may_see_list(s, get_user(s, user))
        entries = []
        for ds in s.execute(select(Dataset).order_by(Dataset.name)).scalars():
            sharing = effective_sharing(s, ds)
            pending = s.execute(select(SharingChange.id).where(SharingChange.dataset_id == ds.id,
                                                               SharingChange.status == "pending")).first()
            if not sharing.shareable and pending is None:
                continue
            last = latest_version(s, ds)
            objections = s.execute(select(ShareObjection).where(ShareObjection.dataset_id == ds.id,
                                                                ShareObjection.status == "open")).scalars().all()
            oldest = min((as_utc(o.created_at) for o in objections), default=None)
            org = _provider_org(s, ds)
            demands = s.execute(select(ShareDemand).where(ShareDemand.provider_org_id == org.id,
                                                          ShareDemand.status == "open")).scalars().all() \
                if org is not None else []
            klass = sharing.cls if ds.classification != Classification.RESTRICTED else SharingClass.NONE
            how = (f"dp-sandbox share request --dataset {ds.name} --columns COLUMNS --purpose DUTY --basis LAW"
                   + (" --condition CONDITION" if klass == SharingClass.CONDITIONAL else "")
                   + f"  (or /sharing/datasets/{ds.name})") if klass != SharingClass.NONE else "not shareable"
            entries.append(ResponsibilityEntry(
                ds.name, ds.title, provider_name(s, ds), existing_row(s, User, ds.owner_id).name, klass.value,
                sharing.columns if klass != SharingClass.NONE else (), sharing.update_frequency.value,
                sharing.conditions, how, last.number, as_utc(last.created_at).isoformat(),
                update_status(sharing.update_frequency.days, last), len(objections),
                (now() - oldest).days if oldest else None, len(demands),
                sum(1 for d in demands if as_utc(d.due_at) < now()), pending is not None))
        return entries


# ---------------------------------------------------------------- notifications (outbox)

@dataclass(frozen=True)
class ShareNotice:
    id: int
    request_id: int
    dataset: str
    version: int
    kind: str
    created_at: str
    delivered: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def notifications(inst: Instance, user: str) -> list[ShareNotice]:
    """The user's sharing notices (new versions of datasets they hold grants on),
    oldest first: the ``share_new_version`` notices of the one outbox
    (``sandbox.notifications``); delivered once a webhook or e-mail delivered it."""
    from sandbox.notifications.vocabulary import DeliveryStatus, NoticeKind
    from sandbox.persistence.models import Notification, NotificationDelivery

    with inst.store.read() as s:
        who = get_user(s, user)
        rows = s.execute(select(Notification).where(Notification.recipient_id == who.id,
                                                    Notification.kind == NoticeKind.SHARE_NEW_VERSION)
                         .order_by(Notification.id)).scalars().all()
        delivered = set(s.execute(select(NotificationDelivery.notification_id).where(
            NotificationDelivery.notification_id.in_([n.id for n in rows]),
            NotificationDelivery.status == DeliveryStatus.DELIVERED)).scalars())
        return [ShareNotice(n.id, int(n.facts["grant"]), str(n.facts["dataset"]), int(n.facts["version"]),
                            "new_version", as_utc(n.created_at).isoformat(), n.id in delivered) for n in rows]


# ---------------------------------------------------------------- quality objections

@dataclass(frozen=True)
class ObjectionView:
    id: int
    request_id: int
    dataset: str
    version: int
    filed_by: str
    columns: tuple[str, ...]
    description: str
    status: ObjectionStatus
    answer: str
    correction_version: int | None
    created_at: str
    answered_at: str | None
    age_days: int

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["columns"], d["status"] = list(self.columns), self.status.value
        return d


def _objection_view(s: Session, o: ShareObjection) -> ObjectionView:
    end = as_utc(o.answered_at) if o.answered_at else now()
    return ObjectionView(o.id, o.request_id, existing_row(s, Dataset, o.dataset_id).name, o.version_number,
                         existing_row(s, User, o.filed_by).name, tuple(o.columns), o.description,
                         ObjectionStatus(o.status),
                         o.answer, o.correction_version, as_utc(o.created_at).isoformat(),
                         as_utc(o.answered_at).isoformat() if o.answered_at else None,
                         (end - as_utc(o.created_at)).days)


def file_objection(inst: Instance, user: str, request_id: int, *, columns: list[str], description: str,
                   version: int | None = None) -> ObjectionView:
    """A grantee objects to the quality of granted columns of a version."""
    if not (description or "").strip():
        raise InvalidInput("describe what is wrong", code="missing_description")
    with inst.store.transaction() as s:
        who = get_user(s, user)
        req = _get_request(s, request_id)
        if who.id != req.requester_id:
            raise Forbidden("only the grant's holder can object under it", code="not_grantee")
        department_of(s, who)
        if status_of(req) not in (GrantStatus.GRANTED, GrantStatus.EXPIRED, GrantStatus.REVOKED):
            raise Forbidden("objections are filed under a grant", code="grant_pending")
        ds = existing_row(s, Dataset, req.dataset_id)
        v = get_version(s, ds, version)
        named = [c.strip() for c in columns if c and c.strip()]
        if not named:
            raise InvalidInput("name the columns the objection is about", code="no_columns")
        for c in named:
            if c not in req.columns:
                raise InvalidInput(f"column '{c}' is not part of this grant", code="column_not_granted", column=c)
        o = ShareObjection(request_id=req.id, dataset_id=ds.id, version_number=v.number, filed_by=who.id,
                           columns=named, description=description.strip(), status=ObjectionStatus.OPEN.value)
        s.add(o)
        s.flush()
        audit.append(s, inst.signer, actor_of(who), "share.object", "share_objection", o.id,
                     {"dataset": ds.name, "version": v.number, "columns": named, "request": req.id})
        return _objection_view(s, o)


def answer_objection(inst: Instance, user: str, objection_id: int, *, explanation: str = "",
                     correction_version: int | None = None) -> ObjectionView:
    """The owner answers: a correction (a version newer than the one objected to) or an explanation."""
    if correction_version is None and not (explanation or "").strip():
        raise InvalidInput("answer with a correction version or an explanation", code="missing_answer")
    with inst.store.transaction() as s:
        who = get_user(s, user)
        o = s.get(ShareObjection, objection_id)
        if o is None:
            raise NotFound(f"no objection {objection_id}", code="unknown_objection")
        ds = existing_row(s, Dataset, o.dataset_id)
        if who.id != ds.owner_id:
            raise Forbidden("only the dataset's owner answers objections", code="not_dataset_owner")
        if o.status != ObjectionStatus.OPEN:
            raise Conflict(f"objection {objection_id} is already answered", code="already_answered")
        if correction_version is not None:
            get_version(s, ds, correction_version)
            if correction_version <= o.version_number:
                raise InvalidInput("a correction is a version newer than the one objected to",
                                   code="not_a_correction")
            o.status, o.correction_version = ObjectionStatus.CORRECTED.value, correction_version
        else:
            o.status = ObjectionStatus.EXPLAINED.value
        o.answer, o.answered_by, o.answered_at = (explanation or "").strip(), who.id, now()
        s.flush()
        audit.append(s, inst.signer, actor_of(who), "share.answer", "share_objection", o.id,
                     {"dataset": ds.name, "status": o.status, "correction_version": correction_version})
        return _objection_view(s, o)


def list_objections(inst: Instance, user: str, *, dataset: str | None = None,
                    status: str | None = None) -> list[ObjectionView]:
    with inst.store.read() as s:
        who = get_user(s, user)
        stmt = select(ShareObjection).order_by(ShareObjection.id)
        if dataset:
            stmt = stmt.where(ShareObjection.dataset_id == get_dataset(s, dataset).id)
        if status:
            stmt = stmt.where(ShareObjection.status == status)
        out = []
        for o in s.execute(stmt).scalars():
            ds = existing_row(s, Dataset, o.dataset_id)
            if who.role in (Role.ADMIN, Role.REVIEWER) or who.id in (o.filed_by, ds.owner_id):
                out.append(_objection_view(s, o))
        return out


# ---------------------------------------------------------------- on-demand requests

@dataclass(frozen=True)
class DemandView:
    id: int
    provider: str
    requester: str
    department: str
    title: str
    description: str
    purpose: str
    basis: str
    status: DemandStatus
    due_at: str
    overdue: bool
    dataset: str | None
    answer: str
    answered_at: str | None

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["status"] = self.status.value
        return d


def _demand_view(s: Session, d: ShareDemand) -> DemandView:
    late_at = as_utc(d.answered_at) if d.answered_at else now()
    return DemandView(d.id, existing_row(s, Organisation, d.provider_org_id).name,
                      existing_row(s, User, d.requester_id).name,
                      existing_row(s, Organisation, d.requester_org_id).name, d.title, d.description, d.purpose,
                      d.basis,
                      DemandStatus(d.status), as_utc(d.due_at).isoformat(), late_at > as_utc(d.due_at),
                      existing_row(s, Dataset, d.dataset_id).name if d.dataset_id else None, d.answer,
                      as_utc(d.answered_at).isoformat() if d.answered_at else None)


def file_demand(inst: Instance, user: str, *, provider: str, title: str, description: str, purpose: str,
                basis: str, days: int = DEFAULT_RESPONSE_DAYS) -> DemandView:
    """Ask the department that should hold some data to list it, by a deadline."""
    for value, code in ((title, "missing_title"), (description, "missing_description"),
                        (purpose, "missing_purpose"), (basis, "missing_basis")):
        if not (value or "").strip():
            raise InvalidInput(f"an on-demand request needs a {code.split('_', 1)[1]}", code=code)
    if not 1 <= days <= 90:
        raise InvalidInput("the response deadline is 1 to 90 days away", code="invalid_deadline")
    with inst.store.transaction() as s:
        who = get_user(s, user)
        mine = department_of(s, who)
        target = get_organisation(s, provider)
        if target.kind != "department":
            raise InvalidInput("on-demand requests go to a department", code="not_a_department")
        d = ShareDemand(provider_org_id=target.id, requester_id=who.id, requester_org_id=mine.id,
                        title=title.strip(), description=description.strip(), purpose=purpose.strip(),
                        basis=basis.strip(), status=DemandStatus.OPEN.value, due_at=now() + timedelta(days=days))
        s.add(d)
        s.flush()
        audit.append(s, inst.signer, actor_of(who), "share.demand", "share_demand", d.id,
                     {"provider": target.name, "title": d.title, "due_at": as_utc(d.due_at).isoformat()})
        return _demand_view(s, d)


def answer_demand(inst: Instance, user: str, demand_id: int, *, dataset: str | None = None,
                  reason: str = "") -> DemandView:
    """A user of the addressed department answers: the dataset now listed for it, or a reasoned refusal."""
    with inst.store.transaction() as s:
        who = get_user(s, user)
        d = s.get(ShareDemand, demand_id)
        if d is None:
            raise NotFound(f"no on-demand request {demand_id}", code="unknown_demand")
        if who.org_id != d.provider_org_id:
            raise Forbidden("only the addressed department answers", code="not_provider")
        if d.status != DemandStatus.OPEN:
            raise Conflict(f"on-demand request {demand_id} is already answered", code="already_answered")
        if dataset:
            ds = get_dataset(s, dataset)
            if ds.owner_id != who.id or not effective_sharing(s, ds).shareable:
                raise InvalidInput("answer with a shareable dataset you own", code="not_shareable")
            d.status, d.dataset_id = DemandStatus.LISTED.value, ds.id
        else:
            if not (reason or "").strip():
                raise InvalidInput("a declined request needs a reason", code="missing_reason")
            d.status = DemandStatus.DECLINED.value
        d.answer, d.answered_by, d.answered_at = (reason or "").strip(), who.id, now()
        s.flush()
        audit.append(s, inst.signer, actor_of(who), "share.demand_answer", "share_demand", d.id,
                     {"status": d.status, "dataset": dataset, "late": as_utc(d.answered_at) > as_utc(d.due_at)})
        return _demand_view(s, d)


def list_demands(inst: Instance, user: str, *, status: str | None = None) -> list[DemandView]:
    with inst.store.read() as s:
        who = get_user(s, user)
        stmt = select(ShareDemand).order_by(ShareDemand.id)
        if status:
            stmt = stmt.where(ShareDemand.status == status)
        return [_demand_view(s, d) for d in s.execute(stmt).scalars()
                if who.role in (Role.ADMIN, Role.REVIEWER) or who.org_id in (d.provider_org_id, d.requester_org_id)]
