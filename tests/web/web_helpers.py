"""Helpers of the web tests: users, sign-in, tokens, a live waitress server."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass


PASSWORD = "correct horse battery"
USERS = (("owner1", "owner"), ("operator1", "operator"), ("reviewer1", "reviewer"),
         ("reviewer2", "reviewer"), ("admin1", "admin"))
ROLE_USER = {"owner": "owner1", "operator": "operator1", "reviewer": "reviewer1", "admin": "admin1"}


def add_users(inst) -> None:
    from sandbox.audit import SYSTEM
    from sandbox.users import add_user

    for name, role in USERS:
        add_user(inst, SYSTEM, name, role, PASSWORD, display_name=name.title(), organisation="Test")


def token_for(client, user: str, scopes=("all",), password: str = PASSWORD) -> str:
    r = client.post("/api/v1/tokens", json={"user": user, "password": password, "scopes": list(scopes)})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["data"]["token"]


def page_login(client, user: str, password: str = PASSWORD) -> None:
    client.get("/login")
    r = client.post("/login", data={"user": user, "password": password, "csrf_token": csrf_of(client),
                                    "next": "/"})
    assert r.status_code == 302, r.data[:300]


def csrf_of(client) -> str:
    with client.session_transaction() as s:
        return s.get("csrf", "")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class LiveServer:
    url: str
    server: object
    thread: threading.Thread

    def stop(self) -> None:
        """Finish running tasks, then close every socket so the loop ends."""
        from waitress import wasyncore

        self.server.accepting = False
        self.server.task_dispatcher.shutdown(cancel_pending=True, timeout=10)
        wasyncore.close_all(self.server._map)
        self.thread.join(timeout=10)
        for channel in list(self.server._map.values()):   # accepted while closing
            channel.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_live_server(app, threads: int = 4) -> LiveServer:
    """Serve ``app`` with waitress on 127.0.0.1 (a free port) in a thread."""
    import httpx
    from waitress.server import create_server

    port = free_port()
    server = create_server(app, host="127.0.0.1", port=port, threads=threads, ident="dp-sandbox-test")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/keys", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return LiveServer(f"http://127.0.0.1:{port}", server, thread)
