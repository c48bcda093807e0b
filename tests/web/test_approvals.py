"""Licence approval modes over the API and the pages: templates with typed
parameters, query approvals that run once, delegated reviewers, and
accuracy-first preview and run (real store, DuckDB worker and OpenDP)."""

from __future__ import annotations

from web_helpers import bearer, csrf_of, page_login, token_for


GROUP_SQL = "SELECT city, COUNT(*) AS people FROM people GROUP BY city"
CITY_SQL = "SELECT COUNT(*) AS n FROM people WHERE city = :city AND age >= :min_age"


def _tokens(c):
    return {u: bearer(token_for(c, u)) for u in ("owner1", "operator1", "reviewer1", "admin1")}


def _set_mode(c, t, mode: str, licence_id: int = 1) -> None:
    r = c.post(f"/api/v1/licences/{licence_id}/approval", headers=t["owner1"], json={"mode": mode, "reason": "test"})
    assert r.status_code == 200, r.get_json()
    lic = c.get("/api/v1/licences", headers=t["owner1"]).get_json()["data"]
    assert {x["id"]: x["approval_mode"] for x in lic}[licence_id] == mode


def test_templates_mode_over_the_api(licensed_app):
    c = licensed_app.test_client()
    t = _tokens(c)
    _set_mode(c, t, "templates")
    refused = c.post("/api/v1/queries", headers=t["operator1"],
                     json={"dataset": "health", "sql": GROUP_SQL, "epsilon": 0.5})
    assert refused.status_code == 403 and refused.get_json()["code"] == "template_required"
    # preview still works without approval
    assert c.post("/api/v1/queries/preview", headers=t["operator1"],
                  json={"dataset": "health", "sql": GROUP_SQL, "epsilon": 0.5}).status_code == 200

    r = c.post("/api/v1/templates", headers=t["operator1"], json={
        "dataset": "health", "title": "Adults per city", "purpose": "Clinic planning", "sql": CITY_SQL,
        "parameters": ["city:string:Oslo|Bergen", {"name": "min_age", "type": "integer", "min": 0, "max": 120}],
        "epsilon_per_run": 0.2, "max_runs": 3})
    assert r.status_code == 201, r.get_json()
    tid = r.get_json()["data"]["id"]
    run = c.post(f"/api/v1/templates/{tid}/runs", headers=t["operator1"], json={"params": {"city": "Oslo",
                                                                                          "min_age": 18}})
    assert run.status_code == 409 and run.get_json()["code"] == "template_not_approved"

    # a reviewer decides only once the owner delegated the dataset to them
    decision = {"decision": "approve", "reason": "bounded and purposeful"}
    assert c.get("/api/v1/templates", headers=t["reviewer1"]).get_json()["data"] == []
    no = c.post(f"/api/v1/templates/{tid}/decision", headers=t["reviewer1"], json=decision)
    assert no.status_code == 403
    assert c.post("/api/v1/datasets/health/delegates", headers=t["owner1"],
                  json={"reviewer": "reviewer1"}).status_code == 201
    queue = c.get("/api/v1/templates?status=proposed", headers=t["reviewer1"]).get_json()["data"]
    assert [x["id"] for x in queue] == [tid] and queue[0]["dataset"] == "health"
    ok = c.post(f"/api/v1/templates/{tid}/decision", headers=t["reviewer1"], json=decision)
    assert ok.status_code == 200 and ok.get_json()["data"] == {"id": tid, "status": "approved"}

    for city in ("Oslo", "Bergen"):
        run = c.post(f"/api/v1/templates/{tid}/runs", headers=t["operator1"],
                     json={"params": {"city": city, "min_age": "18"}})
        assert run.status_code == 201, run.get_json()
        assert run.get_json()["data"]["columns"] == ["n"] and abs(run.get_json()["data"]["cost"]["epsilon"] - 0.2) < 1e-9
    for params in ({"city": "Paris", "min_age": 18}, {"city": "Oslo' OR 1=1 --", "min_age": 18},
                   {"city": "Oslo", "min_age": 500}):
        bad = c.post(f"/api/v1/templates/{tid}/runs", headers=t["operator1"], json={"params": params})
        assert bad.status_code == 400 and bad.get_json()["code"] == "parameter_out_of_domain", bad.get_json()
        assert "Paris" not in bad.get_json()["detail"] and "1=1" not in bad.get_json()["detail"]
    shown = c.get(f"/api/v1/templates/{tid}", headers=t["operator1"]).get_json()["data"]
    assert shown["runs_used"] == 2 and shown["status"] == "approved"
    reg = c.get("/api/v1/register").get_json()["data"]
    assert [(x["id"], x["runs_used"], x["sql"]) for x in reg["templates"]] == [(tid, 2, CITY_SQL)]


