"""Shared test edges: a fake clock and real loopback HTTP receivers that validate what they get."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from exporters_support import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    status: int
    problems: list[str]
    late: bool = False  # answered after the client's timeout: not delivered as far as it knows


@dataclass
class Receiver:
    """A loopback HTTP server standing in for Slack, PagerDuty or a webhook.

    ``validate(path, body) -> list[str]`` lists contract violations (answered with 400).
    ``script`` holds (status, headers, delay) answers used first, then ``default_status``.
    """

    validate: Callable[[str, Any], list[str]]
    default_status: int = 200
    script: list[tuple[int, dict[str, str], float]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300 and not r.late]

    def problems(self) -> list[str]:
        return [p for r in self.received for p in r.problems]


def _handler(rx: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
                problems = list(rx.validate(self.path, body))
            except ValueError as exc:
                body, problems = raw, [f"body is not JSON: {exc}"]
            with rx.lock:
                status, headers, delay = rx.script.pop(0) if rx.script else (rx.default_status, {}, 0.0)
            if problems:
                status, headers, delay = 400, {}, 0.0
            rx.received.append(Received(self.path, dict(self.headers), body, status, problems, delay > 0))
            if delay:
                time.sleep(delay)  # the client times out first: this request is not delivered
            payload = json.dumps({"problems": problems} if problems else {"status": "ok"}).encode()
            try:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    servers: list[ThreadingHTTPServer] = []

    def make(validate: Callable[[str, Any], list[str]], default_status: int = 200) -> Receiver:
        rx = Receiver(validate, default_status)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rx))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        rx.server = server
        servers.append(server)
        return rx

    yield make
    for s in servers:
        s.shutdown()
        s.server_close()
