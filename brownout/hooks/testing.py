"""A fake LLM server for tests, benchmarks and examples: loopback HTTP speaking the OpenAI (chat
completions, responses) and Anthropic (messages) wire protocols, JSON and SSE streaming, with
error statuses, a slow first byte and a stream cut mid-way on demand.

Each request takes the next :class:`Plan` queued with :meth:`FakeLLMServer.plan` (or ``default``).
Used by the hooks' tests, ``bench/hook_overhead.py`` and ``examples/``. Standard library only.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeLLMServer", "Plan"]


@dataclass
class Plan:
    """How to answer one request."""

    status: int = 200
    delay: float = 0.0  # seconds before the status line (slow first byte)
    chunks: int = 3  # content chunks in a stream; output tokens either way
    gap: float = 0.0  # seconds between content chunks
    cut_after: int | None = None  # drop the connection after this many content chunks
    input_tokens: int = 11
    model_suffix: str = "-2025-01-01"
    finish: str | None = None  # default: "stop" (OpenAI), "end_turn" (Anthropic)
    end_without_finish: bool = False  # close the stream cleanly but never say why it ended


_ERROR_TYPES = {429: "rate_limit_error", 500: "api_error", 503: "api_error", 529: "overloaded_error",
                400: "invalid_request_error"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms to every keep-alive answer
    server: "_Server"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        path = self.path.split("?", 1)[0]
        plan = self.server.owner.take(path, body)
        if plan.delay:
            time.sleep(plan.delay)
        anthropic = path.endswith("/messages")
        if plan.status != 200:
            err = {"type": _ERROR_TYPES.get(plan.status, "api_error"), "message": f"status {plan.status}"}
            payload = {"type": "error", "error": err} if anthropic else {"error": {**err, "code": None}}
            return self._json(plan.status, payload)
        model = str(body.get("model", "unknown")) + plan.model_suffix
        stream = bool(body.get("stream"))
        if path.endswith("/chat/completions"):
            if stream:
                usage = bool((body.get("stream_options") or {}).get("include_usage"))
                return self._sse(plan, self._chat_events(plan, model, usage))
            return self._json(200, self._chat(plan, model))
        if path.endswith("/responses"):
            if stream:
                return self._sse(plan, self._responses_events(plan, model))
            return self._json(200, self._response(plan, model, "completed"))
        if anthropic:
            if stream:
                return self._sse(plan, self._anthropic_events(plan, model))
            return self._json(200, self._message(plan, model))
        self._json(404, {"error": {"message": "no such path", "type": "not_found"}})

    # --- framing ------------------------------------------------------------------------------
    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        if status == 429:
            self.send_header("retry-after", "0")
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, plan: Plan, events: list[tuple[str | None, Any, bool]]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        content = 0
        for name, data, is_content in events:
            if is_content:
                if plan.cut_after is not None and content >= plan.cut_after:
                    self.close_connection = True
                    return  # no terminating chunk: the client sees the body cut short
                if content and plan.gap:
                    time.sleep(plan.gap)
                content += 1
            text = (f"event: {name}\n" if name else "") + "data: " + \
                (data if isinstance(data, str) else json.dumps(data)) + "\n\n"
            raw = text.encode()
            self.wfile.write(b"%X\r\n%s\r\n" % (len(raw), raw))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # --- OpenAI chat completions ---------------------------------------------------------------
    def _chat(self, plan: Plan, model: str) -> dict[str, Any]:
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                             "finish_reason": plan.finish or "stop", "logprobs": None}],
                "usage": {"prompt_tokens": plan.input_tokens, "completion_tokens": plan.chunks,
                          "total_tokens": plan.input_tokens + plan.chunks}}

    def _chat_events(self, plan: Plan, model: str, usage: bool) -> list[tuple[str | None, Any, bool]]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            out = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if usage:
                out["usage"] = None
            return out

        events: list[tuple[str | None, Any, bool]] = [(None, chunk({"role": "assistant", "content": ""}), False)]
        events += [(None, chunk({"content": f"t{i}"}), True) for i in range(plan.chunks)]
        if plan.end_without_finish:
            return events
        events.append((None, chunk({}, plan.finish or "stop"), False))
        if usage:
            events.append((None, {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                                  "model": model, "choices": [],
                                  "usage": {"prompt_tokens": plan.input_tokens, "completion_tokens": plan.chunks,
                                            "total_tokens": plan.input_tokens + plan.chunks}}, False))
        events.append((None, "[DONE]", False))
        return events

    # --- OpenAI responses ------------------------------------------------------------------------
    def _response(self, plan: Plan, model: str, status: str) -> dict[str, Any]:
        done = status == "completed"
        return {"id": "resp_1", "object": "response", "created_at": 1, "status": status, "model": model,
                "output": [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                            "content": [{"type": "output_text", "text": "hi", "annotations": []}]}] if done else [],
                "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None,
                "incomplete_details": None,
                "usage": {"input_tokens": plan.input_tokens, "output_tokens": plan.chunks,
                          "total_tokens": plan.input_tokens + plan.chunks,
                          "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens_details": {"reasoning_tokens": 0}} if done else None}

    def _responses_events(self, plan: Plan, model: str) -> list[tuple[str | None, Any, bool]]:
        seq = iter(range(10_000))

        def ev(kind: str, **fields: Any) -> tuple[str, Any, bool]:
            return kind, {"type": kind, "sequence_number": next(seq), **fields}, kind.endswith(".delta")

        text = "".join(f"t{i}" for i in range(plan.chunks))
        item = {"type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant", "content": []}
        part = {"type": "output_text", "text": "", "annotations": []}
        events = [ev("response.created", response=self._response(plan, model, "in_progress")),
                  ev("response.in_progress", response=self._response(plan, model, "in_progress")),
                  ev("response.output_item.added", output_index=0, item=item),
                  ev("response.content_part.added", item_id="msg_1", output_index=0, content_index=0, part=part)]
        events += [ev("response.output_text.delta", item_id="msg_1", output_index=0, content_index=0,
                      delta=f"t{i}", logprobs=[]) for i in range(plan.chunks)]
        if plan.end_without_finish:
            return events
        done_part = {**part, "text": text}
        events += [
            ev("response.output_text.done", item_id="msg_1", output_index=0, content_index=0, text=text,
               logprobs=[]),
            ev("response.content_part.done", item_id="msg_1", output_index=0, content_index=0, part=done_part),
            ev("response.output_item.done", output_index=0,
               item={**item, "status": "completed", "content": [done_part]}),
            ev("response.completed", response=self._response(plan, model, "completed")),
        ]
        return events

    # --- Anthropic messages -----------------------------------------------------------------------
    def _message(self, plan: Plan, model: str) -> dict[str, Any]:
        return {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": "hi"}], "stop_reason": plan.finish or "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": plan.input_tokens, "output_tokens": plan.chunks,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}

    def _anthropic_events(self, plan: Plan, model: str) -> list[tuple[str | None, Any, bool]]:
        msg = {**self._message(plan, model), "content": [], "stop_reason": None,
               "usage": {"input_tokens": plan.input_tokens, "output_tokens": 1,
                         "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
        events: list[tuple[str | None, Any, bool]] = [
            ("message_start", {"type": "message_start", "message": msg}, False),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}, False),
            ("ping", {"type": "ping"}, False),
        ]
        events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": f"t{i}"}}, True)
                   for i in range(plan.chunks)]
        if plan.end_without_finish:
            return events
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}, False),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": plan.finish or "end_turn",
                                                                  "stop_sequence": None},
                               "usage": {"output_tokens": plan.chunks}}, False),
            ("message_stop", {"type": "message_stop"}, False),
        ]
        return events


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: "FakeLLMServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out or cut the stream on purpose close their end mid-answer


class FakeLLMServer:
    """The server on a free loopback port, in a thread.

    >>> with FakeLLMServer() as s:
    ...     s.url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(self) -> None:
        self._plans: deque[Plan] = deque()
        self.default = Plan()
        self.requests: deque[tuple[str, dict[str, Any]]] = deque(maxlen=1000)
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def plan(self, *plans: Plan) -> None:
        with self._lock:
            self._plans.extend(plans)

    def take(self, path: str, body: dict[str, Any]) -> Plan:
        with self._lock:
            self.requests.append((path, body))
            return self._plans.popleft() if self._plans else self.default

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "FakeLLMServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m brownout.hooks.testing [--chunks N]``: serve on a free port, print the URL,
    stop when standard input closes (so a benchmark can keep the server in another process)."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(description="fake OpenAI/Anthropic server for tests and benchmarks")
    ap.add_argument("--chunks", type=int, default=3, help="content chunks per streamed answer")
    args = ap.parse_args(argv)
    if args.chunks < 0:
        ap.error("--chunks must be >= 0")
    server = FakeLLMServer()
    server.default = Plan(chunks=args.chunks)
    print(server.url, flush=True)
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
