"""The user lifecycle through the API and the admin pages: deactivation ends the
user's tokens and page sessions at once and they can do nothing; reactivate,
change the role, reset the password; sign-ins and failed sign-ins on the pages
and the token route are audit records with their surface. On SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from sandbox.persistence.models import AuditRecord, User
from web_helpers import PASSWORD, add_users, bearer, csrf_of, page_login, token_for


@pytest.fixture
def inst(make_instance, store_url):
    inst = make_instance(store_url)
    add_users(inst)
    return inst


@pytest.fixture
def app(inst):
    from web.app import create_app

    return create_app(inst, {"TESTING": True})


def records(inst, action: str) -> list[AuditRecord]:
    with inst.store.read() as s:
        rows = list(s.execute(select(AuditRecord).where(AuditRecord.action == action)
                              .order_by(AuditRecord.seq)).scalars())
        s.expunge_all()
        return rows


def snapshot(inst) -> tuple:
    with inst.store.read() as s:
        users = sorted((u.name, u.role, u.active, u.password_hash) for u in s.execute(select(User)).scalars())
        return users, s.execute(select(func.count()).select_from(AuditRecord)).scalar_one()


def test_deactivation_through_the_api_ends_the_users_token_and_session_at_once(app, inst):
    admin = token_for(app.test_client(), "admin1")
    api_user = token_for(app.test_client(), "operator1")
    browser = app.test_client()
    page_login(browser, "operator1")
    assert browser.get("/operator/runs").status_code == 200
    assert app.test_client().get("/api/v1/me", headers=bearer(api_user)).status_code == 200

    r = app.test_client().post("/api/v1/users/operator1/deactivate", headers=bearer(admin))
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["data"]["active"] is False

    r = app.test_client().get("/api/v1/me", headers=bearer(api_user))
    assert r.status_code == 401 and r.get_json()["code"] == "bad_token"
    r = browser.get("/operator/runs")
    assert r.status_code == 302 and "/login" in r.headers["Location"]       # the session ended
    r = app.test_client().post("/api/v1/tokens", json={"user": "operator1", "password": PASSWORD})
    assert r.status_code == 401 and r.get_json()["code"] == "user_inactive"
    fresh = app.test_client()
    fresh.get("/login")
    r = fresh.post("/login", data={"user": "operator1", "password": PASSWORD, "csrf_token": csrf_of(fresh)})
    assert r.status_code == 401 and b"This account is deactivated" in r.data
    [rec] = records(inst, "user.deactivate")
    assert rec.actor == "admin1" and rec.payload == {"name": "operator1", "active": False, "tokens_revoked": 1,
                                                     "sessions_ended": 1}

    r = app.test_client().post("/api/v1/users/operator1/reactivate", headers=bearer(admin))
    assert r.status_code == 200 and r.get_json()["data"]["active"] is True
    assert app.test_client().get("/api/v1/me", headers=bearer(api_user)).status_code == 401   # stays revoked
    assert token_for(app.test_client(), "operator1")


def test_role_and_password_through_the_api(app, inst):
    admin = token_for(app.test_client(), "admin1")
    browser = app.test_client()
    page_login(browser, "owner1")
    assert browser.get("/owner/datasets").status_code == 200
    r = app.test_client().put("/api/v1/users/owner1/role", json={"role": "reviewer"}, headers=bearer(admin))
    assert r.status_code == 200 and r.get_json()["data"]["role"] == "reviewer"
    assert browser.get("/owner/datasets").status_code == 302          # the session under the old role ended
    [rec] = records(inst, "user.set_role")
    assert rec.payload == {"name": "owner1", "from": "owner", "to": "reviewer"}

    r = app.test_client().put("/api/v1/users/owner1/password", json={"password": "a new long secret"},
                              headers=bearer(admin))
    assert r.status_code == 200
    assert app.test_client().post("/api/v1/tokens", json={"user": "owner1", "password": PASSWORD}).status_code == 401
    assert token_for(app.test_client(), "owner1", password="a new long secret")
    [rec] = records(inst, "user.reset_password")
    assert (rec.actor, rec.on_behalf_of) == ("admin1", "owner1")
    assert "a new long secret" not in str(rec.payload)
    r = app.test_client().get("/api/v1/users/owner1", headers=bearer(admin))
    assert r.get_json()["data"]["role"] == "reviewer" and r.get_json()["data"]["active"] is True


@pytest.mark.parametrize(("who", "method", "path", "body", "status", "code"), [
    ("owner1", "post", "/api/v1/users/operator1/deactivate", None, 403, "wrong_role"),
    ("admin1", "post", "/api/v1/users/admin1/deactivate", None, 403, "own_account"),
    ("admin1", "put", "/api/v1/users/admin1/role", {"role": "owner"}, 403, "own_account"),
    ("admin1", "post", "/api/v1/users/nobody/deactivate", None, 404, "unknown_user"),
    ("admin1", "put", "/api/v1/users/operator1/role", {"role": "king"}, 400, None),
    ("admin1", "put", "/api/v1/users/operator1/role", {"role": "operator"}, 409, "role_unchanged"),
    ("admin1", "post", "/api/v1/users/operator1/reactivate", None, 409, "user_already_active"),
    ("admin1", "put", "/api/v1/users/operator1/password", {"password": "short"}, 400, "weak_password"),
    ("admin1", "put", "/api/v1/users/operator1/password", {"password": "long enough", "x": 1}, 400, None),
], ids=["not-admin", "own-deactivate", "own-role", "unknown", "bad-role", "same-role", "active", "weak", "extra"])
def test_refusals_are_clear_and_change_nothing(app, inst, who, method, path, body, status, code):
    token = token_for(app.test_client(), who)
    before = snapshot(inst)
    r = getattr(app.test_client(), method)(path, json=body, headers=bearer(token))
    assert r.status_code == status, r.get_json()
    assert r.get_json()["code"] == code or (code is None and r.get_json()["code"])
    assert snapshot(inst) == before


def test_the_admin_page_deactivates_changes_role_and_resets_password(app, inst):
    admin = app.test_client()
    page_login(admin, "admin1")
    r = admin.get("/admin/")
    assert b'href="/admin/users/operator1"' in r.data
    r = admin.get("/admin/users/operator1")
    assert r.status_code == 200 and b'id="deactivate"' in r.data
    victim = app.test_client()
    page_login(victim, "operator1")

    r = admin.post("/admin/users/operator1/deactivate", data={"csrf_token": csrf_of(admin)})
    assert r.status_code == 302
    assert b'id="reactivate"' in admin.get("/admin/users/operator1").data
    assert victim.get("/operator/runs").status_code == 302
    r = admin.post("/admin/users/operator1/reactivate", data={"csrf_token": csrf_of(admin)})
    assert r.status_code == 302
    r = admin.post("/admin/users/operator1/role", data={"csrf_token": csrf_of(admin), "role": "reviewer"})
    assert r.status_code == 302
    r = admin.post("/admin/users/operator1/password", data={"csrf_token": csrf_of(admin),
                                                            "password": "set by the admin"})
    assert r.status_code == 302
    assert token_for(app.test_client(), "operator1", password="set by the admin")
    assert [r.action for r in records(inst, "user.deactivate") + records(inst, "user.reactivate")
            + records(inst, "user.set_role") + records(inst, "user.reset_password")] == \
        ["user.deactivate", "user.reactivate", "user.set_role", "user.reset_password"]

    before = snapshot(inst)
    r = admin.post("/admin/users/admin1/deactivate", data={"csrf_token": csrf_of(admin)})
    assert r.status_code == 403 and b"own_account" in r.data
    r = admin.post("/admin/users/operator1/deactivate", data={})                 # no CSRF token
    assert r.status_code == 400
    assert admin.get("/admin/users/nobody").status_code == 404
    owner = app.test_client()
    page_login(owner, "owner1")
    r = owner.post("/admin/users/operator1/deactivate", data={"csrf_token": csrf_of(owner)})
    assert r.status_code == 403
    assert snapshot(inst)[0] == before[0]


def test_sign_ins_on_the_pages_and_the_api_are_recorded_with_their_surface(app, inst):
    page_login(app.test_client(), "owner1")
    token_for(app.test_client(), "reviewer1")
    browser = app.test_client()
    browser.get("/login")
    browser.post("/login", data={"user": "owner1", "password": "Guess-123", "csrf_token": csrf_of(browser)})
    app.test_client().post("/api/v1/tokens", json={"user": "ghost", "password": "Guess-456"})
    logins = [(r.actor, r.payload["surface"], r.payload["credential"]) for r in records(inst, "auth.login")]
    assert logins == [("owner1", "page", "password"), ("reviewer1", "api", "password")]
    failed = [r.payload for r in records(inst, "auth.login_failed")]
    assert failed == [{"name": "owner1", "surface": "page", "credential": "password", "code": "bad_credentials"},
                      {"name": "ghost", "surface": "api", "credential": "password", "code": "bad_credentials"}]
    with inst.store.read() as s:
        texts = " ".join(str(p) for p in s.execute(select(AuditRecord.payload)).scalars())
    assert "Guess-" not in texts