def test_each_mode_approval_runs_once(licensed_app):
    c = licensed_app.test_client()
    t = _tokens(c)
    _set_mode(c, t, "each")
    refused = c.post("/api/v1/queries", headers=t["operator1"],
                     json={"dataset": "health", "sql": GROUP_SQL, "epsilon": 0.5})
    assert refused.status_code == 403 and refused.get_json()["code"] == "approval_required"
    r = c.post("/api/v1/approvals", headers=t["operator1"],
               json={"dataset": "health", "sql": GROUP_SQL, "purpose": "clinic planning", "epsilon": 0.5})
    assert r.status_code == 201
    rid = r.get_json()["data"]["id"]
    early = c.post(f"/api/v1/approvals/{rid}/run", headers=t["operator1"])
    assert early.status_code == 409 and early.get_json()["code"] == "request_not_approved"
    pending = c.get("/api/v1/approvals?status=pending", headers=t["owner1"]).get_json()["data"]
    assert [(x["id"], x["operator"]) for x in pending] == [(rid, "operator1")]
    assert c.get("/api/v1/approvals", headers=t["reviewer1"]).get_json()["data"] == []
    ok = c.post(f"/api/v1/approvals/{rid}/decision", headers=t["owner1"], json={"decision": "approve"})
    assert ok.get_json()["data"]["status"] == "approved"
    first = c.post(f"/api/v1/approvals/{rid}/run", headers=t["operator1"])
    assert first.status_code == 201 and len(first.get_json()["data"]["rows"]) > 0
    second = c.post(f"/api/v1/approvals/{rid}/run", headers=t["operator1"])
    assert second.status_code == 409 and second.get_json()["code"] == "request_already_ran"
    mine = c.get("/api/v1/approvals", headers=t["operator1"]).get_json()["data"]
    assert mine[0]["status"] == "ran" and mine[0]["run_id"] == first.get_json()["data"]["run_id"]
    rejected = c.post("/api/v1/approvals", headers=t["operator1"],
                      json={"dataset": "health", "sql": GROUP_SQL, "purpose": "again", "epsilon": 0.5})
    rid2 = rejected.get_json()["data"]["id"]
    no_reason = c.post(f"/api/v1/approvals/{rid2}/decision", headers=t["owner1"], json={"decision": "reject"})
    assert no_reason.status_code == 400 and no_reason.get_json()["code"] == "missing_reason"


def test_query_requests_is_the_older_spelling_of_approvals(licensed_app):
    """/query-requests answers as /approvals for one release, marked deprecated in the OpenAPI document."""
    c = licensed_app.test_client()
    t = _tokens(c)
    _set_mode(c, t, "each")
    r = c.post("/api/v1/query-requests", headers=t["operator1"],
               json={"dataset": "health", "sql": GROUP_SQL, "purpose": "clinic planning", "epsilon": 0.5})
    assert r.status_code == 201
    rid = r.get_json()["data"]["id"]
    listed = c.get("/api/v1/query-requests?status=pending", headers=t["owner1"]).get_json()["data"]
    assert listed == c.get("/api/v1/approvals?status=pending", headers=t["owner1"]).get_json()["data"]
    ok = c.post(f"/api/v1/query-requests/{rid}/decision", headers=t["owner1"], json={"decision": "approve"})
    assert ok.get_json()["data"] == {"id": rid, "status": "approved"}
    assert c.post(f"/api/v1/query-requests/{rid}/run", headers=t["operator1"]).status_code == 201
    paths = c.get("/api/v1/openapi.json").get_json()["paths"]
    for old, new in [("/query-requests", "/approvals"),
                     ("/query-requests/{approval_id}/decision", "/approvals/{approval_id}/decision"),
                     ("/query-requests/{approval_id}/run", "/approvals/{approval_id}/run")]:
        for method, op in paths["/api/v1" + old].items():
            assert op["deprecated"] is True and f"/api/v1{new}" in op["description"], (old, method)
            assert "deprecated" not in paths["/api/v1" + new][method]


