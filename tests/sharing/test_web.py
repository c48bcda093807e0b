"""Sharing through the JSON API and the pages (SQLite): a department user requests,
pulls a signed zip, runs exact SQL and objects; refusals are problem details."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "web"))

from sharing_world import CONDITIONS, PASSWORD
from web_helpers import bearer, csrf_of, page_login, token_for


@pytest.fixture
def client(sqlite_world):
    from web.app import create_app

    return create_app(sqlite_world.inst, {"TESTING": True}).test_client()


def test_api_path_and_refusals(client, sqlite_world, tmp_path):
    from products.manifest import verify_path

    tax = bearer(token_for(client, "taxclerk", password=PASSWORD))
    owner = bearer(token_for(client, "owner1", password=PASSWORD))
    acme = bearer(token_for(client, "acme", password=PASSWORD))

    listing = client.get("/api/v1/sharing/list", headers=tax).get_json()["data"]
    assert [e["dataset"] for e in listing] == ["benefits", "registry"]
    r = client.post("/api/v1/sharing/requests", headers=acme,
                    json={"dataset": "registry", "columns": ["age"], "purpose": "p", "basis": "b"})
    assert r.status_code == 403 and r.get_json()["code"] == "company_not_eligible"
    r = client.post("/api/v1/sharing/requests", headers=tax,
                    json={"dataset": "benefits", "columns": ["amount"], "purpose": "Check", "basis": "Act",
                          "condition": CONDITIONS[0]})
    pending = r.get_json()["data"]
    assert r.status_code == 201 and pending["status"] == "pending"
    r = client.post(f"/api/v1/sharing/requests/{pending['id']}/decision", headers=owner,
                    json={"decision": "reject", "condition": "an extra agreement"})
    assert r.status_code == 400 and r.get_json()["code"] == "undeclared_condition"
    r = client.post(f"/api/v1/sharing/requests/{pending['id']}/decision", headers=owner,
                    json={"decision": "approve", "reason": "condition met"})
    assert r.get_json()["data"]["status"] == "granted"

    r = client.get(f"/api/v1/sharing/requests/{pending['id']}/extract?format=parquet&where=amount%20%3E%2040",
                   headers=tax)
    assert r.status_code == 200 and r.mimetype == "application/zip"
    target = tmp_path / "extract.zip"
    target.write_bytes(r.data)
    assert verify_path(target, sqlite_world.inst.signer.public_pem()).ok
    with zipfile.ZipFile(target) as zf:
        data = [n for n in zf.namelist() if n.endswith(".parquet")][0]
        table = pq.read_table(io.BytesIO(zf.read(data)))
        manifest = json.loads(zf.read("manifest.json"))
    assert table.column_names == ["amount"] and sorted(table.column("amount").to_pylist()) == [50, 60, 70, 80]
    assert manifest["grant"]["id"] == pending["id"] and manifest["recipient"]["user"] == "taxclerk"

    r = client.post(f"/api/v1/sharing/requests/{pending['id']}/query", headers=tax,
                    json={"sql": "SELECT SUM(amount) AS total FROM claims"})
    assert r.get_json()["data"]["rows"] == [[360]]
    r = client.post(f"/api/v1/sharing/requests/{pending['id']}/query", headers=tax,
                    json={"sql": "SELECT region FROM claims"})
    assert r.status_code == 422 and r.get_json()["code"] == "column_not_granted"
    r = client.get("/api/v1/sharing/usage", headers=owner).get_json()["data"]
    assert [(u["pulls"], u["queries"], u["rows"]) for u in r] == [(1, 1, 5)]


def test_pages_request_pull_query_object(client, sqlite_world):
    page_login(client, "taxclerk", PASSWORD)
    r = client.get("/sharing/?lang=zh")
    assert r.status_code == 200 and "共享责任清单" in r.get_data(as_text=True)
    client.get("/sharing/?lang=en")
    r = client.post("/sharing/datasets/registry", data={"csrf_token": csrf_of(client), "columns": ["people.age"],
                                                      "purpose": "Assess relief", "basis": "Tax Act"})
    assert r.status_code == 302
    grant_url = r.headers["Location"]
    page = client.get(grant_url).get_data(as_text=True)
    assert 'id="grant-status">granted<' in page
    grant_id = int(grant_url.rstrip("/").rsplit("/", 1)[1])
    r = client.post(f"/sharing/grants/{grant_id}/extract", data={"csrf_token": csrf_of(client), "format": "csv"})
    assert r.status_code == 200 and r.mimetype == "application/zip"
    r = client.post(f"/sharing/grants/{grant_id}/query", data={"csrf_token": csrf_of(client),
                                                             "sql": "SELECT income FROM people"})
    assert r.status_code == 422 and "column_not_granted" in r.get_data(as_text=True)
    r = client.post(f"/sharing/grants/{grant_id}/objections", data={
        "csrf_token": csrf_of(client), "columns": ["people.age"], "description": "ages over 80 missing"})
    assert r.status_code == 302
    assert "ages over 80 missing" in client.get(grant_url).get_data(as_text=True)
