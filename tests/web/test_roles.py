"""Every route, called by every role: the roles let through are exactly the
expected ones (a refused role gets 401/403 before the view runs)."""

from __future__ import annotations

import re

import pytest

from web_helpers import ROLE_USER, bearer, csrf_of, page_login

PUBLIC = {"public", "owner", "operator", "reviewer", "admin"}
SIGNED_IN = {"owner", "operator", "reviewer", "admin"}
OWNER = {"owner", "admin"}
APPROVERS = {"owner", "reviewer", "admin"}
DECIDERS = APPROVERS

EXPECTED: dict[str, set[str]] = {
    "static": PUBLIC,
    # public pages
    "public.catalog": PUBLIC, "public.dataset": PUBLIC, "public.download": PUBLIC, "public.mock": PUBLIC, "api.mock_dataset": PUBLIC, "public.login_form": PUBLIC,
    "public.login_submit": PUBLIC, "public.logout": PUBLIC, "public.signing_key": PUBLIC,
    # owner pages
    "owner.datasets": OWNER, "owner.add_form": OWNER, "owner.add_submit": OWNER,
    "owner.dataset_admin": OWNER, "owner.grant": OWNER, "owner.revoke": OWNER,
    # governed classification
    "owner.reclassify": OWNER, "classification.queue": APPROVERS, "classification.decide": {"reviewer"},
    "api.reclassify_dataset": OWNER, "api.list_classification_changes": APPROVERS,
    "api.show_classification_change": APPROVERS, "api.decide_classification_change": {"reviewer"},
    # operator pages
    "operator.editor": {"operator"}, "operator.submit": {"operator"}, "operator.runs": {"operator"},
    "operator.run_page": {"operator"}, "operator.run_download": {"operator"},
    # admin pages
    "admin.overview": {"admin"}, "admin.add_user": {"admin"},
    "users.user_page": {"admin"}, "users.deactivate": {"admin"}, "users.reactivate": {"admin"},
    "users.set_role": {"admin"}, "users.reset_password": {"admin"}, "api.get_user_detail": {"admin"},
    "api.deactivate_user": {"admin"}, "api.reactivate_user": {"admin"}, "api.set_user_role": {"admin"},
    "api.reset_user_password": {"admin"},
    # API
    "api.openapi_json": PUBLIC, "api.keys": PUBLIC, "api.create_token": PUBLIC, "api.revoke_token": SIGNED_IN,
    "api.me": SIGNED_IN, "api.list_datasets": PUBLIC, "api.show_dataset": PUBLIC, "api.download_dataset": PUBLIC,
    "api.add_dataset": OWNER, "api.dataset_budget": OWNER, "api.list_licences": {"owner", "operator", "admin"},
    "api.grant_licence": OWNER, "api.revoke_licence": OWNER, "api.preview_query": {"operator"},
    "api.show_licence": {"owner", "operator", "admin"}, "api.extend_licence": OWNER, "api.top_up_licence": OWNER,
    "api.run_query": {"operator"}, "api.list_runs": {"operator", "reviewer", "admin"},
    "api.show_run": {"operator", "reviewer", "admin"}, "api.download_run": {"operator", "reviewer", "admin"},
    "api.my_budget": {"operator"}, "api.list_users": {"admin"}, "api.add_user": {"admin"},
    "api.settings": {"admin"}, "api.audit_status": {"admin"},
    "api.list_audit": OWNER, "audit.audit_page": OWNER,
    "api.list_products": PUBLIC, "api.show_product": PUBLIC, "api.download_product": PUBLIC,
    "api.draft_product": {"operator"}, "api.submit_product": {"operator"}, "api.review_product": {"reviewer"},
    "api.release_product": {"operator", "admin"}, "api.withdraw_product": {"operator", "admin"},
    "api.review_queue": {"reviewer"}, "api.catalog": PUBLIC, "api.transparency_register": PUBLIC,
    "api.list_requests": PUBLIC, "api.file_request": PUBLIC, "api.get_request": PUBLIC, "api.decide_request": OWNER,
    # approval modes
    "owner.set_approval": OWNER, "owner.delegate": OWNER, "owner.extend": OWNER, "owner.top_up": OWNER,
    "approvals.queue": APPROVERS, "approvals.decide_template": APPROVERS, "approvals.decide_approval": APPROVERS,
    "approvals.templates": {"operator"}, "approvals.propose": {"operator"}, "approvals.template_page": {"operator"},
    "approvals.run_template": {"operator"}, "approvals.operator_approvals": {"operator"},
    "approvals.submit_approval": {"operator"}, "approvals.run_approval": {"operator"},
    "api.set_approval_mode": OWNER, "api.delegate_reviewer": OWNER, "api.list_templates": SIGNED_IN,
    "api.propose_template": {"operator"}, "api.show_template": SIGNED_IN, "api.decide_template": APPROVERS,
    "api.run_template": {"operator"}, "api.list_approvals": SIGNED_IN, "api.submit_approval": {"operator"},
    "api.decide_approval": APPROVERS, "api.run_approval": {"operator"},
    # product edit and re-run, disclosure reports
    "api.edit_product": {"operator"}, "api.rerun_product": {"operator"},
    "api.build_disclosure_report": APPROVERS, "api.show_disclosure_report": PUBLIC,
    # data products, the register, data requests, disclosure reports (pages)
    "products.product_list": PUBLIC, "products.product_page": PUBLIC, "products.product_download": PUBLIC,
    "products.create_draft": {"operator"}, "products.submit": {"operator"}, "products.release": {"operator", "admin"},
    "products.withdraw": {"operator", "admin"}, "products.review": {"reviewer"},
    "products.drafts": {"operator"}, "products.review_queue": {"reviewer"}, "products.register_page": PUBLIC,
    "products.requests_page": PUBLIC, "products.request_page": PUBLIC, "products.file_request": PUBLIC, "products.decide_request": {"owner", "admin"},
    "products.catalog_jsonld": PUBLIC, "products.edit": {"operator"}, "products.rerun": {"operator"},
    "products.package_file": PUBLIC, "products.disclosure_page": PUBLIC, "products.disclosure_year": PUBLIC,
    "products.disclosure_build": {"owner", "reviewer", "admin"},
    # sharing between departments
    "sharing.responsibility_list": SIGNED_IN, "sharing.request_form": SIGNED_IN,
    "sharing.request_submit": SIGNED_IN, "sharing.mine": SIGNED_IN, "sharing.demand_submit": SIGNED_IN,
    "sharing.grant_page": SIGNED_IN, "sharing.pull": SIGNED_IN, "sharing.query": SIGNED_IN,
    "sharing.object": SIGNED_IN, "sharing.revoke": SIGNED_IN, "sharing.decisions": DECIDERS,
    "sharing.decide": {"owner"}, "sharing.answer": {"owner"}, "sharing.respond": SIGNED_IN,
    "sharing.review_change": {"reviewer"}, "sharing.usage": DECIDERS,
    "api.sharing_list": SIGNED_IN, "api.sharing_requests": SIGNED_IN, "api.sharing_request": SIGNED_IN,
    "api.sharing_show": SIGNED_IN, "api.sharing_decide": {"owner"}, "api.sharing_revoke": SIGNED_IN,
    "api.sharing_extract": SIGNED_IN, "api.sharing_query": SIGNED_IN, "api.sharing_object": SIGNED_IN,
    "api.sharing_answer": {"owner"}, "api.sharing_objections": SIGNED_IN, "api.sharing_demand": SIGNED_IN,
    "api.sharing_demands": SIGNED_IN, "api.sharing_usage": DECIDERS,
    # notifications: each signed-in user's own
    "api.list_notifications": SIGNED_IN, "api.show_address": SIGNED_IN, "api.set_address": SIGNED_IN,
    "notifications.notices_page": SIGNED_IN, "notifications.address_submit": SIGNED_IN,
}


