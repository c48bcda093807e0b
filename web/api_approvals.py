"""API routes of licence approval modes (templates, query approvals, delegated
reviewers), product edit and re-run, and the annual disclosure report
(registered on the API blueprint of ``web.api``)."""

from __future__ import annotations

import json

from queries.errors import NotFound
from sandbox.vocabulary import PUBLIC, Role
from web import access
from web.api import api
from web.approval_access import (
    parameter_specs, request_of, template_of, visible_requests, visible_templates,
)
from web.auth import actor, principal, user_name
from web.openapi import paged
from web.products_views import svc
from web.schemas import (
    ApprovalModeChange, Created, DelegateCreate, DisclosureReportOut, DisclosureRequest, Done, ProductEdit,
    ProductOut, ProductRerun, ApprovalSubmission, ApprovalListQuery, ApprovalOut, QueryResultOut,
    ApprovalDecision, StatusOut, TemplateDecision, TemplateListQuery, TemplateOut, TemplateProposal, TemplateRun,
)

APPROVERS = (Role.OWNER, Role.REVIEWER, Role.ADMIN)
SEES_APPROVALS = (Role.OWNER, Role.OPERATOR, Role.REVIEWER, Role.ADMIN)


# --- licences ----------------------------------------------------------------------

@api.route("/licences/<int:licence_id>/approval", "POST", roles=(Role.OWNER, Role.ADMIN), body=ApprovalModeChange,
           response=Done, summary="Change a licence's approval mode (automatic, templates, each)", tag="approvals")
def set_approval_mode(licence_id: int, body: ApprovalModeChange):
    from sandbox.approvals import set_approval_mode as set_mode

    set_mode(access.inst(), actor(), licence_id, body.mode, body.reason)
    return {"ok": True}


@api.route("/datasets/<name>/delegates", "POST", roles=(Role.OWNER, Role.ADMIN), body=DelegateCreate, response=Done,
           status=201, summary="Let a reviewer decide the dataset's templates and query approvals", tag="approvals")
def delegate_reviewer(name: str, body: DelegateCreate):
    from sandbox.approvals import delegate

    delegate(access.inst(), user_name(), name, body.reviewer)
    return {"ok": True}


# --- templates -----------------------------------------------------------------------

@api.route("/templates", roles=SEES_APPROVALS, query=TemplateListQuery, response=TemplateOut, many=True,
           summary="Query templates the caller may see (an operator: their licences'; an approver: their datasets')",
           tag="approvals")
def list_templates(query: TemplateListQuery):
    return paged(visible_templates(principal(), query.dataset, query.licence_id, query.status), query)


@api.route("/templates", "POST", roles=(Role.OPERATOR,), body=TemplateProposal, response=Created, status=201,
           summary="Propose a query template with named :parameters for approval", tag="approvals")
def propose_template(body: TemplateProposal):
    from sandbox.approvals import propose_template as propose

    specs = parameter_specs(p if isinstance(p, str) else p.model_dump() for p in body.parameters)
    tid = propose(access.inst(), user_name(), body.dataset, title=body.title, purpose=body.purpose,
                  sql=body.sql, parameters=specs, epsilon_per_run=body.epsilon_per_run, max_runs=body.max_runs,
                  max_epsilon=body.max_epsilon, confidential=body.confidential)
    return {"id": tid}


@api.route("/templates/<int:template_id>", roles=SEES_APPROVALS, response=TemplateOut,
           summary="One query template", tag="approvals")
def show_template(template_id: int):
    return template_of(principal(), template_id)


@api.route("/templates/<int:template_id>/decision", "POST", roles=APPROVERS, body=TemplateDecision,
           response=StatusOut, summary="Approve, return or reject a template (owner or delegated reviewer)",
           tag="approvals")
def decide_template(template_id: int, body: TemplateDecision):
    from sandbox.approvals import decide_template as decide

    status = decide(access.inst(), user_name(), template_id, body.decision, body.reason)
    return {"id": template_id, "status": status}


@api.route("/templates/<int:template_id>/runs", "POST", roles=(Role.OPERATOR,), body=TemplateRun,
           response=QueryResultOut, status=201, summary="Run an approved template with parameter values",
           tag="approvals")