def test_accuracy_first_preview_and_run(licensed_app):
    c = licensed_app.test_client()
    op = bearer(token_for(c, "operator1"))
    body = {"dataset": "health", "sql": GROUP_SQL, "target": {"output": "people", "half_width": 15}}
    pre = c.post("/api/v1/queries/preview", headers=op, json=body)
    assert pre.status_code == 200, pre.get_json()
    cost = pre.get_json()["data"]["cost"]
    assert cost["expected_half_width"]["people"] <= 15 * (1 + 1e-6)
    wider = c.post("/api/v1/queries/preview", headers=op,
                   json={**body, "target": {"output": "people", "half_width": 60}}).get_json()["data"]["cost"]
    assert wider["epsilon"] < cost["epsilon"]
    both = c.post("/api/v1/queries/preview", headers=op, json={**body, "epsilon": 0.5})
    assert both.status_code == 400 and both.get_json()["code"] == "invalid_budget"
    unknown = c.post("/api/v1/queries/preview", headers=op,
                     json={**body, "target": {"output": "nope", "half_width": 5}})
    assert unknown.status_code == 400 and unknown.get_json()["code"] == "unknown_output"
    run = c.post("/api/v1/queries", headers=op, json=body)
    assert run.status_code == 201 and abs(run.get_json()["data"]["cost"]["epsilon"] - cost["epsilon"]) < 1e-9


def test_approvals_through_the_pages(licensed_app):
    owner, op = licensed_app.test_client(), licensed_app.test_client()
    page_login(owner, "owner1")
    page_login(op, "operator1")
    r = owner.post("/owner/datasets/health/licences", data={
        "csrf_token": csrf_of(owner), "operator": "operator1", "purpose": "templated study", "epsilon": "1",
        "delta": "0", "expires": "2999-12-31", "approval": "templates"})
    assert r.status_code == 302
    r = owner.post("/owner/licences/1/approval", data={"csrf_token": csrf_of(owner), "dataset": "health",
                                                       "mode": "templates"})
    assert r.status_code == 302
    assert owner.get("/owner/datasets/health").get_data(as_text=True).count('value="templates" selected') == 2
    editor = op.post("/operator/", data={"csrf_token": csrf_of(op), "dataset": "health", "sql": GROUP_SQL,
                                         "epsilon": "0.5", "action": "run"})
    assert editor.status_code == 403 and "template_required" in editor.get_data(as_text=True)
    bad = op.post("/operator/templates", data={
        "csrf_token": csrf_of(op), "dataset": "health", "title": "t", "purpose": "p", "sql": CITY_SQL,
        "parameters": "city:string:Oslo|Bergen", "epsilon_per_run": "0.2"})
    assert bad.status_code == 400 and "parameter_mismatch" in bad.get_data(as_text=True)
    r = op.post("/operator/templates", data={
        "csrf_token": csrf_of(op), "dataset": "health", "title": "Adults per city", "purpose": "planning",
        "sql": CITY_SQL, "parameters": "city:string:Oslo|Bergen\nmin_age:integer:0..120", "epsilon_per_run": "0.2",
        "max_runs": "5"})
    assert r.status_code == 302
    template_url = r.headers["Location"]
    assert "This template runs once it is approved." in op.get(template_url).get_data(as_text=True)
    queue = owner.get("/approvals?lang=zh").get_data(as_text=True)
    assert "审批队列" in queue and "Adults per city" in queue and "min_age" in queue
    r = owner.post("/approvals/templates/1", data={"csrf_token": csrf_of(owner), "decision": "reject"})
    assert r.status_code == 400 and "missing_reason" in r.get_data(as_text=True)
    r = owner.post("/approvals/templates/1", data={"csrf_token": csrf_of(owner), "decision": "approve"})
    assert r.status_code == 302
    form = op.get(template_url).get_data(as_text=True)
    assert 'name="param_city"' in form and '<option value="Bergen"' in form
    assert '<input type="number"' in form and 'id="param_min_age"' in form and '<select id="param_min_age"' not in form
    out = op.post(template_url + "/run", data={"csrf_token": csrf_of(op), "param_city": "Paris",
                                                "param_min_age": "18"})
    assert out.status_code == 400 and "parameter_out_of_domain" in out.get_data(as_text=True)
    run = op.post(template_url + "/run", data={"csrf_token": csrf_of(op), "param_city": "Bergen",
                                                "param_min_age": "18"})
    assert run.status_code == 302 and "/operator/runs/" in run.headers["Location"]
    assert "Adults per city" in op.get("/register").get_data(as_text=True)