def expected_roles(endpoint: str) -> set[str]:
    return EXPECTED[endpoint]


def concrete(rule) -> str:
    values = {"name": "health", "dataset": "health", "run_id": "0" * 8, "prefix": "dps_xxxxxx", "fmt": "csv",
              "filename": "app.css", "year": "2024", "path": "manifest.json"}

    def sub(m: re.Match) -> str:
        conv, name = m.group(1), m.group(2)
        return "1" if conv == "int" else values.get(name, "x")

    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", sub, rule.rule)


def refused(resp, role: str, api: bool) -> bool:
    if resp.status_code == 302 and "/login?next=" in resp.headers.get("Location", ""):
        return True
    if resp.status_code in (401, 403):
        body = resp.get_data(as_text=True)
        return "wrong_role" in body or "not_signed_in" in body
    return False


@pytest.fixture
def clients(app, tokens):
    out = {"public": (app.test_client(), {})}
    for role, user in ROLE_USER.items():
        c = app.test_client()
        page_login(c, user)
        out[role] = (c, bearer(tokens[role]))
    return out


def test_every_view_declares_its_roles(app):
    for endpoint, view in app.view_functions.items():
        assert hasattr(view, "allowed_roles"), endpoint
        assert set(view.allowed_roles) - {"public"} <= SIGNED_IN


def test_role_route_matrix(app, clients):
    seen = set()
    # signing out ends the session the other calls use: do it last
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.endpoint == "public.logout"):
        api = rule.rule.startswith("/api/")
        view = app.view_functions[rule.endpoint]
        want = expected_roles(rule.endpoint)
        declared = {"public"} | SIGNED_IN if "public" in view.allowed_roles else set(view.allowed_roles)
        assert declared == want, rule.endpoint
        path = concrete(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for role, (c, headers) in clients.items():
                if method == "GET":
                    resp = c.get(path, headers=headers if api else {})
                elif api:
                    resp = c.open(path, method=method, headers=headers, json={})
                else:
                    resp = c.open(path, method=method, data={"csrf_token": csrf_of(c)})
                got_refused = refused(resp, role, api)
                resp.close()
                assert got_refused == (role not in want), (rule.endpoint, method, role, resp.status_code)
                seen.add(rule.endpoint)
    assert seen == set(app.view_functions)
