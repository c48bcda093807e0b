"""The API on each metadata store (SQLite and a real PostgreSQL)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from web_helpers import add_users, bearer, token_for



def test_owner_and_operator_over_the_api(instance, health_source):
    from sandbox.audit import Actor
    from sandbox.datasets import add_dataset
    from web.app import create_app

    add_users(instance)
    add_dataset(instance, Actor("owner1", "owner"), health_source)
    c = create_app(instance, {"TESTING": True}).test_client()
    owner, op = bearer(token_for(c, "owner1")), bearer(token_for(c, "operator1"))
    r = c.post("/api/v1/licences", headers=owner, json={
        "dataset": "health", "operator": "operator1", "epsilon": 1, "purpose": "backends",
        "expires": (date.today() + timedelta(days=3)).isoformat()})
    assert r.status_code == 201, r.get_json()
    run = c.post("/api/v1/queries", headers=op, json={"dataset": "health", "epsilon": 0.6,
                                                      "sql": "SELECT COUNT(*) AS n FROM people"})
    assert run.status_code == 201, run.get_json()
    again = c.post("/api/v1/queries", headers=op, json={"dataset": "health", "epsilon": 0.6,
                                                        "sql": "SELECT COUNT(*) AS n FROM people"})
    body = again.get_json()
    assert again.status_code == 409 and body["code"] == "budget_exceeded"
    assert body["remaining"]["epsilon"] == pytest.approx(0.4)
    gauge = c.get("/api/v1/datasets/health/budget", headers=owner).get_json()["data"]["levels"]
    assert gauge[1]["spent"]["epsilon"] == pytest.approx(0.6) and gauge[1]["reserved"]["epsilon"] == 0
    assert c.get("/api/v1/audit/verify", headers=bearer(token_for(c, "admin1"))).get_json()["data"]["ok"] is True
