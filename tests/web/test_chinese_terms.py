"""Chinese pages translate decisions, check names and outcomes, and run status."""

from __future__ import annotations

from test_product_upkeep import _released_product
from web_helpers import page_login


def test_product_page_in_chinese_translates_decisions(licensed_app):
    c = licensed_app.test_client()
    pid, _ = _released_product(c)
    page = c.get(f"/products/{pid}?lang=zh").get_data(as_text=True)
    assert "<td>批准</td>" in page and "<td>approve</td>" not in page


def test_run_status_and_checks_in_chinese(licensed_app):
    c = licensed_app.test_client()
    _released_product(c)
    page_login(c, "operator1")
    runs = c.get("/operator/runs?lang=zh").get_data(as_text=True)
    assert "<td>已扣除预算</td>" in runs and "<td>charged</td>" not in runs
