"""The audit trail over the API (``GET /api/v1/audit``) and the page (``/audit``),
and the records of reads made through the web: open data and product downloads,
previews and refused queries, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from web_helpers import add_users, bearer, page_login, token_for

COUNT_SQL = "SELECT COUNT(*) AS n FROM people"


@pytest.fixture
def web_trail(instance, health_source, tmp_path):
    """health (owner1, a licence for operator1) and transport (open data, owner1),
    with the app's test client."""
    from sandbox.audit import Actor
    from sandbox.datasets import add_dataset
    from sandbox.demo.data import write_transport
    from sandbox.licences import grant_licence
    from web.app import create_app

    add_users(instance)
    owner = Actor("owner1", "owner")
    add_dataset(instance, owner, health_source)
    add_dataset(instance, owner, write_transport(tmp_path / "transport"))
    grant_licence(instance, owner, dataset="health", operator="operator1", epsilon=2.0, delta=1e-6,
                  purpose="audit trail tests", expires=date.today() + timedelta(days=5))
    return instance, create_app(instance, {"TESTING": True}).test_client()


def _entries(c, headers, **params):
    r = c.get("/api/v1/audit", headers=headers, query_string={"per_page": 200, **params})
    assert r.status_code == 200, r.get_json()
    return r.get_json()["data"]


def test_reads_through_the_web_are_recorded_and_listed(web_trail):
    from sandbox.audit import verify_chain

    inst, c = web_trail
    admin, owner = bearer(token_for(c, "admin1")), bearer(token_for(c, "owner1"))
    op = bearer(token_for(c, "operator1"))
    assert c.get("/api/v1/datasets/transport/download?format=csv").status_code == 200          # anonymous, API
    page_login(c, "reviewer1")
    assert c.get("/datasets/transport/download.json").status_code == 200                        # signed in, page
    assert c.get("/api/v1/datasets/health/download?format=csv").status_code == 403               # refused: no read
    preview = c.post("/api/v1/queries/preview", headers=op, json={"dataset": "health", "sql": COUNT_SQL,
                                                                   "epsilon": 0.1})
    assert preview.status_code == 200, preview.get_json()
    refused = c.post("/api/v1/queries", headers=op, json={"dataset": "health", "sql": "SELECT name FROM people",
                                                          "epsilon": 0.1})
    assert refused.status_code == 422 and refused.get_json()["kind"] == "query_rejected"
    ran = c.post("/api/v1/queries", headers=op, json={"dataset": "health", "sql": COUNT_SQL, "epsilon": 0.2})
    assert ran.status_code == 201
    run_id = ran.get_json()["data"]["run_id"]
    assert c.get(f"/api/v1/queries/{run_id}/result", headers=op, query_string={"format": "json"}).status_code == 200
    operator_pages = type(c)(c.application)
    page_login(operator_pages, "operator1")
    assert operator_pages.get(f"/operator/runs/{run_id}/result.csv").status_code == 200
    assert c.get("/api/v1/queries/not-a-run/result", headers=op).status_code == 404             # refused: no read

    downloads = _entries(c, admin, action="dataset.download")
    assert [(e["actor"], e["payload"]["surface"], e["payload"]["table"], e["dataset"]) for e in downloads] == [
        ("reviewer1", "page", "ridership", "transport"), ("public", "api", "ridership", "transport")]
    mine = _entries(c, owner)
    actions = [e["action"] for e in mine]
    assert {"dataset.download", "query.preview", "query.refuse", "query.run", "licence.grant"} <= set(actions)
    refusal = next(e for e in mine if e["action"] == "query.refuse")
    assert refusal["sql"] == "SELECT name FROM people" and refusal["payload"]["code"] == refused.get_json()["code"]
    run = next(e for e in mine if e["action"] == "query.run")
    assert run["sql"] == COUNT_SQL and run["actor"] == "operator1" and run["payload"]["epsilon"] > 0
    assert all(e["dataset"] in ("health", "transport") for e in mine)
    fetched = [(e["object_id"], e["payload"].get("fmt"), e["payload"]["surface"]) for e in mine
               if e["action"] == "run.download"]
    assert fetched == [(run_id, "csv", "page"), (run_id, None, "api")]
    assert not any(e["action"].startswith(("user.", "token.")) for e in mine)

    everything = _entries(c, admin)
    paged = c.get("/api/v1/audit", headers=admin, query_string={"per_page": 2, "page": 2}).get_json()
    assert [e["seq"] for e in paged["data"]] == [e["seq"] for e in everything[2:4]]
    assert paged["meta"] == {"page": 2, "per_page": 2, "total": len(everything)}
    bad = c.get("/api/v1/audit", headers=admin, query_string={"since": "soon"})
    assert bad.status_code == 400 and bad.get_json()["code"] == "bad_time"
    assert c.get("/api/v1/audit", headers=op).status_code == 403
    with inst.store.read() as s:
        assert verify_chain(s, inst.signer.public).ok


def test_the_page_lists_filters_and_is_linked_from_the_owners_dataset_page(web_trail):
    inst, c = web_trail
    op = bearer(token_for(c, "operator1"))
    c.post("/api/v1/queries", headers=op, json={"dataset": "health", "sql": COUNT_SQL, "epsilon": 0.2})
    page_login(c, "owner1")
    dataset_page = c.get("/owner/datasets/health").get_data(as_text=True)
    assert 'id="dataset-audit"' in dataset_page and "/audit?dataset=health" in dataset_page
    html = c.get("/audit?dataset=health").get_data(as_text=True)
    assert 'data-action="query.run"' in html and COUNT_SQL in html and "operator1" in html
    assert 'data-action="user.add"' not in html
    only = c.get("/audit?action=licence.*").get_data(as_text=True)
    assert 'data-action="licence.grant"' in only and 'data-action="query.run"' not in only
    bad = c.get("/audit?object=nonsense:1:2")
    assert bad.status_code == 400 and "bad_object_filter" in bad.get_data(as_text=True)
    zh = c.get("/audit?lang=zh").get_data(as_text=True)
    assert "审计记录" in zh and "操作人" in zh
    other = type(c)(c.application)
    page_login(other, "operator1")
    assert other.get("/audit").status_code == 403
    admin = type(c)(c.application)
    page_login(admin, "admin1")
    everything = admin.get("/audit").get_data(as_text=True)
    assert 'data-action="user.add"' in everything and 'data-action="query.run"' in everything


def test_product_downloads_are_recorded(licensed_app):
    from test_product_upkeep import _released_product

    c = licensed_app.test_client()
    pid, t = _released_product(c)
    assert c.get(f"/api/v1/products/{pid}/download", query_string={"format": "csv"}).status_code == 200
    assert c.get(f"/products/{pid}/download.zip").status_code == 200
    assert c.get(f"/products/{pid}/v1/files/manifest.json").status_code == 200
    assert c.get(f"/api/v1/products/{pid}/download", query_string={"format": "csv", "table": 9}).status_code == 400
    reads = _entries(c, t["owner1"], object=f"product:{pid}", action="product.*")
    shown = [(e["action"], e["payload"].get("fmt"), e["payload"]["surface"]) for e in reads
             if e["action"] in ("product.download", "product.file")]
    assert shown == [("product.file", None, "page"), ("product.download", "zip", "page"),
                     ("product.download", "csv", "api")]
    assert next(e for e in reads if e["action"] == "product.file")["payload"]["path"] == "manifest.json"
    assert all(e["actor"] == "public" and e["dataset"] == "health" for e in reads if e["action"].endswith(("download", "file")))
