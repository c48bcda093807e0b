"""Governed classification: how a dataset moves between open, conditional and restricted.

The classes are ordered by protection: ``open`` < ``conditional`` < ``restricted``.

* Moving to a **more** protected class takes effect at once (``dataset.reclassify``).
* Moving to a **less** protected class is a request (``classification.request``)
  that a reviewer, never the person who asked, approves or rejects with a reason
  (``classification.approve`` / ``classification.reject``). Until it is approved
  the dataset keeps its class. Re-adding a version whose policy declares a less
  protected class files the same request.
* An **open** dataset may not contain identifier columns: such a policy is refused
  with ``open_with_identifiers`` naming them, and so is a request to open a dataset
  any of whose versions holds one.
* A **conditional** dataset needs a privacy unit and a dataset budget.

Each record's payload names the dataset, both classes and the reason, so the
class of every dataset can be recomputed from the chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from queries.errors import Conflict, Forbidden, InvalidInput, NotFound, PolicyError
from queries.policy import DatasetPolicy
from queries.vocabulary import Classification, ColumnClass, member_of
from sandbox import audit
from sandbox.audit import Actor
from sandbox.instance import Instance
from sandbox.notifications import outbox as notices
from sandbox.persistence.models import Budget, ClassificationChange, Dataset, DatasetVersion, User
from sandbox.persistence.store import existing_row
from sandbox.users import actor_of, get_user
from sandbox.vocabulary import SYSTEM, ClassificationChangeStatus, ClassificationDecision, Role

PROTECTION: dict[Classification, int] = {
    Classification.OPEN: 0, Classification.CONDITIONAL: 1, Classification.RESTRICTED: 2,
}


def less_protected(to: str, frm: str) -> bool:
    """Whether moving from ``frm`` to ``to`` lowers the protection (and so needs a reviewer)."""
    return PROTECTION[Classification(to)] < PROTECTION[Classification(frm)]


def identifier_columns(policy: DatasetPolicy) -> list[str]:
    """The policy's identifier columns, as ``table.column``."""
    return [f"{t.name}.{c.name}" for t in policy.tables for c in t.columns if c.cls == ColumnClass.IDENTIFIER]


def check_open_policy(policy: DatasetPolicy) -> None:
    """Refuse an open policy that declares identifier columns: open data is downloaded raw."""
    if policy.classification == Classification.OPEN:
        _refuse_identifiers(policy.name, identifier_columns(policy))


def _refuse_identifiers(dataset: str, columns: list[str]) -> None:
    if columns:
        err = PolicyError(f"an open dataset may not contain identifier columns ({', '.join(columns)}): "
                          "open data is downloaded row by row", code="open_with_identifiers",
                          key="dataset.classification")
        err.fields.update(dataset=dataset, columns=columns)
        raise err


def _check_fits(s: Session, ds: Dataset, to: Classification) -> None:
    """Refuse moving ``ds`` to ``to`` when its versions or budget do not allow that class."""
    if to == Classification.OPEN:
        found: list[str] = []
        for v in s.execute(select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id)
                           .order_by(DatasetVersion.number)).scalars():
            found += [c for c in identifier_columns(DatasetPolicy.from_dict(v.policy)) if c not in found]
        _refuse_identifiers(ds.name, found)
    elif to == Classification.CONDITIONAL:
        budget = s.execute(select(Budget).where(Budget.scope == "dataset", Budget.dataset_id == ds.id)) \
            .scalar_one_or_none()
        if not ds.privacy_unit or budget is None:
            raise InvalidInput(f"dataset '{ds.name}' cannot be conditional: it needs a privacy unit and a "
                               "dataset budget (add a version whose policy declares them)",
                               code="not_queryable_policy", dataset=ds.name)


