"""Governed classification and one source per dataset through the API and the
pages, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from web_helpers import PASSWORD, add_users, bearer, csrf_of, page_login, token_for


@pytest.fixture
def api(make_instance, store_url, tmp_path):
    """owner1 has added the open transport dataset (through the API); tokens per user."""
    from sandbox.demo.data import write_transport
    from web.app import create_app

    inst = make_instance(store_url)
    add_users(inst)
    client = create_app(inst, {"TESTING": True}).test_client()
    tokens = {u: token_for(client, u) for u in ("owner1", "reviewer1", "admin1", "operator1")}
    write_transport(tmp_path / "transport")
    added = _upload(client, tokens["owner1"], tmp_path / "transport")
    assert added.status_code == 201, added.get_json()
    assert added.get_json()["data"]["classification"] == "open"
    return client, tokens, tmp_path / "transport"


def _upload(client, token: str, folder: Path, policy: str | None = None, **form: str):
    text = policy if policy is not None else (folder / "policy.toml").read_text(encoding="utf-8")
    return client.post("/api/v1/datasets", headers=bearer(token), content_type="multipart/form-data", data={
        "policy": (io.BytesIO(text.encode()), "policy.toml"),
        "files": [(io.BytesIO((folder / "ridership.csv").read_bytes()), "ridership.csv")], **form})


def _class(client, name: str) -> str:
    return client.get(f"/api/v1/datasets/{name}").get_json()["data"]["classification"]


def test_reclassify_through_the_api(api):
    client, tokens, _ = api
    owner, reviewer = bearer(tokens["owner1"]), bearer(tokens["reviewer1"])
    raised = client.post("/api/v1/datasets/transport/reclassify", headers=owner,
                         json={"to": "restricted", "reason": "complaint received"})
    assert raised.status_code == 200, raised.get_json()
    assert raised.get_json()["data"] == {"dataset": "transport", "from_class": "open", "to_class": "restricted",
                                         "status": "applied", "change_id": None}
    assert _class(client, "transport") == "restricted"

    asked = client.post("/api/v1/datasets/transport/reclassify", headers=owner,
                        json={"to": "open", "reason": "complaint answered"}).get_json()["data"]
    assert asked["status"] == "pending"
    cid = asked["change_id"]
    assert _class(client, "transport") == "restricted"

    # bad input: a clear code, nothing changes
    bad = client.post("/api/v1/datasets/transport/reclassify", headers=owner, json={"to": "public", "reason": "x"})
    assert bad.status_code in (400, 422) and bad.get_json()["code"]
    assert client.post("/api/v1/datasets/transport/reclassify", headers=bearer(tokens["operator1"]),
                       json={"to": "open", "reason": "x"}).status_code == 403

    listed = client.get("/api/v1/classification-changes?status=pending", headers=reviewer).get_json()
    assert [(c["id"], c["dataset"], c["from_class"], c["to_class"], c["requested_by"]) for c in listed["data"]] == \
        [(cid, "transport", "restricted", "open", "owner1")]
    assert listed["meta"]["total"] == 1

    # the owner may not decide; a reviewer must give a reason
    assert client.post(f"/api/v1/classification-changes/{cid}/decide", headers=owner,
                       json={"decision": "approve", "reason": "mine"}).status_code == 403
    no_reason = client.post(f"/api/v1/classification-changes/{cid}/decide", headers=reviewer,
                            json={"decision": "approve", "reason": ""})
    assert no_reason.status_code in (400, 422)
    assert client.post(f"/api/v1/classification-changes/{cid}/decide", headers=reviewer,
                       json={"decision": "maybe", "reason": "x"}).status_code in (400, 422)
    assert _class(client, "transport") == "restricted"

    decided = client.post(f"/api/v1/classification-changes/{cid}/decide", headers=reviewer,
                          json={"decision": "approve", "reason": "counts of boardings only"})
    assert decided.status_code == 200, decided.get_json()
    body = decided.get_json()["data"]
    assert (body["status"], body["decided_by"], body["decision_reason"]) == \
        ("approved", "reviewer1", "counts of boardings only")
    assert _class(client, "transport") == "open"
    again = client.post(f"/api/v1/classification-changes/{cid}/decide", headers=reviewer,
                        json={"decision": "reject", "reason": "late"})
    assert again.status_code == 409 and again.get_json()["code"] == "not_pending"
    missing = client.get("/api/v1/classification-changes/999", headers=reviewer)
    assert missing.status_code == 404 and missing.get_json()["code"] == "unknown_classification_change"


def test_one_source_per_dataset_through_the_api(api):
    client, tokens, folder = api
    owner = bearer(tokens["owner1"])
    copy = (folder / "policy.toml").read_text(encoding="utf-8").replace('name = "transport"', 'name = "buses"')
    dup = _upload(client, tokens["owner1"], folder, copy)
    assert dup.status_code == 409, dup.get_json()
    assert dup.get_json()["code"] == "duplicate_source" and dup.get_json()["dataset"] == "transport"
    assert client.get("/api/v1/datasets/buses").status_code == 404

    as_version = _upload(client, tokens["owner1"], folder, copy.replace("Bus ridership", "Bus boardings"),
                         version_of="transport")
    assert as_version.status_code == 201, as_version.get_json()
    assert (as_version.get_json()["data"]["dataset"], as_version.get_json()["data"]["number"]) == ("transport", 2)

    identified = copy.replace("public = true", "public = false").replace(
        'columns.stop     = { class = "public" }', 'columns.stop     = { class = "identifier" }')
    assert identified != copy
    refused = _upload(client, tokens["owner1"], folder, identified)
    assert refused.status_code == 422 and refused.get_json()["code"] == "open_with_identifiers"
    assert refused.get_json()["columns"] == ["ridership.stop"]
    assert client.get("/api/v1/datasets/transport", headers=owner).get_json()["data"]["versions"][-1]["number"] == 2


def test_reviewer_decides_on_the_page(api):
    client, tokens, _ = api
    client.post("/api/v1/datasets/transport/reclassify", headers=bearer(tokens["owner1"]),
                json={"to": "restricted", "reason": "pause"})
    cid = client.post("/api/v1/datasets/transport/reclassify", headers=bearer(tokens["owner1"]),
                      json={"to": "open", "reason": "resume"}).get_json()["data"]["change_id"]
    page = client.application.test_client()
    page_login(page, "reviewer1")
    html = page.get("/classification").get_data(as_text=True)
    assert f'id="change-{cid}"' in html and "resume" in html
    refused = page.post(f"/classification/{cid}/decide", data={"csrf_token": csrf_of(page), "decision": "approve",
                                                              "reason": ""})
    assert refused.status_code == 400 and "missing_reason" in refused.get_data(as_text=True)
    done = page.post(f"/classification/{cid}/decide", data={"csrf_token": csrf_of(page), "decision": "approve",
                                                           "reason": "public counts"})
    assert done.status_code == 302
    assert _class(client, "transport") == "open"

    owner_page = client.application.test_client()
    page_login(owner_page, "owner1")
    html = owner_page.get("/owner/datasets/transport").get_data(as_text=True)
    assert 'id="reclassify"' in html and "public counts" in html
    moved = owner_page.post("/owner/datasets/transport/reclassify", data={
        "csrf_token": csrf_of(owner_page), "to": "restricted", "reason": "inquiry"})
    assert moved.status_code == 302 and _class(client, "transport") == "restricted"


def test_a_version_that_lowers_the_class_says_so_on_the_add_page(api):
    client, tokens, folder = api
    client.post("/api/v1/datasets/transport/reclassify", headers=bearer(tokens["owner1"]),
                json={"to": "restricted", "reason": "pause"})
    page = client.application.test_client()
    page_login(page, "owner1")
    policy = (folder / "policy.toml").read_text(encoding="utf-8").replace("Bus ridership", "Bus boardings")
    r = page.post("/owner/add", content_type="multipart/form-data", data={
        "csrf_token": csrf_of(page), "policy": (io.BytesIO(policy.encode()), "policy.toml"),
        "files": [(io.BytesIO((folder / "ridership.csv").read_bytes()), "ridership.csv")]})
    html = r.get_data(as_text=True)
    assert r.status_code == 201 and 'id="add-classification-change"' in html, html[-1500:]
    assert _class(client, "transport") == "restricted"
    [change] = client.get("/api/v1/classification-changes?status=pending",
                          headers=bearer(tokens["reviewer1"])).get_json()["data"]
    assert (change["version"], change["to_class"]) == (2, "open")


def test_the_python_client_reclassifies_and_decides(api):
    import httpx

    from queries.errors import Forbidden
    from web.client import SandboxClient

    client, _, _ = api
    transport = httpx.WSGITransport(app=client.application)
    owner = SandboxClient.login("http://sandbox", "owner1", PASSWORD, transport=transport)
    reviewer = SandboxClient.login("http://sandbox", "reviewer1", PASSWORD, transport=transport)
    assert owner.reclassify("transport", "restricted", "pause")["status"] == "applied"
    change = owner.reclassify("transport", "open", "resume")["change_id"]
    assert [c["id"] for c in reviewer.classification_changes(status="pending")] == [change]
    with pytest.raises(Forbidden):
        owner.decide_classification_change(change, "approve", "mine")
    assert reviewer.decide_classification_change(change, "reject", "not yet")["status"] == "rejected"
    assert owner.dataset("transport")["classification"] == "restricted"


def test_an_owner_sees_only_the_requests_on_their_datasets(api):
    from sandbox.audit import SYSTEM
    from sandbox.users import add_user

    client, tokens, _ = api
    add_user(client.application.extensions["dps"], SYSTEM, "owner2", "owner", PASSWORD)
    other = bearer(token_for(client, "owner2"))
    client.post("/api/v1/datasets/transport/reclassify", headers=bearer(tokens["owner1"]),
                json={"to": "restricted", "reason": "pause"})
    cid = client.post("/api/v1/datasets/transport/reclassify", headers=bearer(tokens["owner1"]),
                      json={"to": "open", "reason": "resume"}).get_json()["data"]["change_id"]
    assert client.get("/api/v1/classification-changes", headers=other).get_json()["data"] == []
    hidden = client.get(f"/api/v1/classification-changes/{cid}", headers=other)
    assert hidden.status_code == 404 and hidden.get_json()["code"] == "unknown_classification_change"
    assert client.get(f"/api/v1/classification-changes/{cid}", headers=bearer(tokens["owner1"])).status_code == 200
    assert [c["id"] for c in client.get("/api/v1/classification-changes",
                                        headers=bearer(tokens["admin1"])).get_json()["data"]] == [cid]
    page = client.application.test_client()
    page_login(page, "owner2")
    assert f'id="change-{cid}"' not in page.get("/classification").get_data(as_text=True)
