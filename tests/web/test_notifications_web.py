"""Notifications on the web: the API (the caller's notices, their e-mail
address), the page, and delivery by the server's background thread
(``dp-sandbox serve`` with a webhook configured), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta

import pytest

from notify_servers import free_port, start_hook
from sandbox.audit import Actor
from sandbox.datasets import add_dataset
from sandbox.licences import grant_licence, revoke_licence
from web_helpers import PASSWORD, add_users, csrf_of, page_login, token_for

OWNER = Actor("owner1", "owner")
SECRET = "webhook secret for tests"


def _licensed(inst, source) -> int:
    add_users(inst)
    add_dataset(inst, OWNER, source)
    return grant_licence(inst, OWNER, dataset="health", operator="operator1", epsilon=5.0, delta=1e-6,
                         purpose="Tests: clinic planning", expires=date.today() + timedelta(days=30))


@pytest.fixture
def world(make_instance, store_url, health_source):
    inst = make_instance(store_url)
    lic = _licensed(inst, health_source)
    from web.app import create_app

    return inst, lic, create_app(inst, {"TESTING": True}).test_client()


def test_the_api_lists_the_callers_notices_and_sets_their_address(world):
    inst, lic, client = world
    revoke_licence(inst, OWNER, lic, reason="project over")
    op, rev = token_for(client, "operator1"), token_for(client, "reviewer1")

    r = client.get("/api/v1/notifications", headers={"Authorization": f"Bearer {op}"})
    assert r.status_code == 200
    body = r.get_json()
    [notice] = body["data"]
    assert notice["kind"] == "licence_revoked" and notice["audience"] == "operator"
    assert notice["facts"] == {"licence": lic, "dataset": "health"} and notice["deliveries"] == []
    assert body["meta"]["total"] == 1
    zh = client.get("/api/v1/notifications?lang=zh", headers={"Authorization": f"Bearer {op}"}).get_json()
    assert "已被撤销" in zh["data"][0]["text"]
    assert client.get("/api/v1/notifications", headers={"Authorization": f"Bearer {rev}"}).get_json()["data"] == []
    assert client.get("/api/v1/notifications").status_code == 401

    for wrong in ("nowhere", "op1\x00@example.org", "op1@example.org\nBcc: x@example.org"):
        bad = client.put("/api/v1/notifications/address", json={"email": wrong},
                         headers={"Authorization": f"Bearer {op}"})
        assert bad.status_code == 400 and bad.get_json()["code"] == "invalid_email"
    ok = client.put("/api/v1/notifications/address", json={"email": "op1@example.org"},
                    headers={"Authorization": f"Bearer {op}"})
    assert ok.status_code == 200 and ok.get_json()["data"] == {"user": "operator1", "email": "op1@example.org"}
    shown = client.get("/api/v1/notifications/address", headers={"Authorization": f"Bearer {op}"}).get_json()
    assert shown["data"]["email"] == "op1@example.org"
    cleared = client.put("/api/v1/notifications/address", json={"email": None},
                         headers={"Authorization": f"Bearer {op}"})
    assert cleared.get_json()["data"]["email"] is None
    unknown = client.put("/api/v1/notifications/address", json={"email": "a@b.org", "extra": 1},
                         headers={"Authorization": f"Bearer {op}"})
    assert unknown.status_code == 400


def test_the_page_shows_the_notices_in_both_languages_and_saves_the_address(world):
    inst, lic, client = world
    revoke_licence(inst, OWNER, lic)
    page_login(client, "operator1")
    page = client.get("/notifications/?lang=en").get_data(as_text=True)
    assert f"Your licence {lic} on dataset health was revoked." in page
    zh = client.get("/notifications/?lang=zh").get_data(as_text=True)
    assert "通知" in zh and "已被撤销" in zh
    r = client.post("/notifications/address", data={"email": "op1@example.org", "csrf_token": csrf_of(client)})
    assert r.status_code == 302
    assert 'value="op1@example.org"' in client.get("/notifications/").get_data(as_text=True)
    refused = client.post("/notifications/address", data={"email": "op1", "csrf_token": csrf_of(client)})
    assert refused.status_code == 400
    assert client.post("/notifications/address", data={"email": "x@y.org"}).status_code in (400, 403)   # no CSRF


def test_the_server_delivers_in_the_background(make_instance, store_url, health_source, tmp_path):
    """``dp-sandbox serve`` with a webhook: a change made elsewhere reaches the receiver."""
    hook = start_hook()
    inst = make_instance(store_url)
    lic = _licensed(inst, health_source)
    env = {**os.environ, "DPS_HOME": str(inst.settings.home_path), "DPS_DATABASE_URL": inst.settings.database_url,
           "DPS_NOTIFY_WEBHOOK_URL": hook.url, "DPS_NOTIFY_WEBHOOK_SECRET": SECRET, "DPS_NOTIFY_POLL_S": "0.1"}
    server = subprocess.Popen([sys.executable, "-m", "sandbox.cli", "serve", "--port", str(free_port())],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert "delivering notifications" in server.stderr.readline()
        revoke_licence(inst, OWNER, lic)     # the notice is written here, without a channel of its own
        arrived = threading.Event()
        for _ in range(600):
            if hook.received:
                arrived.set()
                break
            time.sleep(0.05)
        assert arrived.is_set()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:   # pragma: no cover - a hung server is killed
            server.kill()
            server.wait()
        assert server.stderr is not None
        server.stderr.close()
        hook.close()
    hook.verify(SECRET)
    assert [b["kind"] for b in hook.bodies()] == ["licence_revoked"]


def test_a_misconfigured_webhook_stops_the_server_with_a_clear_error(make_instance):
    inst = make_instance()
    env = {**os.environ, "DPS_HOME": str(inst.settings.home_path), "DPS_NOTIFY_WEBHOOK_URL": "http://127.0.0.1:9/"}
    env.pop("DPS_NOTIFY_WEBHOOK_SECRET", None)
    out = subprocess.run([sys.executable, "-m", "sandbox.cli", "serve", "--port", str(free_port())], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "webhook_secret_missing" in out.stderr and "Traceback" not in out.stderr




def test_the_webhook_secret_and_the_smtp_password_are_never_shown(make_instance, store_url):
    inst = make_instance(store_url, notify_webhook_url="http://127.0.0.1:9/hook", notify_webhook_secret=SECRET,
                         smtp_host="127.0.0.1", smtp_password="smtp password for tests")
    add_users(inst)
    from web.app import create_app

    client = create_app(inst, {"TESTING": True}).test_client()
    admin = token_for(client, "admin1")
    r = client.get("/api/v1/settings", headers={"Authorization": f"Bearer {admin}"})
    shown = {s["name"]: s["value"] for s in r.get_json()["data"]}
    assert shown["notify_webhook_secret"] == "(set)" and shown["smtp_password"] == "(set)"
    assert shown["notify_webhook_url"] == "http://127.0.0.1:9/hook"
    page_login(client, "admin1")
    for text in (r.get_data(as_text=True), client.get("/admin/").get_data(as_text=True)):
        assert SECRET not in text and "smtp password for tests" not in text


def test_the_python_client_reads_notices_and_sets_the_address(world):
    import httpx

    from queries.errors import InvalidInput
    from web.client import SandboxClient

    inst, lic, client = world
    revoke_licence(inst, OWNER, lic)
    transport = httpx.WSGITransport(app=client.application)
    with SandboxClient.login("http://sandbox", "operator1", PASSWORD, transport=transport) as op:
        [notice] = op.notifications()
        assert notice["kind"] == "licence_revoked" and notice["facts"]["licence"] == lic
        assert "已被撤销" in op.notifications(lang="zh")[0]["text"]
        assert op.set_notification_address("op1@example.org")["email"] == "op1@example.org"
        with pytest.raises(InvalidInput):
            op.set_notification_address("nowhere")