@dataclass(frozen=True, slots=True)
class ClassificationChangeView:
    """A classification change request and where it stands."""

    id: int
    dataset: str
    from_class: str
    to_class: str
    version: int | None          # the version whose policy asked for it, if one did
    reason: str
    status: str
    requested_by: str
    decided_by: str | None
    decision_reason: str
    created_at: str
    decided_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "dataset": self.dataset, "from_class": self.from_class, "to_class": self.to_class,
                "version": self.version, "reason": self.reason, "status": self.status,
                "requested_by": self.requested_by, "decided_by": self.decided_by,
                "decision_reason": self.decision_reason, "created_at": self.created_at,
                "decided_at": self.decided_at}


@dataclass(frozen=True, slots=True)
class Reclassified:
    """What asking for a class did: ``applied`` (a more protected class, at once) or
    ``pending`` (a request a reviewer decides, ``change_id``)."""

    dataset: str
    from_class: str
    to_class: str
    status: str                  # applied | pending
    change_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "from_class": self.from_class, "to_class": self.to_class, "status": self.status,
                "change_id": self.change_id}


def _iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).isoformat()


def _view(s: Session, c: ClassificationChange) -> ClassificationChangeView:
    decider = existing_row(s, User, c.decided_by).name if c.decided_by is not None else None
    return ClassificationChangeView(
        c.id, existing_row(s, Dataset, c.dataset_id).name, c.from_class, c.to_class, c.version_number, c.reason,
        c.status, existing_row(s, User, c.requested_by).name, decider, c.decision_reason,
        _iso(c.created_at) or "", _iso(c.decided_at))


def _supersede(s: Session, ds: Dataset) -> list[int]:
    ids = []
    for old in s.execute(select(ClassificationChange).where(
            ClassificationChange.dataset_id == ds.id,
            ClassificationChange.status == ClassificationChangeStatus.PENDING)).scalars():
        old.status = ClassificationChangeStatus.SUPERSEDED
        ids.append(old.id)
    return ids


def change_class(s: Session, inst: Instance, actor: Actor, ds: Dataset, to: Classification, reason: str, *,
                 version: int | None = None) -> Reclassified:
    """In the caller's transaction: move ``ds`` to ``to`` at once when that is more
    protected, or file a request for a reviewer when it is less protected. Either
    way the change is audited in the same transaction."""
    from sandbox.datasets import refresh_digests

    frm = Classification(ds.classification)
    if to == frm:
        raise Conflict(f"dataset '{ds.name}' is already {to}", code="same_classification", dataset=ds.name)
    _check_fits(s, ds, to)
    superseded = _supersede(s, ds)
    if not less_protected(to, frm):
        ds.classification = to
        refresh_digests(s, inst, ds)
        audit.append(s, inst.signer, actor, "dataset.reclassify", "dataset", ds.id, {
            "dataset": ds.name, "from": frm.value, "to": to.value, "reason": reason, "version": version,
            "superseded": superseded})
        return Reclassified(ds.name, frm, to, "applied")
    requester = s.execute(select(User).where(User.name == actor.name)).scalar_one_or_none()
    change = ClassificationChange(dataset_id=ds.id, from_class=frm.value, to_class=to.value, version_number=version,
                                  reason=reason, status=ClassificationChangeStatus.PENDING,
                                  requested_by=requester.id if requester is not None else ds.owner_id)
    s.add(change)
    s.flush()
    audit.append(s, inst.signer, actor, "classification.request", "classification_change", change.id, {
        "dataset": ds.name, "from": frm.value, "to": to.value, "reason": reason, "version": version,
        "superseded": superseded})
    notices.on_classification_waiting(s, inst.settings, change.id, ds, to)
    return Reclassified(ds.name, frm, to, "pending", change.id)


def reclassify(inst: Instance, actor: Actor, dataset: str, to: str, reason: str) -> Reclassified:
    """The owner (or an admin) asks to move a dataset to another class."""
    from sandbox.datasets import get_dataset

    target = member_of(Classification, to)
    if target is None:
        raise InvalidInput(f"the class must be one of {', '.join(Classification)}", code="invalid_classification")
    if not (reason or "").strip():
        raise InvalidInput("a change of class needs a reason", code="missing_reason")
    with inst.store.transaction() as s:
        ds = get_dataset(s, dataset)
        if actor.role not in (Role.ADMIN, SYSTEM) and actor.name != existing_row(s, User, ds.owner_id).name:
            raise Forbidden("only the dataset's owner or an admin changes its class")
        return change_class(s, inst, actor, ds, target, reason.strip())


