"""The JSON API: tokens, envelope, problem details, validation, pagination,
headers and the OpenAPI document."""

from __future__ import annotations

import re

from web_helpers import PASSWORD, bearer, token_for


def test_token_issue_use_and_revoke(client):
    r = client.post("/api/v1/tokens", json={"user": "operator1", "password": PASSWORD, "days": 2})
    assert r.status_code == 201
    tok = r.get_json()["data"]
    assert tok["token"].startswith("dps_") and tok["prefix"] == tok["token"][:10]
    me = client.get("/api/v1/me", headers=bearer(tok["token"]))
    assert me.status_code == 200
    assert me.get_json() == {"data": {"name": "operator1", "role": "operator", "display_name": "Operator1",
                                      "organisation": "Test"}, "meta": {}}
    assert client.delete(f"/api/v1/tokens/{tok['prefix']}", headers=bearer(tok["token"])).status_code == 200
    gone = client.get("/api/v1/me", headers=bearer(tok["token"]))
    assert gone.status_code == 401 and gone.get_json()["code"] == "bad_token"


def test_tokens_are_stored_hashed(client, web_instance):
    from sqlalchemy import select

    from sandbox.persistence.models import ApiToken

    token = token_for(client, "owner1")
    with web_instance.store.read() as s:
        rows = s.execute(select(ApiToken)).scalars().all()
    assert rows and all(token not in (row.token_hash, row.prefix) for row in rows)


def test_wrong_password_is_a_problem(client):
    r = client.post("/api/v1/tokens", json={"user": "operator1", "password": "nope-nope"})
    assert r.status_code == 401
    assert r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["code"] == "bad_credentials" and body["status"] == 401
    assert body["type"] == "urn:dp-sandbox:problem:bad_credentials" and body["title"] == "Unauthorized"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_login_rate_limit(client):
    for _ in range(6):
        assert client.post("/api/v1/tokens", json={"user": "admin1", "password": "wrong-pass"}).status_code == 401
    r = client.post("/api/v1/tokens", json={"user": "admin1", "password": PASSWORD})
    assert r.status_code == 429 and r.get_json()["code"] == "too_many_attempts"
    assert int(r.headers["Retry-After"]) > 0
    # other users from the same address are not locked out
    assert client.post("/api/v1/tokens", json={"user": "owner1", "password": PASSWORD}).status_code == 201


def test_malformed_authorization_and_bodies(client, tokens):
    assert client.get("/api/v1/me", headers={"Authorization": "Basic abc"}).get_json()["code"] == "bad_token"
    r = client.post("/api/v1/licences", headers=bearer(tokens["owner"]), data="not json",
                    content_type="application/json")
    assert r.status_code == 400 and r.get_json()["code"] == "invalid_request"
    r = client.post("/api/v1/licences", headers=bearer(tokens["owner"]),
                    json={"dataset": "health", "operator": "operator1", "epsilon": -1, "purpose": "x",
                          "expires": "2999-01-01"})
    body = r.get_json()
    assert r.status_code == 400 and body["code"] == "invalid_request"
    assert body["errors"][0]["loc"] == ["epsilon"]
    r = client.post("/api/v1/licences", headers=bearer(tokens["owner"]), json={"unknown": 1})
    assert r.status_code == 400


def test_service_errors_keep_their_code(client, tokens):
    r = client.get("/api/v1/datasets/nosuch")
    assert r.status_code == 404 and r.get_json()["code"] == "unknown_dataset"
    r = client.post("/api/v1/users", headers=bearer(tokens["admin"]),
                    json={"name": "owner1", "role": "owner", "password": "long enough"})
    assert r.status_code == 409 and r.get_json()["code"] == "user_exists"
    r = client.post("/api/v1/queries/preview", headers=bearer(tokens["operator"]),
                    json={"dataset": "nosuch", "sql": "SELECT 1"})
    assert r.status_code == 404 and r.get_json()["code"] == "unknown_dataset"


def test_read_only_token_cannot_write(client):
    token = token_for(client, "admin1", scopes=("read",))
    assert client.get("/api/v1/users", headers=bearer(token)).status_code == 200
    r = client.post("/api/v1/users", headers=bearer(token),
                    json={"name": "newbie", "role": "operator", "password": "long enough"})
    assert r.status_code == 403 and r.get_json()["code"] == "insufficient_scope"


def test_users_pagination(client, tokens):
    h = bearer(tokens["admin"])
    r = client.get("/api/v1/users?per_page=2&page=2", headers=h)
    body = r.get_json()
    assert body["meta"] == {"page": 2, "per_page": 2, "total": 5}
    assert [u["name"] for u in body["data"]] == ["owner1", "reviewer1"]
    assert client.get("/api/v1/users?per_page=0", headers=h).status_code == 400
    assert client.get("/api/v1/users?bogus=1", headers=h).status_code == 400


def test_admin_endpoints(client, tokens):
    h = bearer(tokens["admin"])
    audit = client.get("/api/v1/audit/verify", headers=h).get_json()["data"]
    assert audit["ok"] is True and audit["records"] >= 5
    settings = {s["name"]: s for s in client.get("/api/v1/settings", headers=h).get_json()["data"]}
    assert settings["workers"]["value"] == 2 and settings["secret_key"]["value"] == ""
    key = client.get("/api/v1/keys").get_json()["data"]
    assert key["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")


def test_security_headers_everywhere(client, tokens):
    for path in ("/", "/login", "/api/v1/datasets", "/api/v1/nope", "/nope", "/static/app.css"):
        with client.get(path) as r:
            assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"], path
            assert "script-src 'self'" in r.headers["Content-Security-Policy"]
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert r.headers["X-Frame-Options"] == "DENY"


def test_not_found_and_wrong_method_are_problems(client):
    r = client.get("/api/v1/nope")
    assert r.status_code == 404 and r.mimetype == "application/problem+json" and r.get_json()["code"] == "not_found"
    r = client.put("/api/v1/datasets")
    assert r.status_code == 405 and r.get_json()["code"] == "method_not_allowed"


def test_openapi_lists_every_api_route(app, client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    expected = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1") or rule.endpoint == "api.openapi_json":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            expected.add((path, method.lower()))
    assert expected and expected == documented
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and "4XX" in op["responses"], (path, method)
    # referenced schemas exist
    text = str(doc)
    for name in set(re.findall(r"#/components/schemas/(\w+)", text)):
        assert name in doc["components"]["schemas"], name


def test_openapi_request_models_match_validation(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    grant = doc["components"]["schemas"]["LicenceGrant"]
    assert set(grant["required"]) == {"dataset", "operator", "epsilon", "purpose", "expires"}
    assert grant["additionalProperties"] is False
