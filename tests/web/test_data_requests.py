"""Data requests: the requester gets a number and an address to follow the
request (page, API, CLI); the web triage links a request to a product."""

from __future__ import annotations

from click.testing import CliRunner
from test_product_upkeep import _released_product
from web_helpers import csrf_of, page_login


def _file(c, title="Visits per clinic"):
    c.get("/requests")
    return c.post("/requests", data={"title": title, "description": "For planning", "contact": "me@example.org",
                                     "dataset": "health", "csrf_token": csrf_of(c)})


def test_the_requester_gets_a_number_and_a_link_to_follow(licensed_app):
    c = licensed_app.test_client()
    r = _file(c)
    assert r.status_code == 302 and "/requests/1" in r.headers["Location"]
    page = c.get(r.headers["Location"]).get_data(as_text=True)
    assert 'id="request-filed"' in page and "#1" in page
    assert 'id="follow-link" href="http://localhost/requests/1"' in page
    assert 'data-status="open"' in page
    later = c.get("/requests/1").get_data(as_text=True)             # following it later: no receipt, the status
    assert 'id="request-filed"' not in later and "Visits per clinic" in later
    assert "me@example.org" not in licensed_app.test_client().get("/requests/1").get_data(as_text=True)
    assert c.get("/requests/999").status_code == 404

    api = licensed_app.test_client()
    made = api.post("/api/v1/requests", json={"title": "Another", "description": "why", "contact": "a@example.org"})
    assert made.status_code == 201
    data = made.get_json()["data"]
    assert data["url"].endswith(f"/requests/{data['id']}") and data["api_url"].endswith(f"/api/v1/requests/{data['id']}")
    followed = api.get(f"/api/v1/requests/{data['id']}")
    assert followed.status_code == 200 and followed.get_json()["data"]["status"] == "open"
    assert api.get("/api/v1/requests/999").get_json()["code"] == "unknown_data_request"


def test_the_cli_requester_can_follow_the_request(licensed_instance):
    from sandbox.cli import main

    home = str(licensed_instance.home)
    cli = CliRunner()
    filed = cli.invoke(main, ["request", "file", "--home", home, "--title", "T", "--description", "D",
                              "--contact", "a@example.org"])
    assert filed.exit_code == 0 and "request show 1" in filed.output and "/requests/1" in filed.output
    shown = cli.invoke(main, ["request", "show", "--home", home, "1"])
    assert shown.exit_code == 0 and "[open]" in shown.output
    missing = cli.invoke(main, ["request", "show", "--home", home, "9"])
    assert missing.exit_code == 1 and "unknown_data_request" in missing.output


def test_the_web_triage_links_a_request_to_a_product(licensed_app):
    c = licensed_app.test_client()
    pid, _ = _released_product(c)
    _file(c)
    owner = licensed_app.test_client()
    page_login(owner, "owner1")
    page = owner.get("/requests").get_data(as_text=True)
    assert 'id="link-1"' in page and f'<option value="{pid}">' in page
    bad = owner.post("/requests/1/decision", data={"csrf_token": csrf_of(owner), "decision": "link",
                                                   "product_id": ""})
    assert bad.status_code == 400 and "missing_product" in bad.get_data(as_text=True)
    r = owner.post("/requests/1/decision", data={"csrf_token": csrf_of(owner), "decision": "link",
                                                 "product_id": str(pid), "reason": "Published"})
    assert r.status_code == 302
    followed = licensed_app.test_client().get("/requests/1").get_data(as_text=True)
    assert 'data-status="closed"' in followed and f'id="answer" href="/products/{pid}"' in followed
    zh = licensed_app.test_client().get("/requests?lang=zh").get_data(as_text=True)
    assert "已关闭" in zh


def test_open_as_a_status_and_open_as_a_data_class_read_differently_in_chinese(licensed_app):
    c = licensed_app.test_client()
    _file(c)
    requests_zh = c.get("/requests?lang=zh").get_data(as_text=True)
    assert "<td>待处理" in requests_zh and "<td>开放" not in requests_zh
    catalog_zh = c.get("/?lang=zh").get_data(as_text=True)
    assert '<option value="open" >开放</option>' in catalog_zh and "待处理" not in catalog_zh
