"""Finding one's way: catalog search covers column names and descriptions, the
drafts page lists only unreleased products."""

from __future__ import annotations

from test_product_upkeep import GROUP_SQL, _released_product
from web_helpers import bearer, csrf_of, page_login, token_for


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


def test_the_editor_lists_the_licensed_tables_and_columns_with_classes_and_bounds(licensed_instance):
    from datetime import date, timedelta

    from sandbox.audit import Actor
    from sandbox.licences import grant_licence, list_licences, revoke_licence
    from web.app import create_app

    c = create_app(licensed_instance, {"TESTING": True}).test_client()
    page_login(c, "operator1")
    page = c.get("/operator/").get_data(as_text=True)
    assert 'id="schema"' in page
    for table in ("people", "visits", "clinics"):
        assert f'data-table="{table}"' in page
    income = page.split('data-column="income"', 1)[1].split("</tr>", 1)[0]
    assert "sensitive" in income and "[0, 200,000]" in income
    sex = page.split('data-column="sex"', 1)[1].split("</tr>", 1)[0]
    assert "quasi" in sex and "F, M" in sex                     # the owner's public domain
    assert "identifier" in page.split('data-column="person_id"', 1)[1].split("</tr>", 1)[0]

    # a licence limited to one table lists only that table
    owner = Actor("owner1", "owner")
    for lic in list_licences(licensed_instance, dataset="health", operator="operator1"):
        revoke_licence(licensed_instance, owner, lic.id, "narrowed")
    grant_licence(licensed_instance, owner, dataset="health", operator="operator1", epsilon=1.0, delta=0.0,
                  purpose="People only", expires=date.today() + timedelta(days=5), tables=["people"])
    page = c.get("/operator/").get_data(as_text=True)
    assert 'data-table="people"' in page and 'data-table="visits"' not in page

    zh = c.get("/operator/?lang=zh").get_data(as_text=True)
    assert 'data-column="income"' in zh and ">sensitive<" not in zh and ">quasi<" not in zh


def test_lists_have_pages(licensed_app):
    c = licensed_app.test_client()
    c.get("/requests")
    for i in range(3):
        r = c.post("/requests", data={"title": f"Request number {i}", "description": "Why we need it",
                                      "contact": "someone@example.org", "csrf_token": csrf_of(c)})
        assert r.status_code == 302
    first = c.get("/requests?per_page=2").get_data(as_text=True)
    assert "Request number 0" in first and "Request number 1" in first and "Request number 2" not in first
    assert 'rel="next"' in first and "page=2" in first and 'rel="prev"' not in first
    second = c.get("/requests?per_page=2&page=2").get_data(as_text=True)
    assert "Request number 2" in second and "Request number 0" not in second
    assert 'rel="prev"' in second and 'rel="next"' not in second
    assert "Request number 2" in c.get("/requests?per_page=2&page=9").get_data(as_text=True)   # past the end: last
    assert 'class="pager"' not in c.get("/requests").get_data(as_text=True)                      # one page: no pager
    for bad in ("page=0", "page=x", "per_page=0", "per_page=201", "page=-1"):
        r = c.get(f"/requests?{bad}")
        assert r.status_code == 400 and "bad_page" in r.get_data(as_text=True), bad


def test_runs_and_drafts_have_pages(licensed_app):
    c = licensed_app.test_client()
    h = bearer(token_for(c, "operator1"))
    ids = []
    for eps in (0.1, 0.2):
        run = c.post("/api/v1/queries", headers=h, json={"dataset": "health", "sql": GROUP_SQL, "epsilon": eps})
        ids.append(run.get_json()["data"]["run_id"])
        c.post("/api/v1/products", headers=h, json={"title": f"Draft {eps}", "run_ids": [ids[-1]]})
    page_login(c, "operator1")
    shown = [sum(f"/operator/runs/{i}" in c.get(f"/operator/runs?per_page=1&page={n}").get_data(as_text=True)
                 for i in ids) for n in (1, 2)]
    assert shown == [1, 1]
    drafts = c.get("/operator/drafts?per_page=1").get_data(as_text=True)
    assert drafts.count("Draft 0.") == 1 and 'rel="next"' in drafts


def test_the_pager_speaks_chinese(licensed_app):
    c = licensed_app.test_client()
    c.get("/requests")
    for i in range(2):
        c.post("/requests", data={"title": f"R{i}", "description": "Why", "contact": "a@example.org",
                                  "csrf_token": csrf_of(c)})
    zh = c.get("/requests?per_page=1&lang=zh").get_data(as_text=True)
    assert "第 1 页，共 2 页" in zh and "下一页" in zh and "Next" not in zh
