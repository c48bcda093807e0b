"""Finding one's way: catalog search covers column names and descriptions, the
drafts page lists only unreleased products."""

from __future__ import annotations

from test_product_upkeep import GROUP_SQL, _released_product
from web_helpers import bearer, page_login, token_for


def test_catalog_search_covers_column_names(licensed_app):
    c = licensed_app.test_client()
    assert 'href="/datasets/health"' in c.get("/?q=income").get_data(as_text=True)      # a column of people
    assert 'href="/datasets/health"' in c.get("/?q=INCOME").get_data(as_text=True)
    assert 'href="/datasets/health"' not in c.get("/?q=no_such_column_xyz").get_data(as_text=True)


def test_the_drafts_page_lists_only_drafts(licensed_app):
    c = licensed_app.test_client()
    released, _ = _released_product(c)
    h = bearer(token_for(c, "operator1"))
    run = c.post("/api/v1/queries", headers=h, json={"dataset": "health", "sql": GROUP_SQL, "epsilon": 0.2})
    draft = c.post("/api/v1/products", headers=h, json={"title": "Still a draft",
                                                        "run_ids": [run.get_json()["data"]["run_id"]]})
    draft_id = draft.get_json()["data"]["id"]
    page_login(c, "operator1")
    page = c.get("/operator/drafts").get_data(as_text=True)
    assert f'/products/{draft_id}"' in page
    assert f'/products/{released}"' not in page
