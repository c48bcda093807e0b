"""API routes of sharing between departments (registered on the API blueprint of
``web.api``): the responsibility list, requests and grants, exact extracts (a zip
with the signed manifest) and exact SQL, objections, on-demand requests, usage."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response as FlaskResponse
from pydantic import Field

from products.sharing_extract import ExtractFormat
from queries.errors import Forbidden
from sandbox.sharing.grants import GrantStatus, ShareDecision
from sandbox.vocabulary import Role
from web import access
from web.api import api
from web.auth import user_name
from web.schemas import Request, Response

ALL = tuple(Role)
DECIDERS = (Role.OWNER, Role.REVIEWER, Role.ADMIN)
Text = Field(min_length=1, max_length=5000)


class ShareRequestCreate(Request):
    dataset: str = Field(min_length=1, max_length=64)
    columns: list[str] = Field(min_length=1, max_length=200)
    purpose: str = Text
    basis: str = Text
    condition: str = Field("", max_length=5000)
    expires: date | None = None


class ShareDecisionIn(Request):
    decision: ShareDecision
    reason: str = Field("", max_length=5000)
    condition: str = Field("", max_length=5000)


class ShareRevoke(Request):
    reason: str = Field("", max_length=5000)


class SharedQueryIn(Request):
    sql: str = Field(min_length=1, max_length=20_000)


class ExtractQuery(Request):
    format: ExtractFormat = ExtractFormat.PARQUET
    table: str | None = Field(None, max_length=64)
    where: str | None = Field(None, max_length=5000)
    since_version: int | None = Field(None, ge=1, le=2**31 - 1)
    incremental: bool = False


class ObjectionIn(Request):
    columns: list[str] = Field(min_length=1, max_length=200)
    description: str = Text


class ObjectionAnswerIn(Request):
    explanation: str = Field("", max_length=5000)
    correction_version: int | None = Field(None, ge=1, le=2**31 - 1)


class DemandIn(Request):
    provider: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=300)
    description: str = Text
    purpose: str = Text
    basis: str = Text
    days: int = Field(15, ge=1, le=90)


class ShareListQuery(Request):
    status: GrantStatus | None = None


class UsageQuery(Request):
    year: int | None = Field(None, ge=1970, le=9999)


class ResponsibilityOut(Response):
    dataset: str
    provider: str
    sharing_class: str
    columns: list[str]
    update_frequency: str
    conditions: list[str]
    how_to_request: str
    update_status: str
    open_objections: int


class ShareGrantOut(Response):
    id: int
    dataset: str
    requester: str
    department: str
    columns: list[str]
    status: str
    expires_at: str


class SharedQueryOut(Response):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    version: int


class ObjectionOut(Response):
    id: int
    dataset: str
    status: str
    columns: list[str]


class DemandOut(Response):
    id: int
    provider: str
    status: str
    due_at: str
    overdue: bool


class UsageOut(Response):
    month: str
    dataset: str
    provider: str
    recipient: str
    pulls: int
    queries: int
    rows: int
    grants: int


def _me() -> str:
    return user_name()


@api.route("/sharing/list", roles=ALL, response=ResponsibilityOut, many=True,
           summary="The sharing responsibility list (departments, owners, reviewers, admins)", tag="sharing")
def sharing_list():
    from sandbox.sharing.feedback import responsibility_list

    return [e.to_dict() for e in responsibility_list(access.inst(), _me())]


@api.route("/sharing/requests", roles=ALL, query=ShareListQuery, response=ShareGrantOut, many=True,
           summary="Sharing requests and grants the caller may see", tag="sharing")
def sharing_requests(query: ShareListQuery):
    from sandbox.sharing.grants import list_shares

    return [v.to_dict() for v in list_shares(access.inst(), _me(), status=query.status)]


@api.route("/sharing/requests", "POST", roles=ALL, body=ShareRequestCreate, response=ShareGrantOut, status=201,
           summary="Request a dataset's columns for a duty and legal basis (department users)", tag="sharing")
def sharing_request(body: ShareRequestCreate):
    from sandbox.sharing.grants import request_share

    return request_share(access.inst(), _me(), dataset=body.dataset, columns=body.columns, purpose=body.purpose,
                         basis=body.basis, condition=body.condition, expires=body.expires).to_dict()


@api.route("/sharing/requests/<int:request_id>", roles=ALL, response=ShareGrantOut,
           summary="One sharing request or grant", tag="sharing")
def sharing_show(request_id: int):
    from sandbox.sharing.grants import show_share

    return show_share(access.inst(), _me(), request_id).to_dict()


@api.route("/sharing/requests/<int:request_id>/decision", "POST", roles=(Role.OWNER,), body=ShareDecisionIn,
           response=ShareGrantOut, summary="Grant or refuse a conditional request (the dataset's owner)",
           tag="sharing")
def sharing_decide(request_id: int, body: ShareDecisionIn):
    from sandbox.sharing.grants import decide_share

    return decide_share(access.inst(), _me(), request_id, body.decision, reason=body.reason,
                        condition=body.condition).to_dict()


@api.route("/sharing/requests/<int:request_id>/revoke", "POST", roles=ALL, body=ShareRevoke, response=ShareGrantOut,
           summary="Revoke a grant (its owner, an admin or the holder)", tag="sharing")
def sharing_revoke(request_id: int, body: ShareRevoke):
    from sandbox.sharing.grants import revoke_share

    return revoke_share(access.inst(), _me(), request_id, body.reason).to_dict()


@api.route("/sharing/requests/<int:request_id>/extract", roles=ALL, query=ExtractQuery, media=("application/zip",),
           summary="An exact extract of the granted columns: a zip with manifest.json and manifest.sig",
           tag="sharing")
def sharing_extract(request_id: int, query: ExtractQuery):
    from products.sharing_extract import extract_zip

    data, name = extract_zip(access.inst(), _me(), request_id, query.format, table=query.table, where=query.where,
                             since_version=query.since_version, incremental=query.incremental)
    resp = FlaskResponse(data, mimetype="application/zip")
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return resp


@api.route("/sharing/requests/<int:request_id>/query", "POST", roles=ALL, body=SharedQueryIn,
           response=SharedQueryOut, summary="Exact SQL over the granted columns, in the isolated worker",
           tag="sharing")
def sharing_query(request_id: int, body: SharedQueryIn):
    from sandbox.sharing.delivery import run_shared_query

    return run_shared_query(access.inst(), _me(), request_id, body.sql).to_dict()


@api.route("/sharing/requests/<int:request_id>/objections", "POST", roles=ALL, body=ObjectionIn,
           response=ObjectionOut, status=201, summary="File a quality objection under a grant", tag="sharing")
def sharing_object(request_id: int, body: ObjectionIn):
    from sandbox.sharing.feedback import file_objection

    return file_objection(access.inst(), _me(), request_id, columns=body.columns,
                          description=body.description).to_dict()


@api.route("/sharing/objections", roles=ALL, response=ObjectionOut, many=True,
           summary="Quality objections the caller filed or must answer", tag="sharing")
def sharing_objections():
    from sandbox.sharing.feedback import list_objections

    return [o.to_dict() for o in list_objections(access.inst(), _me())]


@api.route("/sharing/objections/<int:objection_id>/answer", "POST", roles=(Role.OWNER,), body=ObjectionAnswerIn,
           response=ObjectionOut, summary="Answer an objection with a correction version or an explanation",
           tag="sharing")
def sharing_answer(objection_id: int, body: ObjectionAnswerIn):
    from sandbox.sharing.feedback import answer_objection

    return answer_objection(access.inst(), _me(), objection_id, explanation=body.explanation,
                            correction_version=body.correction_version).to_dict()


@api.route("/sharing/demands", "POST", roles=ALL, body=DemandIn, response=DemandOut, status=201,
           summary="Ask a department for data no one lists, with a response deadline", tag="sharing")
def sharing_demand(body: DemandIn):
    from sandbox.sharing.feedback import file_demand

    return file_demand(access.inst(), _me(), provider=body.provider, title=body.title, description=body.description,
                       purpose=body.purpose, basis=body.basis, days=body.days).to_dict()


@api.route("/sharing/demands", roles=ALL, response=DemandOut, many=True,
           summary="On-demand requests to or from the caller's department", tag="sharing")
def sharing_demands():
    from sandbox.sharing.feedback import list_demands

    return [d.to_dict() for d in list_demands(access.inst(), _me())]


@api.route("/sharing/usage", roles=DECIDERS, query=UsageQuery, response=UsageOut, many=True,
           summary="Sharing usage per month, dataset, provider and recipient (owners: their datasets)",
           tag="sharing")
def sharing_usage(query: UsageQuery):
    from sandbox.sharing.usage import may_see_usage, sharing_usage as usage

    if not may_see_usage(access.inst(), _me()):
        raise Forbidden("usage figures are for owners, reviewers and admins", code="not_permitted")
    return [u.to_dict() for u in usage(access.inst(), year=query.year, user=_me())]
