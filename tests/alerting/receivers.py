"""Real local receivers for notifier tests: an HTTP server and an SMTP server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from ground.local import free_port


@dataclass
class Captured:
    """What a local HTTP receiver got, and what it answers."""

    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # wall-clock arrival of each request
    status: list[int] = field(default_factory=list)  # answers in turn, then 200
    reply: dict[str, Any] = field(default_factory=lambda: {"errcode": 0})
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def json(self, index: int = -1) -> Any:
        """A request body as JSON."""
        return json.loads(self.requests[index][2])

    def wait_for(self, count: int, timeout_s: float = 10.0) -> bool:
        """Wait until `count` requests have arrived."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.requests) >= count, timeout_s)


@contextmanager
def http_receiver() -> Iterator[tuple[str, Captured]]:
    """An HTTP server on a free port recording POSTs; yields its base URL."""
    captured = Captured()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = captured.status.pop(0) if captured.status else 200
            with captured.arrived:
                captured.times.append(time.time())
                captured.requests.append((self.path, dict(self.headers), body))
                captured.arrived.notify_all()
            reply = json.dumps(captured.reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # the system picks a free port
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", captured
    finally:
        server.shutdown()
        server.server_close()


class _Mailbox:
    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802
        mail = message_from_bytes(envelope.content, policy=policy.default)
        with self.arrived:
            self.mails.append(mail)
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout_s: float = 10.0) -> bool:
        """Wait until `count` mails have arrived."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.mails) >= count, timeout_s)


@contextmanager
def smtp_receiver() -> Iterator[tuple[int, _Mailbox]]:
    """An SMTP server (aiosmtpd) on a free port; yields its port and mailbox."""
    mailbox = _Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, mailbox
    finally:
        controller.stop()
