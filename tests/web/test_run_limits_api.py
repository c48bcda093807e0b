"""Bad numbers and limits over the JSON API: always a 4xx problem, never a 500."""

from __future__ import annotations

import pytest

from web_helpers import bearer, token_for

SQL = "SELECT sex, COUNT(*) AS n FROM people GROUP BY sex"


@pytest.mark.parametrize("path", ["/api/v1/queries", "/api/v1/queries/preview"])
def test_tiny_and_subnormal_epsilons_are_4xx_problems(licensed_app, path):
    c = licensed_app.test_client()
    h = bearer(token_for(c, "operator1"))
    for epsilon, code in [(5e-324, "invalid_budget"), (1e-320, "invalid_budget"), (1e-300, "epsilon_below_floor"),
                          (0.001, "epsilon_below_floor")]:
        r = c.post(path, headers=h, json={"dataset": "health", "sql": SQL, "epsilon": epsilon})
        assert r.status_code == 400, (epsilon, r.get_data(as_text=True))
        assert r.mimetype == "application/problem+json" and r.get_json()["code"] == code
        assert "Traceback" not in r.get_data(as_text=True)
    for epsilon in ("NaN", "Infinity", 1e309, -1, "x"):
        r = c.post(path, headers=h, json={"dataset": "health", "sql": SQL, "epsilon": epsilon})
        assert 400 <= r.status_code < 500, (epsilon, r.status_code)
    left = c.get("/api/v1/budget/health", headers=h).get_json()["data"][0]
    assert left["spent"]["epsilon"] == 0 and left["reserved"]["epsilon"] == 0


def test_an_accuracy_target_that_is_not_a_width_is_a_4xx_problem(licensed_app):
    c = licensed_app.test_client()
    h = bearer(token_for(c, "operator1"))
    for width in (5e-324, 1e-300):
        r = c.post("/api/v1/queries/preview", headers=h,
                   json={"dataset": "health", "sql": SQL, "target": {"output": "n", "half_width": width}})
        assert 400 <= r.status_code < 500 and r.get_json()["code"], (width, r.get_data(as_text=True))


def test_a_licence_grant_takes_a_floor_and_a_query_cap(licensed_instance, licensed_app):
    from sandbox.audit import SYSTEM
    from sandbox.users import add_user
    from web_helpers import PASSWORD

    add_user(licensed_instance, SYSTEM, "operator2", "operator", PASSWORD)
    c = licensed_app.test_client()
    h = bearer(token_for(c, "owner1"))
    body = {"dataset": "health", "operator": "operator2", "epsilon": 1.0, "delta": 1e-7, "purpose": "capped",
            "expires": "2099-01-01", "min_epsilon_per_query": 0.2, "max_queries": 3}
    r = c.post("/api/v1/licences", headers=h, json=body)
    assert r.status_code == 201, r.get_data(as_text=True)
    bad = c.post("/api/v1/licences", headers=h, json={**body, "min_epsilon_per_query": 5.0})
    assert bad.status_code == 400 and bad.get_json()["code"] == "invalid_budget"


def test_the_api_preview_says_where_run_would_refuse(licensed_app):
    c = licensed_app.test_client()
    h = bearer(token_for(c, "operator1"))
    sql = "SELECT sex, AVG(income) AS m FROM people GROUP BY sex"
    over = c.post("/api/v1/queries/preview", headers=h, json={"dataset": "health", "sql": sql, "epsilon": 6.0})
    body = over.get_json()["data"]
    assert over.status_code == 200 and body["ok"] is False
    assert {r["code"] for r in body["refusals"]} >= {"over_query_cap"}
    fine = c.post("/api/v1/queries/preview", headers=h, json={"dataset": "health", "sql": sql}).get_json()["data"]
    assert fine["ok"] is True and fine["default_epsilon"] > 0
    assert fine["accuracy"][0]["output"] == "m" and len(fine["accuracy"][0]["by_group_size"]) == 3
