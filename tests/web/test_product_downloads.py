"""Downloads of a product's tables: the product page's links work in every
format, they are the signed files of the package, a draft's files say they are
unsigned, and CSV responses name one charset."""

from __future__ import annotations

import hashlib
import json
import re

from test_product_upkeep import GROUP_SQL, _released_product
from web_helpers import bearer, csrf_of, page_login, token_for


def test_product_page_links_are_the_signed_files(licensed_app):
    c = licensed_app.test_client()
    pid, t = _released_product(c)
    page = c.get(f"/products/{pid}").get_data(as_text=True)
    links = re.findall(r'class="table-download" href="([^"]+)"', page)
    assert len(links) == 3 and {link.rsplit(".", 1)[1] for link in links} == {"csv", "parquet", "json"}
    manifest = json.loads(c.get(f"/products/{pid}/v1/files/manifest.json").data)
    for link in links:
        r = c.get(link)
        assert r.status_code == 200, (link, r.data[:200])
        rel = link.split("/files/", 1)[1]
        assert hashlib.sha256(r.data).hexdigest() == manifest["files"][rel]["sha256"]
    # the per-table download endpoint serves the same signed bytes, in every format
    for fmt in ("csv", "parquet", "json"):
        r = c.get(f"/products/{pid}/download.{fmt}?table=1")
        assert r.status_code == 200, r.data[:200]
        assert hashlib.sha256(r.data).hexdigest() == manifest["files"][f"tables/table_1.{fmt}"]["sha256"]
        assert r.headers["X-DPS-Signed"].startswith("yes")
        api = c.get(f"/api/v1/products/{pid}/download", query_string={"format": fmt, "table": 1})
        assert api.status_code == 200 and api.data == r.data
    csv = c.get(f"/products/{pid}/download.csv?table=1")
    assert csv.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert csv.data.decode().splitlines()[0] == '"city","people","people__ci_lower","people__ci_upper"'
    assert c.get(f"/products/{pid}/download.csv?table=2").status_code == 400
    assert c.get(f"/api/v1/products/{pid}/download", query_string={"format": "csv", "table": 2}) \
        .get_json()["code"] == "unknown_table"


def test_a_draft_table_is_labelled_unsigned(licensed_app):
    c = licensed_app.test_client()
    h = bearer(token_for(c, "operator1"))
    run = c.post("/api/v1/queries", headers=h, json={"dataset": "health", "sql": GROUP_SQL, "epsilon": 0.5})
    pid = c.post("/api/v1/products", headers=h, json={"title": "Draft", "run_ids": [run.get_json()["data"]["run_id"]]}
                 ).get_json()["data"]["id"]
    page_login(c, "operator1")
    page = c.get(f"/products/{pid}").get_data(as_text=True)
    assert "Unsigned draft results" in page
    links = re.findall(r'class="table-download" href="([^"]+)"', page)
    assert len(links) == 3
    for link in links:
        r = c.get(link)
        assert r.status_code == 200 and r.headers["X-DPS-Signed"].startswith("no")
        assert "UNSIGNED" in r.headers["Content-Disposition"]
    assert c.get(links[0]).headers["Content-Type"] == "text/csv; charset=utf-8"


def test_run_results_use_the_package_column_names_and_one_charset(licensed_app):
    c = licensed_app.test_client()
    page_login(c, "operator1")
    r = c.post("/operator/", data={"csrf_token": csrf_of(c), "dataset": "health", "sql": GROUP_SQL,
                                   "action": "run", "epsilon": "0.5"})
    run_id = r.headers["Location"].rsplit("/", 1)[1]
    got = c.get(f"/operator/runs/{run_id}/result.csv")
    assert got.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert got.get_data(as_text=True).splitlines()[0].replace('"', "") == "city,people,people__ci_lower,people__ci_upper"
