"""Reviewing: the review screen marks the cells a warning is about and shows the
licence's purpose; confirmations after submitting and deciding; approving over a
warning needs a reason that has a visible character (pages and API)."""

from __future__ import annotations

import re

from web_helpers import bearer, csrf_of, page_login, token_for

RARE_SQL = "SELECT city, COUNT(*) AS n FROM people WHERE age > 110 GROUP BY city"   # counts near 0: small
INVISIBLE = ("\u200b", "\ufeff", " \u2060 ", "\u200b\u200c\u200d", "\u00a0\u200b\t")


def _submitted(c) -> int:
    h = bearer(token_for(c, "operator1"))
    run = c.post("/api/v1/queries", headers=h, json={"dataset": "health", "sql": RARE_SQL, "epsilon": 0.5})
    assert run.status_code == 201, run.get_json()
    draft = c.post("/api/v1/products", headers=h, json={"title": "Rare ages", "run_ids": [run.get_json()["data"]["run_id"]]})
    pid = draft.get_json()["data"]["id"]
    page_login(c, "operator1")
    done = c.post(f"/products/{pid}/submit", data={"csrf_token": csrf_of(c), "attestation": "I am responsible."},
                  follow_redirects=True)
    page = done.get_data(as_text=True)
    assert done.status_code == 200 and "Submitted for review." in page and 'role="status"' in page
    return pid


def test_the_review_screen_marks_the_flagged_cells_and_shows_the_licence_purpose(licensed_app):
    c = licensed_app.test_client()
    pid = _submitted(c)
    rev = licensed_app.test_client()
    page_login(rev, "reviewer1")
    page = rev.get(f"/products/{pid}").get_data(as_text=True)
    assert 'id="licence-purpose"' in page and "Tests: clinic planning" in page

    checks = rev.get(f"/api/v1/products/{pid}", headers=bearer(token_for(rev, "reviewer1"))).get_json()["data"]["checks"]
    small = next(ch for ch in checks if ch["name"] == "small_counts")
    assert small["status"] == "warn" and small["details"]["positions"]
    flagged = dict(re.findall(r'<td class="num flagged"[^>]* data-cell="(\d+,\d+)" data-checks="([^"]*)"', page))
    every = {f"{r},{col}" for ch in checks if ch["status"] != "pass"
             for r, col in (ch["details"].get("positions") or [])}
    assert set(flagged) == every
    assert all("small_counts" in flagged[f"{r},{col}"] for r, col in small["details"]["positions"])
    assert all(col == 1 for _, col in small["details"]["positions"])       # the noisy counts, not the cities
    assert "Warnings about this table" in page
    assert "⚠ small count" in page and "⚠ small_counts" not in page              # words, not identifiers
    table_cells = re.findall(r"<tr><td>(\d*)</td><td>(small count|wide interval|partition selection|empty table|"
                             r"differencing)</td>", page.split('id="checks"', 1)[1])
    assert table_cells and all(n == "1" for n, _ in table_cells)                # each check names its table

    zh = rev.get(f"/products/{pid}?lang=zh").get_data(as_text=True)
    assert "小计数" in zh and "Warnings about this table" not in zh


def test_approving_over_a_warning_needs_a_visible_reason(licensed_app):
    c = licensed_app.test_client()
    pid = _submitted(c)
    rev = licensed_app.test_client()
    page_login(rev, "reviewer1")
    rev.get(f"/products/{pid}")

    def decide(reason, decision="approve"):
        return rev.post(f"/products/{pid}/review", data={"csrf_token": csrf_of(rev), "decision": decision,
                                                         "reason": reason}, follow_redirects=True)

    none = decide("")
    assert none.status_code == 400 and "override_reason_required" in none.get_data(as_text=True)
    for reason in INVISIBLE:
        r = decide(reason)
        assert r.status_code == 400 and "invisible_reason" in r.get_data(as_text=True), repr(reason)
        ret = decide(reason, "return")
        assert ret.status_code == 400 and "invisible_reason" in ret.get_data(as_text=True), repr(reason)
    ok = decide("\u200bSmall counts are suppressed at release.\u200b")
    assert ok.status_code == 200 and "Your approval is recorded." in ok.get_data(as_text=True)
    reviews = rev.get(f"/api/v1/products/{pid}", headers=bearer(token_for(rev, "reviewer1"))).get_json()["data"]["reviews"]
    assert [r["reason"] for r in reviews] == ["Small counts are suppressed at release."]

    api = licensed_app.test_client()
    h = bearer(token_for(api, "reviewer2"))
    for reason in INVISIBLE:
        r = api.post(f"/api/v1/products/{pid}/reviews", headers=h, json={"decision": "approve", "reason": reason})
        assert r.status_code == 400 and r.get_json()["code"] == "invisible_reason", repr(reason)
    r = api.post(f"/api/v1/products/{pid}/reviews", headers=h, json={"decision": "approve"})
    assert r.status_code == 400 and r.get_json()["code"] == "override_reason_required"
    r = api.post(f"/api/v1/products/{pid}/reviews", headers=h, json={"decision": "approve", "reason": "Checked."})
    assert r.status_code == 200 and r.get_json()["data"]["state"] == "approved"

    page_login(c, "operator1")
    released = c.post(f"/products/{pid}/release", data={"csrf_token": csrf_of(c)}, follow_redirects=True)
    assert "Released." in released.get_data(as_text=True)
