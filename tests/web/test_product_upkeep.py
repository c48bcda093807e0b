"""Product edit and re-run, the catalog's download IRIs (released files,
read-only, no path traversal) and the annual disclosure report, over the API
and the pages (real store, DuckDB worker, OpenDP, signing)."""

from __future__ import annotations

import json
from datetime import date

from web_helpers import bearer, csrf_of, page_login, token_for


GROUP_SQL = "SELECT city, COUNT(*) AS people FROM people GROUP BY city"


def _released_product(c) -> tuple[int, dict]:
    t = {u: bearer(token_for(c, u)) for u in ("operator1", "reviewer1", "reviewer2", "owner1", "admin1")}
    run = c.post("/api/v1/queries", headers=t["operator1"], json={"dataset": "health", "sql": GROUP_SQL,
                                                                  "epsilon": 0.5}).get_json()["data"]
    p = c.post("/api/v1/products", headers=t["operator1"], json={"title": "Per city", "run_ids": [run["run_id"]]})
    pid = p.get_json()["data"]["id"]
    edited = c.patch(f"/api/v1/products/{pid}", headers=t["operator1"],
                     json={"title": "People per city", "description": "Counts of people per city"})
    assert edited.status_code == 200 and edited.get_json()["data"]["title"] == "People per city"
    nothing = c.patch(f"/api/v1/products/{pid}", headers=t["operator1"], json={})
    assert nothing.status_code == 400 and nothing.get_json()["code"] == "nothing_to_change"
    not_mine = c.patch(f"/api/v1/products/{pid}", headers=t["reviewer1"], json={"title": "x"})
    assert not_mine.status_code == 403
    assert c.post(f"/api/v1/products/{pid}/submit", headers=t["operator1"],
                  json={"attestation": "I am responsible."}).status_code == 200
    for rev in ("reviewer1", "reviewer2"):
        r = c.post(f"/api/v1/products/{pid}/reviews", headers=t[rev], json={"decision": "approve", "reason": "ok"})
        assert r.status_code == 200, r.get_json()
    assert c.post(f"/api/v1/products/{pid}/release", headers=t["operator1"]).status_code == 200
    return pid, t


def test_edit_rerun_and_package_files(licensed_app, licensed_instance, tmp_path):
    from sandbox.audit import Actor
    from sandbox.datasets import add_dataset
    from sandbox.demo.data import write_health

    c = licensed_app.test_client()
    pid, t = _released_product(c)
    # the catalog's download IRIs resolve, read-only
    catalog = c.get("/catalog.jsonld").get_data(as_text=True)
    iris = sorted({v for v in json.loads(catalog).__str__().split("'") if f"/products/{pid}/v1/files/" in v})
    assert iris
    for iri in iris:
        path = iri.split("localhost", 1)[1]
        r = c.get(path)
        assert r.status_code == 200, path
    manifest = c.get(f"/products/{pid}/v1/files/manifest.json")
    assert json.loads(manifest.data)["product"]["id"] == pid
    for bad in ("../../../store.sqlite", "..%2F..%2Fstore.sqlite", "%2e%2e/%2e%2e/store.sqlite",
                "/etc/passwd", "nope.csv"):
        r = c.get(f"/products/{pid}/v1/files/{bad}", follow_redirects=True)
        assert r.status_code == 404, bad
    assert c.get(f"/products/{pid}/v2/files/manifest.json").status_code == 404

    # re-run on a new dataset version: a new draft version, the old one stays released
    same = c.post(f"/api/v1/products/{pid}/rerun", headers=t["operator1"], json={})
    assert same.status_code == 409 and same.get_json()["code"] == "same_dataset_version"
    add_dataset(licensed_instance, Actor("owner1", "owner"), write_health(tmp_path / "v2", people=300))
    r = c.post(f"/api/v1/products/{pid}/rerun", headers=t["operator1"], json={"dataset_version": 2})
    assert r.status_code == 201, r.get_json()
    p = r.get_json()["data"]
    assert p["state"] == "draft" and [v["number"] for v in p["versions"]] == [1, 2]
    assert c.get(f"/products/{pid}/v1/files/manifest.json").status_code == 200


def test_edit_and_rerun_through_the_product_page(licensed_app):
    c = licensed_app.test_client()
    pid, _ = _released_product(c)
    op = licensed_app.test_client()
    page_login(op, "operator1")
    page = op.get(f"/products/{pid}").get_data(as_text=True)
    assert 'id="rerun-product"' in page and 'id="save-product"' not in page and "manifest.json</a>" in page
    r = op.post(f"/products/{pid}/rerun", data={"csrf_token": csrf_of(op), "dataset_version": ""})
    assert r.status_code == 409 and "same_dataset_version" in r.get_data(as_text=True)
    run = op.post("/operator/", data={"csrf_token": csrf_of(op), "dataset": "health", "sql": GROUP_SQL,
                                      "action": "run", "epsilon": "0.3"})
    draft = op.post("/products/drafts", data={"csrf_token": csrf_of(op), "title": "Draft",
                                              "run_ids": run.headers["Location"].rsplit("/", 1)[1]})
    url = draft.headers["Location"]
    assert 'id="save-product"' in op.get(url).get_data(as_text=True)
    r = op.post(f"{url}/edit", data={"csrf_token": csrf_of(op), "title": "Renamed draft", "description": "d",
                                     "purpose": "planning"})
    assert r.status_code == 302 and "Renamed draft" in op.get(url).get_data(as_text=True)


def test_disclosure_report(licensed_app):
    c = licensed_app.test_client()
    pid, t = _released_product(c)
    year = date.today().year
    assert c.get(f"/api/v1/disclosure-reports/{year}").status_code == 404
    assert c.post("/api/v1/disclosure-reports", headers=t["operator1"], json={"year": year}).status_code == 403
    r = c.post("/api/v1/disclosure-reports", headers=t["reviewer1"], json={"year": year})
    assert r.status_code == 201, r.get_json()
    report = c.get(f"/api/v1/disclosure-reports/{year}").get_json()["data"]
    assert report["year"] == year and report["kind"] == "disclosure_report"
    ops = {o["operator"]: o for o in report["operators"]}
    assert [p["id"] for p in ops["operator1"]["products"]] == [pid] and ops["operator1"]["epsilon_spent"] > 0
    assert (licensed_app.extensions["dps"].home / "register" / str(year) / "manifest.sig").is_file()
    bad = c.post("/api/v1/disclosure-reports", headers=t["owner1"], json={"year": 99})
    assert bad.status_code == 400
    # pages: the public reads it; an owner publishes another year
    public = licensed_app.test_client()
    listing = public.get("/register/reports?lang=zh").get_data(as_text=True)
    assert "年度披露报告" in listing and f">{year}</a>" in listing and 'id="publish-report"' not in listing
    page = public.get(f"/register/reports/{year}").get_data(as_text=True)
    assert "People per city" in page and "operator1" in page
    owner = licensed_app.test_client()
    page_login(owner, "owner1")
    r = owner.post("/register/reports", data={"csrf_token": csrf_of(owner), "year": str(year - 1)})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/register/reports/{year - 1}")
    r = owner.post("/register/reports", data={"csrf_token": csrf_of(owner), "year": "last"})
    assert r.status_code == 400 and "invalid_year" in r.get_data(as_text=True)
