"""Server-rendered pages: sign-in, CSRF, both languages, plain-language errors."""

from __future__ import annotations

import pytest

from web_helpers import PASSWORD, csrf_of, page_login


def test_login_sets_a_fresh_session_and_logout_clears_it(client):
    client.get("/login")
    before = csrf_of(client)
    r = client.post("/login", data={"user": "owner1", "password": PASSWORD, "csrf_token": before,
                                    "next": "/owner/datasets"})
    assert r.status_code == 302 and r.headers["Location"] == "/owner/datasets"
    assert csrf_of(client) and csrf_of(client) != before
    assert b"owner1" in client.get("/owner/datasets").data
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert client.get("/owner/datasets").status_code == 302


def test_login_refuses_open_redirects(client):
    client.get("/login")
    r = client.post("/login", data={"user": "owner1", "password": PASSWORD, "csrf_token": csrf_of(client),
                                    "next": "//evil.example/"})
    assert r.headers["Location"] == "/owner/datasets"


def test_wrong_password_shown_in_place(client):
    client.get("/login")
    r = client.post("/login", data={"user": "owner1", "password": "bad-password", "csrf_token": csrf_of(client)})
    assert r.status_code == 401
    assert b'id="login-error"' in r.data and b"Wrong user name or password." in r.data


def test_page_login_is_rate_limited(client):
    client.get("/login")
    for _ in range(6):
        client.post("/login", data={"user": "admin1", "password": "bad-password", "csrf_token": csrf_of(client)})
    r = client.post("/login", data={"user": "admin1", "password": PASSWORD, "csrf_token": csrf_of(client)})
    assert r.status_code == 429 and b"Too many attempts" in r.data


def test_forms_need_the_csrf_token(client):
    page_login(client, "admin1")
    form = {"name": "newuser", "role": "operator", "password": "long enough pw"}
    r = client.post("/admin/users", data=form)
    assert r.status_code == 400 and b"csrf_failed" in r.data
    r = client.post("/admin/users", data={**form, "csrf_token": "forged"})
    assert r.status_code == 400
    r = client.post("/admin/users", data={**form, "csrf_token": csrf_of(client)})
    assert r.status_code == 302
    assert b"newuser" in client.get("/admin/").data


def test_login_form_itself_needs_csrf(client):
    r = client.post("/login", data={"user": "owner1", "password": PASSWORD})
    assert r.status_code == 400


def test_session_cookie_flags(client):
    client.get("/login")
    cookie = client.get_cookie("dps_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"


@pytest.mark.parametrize("lang,text", [("en", "Data catalog"), ("zh", "数据目录")])
def test_catalog_in_both_languages(client, lang, text):
    r = client.get(f"/?lang={lang}")
    assert text in r.get_data(as_text=True)
    # the choice sticks for the session
    assert text in client.get("/").get_data(as_text=True)


def test_accept_language_picks_chinese(client):
    r = client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert '<html lang="zh-Hans">' in r.get_data(as_text=True)


def test_admin_page_shows_audit_users_keys_settings(client):
    page_login(client, "admin1")
    html = client.get("/admin/?lang=zh").get_data(as_text=True)
    assert "审计链完整" in html and "reviewer2" in html and "BEGIN PUBLIC KEY" in html and "DPS_WORKERS" in html


def test_errors_are_plain_language_pages(client):
    r = client.get("/datasets/nosuch?lang=zh")
    assert r.status_code == 404
    html = r.get_data(as_text=True)
    assert "页面不存在" in html and "unknown_dataset" in html
    page_login(client, "operator1")
    r = client.get("/admin/")
    assert r.status_code == 403 and "wrong_role" in r.get_data(as_text=True)


def test_admin_add_user_error_in_place(client):
    page_login(client, "admin1")
    r = client.post("/admin/users", data={"name": "x", "role": "operator", "password": "long enough pw",
                                          "csrf_token": csrf_of(client)})
    assert r.status_code == 400 and b"invalid_user_name" in r.data
