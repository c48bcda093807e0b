"""Owner and operator work through the pages and the API (Flask test client,
real store, real DuckDB worker, real OpenDP)."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest

from web_helpers import bearer, csrf_of, page_login, token_for


REJECTED_SQL = "SELECT person_id, age FROM people"
GROUP_SQL = "SELECT city, COUNT(*) AS people FROM people GROUP BY city"


def upload(folder, names):
    return [(io.BytesIO((folder / n).read_bytes()), n) for n in names]


def test_owner_adds_a_dataset_through_the_page(client, health_source):
    page_login(client, "owner1")
    folder = health_source.parent
    r = client.post("/owner/add", content_type="multipart/form-data", data={
        "csrf_token": csrf_of(client), "policy": (io.BytesIO(health_source.read_bytes()), "policy.toml"),
        "files": upload(folder, ["people.parquet", "visits.csv", "clinics.csv"])})
    html = r.get_data(as_text=True)
    assert r.status_code == 201, html[-2000:]
    assert 'id="add-done"' in html and "people: 500" in html
    page = client.get("/owner/datasets/health").get_data(as_text=True)
    assert "Clinic visits 2025" in page and "Grant a licence" in page
    # the quality report is for the owner only
    assert "Quality report" in client.get("/datasets/health").get_data(as_text=True)
    other = client.application.test_client()
    assert "Quality report" not in other.get("/datasets/health").get_data(as_text=True)


def test_policy_errors_show_in_place(client, health_source):
    page_login(client, "owner1")
    bad = health_source.read_text().replace('classification = "conditional"', 'classification = "secret"')
    r = client.post("/owner/add", content_type="multipart/form-data", data={
        "csrf_token": csrf_of(client), "policy": (io.BytesIO(bad.encode()), "policy.toml"),
        "files": upload(health_source.parent, ["people.parquet", "visits.csv", "clinics.csv"])})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and 'id="add-error"' in html and "dataset.classification" in html
    # /owner/register: the older spelling of /owner/add, kept for one release
    assert 'id="add-done"' not in client.get("/owner/register").get_data(as_text=True)
    missing = client.post("/owner/register", content_type="multipart/form-data", data={
        "csrf_token": csrf_of(client), "policy": (io.BytesIO(health_source.read_bytes()), "policy.toml")})
    assert missing.status_code >= 400 and 'id="add-error"' in missing.get_data(as_text=True)
    # nothing was added, nothing left behind in the uploads folder
    assert "health" not in client.get("/").get_data(as_text=True)
    uploads = client.application.extensions["dps"].home / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def test_owner_grants_and_revokes_a_licence(licensed_app):
    c = licensed_app.test_client()
    page_login(c, "owner1")
    r = c.post("/owner/datasets/health/licences", data={
        "csrf_token": csrf_of(c), "operator": "operator1", "purpose": "second study", "epsilon": "1",
        "delta": "0", "expires": "2999-12-31"})
    assert r.status_code == 302
    html = c.get("/owner/datasets/health?lang=zh").get_data(as_text=True)
    assert "second study" in html and "隐私预算" in html and "<svg" in html
    bad = c.post("/owner/datasets/health/licences", data={
        "csrf_token": csrf_of(c), "operator": "operator1", "purpose": "too much", "epsilon": "500",
        "expires": "2999-12-31"})
    assert bad.status_code == 400 and "invalid_budget" in bad.get_data(as_text=True)
    r = c.post("/owner/licences/2/revoke", data={"csrf_token": csrf_of(c), "dataset": "health", "reason": "done"})
    assert r.status_code == 302
    lic = {x["id"]: x for x in c.application.test_client().get(
        "/api/v1/licences", headers=bearer(token_for(c, "owner1"))).get_json()["data"]}
    assert lic[2]["status"] == "revoked" and lic[1]["status"] == "active"


def test_owner_sees_only_own_budgets(licensed_app):
    c = licensed_app.test_client()
    owner, admin, op = (token_for(c, u) for u in ("owner1", "admin1", "operator1"))
    gauge = c.get("/api/v1/datasets/health/budget", headers=bearer(owner)).get_json()["data"]
    assert [lvl["level"] for lvl in gauge["levels"]] == ["dataset", "licence"]
    assert gauge["levels"][1]["total"]["epsilon"] == 5.0
    assert c.get("/api/v1/datasets/health/budget", headers=bearer(admin)).status_code == 200
    assert c.get("/api/v1/datasets/health/budget", headers=bearer(op)).status_code == 403
    mine = c.get("/api/v1/licences", headers=bearer(op)).get_json()
    assert mine["meta"]["total"] == 1 and mine["data"][0]["operator"] == "operator1"


def test_operator_preview_shows_rejection_with_span(licensed_app):
    c = licensed_app.test_client()
    page_login(c, "operator1")
    r = c.post("/operator/", data={"csrf_token": csrf_of(c), "dataset": "health", "sql": REJECTED_SQL,
                                   "action": "preview"})
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert 'id="rejection-code">identifier_in_output<' in html
    assert '<mark class="bad" id="offending-span">person_id</mark>' in html
    r = c.post("/operator/", data={"csrf_token": csrf_of(c), "dataset": "health", "sql": GROUP_SQL,
                                   "action": "preview", "epsilon": "0.5"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="preview-result"' in html and "ε = 0.5" in html


def test_preview_and_rejection_over_the_api(licensed_app):
    c = licensed_app.test_client()
    h = bearer(token_for(c, "operator1"))
    r = c.post("/api/v1/queries/preview", headers=h, json={"dataset": "health", "sql": REJECTED_SQL})
    body = r.get_json()
    assert r.status_code == 422 and body["code"] == "identifier_in_output"
    assert body["span"] == {"start": 7, "end": 16, "line": 1, "column": 8}
    ok = c.post("/api/v1/queries/preview", headers=h, json={"dataset": "health", "sql": GROUP_SQL, "epsilon": 0.5})
    assert ok.status_code == 200 and ok.get_json()["data"]["cost"]["epsilon"] == pytest.approx(0.5)
    # preview spends nothing
    left = c.get("/api/v1/budget/health", headers=h).get_json()["data"][0]
    assert left["spent"]["epsilon"] == 0 and left["reserved"]["epsilon"] == 0


def test_operator_runs_a_query_and_downloads_the_result(licensed_app):
    c = licensed_app.test_client()
    page_login(c, "operator1")
    r = c.post("/operator/", data={"csrf_token": csrf_of(c), "dataset": "health", "sql": GROUP_SQL,
                                   "action": "run", "epsilon": "0.5"})
    assert r.status_code == 302, r.get_data(as_text=True)[-1500:]
    page = c.get(r.headers["Location"]).get_data(as_text=True)
    assert '<svg class="chart"' in page and 'class="errorbar"' in page and "Oslo" in page
    run_id = r.headers["Location"].rsplit("/", 1)[1]
    csv_text = c.get(f"/operator/runs/{run_id}/result.csv").get_data(as_text=True)
    assert csv_text.splitlines()[0] == "city,people,people__ci_lower,people__ci_upper"
    table = pq.read_table(io.BytesIO(c.get(f"/operator/runs/{run_id}/result.parquet").data))
    assert table.num_rows == 10
    data = json.loads(c.get(f"/operator/runs/{run_id}/result.json").data)
    assert data["cost"]["epsilon"] == pytest.approx(0.5)
    # the charge shows in the budget over the API
    h = bearer(token_for(c, "operator1"))
    assert c.get("/api/v1/budget/health", headers=h).get_json()["data"][0]["spent"]["epsilon"] == pytest.approx(0.5)
    runs = c.get("/api/v1/queries", headers=h).get_json()
    assert runs["meta"]["total"] == 1 and runs["data"][0]["run_id"] == run_id


def test_open_data_downloads_and_mock_data(licensed_instance, licensed_app, tmp_path):
    from sandbox.audit import Actor
    from sandbox.datasets import add_dataset
    from sandbox.demo.data import write_transport

    add_dataset(licensed_instance, Actor("owner1", "owner"), write_transport(tmp_path / "transport"))
    c = licensed_app.test_client()
    csv_text = c.get("/datasets/transport/download.csv?table=ridership").get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith("stop,") and len(csv_text.splitlines()) > 10
    api = c.get("/api/v1/datasets/transport/download?format=parquet")
    assert api.status_code == 200 and pq.read_table(io.BytesIO(api.data)).num_rows > 10
    refused = c.get("/api/v1/datasets/health/download?format=csv")
    assert refused.status_code == 403 and refused.get_json()["code"] == "not_open_data"
    assert c.get("/datasets/health/download.csv").status_code == 403
    mock = c.get("/api/v1/datasets/health/mock?table=people&format=parquet")
    table = pq.read_table(io.BytesIO(mock.data))
    assert table.num_rows == 1000 and "income" in table.column_names
    assert "Mock data" in c.get("/datasets/health").get_data(as_text=True)
    assert c.get("/api/v1/datasets/health/mock?table=nosuch").get_json()["code"] == "table_not_found"


def test_register_and_requests_pages(licensed_app):
    c = licensed_app.test_client()
    html = c.get("/register?lang=zh").get_data(as_text=True)
    assert "透明度登记" in html and "Tests: clinic planning" in html and "operator1" in html
    api = c.get("/api/v1/register").get_json()["data"]
    assert api["licences"][0]["operator"] == "operator1"
    c.get("/requests")
    r = c.post("/requests", data={"csrf_token": csrf_of(c), "title": "Visits by district",
                                  "description": "Planning clinics", "contact": "someone@example.org",
                                  "dataset": "health"})
    assert r.status_code == 302
    owner = licensed_app.test_client()
    page_login(owner, "owner1")
    html = owner.get("/requests").get_data(as_text=True)
    assert "Visits by district" in html and "someone@example.org" in html
    assert "someone@example.org" not in c.get("/requests").get_data(as_text=True)
    r = owner.post("/requests/1/decision", data={"csrf_token": csrf_of(owner), "decision": "accept"})
    assert r.status_code == 302
    assert c.get("/api/v1/requests").get_json()["data"][0]["status"] == "accepted"
    catalog = c.get("/api/v1/catalog").get_json()["data"]
    assert "@context" in catalog


def test_draft_submit_and_review_through_pages(licensed_app):
    op = licensed_app.test_client()
    page_login(op, "operator1")
    r = op.post("/operator/", data={"csrf_token": csrf_of(op), "dataset": "health", "sql": GROUP_SQL,
                                    "action": "run", "epsilon": "0.5"})
    run_id = r.headers["Location"].rsplit("/", 1)[1]
    r = op.post("/products/drafts", data={"csrf_token": csrf_of(op), "run_ids": run_id, "title": "Per city"})
    assert r.status_code == 302
    product = r.headers["Location"]
    assert 'id="submit-product"' in op.get(product).get_data(as_text=True)
    r = op.post(f"{product}/submit", data={"csrf_token": csrf_of(op), "attestation": "I am responsible."})
    assert r.status_code == 302
    assert "Per city" in op.get("/operator/drafts").get_data(as_text=True)

    rev = licensed_app.test_client()
    page_login(rev, "reviewer1")
    assert "Per city" in rev.get("/review?lang=zh").get_data(as_text=True)
    screen = rev.get(product).get_data(as_text=True)
    assert 'id="checks"' in screen and 'id="review-form"' in screen and "errorbar" in screen
    r = rev.post(f"{product}/review", data={"csrf_token": csrf_of(rev), "decision": "reject", "reason": ""})
    assert r.status_code == 400 and 'id="action-error"' in r.get_data(as_text=True)
    assert "missing_reason" in r.get_data(as_text=True)
    r = rev.post(f"{product}/review", data={"csrf_token": csrf_of(rev), "decision": "return",
                                            "reason": "Add a description"})
    assert r.status_code == 302
    page = op.get(product).get_data(as_text=True)
    assert 'id="product-state">returned<' in page and "Add a description" in page
    # the public does not see unreleased products
    assert licensed_app.test_client().get(product).status_code == 404
