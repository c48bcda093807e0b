"""Real servers that notifications are delivered to in tests: an HTTP server
that records webhook requests (and answers with chosen statuses) and an SMTP
server (aiosmtpd) that records messages."""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import socket
import threading
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Hook:
    """A webhook receiver on 127.0.0.1: ``statuses`` are answered in turn, then 200."""

    server: ThreadingHTTPServer
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/dps?src=test"

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.received]

    def verify(self, secret: str) -> None:
        """Every received request carries a valid HMAC-SHA256 of ``<timestamp>.<body>``."""
        with self.lock:
            for headers, body in self.received:
                mac = hmac.new(secret.encode(), headers["X-DPS-Timestamp"].encode() + b"." + body, hashlib.sha256)
                assert hmac.compare_digest(headers["X-DPS-Signature"], "sha256=" + mac.hexdigest())
                assert headers["X-DPS-Delivery"] == str(json.loads(body)["id"])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_hook() -> Hook:
    hook: Hook

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with hook.lock:
                hook.received.append(({k: v for k, v in self.headers.items()}, body))
                status = hook.statuses.pop(0) if hook.statuses else 200
            assert self.path == "/hooks/dps?src=test"
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook = Hook(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return hook


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Mailbox:
    """An SMTP server (aiosmtpd) on 127.0.0.1 keeping every message it accepts."""

    port: int
    messages: list[Message] = field(default_factory=list)
    controller: Any = None

    def close(self) -> None:
        self.controller.stop()


def start_mailbox() -> Mailbox:
    from aiosmtpd.controller import Controller

    box = Mailbox(free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.messages.append(email.message_from_bytes(envelope.content))
            return "250 OK"

    box.controller = Controller(Handler(), hostname="127.0.0.1", port=box.port)
    box.controller.start()
    return box
