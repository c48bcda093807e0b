"""A licence's life through the API and the owner's page: extend, top up, an
expired licence shown as expired, refusals with their codes that change nothing.
On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from sandbox.persistence.models import AuditRecord, Licence
from web_helpers import add_users, bearer, csrf_of, page_login, token_for


@pytest.fixture
def web(make_instance, store_url, health_source):
    from sandbox.audit import Actor
    from sandbox.datasets import add_dataset
    from sandbox.licences import grant_licence
    from web.app import create_app

    inst = make_instance(store_url)
    add_users(inst)
    owner = Actor("owner1", "owner")
    add_dataset(inst, owner, health_source)
    lid = grant_licence(inst, owner, dataset="health", operator="operator1", epsilon=2.0, delta=1e-7,
                        purpose="Tests: clinic planning", expires=date.today() + timedelta(days=30))
    client = create_app(inst, {"TESTING": True}).test_client()
    return inst, lid, client


def _records(inst, action: str) -> int:
    with inst.store.read() as s:
        return len(s.execute(select(AuditRecord).where(AuditRecord.action == action)).scalars().all())


def test_api_extends_and_tops_up_a_licence(web):
    inst, lid, client = web
    owner, operator = bearer(token_for(client, "owner1")), bearer(token_for(client, "operator1"))
    until = (date.today() + timedelta(days=200)).isoformat()
    r = client.post(f"/api/v1/licences/{lid}/extend", json={"until": until}, headers=owner)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["data"]["expires_at"].startswith(until) and r.get_json()["data"]["status"] == "active"
    r = client.post(f"/api/v1/licences/{lid}/top-up", json={"epsilon": 1.5}, headers=owner)
    assert r.status_code == 200 and r.get_json()["data"]["budget"]["total"]["epsilon"] == pytest.approx(3.5)
    assert (_records(inst, "licence.extend"), _records(inst, "licence.top_up")) == (1, 1)

    for body, code in (({"epsilon": 100.0}, "budget_above_total"), ({"epsilon": 0.0}, "invalid_budget")):
        r = client.post(f"/api/v1/licences/{lid}/top-up", json=body, headers=owner)
        assert r.status_code == 400 and r.get_json()["code"] == code
    r = client.post(f"/api/v1/licences/{lid}/extend", json={"until": "2001-01-01"}, headers=owner)
    assert r.status_code == 400 and r.get_json()["code"] == "invalid_expiry"
    r = client.post(f"/api/v1/licences/{lid}/extend", json={"until": "soon"}, headers=owner)
    assert r.status_code == 400
    r = client.post(f"/api/v1/licences/{lid}/top-up", json={"epsilon": 1.0}, headers=operator)
    assert r.status_code == 403
    r = client.post("/api/v1/licences/999/extend", json={"until": until}, headers=owner)
    assert r.status_code == 404 and r.get_json()["code"] == "unknown_licence"
    assert (_records(inst, "licence.extend"), _records(inst, "licence.top_up")) == (1, 1)

    shown = client.get(f"/api/v1/licences/{lid}", headers=operator)
    assert shown.status_code == 200 and shown.get_json()["data"]["budget"]["total"]["epsilon"] == pytest.approx(3.5)
    other = bearer(token_for(client, "reviewer1"))
    assert client.get(f"/api/v1/licences/{lid}", headers=other).status_code == 403


def test_an_expired_licence_is_expired_in_the_api_and_on_the_page(web):
    inst, lid, client = web
    with inst.store.transaction() as s:
        s.get(Licence, lid).expires_at = datetime.now(UTC) - timedelta(minutes=1)
    owner = bearer(token_for(client, "owner1"))
    assert [x["status"] for x in client.get("/api/v1/licences", headers=owner).get_json()["data"]] == ["expired"]
    assert client.get(f"/api/v1/licences/{lid}", headers=owner).get_json()["data"]["status"] == "expired"
    r = client.post("/api/v1/queries", json={"dataset": "health", "sql": "SELECT COUNT(*) AS n FROM people",
                                                 "epsilon": 0.1}, headers=bearer(token_for(client, "operator1")))
    assert r.status_code == 403 and r.get_json()["code"] == "licence_expired"

    page_login(client, "owner1")
    page = client.get("/owner/datasets/health").get_data(as_text=True)
    assert "expired" in page and f'id="extend-{lid}"' in page and f'id="top-up-{lid}"' not in page
    until = (date.today() + timedelta(days=10)).isoformat()
    r = client.post(f"/owner/licences/{lid}/extend", data={"until": until, "dataset": "health",
                                                           "csrf_token": csrf_of(client)})
    assert r.status_code == 302
    page = client.get("/owner/datasets/health").get_data(as_text=True)
    assert "Licence extended." in page and f'id="top-up-{lid}"' in page
    r = client.post(f"/owner/licences/{lid}/top-up", data={"epsilon": "50", "dataset": "health",
                                                           "csrf_token": csrf_of(client)})
    assert r.status_code == 400 and "budget_above_total" in r.get_data(as_text=True)
    r = client.post(f"/owner/licences/{lid}/top-up", data={"epsilon": "x", "dataset": "health",
                                                           "csrf_token": csrf_of(client)})
    assert r.status_code == 400 and "invalid_form" in r.get_data(as_text=True)
    r = client.post(f"/owner/licences/{lid}/top-up", data={"epsilon": "0.5", "dataset": "health",
                                                           "csrf_token": csrf_of(client)})
    assert r.status_code == 302
    assert (_records(inst, "licence.extend"), _records(inst, "licence.top_up")) == (1, 1)


def test_the_admin_audit_report_reconciles_the_state(web):
    from sqlalchemy import update

    from sandbox.persistence.models import Budget

    inst, lid, client = web
    admin = bearer(token_for(client, "admin1"))
    report = client.get("/api/v1/audit/verify", headers=admin).get_json()["data"]
    assert report["ok"] and report["state"]["ok"] and report["state"]["checked"]["licences"] == 1
    with inst.store.transaction() as s:
        s.execute(update(Budget).where(Budget.licence_id == lid).values(epsilon=4.0))
        bid = s.execute(select(Budget.id).where(Budget.licence_id == lid)).scalar_one()
    state = client.get("/api/v1/audit/verify", headers=admin).get_json()["data"]["state"]
    assert state["ok"] is False
    assert [m["message"] for m in state["mismatches"]] == [f"budget {bid}: epsilon 4 in the store, 2 from the chain"]
    page_login(client, "admin1")
    page = client.get("/admin/").get_data(as_text=True)
    assert "The state differs from the chain" in page and f"budget {bid}: epsilon 4 in the store" in page
