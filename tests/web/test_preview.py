"""The editor's preview: it says not ok where Run would refuse (per-query cap,
remaining budget), gives an expected accuracy for every output (AVG and
quantiles included), and a blank ε previews, and runs, at the default ε."""

from __future__ import annotations

import re

import pytest

from web_helpers import bearer, csrf_of, page_login, token_for


def _preview(c, sql, epsilon=""):
    return c.post("/operator/", data={"csrf_token": csrf_of(c), "dataset": "health", "sql": sql,
                                      "action": "preview", "epsilon": epsilon})


def _refusal_codes(html):
    return re.findall(r'<li data-code="([a-z_]+)"', html)


def test_preview_refuses_above_the_per_query_cap_like_run(licensed_app):
    c = licensed_app.test_client()
    page_login(c, "operator1")
    sql = "SELECT COUNT(*) AS n FROM people"
    html = _preview(c, sql, "1.5").get_data(as_text=True)       # cap: 1.0 per query
    assert 'data-ok="no"' in html and "over_query_cap" in _refusal_codes(html)
    run = c.post("/operator/", data={"csrf_token": csrf_of(c), "dataset": "health", "sql": sql,
                                     "action": "run", "epsilon": "1.5"})
    assert run.status_code >= 400                                # the run refuses too
    assert 'data-ok="yes"' in _preview(c, sql, "0.5").get_data(as_text=True)


def test_preview_refuses_more_than_the_budget_has_left(licensed_app):
    c = licensed_app.test_client()
    h = bearer(token_for(c, "operator1"))
    for _ in range(4):                                           # licence ε = 5: spend 4
        r = c.post("/api/v1/queries", headers=h, json={"dataset": "health", "sql": "SELECT COUNT(*) FROM people",
                                                         "epsilon": 1.0})
        assert r.status_code == 201, r.get_json()
    page_login(c, "operator1")
    html = _preview(c, "SELECT COUNT(*) AS n FROM people", "0.99").get_data(as_text=True)
    assert 'data-ok="yes"' in html
    h2 = c.post("/api/v1/queries", headers=h, json={"dataset": "health", "sql": "SELECT COUNT(*) FROM people",
                                                      "epsilon": 0.5})
    assert h2.status_code == 201
    html = _preview(c, "SELECT COUNT(*) AS n FROM people", "0.9").get_data(as_text=True)
    assert 'data-ok="no"' in html and _refusal_codes(html) == ["budget_exceeded"]


def test_every_output_has_an_expected_accuracy(licensed_app):
    c = licensed_app.test_client()
    page_login(c, "operator1")
    sql = ("SELECT city, COUNT(*) AS n, SUM(income) AS total, AVG(income) AS mean_income, "
           "MEDIAN(income) AS median_income FROM people GROUP BY city")
    html = _preview(c, sql, "0.5").get_data(as_text=True)
    assert 'data-ok="yes"' in html, html[-3000:]
    table = html[html.index('id="expected-accuracy"'):]
    table = table[:table.index("</table>")]
    rows = dict(re.findall(r'<tr data-output="([a-z_]+)"><td>[a-z_]+</td><td class="num">(.*?)</td></tr>',
                           table, re.S))
    assert set(rows) == {"n", "total", "mean_income", "median_income"}
    assert all("±" in v for v in rows.values()), rows
    assert "group of" in rows["mean_income"] and "candidate range" in rows["median_income"]


def test_a_blank_epsilon_previews_and_runs_at_the_default(licensed_app, licensed_instance):
    c = licensed_app.test_client()
    page_login(c, "operator1")
    sql = "SELECT COUNT(*) AS n FROM people"
    html = _preview(c, sql, "").get_data(as_text=True)
    shown = re.search(r"Cost: ε = ([0-9.]+)", html).group(1)
    assert float(shown) == pytest.approx(0.5)                   # default 1.0, at most half the cap of 1.0
    assert 'id="default-epsilon"' in html
    r = c.post("/operator/", data={"csrf_token": csrf_of(c), "dataset": "health", "sql": sql, "action": "run",
                                   "epsilon": ""})
    assert r.status_code == 302
    h = bearer(token_for(c, "operator1"))
    spent = c.get("/api/v1/budget/health", headers=h).get_json()["data"][0]["spent"]["epsilon"]
    assert spent == pytest.approx(0.5)
