"""Signing in: the return address, server-side sessions, and a back-off that
slows a guesser without locking the owner out."""

from __future__ import annotations

import pytest

from web_helpers import PASSWORD, csrf_of, page_login


class Clock:
    """A monotonic clock the test advances by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app):
    from web.auth import LoginLimiter

    c = Clock()
    app.extensions["dps_limiter"] = LoginLimiter(5, 900.0, base_delay_s=1.0, max_delay_s=60.0,
                                                 max_address_failures=20, clock=c)
    return c


def _login(client, user, password, next_="", addr="192.0.2.1"):
    client.get("/login")
    return client.post("/login", data={"user": user, "password": password, "csrf_token": csrf_of(client),
                                       "next": next_}, environ_base={"REMOTE_ADDR": addr})


def test_next_is_judged_after_normalisation(client):
    for target in ("/\\/evil.example", "\\\\evil.example", "//evil.example/", "https://evil.example/",
                   "/\\evil.example", "http:/evil.example", "///evil.example"):
        r = _login(client, "owner1", PASSWORD, target)
        location = r.headers.get("Location", "")
        assert r.status_code == 302 and location == "/owner/datasets", (target, location)


def test_a_control_character_in_next_is_a_400_not_a_500(client):
    """``/%09/evil.example`` once gave ``Location: //evil.example``, ``%0a`` a 500."""
    for bad in ("/\n/evil.example", "/owner\r\nSet-Cookie: x=1", "/\t/evil.example", "/\x7f"):
        r = _login(client, "owner1", PASSWORD, bad)
        assert r.status_code == 400, bad
        assert b"The page to return to is not a valid address." in r.data
        assert "Location" not in r.headers


def test_a_local_next_is_kept(client):
    r = _login(client, "owner1", PASSWORD, "/owner/datasets?x=1")
    assert r.status_code == 302 and r.headers["Location"] == "/owner/datasets?x=1"


def test_a_stolen_cookie_stops_working_after_logout(app, client):
    page_login(client, "owner1")
    assert client.get("/owner/datasets").status_code == 200
    stolen = client.get_cookie("dps_session").value
    thief = app.test_client()
    thief.set_cookie("dps_session", stolen)
    assert thief.get("/owner/datasets").status_code == 200          # a live session works anywhere
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert client.get("/owner/datasets").status_code == 302
    r = thief.get("/owner/datasets")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_a_session_id_is_not_a_bearer_token(app, client):
    page_login(client, "owner1")
    with client.session_transaction() as s:
        sid = s["sid"]
    r = app.test_client().get("/api/v1/datasets", headers={"Authorization": f"Bearer {sid}"})
    assert r.status_code == 401 and r.get_json()["code"] == "bad_token"


def test_five_bad_logins_from_a_shared_address_do_not_lock_the_owner_out(client, clock):
    for _ in range(5):
        assert _login(client, "owner1", "bad-password", addr="198.51.100.7").status_code == 401
    r = _login(client, "owner1", PASSWORD, addr="198.51.100.7")
    assert r.status_code == 302


def test_back_off_doubles_and_then_lets_the_owner_in(client, clock):
    waits = []
    for _ in range(8):
        r = _login(client, "owner1", "bad-password")
        if r.status_code == 429:
            waits.append(int(r.headers.get("Retry-After", 0) or 0))
            clock.now += 100
            r = _login(client, "owner1", "bad-password")
        assert r.status_code == 401
    r = _login(client, "owner1", PASSWORD)
    assert r.status_code == 429 and b"Too many attempts" in r.data
    from web.auth import LoginLimiter

    lim: LoginLimiter = client.application.extensions["dps_limiter"]
    assert [lim.delay_after(n) for n in (5, 6, 7, 8, 9, 20)] == [0, 1, 2, 4, 8, 60]
    clock.now += lim.delay_after(8)
    assert _login(client, "owner1", PASSWORD).status_code == 302          # slowed, not locked out
    assert _login(client, "owner1", "bad-password").status_code == 401    # the count starts again


def test_back_off_answers_429_with_retry_after_in_the_api(client, clock):
    for _ in range(6):
        client.post("/api/v1/tokens", json={"user": "admin1", "password": "wrong-pass"})
    r = client.post("/api/v1/tokens", json={"user": "admin1", "password": PASSWORD})
    assert r.status_code == 429 and r.get_json()["code"] == "too_many_attempts"
    assert 0 < int(r.headers["Retry-After"]) <= 60


def test_one_address_guessing_many_users_is_limited(client, clock):
    for i in range(20):
        _login(client, f"nobody{i}", "bad-password", addr="203.0.113.9")
    r = _login(client, "owner1", PASSWORD, addr="203.0.113.9")
    assert r.status_code == 429
    assert _login(client, "owner1", PASSWORD, addr="203.0.113.10").status_code == 302
    clock.now += 901
    assert _login(client, "owner1", PASSWORD, addr="203.0.113.9").status_code == 302
