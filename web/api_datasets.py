"""API routes of governed classification (registered on the API blueprint of
``web.api``): an owner asks to move a dataset to another class; a reviewer
approves or rejects a move to a less protected class, with a reason."""

from __future__ import annotations

from pydantic import Field

from queries.vocabulary import Classification
from sandbox.vocabulary import ClassificationChangeStatus, ClassificationDecision, Role
from web import access
from web.api import api
from web.auth import actor, principal, user_name
from web.openapi import paged
from web.schemas import PageQuery, Request, Response

Reason = Field(min_length=1, max_length=5000)


class ReclassifyIn(Request):
    to: Classification
    reason: str = Reason


class ReclassifiedOut(Response):
    dataset: str
    from_class: Classification
    to_class: Classification
    status: str                 # applied | pending
    change_id: int | None = None


class ClassificationListQuery(PageQuery):
    status: ClassificationChangeStatus | None = None
    dataset: str | None = Field(None, max_length=64)


class ClassificationChangeOut(Response):
    id: int
    dataset: str
    from_class: Classification
    to_class: Classification
    version: int | None = None
    reason: str
    status: ClassificationChangeStatus
    requested_by: str
    decided_by: str | None = None
    decision_reason: str
    created_at: str
    decided_at: str | None = None


class ClassificationDecisionIn(Request):
    decision: ClassificationDecision
    reason: str = Reason


@api.route("/datasets/<name>/reclassify", "POST", roles=(Role.OWNER, Role.ADMIN), body=ReclassifyIn,
           response=ReclassifiedOut, summary="Move a dataset to another class: a more protected one at once, a less "
           "protected one as a request a reviewer decides", tag="owner")
def reclassify_dataset(name: str, body: ReclassifyIn):
    from sandbox.classification import reclassify

    return reclassify(access.inst(), actor(), name, body.to, body.reason).to_dict()


@api.route("/classification-changes", roles=(Role.OWNER, Role.REVIEWER, Role.ADMIN), query=ClassificationListQuery,
           response=ClassificationChangeOut, many=True,
           summary="Requests to move datasets to a less protected class (an owner: on their datasets)",
           tag="owner")
def list_classification_changes(query: ClassificationListQuery):
    from sandbox.classification import list_changes

    rows = [c.to_dict() for c in list_changes(access.inst(), status=query.status, dataset=query.dataset,
                                              owner=_owner_scope())]
    return paged(rows, query)


def _owner_scope() -> str | None:
    """An owner sees the requests on their own datasets; reviewers and admins see all."""
    return user_name() if principal().role == Role.OWNER else None


@api.route("/classification-changes/<int:change_id>", roles=(Role.OWNER, Role.REVIEWER, Role.ADMIN),
           response=ClassificationChangeOut, summary="One classification change request", tag="owner")
def show_classification_change(change_id: int):
    from sandbox.classification import visible_change

    return visible_change(access.inst(), change_id, owner=_owner_scope()).to_dict()


@api.route("/classification-changes/<int:change_id>/decide", "POST", roles=(Role.REVIEWER,),
           body=ClassificationDecisionIn, response=ClassificationChangeOut,
           summary="Approve or reject a classification change, with a reason (a reviewer, not the requester)",
           tag="owner")
def decide_classification_change(change_id: int, body: ClassificationDecisionIn):
    from sandbox.classification import decide_change, get_change

    decide_change(access.inst(), user_name(), change_id, body.decision, body.reason)
    return get_change(access.inst(), change_id).to_dict()
