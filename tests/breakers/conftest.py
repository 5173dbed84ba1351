"""Shared fixtures: offline litellm, and tiny OpenAI-protocol chat servers for a real litellm.Router."""

import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

# litellm fetches its model cost map from GitHub at import; tests run offline
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


class ChatServer:
    """Answers ``POST .../chat/completions`` with a chat.completion naming itself; counts hits.

    ``status`` (settable) makes it answer with that HTTP error instead.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.hits = 0
        self.status = 200
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body go out in two writes: without this, delayed ACKs cost 40 ms a call
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                with outer._lock:
                    outer.hits += 1
                status = outer.status
                if status != 200:
                    payload = {"error": {"message": "overloaded", "type": "server_error", "code": status}}
                else:
                    payload = {
                        "id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
                        "model": body.get("model", "gpt-4o"),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": outer.name}}],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
                    }
                out = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/v1"

    def __enter__(self) -> "ChatServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def servers():
    """Two chat servers, ``east`` and ``west``."""
    with ChatServer("east") as east, ChatServer("west") as west:
        yield east, west


@pytest.fixture
def make_server():
    """A factory of started chat servers, stopped after the test."""
    started = []

    def make(name: str) -> ChatServer:
        server = ChatServer(name).__enter__()
        started.append(server)
        return server

    yield make
    for server in started:
        server.__exit__(None, None, None)