def test_each_mode_through_the_pages(licensed_app):
    owner, op = licensed_app.test_client(), licensed_app.test_client()
    page_login(owner, "owner1")
    page_login(op, "operator1")
    owner.post("/owner/licences/1/approval", data={"csrf_token": csrf_of(owner), "dataset": "health",
                                                   "mode": "each"})
    r = op.post("/operator/approvals", data={"csrf_token": csrf_of(op), "dataset": "health", "sql": GROUP_SQL,
                                             "purpose": "planning", "epsilon": "0.5"})
    assert r.status_code == 302
    assert "run-approval-1" not in op.get("/operator/approvals").get_data(as_text=True)
    assert "approve-approval-1" in owner.get("/approvals").get_data(as_text=True)
    owner.post("/approvals/1", data={"csrf_token": csrf_of(owner), "decision": "approve"})
    assert "run-approval-1" in op.get("/operator/approvals").get_data(as_text=True)
    run = op.post("/operator/approvals/1/run", data={"csrf_token": csrf_of(op)})
    assert run.status_code == 302 and "/operator/runs/" in run.headers["Location"]
    again = op.post("/operator/approvals/1/run", data={"csrf_token": csrf_of(op)})
    assert again.status_code == 409 and "request_already_ran" in again.get_data(as_text=True)
    # the older page paths answer alike for one release
    op.post("/operator/requests", data={"csrf_token": csrf_of(op), "dataset": "health", "sql": GROUP_SQL,
                                        "purpose": "again", "epsilon": "0.5"})
    owner.post("/approvals/requests/2", data={"csrf_token": csrf_of(owner), "decision": "approve"})
    assert "run-approval-2" in op.get("/operator/requests").get_data(as_text=True)
    assert op.post("/operator/requests/2/run", data={"csrf_token": csrf_of(op)}).status_code == 302


def test_accuracy_first_in_the_editor(licensed_app):
    op = licensed_app.test_client()
    page_login(op, "operator1")
    r = op.post("/operator/", data={"csrf_token": csrf_of(op), "dataset": "health", "sql": GROUP_SQL,
                                    "target_output": "people", "half_width": "20", "action": "preview"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="preview-result"' in html
    bad = op.post("/operator/", data={"csrf_token": csrf_of(op), "dataset": "health", "sql": GROUP_SQL,
                                      "half_width": "20", "action": "preview"})
    assert bad.status_code == 400 and "invalid_form" in bad.get_data(as_text=True)
    run = op.post("/operator/", data={"csrf_token": csrf_of(op), "dataset": "health", "sql": GROUP_SQL,
                                      "target_output": "people", "half_width": "20", "action": "run"})
    assert run.status_code == 302