def run_template(template_id: int, body: TemplateRun):
    from sandbox.service import run_query

    t = template_of(principal(), template_id)
    return run_query(access.inst(), user_name(), t.dataset, template_id=template_id,
                     params={k: str(v) for k, v in body.params.items()}, version=body.version).to_dict()


# --- query approvals (``each``): one query submitted for approval before it runs -------------
# (/query-requests is their older spelling, kept for one release.)

@api.route("/approvals", roles=SEES_APPROVALS, query=ApprovalListQuery, response=ApprovalOut,
           many=True, summary="Query approvals the caller may see (the approval queue)", tag="approvals",
           aliases=("/query-requests",))
def list_approvals(query: ApprovalListQuery):
    return paged(visible_requests(principal(), query.dataset, query.status), query)


@api.route("/approvals", "POST", roles=(Role.OPERATOR,), body=ApprovalSubmission, response=Created,
           status=201, summary="Submit a query for approval (licences in each mode)", tag="approvals",
           aliases=("/query-requests",))
def submit_approval(body: ApprovalSubmission):
    from sandbox.approvals import request_query

    aid = request_query(access.inst(), user_name(), body.dataset, body.sql, purpose=body.purpose,
                        epsilon=body.epsilon)
    return {"id": aid}


@api.route("/approvals/<int:approval_id>/decision", "POST", roles=APPROVERS, body=ApprovalDecision,
           response=StatusOut, summary="Approve or reject a query approval", tag="approvals",
           aliases=("/query-requests/<int:approval_id>/decision",))
def decide_approval(approval_id: int, body: ApprovalDecision):
    from sandbox.approvals import decide_request

    status = decide_request(access.inst(), user_name(), approval_id, body.decision, body.reason)
    return {"id": approval_id, "status": status}


@api.route("/approvals/<int:approval_id>/run", "POST", roles=(Role.OPERATOR,), response=QueryResultOut,
           status=201, summary="Run an approved query approval (exactly once)", tag="approvals",
           aliases=("/query-requests/<int:approval_id>/run",))
def run_approval(approval_id: int):
    from sandbox.service import run_query

    r = request_of(principal(), approval_id)
    return run_query(access.inst(), user_name(), r.dataset, request_id=approval_id).to_dict()


# --- products: edit and re-run ---------------------------------------------------------

@api.route("/products/<int:product_id>", "PATCH", roles=(Role.OPERATOR,), body=ProductEdit, response=ProductOut,
           summary="Edit a draft, returned or submitted product (a submitted one starts a new review round)",
           tag="products")
def edit_product(product_id: int, body: ProductEdit):
    return svc().edit_product(access.inst(), user_name(), product_id, title=body.title,
                              description=body.description, purpose=body.purpose,
                              run_ids=body.run_ids).to_dict()


@api.route("/products/<int:product_id>/rerun", "POST", roles=(Role.OPERATOR,), body=ProductRerun,
           response=ProductOut, status=201,
           summary="Re-run a released product on another dataset version as a new draft version", tag="products")
def rerun_product(product_id: int, body: ProductRerun):
    return svc().rerun_product(access.inst(), user_name(), product_id,
                               dataset_version=body.dataset_version).to_dict()


# --- disclosure report ---------------------------------------------------------------

def stored_report(year: int) -> dict:
    path = access.inst().home / "register" / str(year) / "report.json"
    if not path.is_file():
        raise NotFound(f"no disclosure report for {year} yet", code="no_report")
    return json.loads(path.read_text(encoding="utf-8"))


@api.route("/disclosure-reports", "POST", roles=(Role.OWNER, Role.REVIEWER, Role.ADMIN), body=DisclosureRequest,
           response=DisclosureReportOut, status=201,
           summary="Build (or rebuild) the year's disclosure report as a signed package", tag="catalog")
def build_disclosure_report(body: DisclosureRequest):
    return svc().disclosure_report(access.inst(), body.year).to_dict()


@api.route("/disclosure-reports/<int:year>", roles=(PUBLIC,), response=DisclosureReportOut,
           summary="The year's published disclosure report", tag="catalog")
def show_disclosure_report(year: int):
    return stored_report(year)
