"""The JSON API under ``/api/v1``: everything the pages do, for scripts.

Success: ``{"data": ..., "meta": {...}}``; errors: RFC 7807 problem details
with a stable ``code`` (see docs/api.md). Authentication: a bearer token from
``POST /api/v1/tokens``.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from sandbox.vocabulary import PUBLIC, LicenceStatus, ReadAction, Role
from web import access
from web.audit_reads import recorded_read
from web.auth import actor, login, mark_roles, principal, user_name
from web.downloads import file_response, result_file, table_bytes
from web.openapi import ApiRoutes, openapi_document, paged
from web.schemas import (
    BudgetStatusOut, ChainReportOut, CheckedQueryOut, Created, DatasetBudget, DatasetDetail, DatasetListQuery,
    AddedVersionOut, DatasetSummary, Done, KeyOut, LicenceExtend, LicenceGrant, LicenceListQuery, LicenceOut, LicenceRevoke,
    LicenceTopUp, Me, PageQuery,
    QueryRequest, QueryResultOut, RunDetail, RunListQuery, RunSummary, SettingOut,
    TableDownloadQuery, DownloadQuery, TokenOut, TokenRequest, UserCreate, UserOut,
)

PREFIX = "/api/v1"
API_VERSION = "1.0"
ALL = tuple(Role)

bp = Blueprint("api", __name__, url_prefix=PREFIX)
api = ApiRoutes(bp)


# --- documents and keys ----------------------------------------------------------

@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi_document(api, PREFIX, API_VERSION))


mark_roles(openapi_json, {PUBLIC})


@api.route("/keys", roles=(PUBLIC,), summary="The instance's public signing key", response=KeyOut, tag="admin")
def keys():
    return access.signing_key()


# --- auth ------------------------------------------------------------------------

@api.route("/tokens", "POST", roles=(PUBLIC,), body=TokenRequest, response=TokenOut, status=201,
           summary="Exchange a user name and password for a bearer token (rate-limited)", tag="auth")
def create_token(body: TokenRequest):
    from sandbox.users import issue_token

    user = login(body.user, body.password)
    token = issue_token(access.inst(), user, scopes=list(dict.fromkeys(body.scopes)), days=body.days)
    return {"token": token, "prefix": token[:10], "scopes": body.scopes, "days": body.days}


@api.route("/tokens/<prefix>", "DELETE", roles=ALL, response=Done, summary="Revoke a token by its prefix", tag="auth")
def revoke_token(prefix: str):
    from sandbox.users import find_user, revoke_token as revoke

    revoke(access.inst(), find_user(access.inst(), user_name()), prefix)
    return {"ok": True}


@api.route("/me", roles=ALL, response=Me, summary="The caller", tag="auth")
def me():
    return access.me(principal())


# --- catalog ---------------------------------------------------------------------

@api.route("/datasets", roles=(PUBLIC,), query=DatasetListQuery, response=DatasetSummary, many=True,
           summary="Datasets in the catalog (search, filter, pages)", tag="catalog")
def list_datasets(query: DatasetListQuery):
    return paged(access.search_datasets(query.q, query.classification, query.publisher), query)


@api.route("/datasets/<name>", roles=(PUBLIC,), response=DatasetDetail,
           summary="A dataset's metadata (the quality report for its owner)", tag="catalog")
def show_dataset(name: str):
    return access.dataset_detail(principal(), name)


@api.route("/datasets/<name>/download", roles=(PUBLIC,), query=TableDownloadQuery,
           media=("text/csv", "application/json", "application/vnd.apache.parquet"),
           summary="Download an open dataset's table", tag="catalog")
def download_dataset(name: str, query: TableDownloadQuery):
    table = access.open_table(name, query.table)
    stem = f"{name}-{query.table}" if query.table else name
    return file_response(table_bytes(table, query.format), query.format, f"{stem}.{query.format}")


@api.route("/datasets/<name>/mock", roles=(PUBLIC,), query=TableDownloadQuery,
           media=("text/csv", "application/json", "application/vnd.apache.parquet"),
           summary="Mock data with the dataset's schema, generated from its policy (no real data)", tag="catalog")
def mock_dataset(name: str, query: TableDownloadQuery):
    table = access.mock_table(name, query.table)
    stem = f"{name}-{query.table}-mock" if query.table else f"{name}-mock"
    return file_response(table_bytes(table, query.format), query.format, f"{stem}.{query.format}")


# --- owner -----------------------------------------------------------------------

@api.route("/datasets", "POST", roles=(Role.OWNER, Role.ADMIN), response=AddedVersionOut, status=201,
           multipart={"policy": "the policy file (TOML)", "files": "the data files it names",
                      "version_of": "optional: add the data as a new version of this existing dataset"},
           summary="Add a dataset (or a new version of it) from a policy file and its data files", tag="owner")
def add_dataset():
    return access.add_upload(request.files.get("policy"), request.files.getlist("files"),
                             version_of=request.form.get("version_of") or None).to_dict()


@api.route("/datasets/<name>/budget", roles=(Role.OWNER, Role.ADMIN), response=DatasetBudget,
           summary="Budget gauge: spent, reserved and remaining per level", tag="owner")
def dataset_budget(name: str):
    return access.dataset_budget(principal(), name)


@api.route("/licences", roles=(Role.OWNER, Role.OPERATOR, Role.ADMIN), query=LicenceListQuery, response=LicenceOut,
           many=True, summary="Licences the caller may see", tag="owner")
def list_licences(query: LicenceListQuery):
    return paged(access.visible_licences(principal(), query.dataset, query.operator), query)


@api.route("/licences", "POST", roles=(Role.OWNER, Role.ADMIN), body=LicenceGrant, response=Created, status=201,
           summary="Grant a licence on a conditional dataset", tag="owner")
def grant_licence(body: LicenceGrant):
    from sandbox.licences import grant_licence as grant

    lid = grant(access.inst(), actor(), dataset=body.dataset, operator=body.operator, epsilon=body.epsilon,
                delta=body.delta, purpose=body.purpose, expires=body.expires, tables=body.tables,
                approval=body.approval, accounting=body.accounting,
                max_epsilon_per_query=body.max_epsilon_per_query, min_epsilon_per_query=body.min_epsilon_per_query,
                max_queries=body.max_queries)
    return {"id": lid}


@api.route("/licences/<int:licence_id>/revoke", "POST", roles=(Role.OWNER, Role.ADMIN), body=LicenceRevoke,
           response=Done, summary="Revoke a licence (cancels its pending products)", tag="owner")
def revoke_licence(licence_id: int, body: LicenceRevoke):
    from sandbox.licences import revoke_licence as revoke

    revoke(access.inst(), actor(), licence_id, body.reason)
    return {"ok": True}


@api.route("/licences/<int:licence_id>", roles=(Role.OWNER, Role.OPERATOR, Role.ADMIN), response=LicenceOut,
           summary="One licence the caller may see: status (active, expired or revoked), end and budget", tag="owner")
def show_licence(licence_id: int):
    return access.visible_licence(principal(), licence_id)


@api.route("/licences/<int:licence_id>/extend", "POST", roles=(Role.OWNER, Role.ADMIN), body=LicenceExtend,
           response=LicenceOut, summary="Move a licence's end date later", tag="owner")
def extend_licence(licence_id: int, body: LicenceExtend):
    from sandbox.licences import extend_licence as extend

    return extend(access.inst(), actor(), licence_id, body.until)


@api.route("/licences/<int:licence_id>/top-up", "POST", roles=(Role.OWNER, Role.ADMIN), body=LicenceTopUp,
           response=LicenceOut, summary="Add ε (and δ) to a licence's budget, never above the dataset's total",
           tag="owner")
def top_up_licence(licence_id: int, body: LicenceTopUp):
    from sandbox.licences import top_up_licence as top_up

    return top_up(access.inst(), actor(), licence_id, epsilon=body.epsilon, delta=body.delta)


# --- operator --------------------------------------------------------------------

@api.route("/queries/preview", "POST", roles=(Role.OPERATOR,), body=QueryRequest, response=CheckedQueryOut,
           summary="Check a query and estimate its cost and accuracy (spends nothing)", tag="operator")
def preview_query(body: QueryRequest):
    from sandbox.preview import preview_query as preview

    return preview(access.inst(), user_name(), body.dataset, body.sql, epsilon=body.epsilon,
                   version=body.version, target=_target(body))


@api.route("/queries", "POST", roles=(Role.OPERATOR,), body=QueryRequest, response=QueryResultOut, status=201,
           summary="Run a query: its privacy loss is charged", tag="operator")
def run_query(body: QueryRequest):
    from sandbox.service import run_query as run

    return run(access.inst(), user_name(), body.dataset, body.sql, epsilon=body.epsilon,
               version=body.version, target=_target(body)).to_dict()


def _target(body: QueryRequest) -> tuple[str, float] | None:
    return (body.target.output, body.target.half_width) if body.target is not None else None


@api.route("/queries", roles=(Role.OPERATOR, Role.REVIEWER, Role.ADMIN), query=RunListQuery, response=RunSummary,
           many=True, summary="Query runs (an operator sees their own)", tag="operator")
def list_runs(query: RunListQuery):
    from sandbox.service import list_runs as runs

    return paged(runs(access.inst(), user_name(), query.dataset), query)


@api.route("/queries/<run_id>", roles=(Role.OPERATOR, Role.REVIEWER, Role.ADMIN), response=RunDetail,
           summary="One query run with its released result", tag="operator")
def show_run(run_id: str):
    from sandbox.service import get_run

    return get_run(access.inst(), user_name(), run_id)


@api.route("/queries/<run_id>/result", roles=(Role.OPERATOR, Role.REVIEWER, Role.ADMIN), query=DownloadQuery,
           media=("text/csv", "application/json", "application/vnd.apache.parquet"),
           summary="Download a run's released result", tag="operator")
@recorded_read(ReadAction.RUN_DOWNLOAD, "query_run", "run_id")
def download_run(run_id: str, query: DownloadQuery):
    from queries.errors import Conflict
    from sandbox.service import get_run

    run = get_run(access.inst(), user_name(), run_id)
    if not run.result:
        raise Conflict("this run has no released result", code="no_result")
    return result_file(run.result, query.format, f"run-{run_id[:8]}")


@api.route("/budget/<dataset>", roles=(Role.OPERATOR,), response=BudgetStatusOut, many=True,
           summary="The operator's remaining budget on a dataset", tag="operator")
def my_budget(dataset: str):
    lics = [lic for lic in access.visible_licences(principal(), dataset) if lic.status == LicenceStatus.ACTIVE]
    return [lic.budget for lic in lics if lic.budget]


# --- admin -----------------------------------------------------------------------

@api.route("/users", roles=(Role.ADMIN,), query=PageQuery, response=UserOut, many=True, summary="Users and roles",
           tag="admin")
def list_users(query: PageQuery):
    return paged(access.users_list(), query)


@api.route("/users", "POST", roles=(Role.ADMIN,), body=UserCreate, response=UserOut, status=201,
           summary="Add a user", tag="admin")
def add_user(body: UserCreate):
    from sandbox.users import add_user as add

    u = add(access.inst(), actor(), body.name, body.role, body.password, display_name=body.display_name,
            organisation=body.organisation)
    return {"name": u.name, "role": u.role, "active": True}


@api.route("/settings", roles=(Role.ADMIN,), response=SettingOut, many=True, summary="Settings overview", tag="admin")
def settings():
    return access.settings_overview()


@api.route("/audit/verify", roles=(Role.ADMIN,), response=ChainReportOut, summary="Verify the audit chain", tag="admin")
def audit_status():
    return access.audit_report()


from web import api_products  # noqa: F401  (registers the product routes on ``api``)
from web import api_approvals  # noqa: F401  (approvals, product edit/re-run, disclosure reports)
from web import api_sharing  # noqa: F401  (sharing between departments)
from web import api_users  # noqa: F401  (the user lifecycle: deactivate, reactivate, role, password)
from web import api_datasets  # noqa: F401  (governed classification)
from web import api_audit  # noqa: F401  (the audit trail, read)
from web import api_notifications  # noqa: F401  (the caller's notifications)