def list_changes(inst: Instance, *, status: str | None = None, dataset: str | None = None,
                 owner: str | None = None) -> list[ClassificationChangeView]:
    """Classification change requests, oldest first (``owner``: on that owner's datasets only)."""
    from sandbox.datasets import get_dataset

    if status is not None and member_of(ClassificationChangeStatus, status) is None:
        raise InvalidInput(f"status must be one of {', '.join(ClassificationChangeStatus)}", code="invalid_status")
    with inst.store.read() as s:
        stmt = select(ClassificationChange).order_by(ClassificationChange.id)
        if status:
            stmt = stmt.where(ClassificationChange.status == status)
        if dataset:
            stmt = stmt.where(ClassificationChange.dataset_id == get_dataset(s, dataset).id)
        if owner is not None:
            stmt = stmt.join(Dataset, Dataset.id == ClassificationChange.dataset_id).join(
                User, User.id == Dataset.owner_id).where(User.name == owner)
        return [_view(s, c) for c in s.execute(stmt).scalars()]


def visible_change(inst: Instance, change_id: int, *, owner: str | None = None) -> ClassificationChangeView:
    """One request; with ``owner``, only on that owner's datasets (else it is not found)."""
    view = get_change(inst, change_id)
    if owner is not None and view.id not in {c.id for c in list_changes(inst, dataset=view.dataset, owner=owner)}:
        raise NotFound(f"no classification change {change_id}", code="unknown_classification_change",
                       change=change_id)
    return view


def get_change(inst: Instance, change_id: int) -> ClassificationChangeView:
    with inst.store.read() as s:
        return _view(s, _change(s, change_id))


def _change(s: Session, change_id: int) -> ClassificationChange:
    c = s.get(ClassificationChange, change_id)
    if c is None:
        raise NotFound(f"no classification change {change_id}", code="unknown_classification_change",
                       change=change_id)
    return c


def decide_change(inst: Instance, reviewer: str, change_id: int, decision: str, reason: str) -> str:
    """A reviewer (never the requester) approves or rejects a request, with a reason.
    Approving moves the dataset to the requested class in the same transaction."""
    from sandbox.datasets import refresh_digests

    verdict = member_of(ClassificationDecision, decision)
    if verdict is None:
        raise InvalidInput("decision must be approve or reject", code="invalid_decision")
    if not (reason or "").strip():
        raise InvalidInput("a decision on a change of class needs a reason", code="missing_reason")
    with inst.store.transaction() as s:
        user = get_user(s, reviewer)
        if user.role != Role.REVIEWER or not user.active:
            raise Forbidden("a reviewer decides changes of a dataset's class", code="wrong_role")
        c = _change(s, change_id)
        if c.requested_by == user.id:
            raise Forbidden("nobody decides their own request", code="self_review")
        if c.status != ClassificationChangeStatus.PENDING:
            raise Conflict(f"classification change {change_id} is {c.status}", code="not_pending",
                           change=change_id, current=c.status)
        ds = existing_row(s, Dataset, c.dataset_id)
        to = Classification(c.to_class)
        if verdict == ClassificationDecision.APPROVE:
            _check_fits(s, ds, to)
            ds.classification = to
            refresh_digests(s, inst, ds)
        c.status = (ClassificationChangeStatus.APPROVED if verdict == ClassificationDecision.APPROVE
                    else ClassificationChangeStatus.REJECTED)
        c.decided_by, c.decision_reason, c.decided_at = user.id, reason.strip(), datetime.now(UTC)
        s.flush()
        audit.append(s, inst.signer, actor_of(user), f"classification.{verdict.value}", "classification_change",
                     c.id, {"dataset": ds.name, "from": c.from_class, "to": c.to_class, "reason": c.decision_reason,
                            "class": ds.classification})
        return c.status
