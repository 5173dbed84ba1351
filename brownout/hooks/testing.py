"""A fake LLM server for tests, benchmarks and examples: loopback HTTP speaking the wire protocols
of OpenAI (chat completions, responses), Anthropic (messages), Google Gemini (``generateContent``,
``streamGenerateContent?alt=sse``, Developer API and Vertex AI paths) and Amazon Bedrock runtime
(``converse``, ``converse-stream``, ``invoke``, ``invoke-with-response-stream``; streams in the
binary AWS event-stream framing), JSON and streamed, with error statuses, a slow first byte, a
first chunk held back, and a stream cut mid-way on demand.

Each request takes the next :class:`Plan` queued with :meth:`FakeLLMServer.plan` (or ``default``).
Used by the hooks' tests, ``bench/hook_overhead.py`` and ``examples/``. Standard library only.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import unquote

__all__ = ["FakeLLMServer", "Plan", "event_stream_message"]


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
    finish: str | None = None  # default: "stop" (OpenAI), "end_turn" (Anthropic, Bedrock), "STOP" (Gemini)
    end_without_finish: bool = False  # close the stream cleanly but never say why it ended
    first_delay: float = 0.0  # seconds between the response headers and the first content chunk
    hold: threading.Event | None = None  # hold the first content chunk until set (at most 30 s)
    stream_error: str | None = None  # Bedrock: after ``cut_after`` chunks send this exception event


_ERROR_TYPES = {429: "rate_limit_error", 500: "api_error", 503: "api_error", 529: "overloaded_error",
                400: "invalid_request_error"}
_GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
                  500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_AWS_ERRORS = {400: "ValidationException", 403: "AccessDeniedException", 404: "ResourceNotFoundException",
               408: "ModelTimeoutException", 424: "ModelErrorException", 429: "ThrottlingException",
               500: "InternalServerException", 503: "ServiceUnavailableException"}
#: One streamed item: (SSE event name or Bedrock event type, payload, is it content).
Item = tuple[str | None, Any, bool]


def event_stream_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message of the AWS event-stream framing (``application/vnd.amazon.eventstream``):
    prelude (total and headers length, CRC32), string headers, payload, CRC32 of the whole.

    >>> from botocore.eventstream import EventStreamBuffer
    >>> buf = EventStreamBuffer()
    >>> buf.add_data(event_stream_message({":event-type": "chunk"}, b"{}"))
    >>> [(m.headers, m.payload) for m in buf]
    [({':event-type': 'chunk'}, b'{}')]
    """
    hb = b"".join(bytes([len(k)]) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode()
                  for k, v in headers.items())
    prelude = struct.pack(">II", 16 + len(hb) + len(payload), len(hb))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + hb + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _sse_frame(name: str | None, data: Any) -> bytes:
    return ((f"event: {name}\n" if name else "") + "data: "
            + (data if isinstance(data, str) else json.dumps(data)) + "\n\n").encode()


def _aws_event_frame(name: str | None, data: Any) -> bytes:
    if name is not None and name.endswith("Exception"):
        return event_stream_message({":message-type": "exception", ":exception-type": name,
                                     ":content-type": "application/json"}, json.dumps(data).encode())
    return event_stream_message({":event-type": name or "chunk", ":content-type": "application/json",
                                 ":message-type": "event"}, json.dumps(data).encode())


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
        if path.startswith("/model/"):
            return self._bedrock(plan, path, body)
        if ":generateContent" in path or ":streamGenerateContent" in path:
            return self._gemini(plan, path)
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

    # --- content: the server's ``text``, or "hi" whole and t0, t1, ... streamed ------------------
    def _whole(self) -> str:
        return self.server.owner.text or "hi"

    def _piece(self, i: int) -> str:
        text = self.server.owner.text
        if text is None:
            return f"t{i}"
        return text if i == 0 else ""

    # --- framing ------------------------------------------------------------------------------
    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        if status == 429:
            self.send_header("retry-after", "0")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, plan: Plan, events: list[Item], frame: Callable[[str | None, Any], bytes] = _sse_frame,
             content_type: str = "text/event-stream") -> None:
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        content = 0
        for name, data, is_content in events:
            if is_content:
                if plan.cut_after is not None and content >= plan.cut_after:
                    if plan.stream_error:
                        self._chunk(frame(plan.stream_error, {"message": "stream failed"}))
                        break
                    self.close_connection = True
                    return  # no terminating chunk: the client sees the body cut short
                if not content:
                    if plan.first_delay:
                        time.sleep(plan.first_delay)
                    if plan.hold is not None:
                        plan.hold.wait(30.0)
                elif plan.gap:
                    time.sleep(plan.gap)
                content += 1
            self._chunk(frame(name, data))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, raw: bytes) -> None:
        self.wfile.write(b"%X\r\n%s\r\n" % (len(raw), raw))
        self.wfile.flush()

    # --- OpenAI chat completions ---------------------------------------------------------------
    def _chat(self, plan: Plan, model: str) -> dict[str, Any]:
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": self._whole()},
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
        events += [(None, chunk({"content": self._piece(i)}), True) for i in range(plan.chunks)]
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
                            "content": [{"type": "output_text", "text": self._whole(), "annotations": []}]}] if done else [],
                "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None,
                "incomplete_details": None,
                "usage": {"input_tokens": plan.input_tokens, "output_tokens": plan.chunks,
                          "total_tokens": plan.input_tokens + plan.chunks,
                          "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens_details": {"reasoning_tokens": 0}} if done else None}

    def _responses_events(self, plan: Plan, model: str) -> list[tuple[str | None, Any, bool]]:
        seq = iter(range(10_000))

        def ev(kind: str, **fields: Any) -> Item:
            return kind, {"type": kind, "sequence_number": next(seq), **fields}, kind.endswith(".delta")

        text = "".join(self._piece(i) for i in range(plan.chunks))
        item = {"type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant", "content": []}
        part = {"type": "output_text", "text": "", "annotations": []}
        events: list[Item] = [ev("response.created", response=self._response(plan, model, "in_progress")),
                  ev("response.in_progress", response=self._response(plan, model, "in_progress")),
                  ev("response.output_item.added", output_index=0, item=item),
                  ev("response.content_part.added", item_id="msg_1", output_index=0, content_index=0, part=part)]
        events += [ev("response.output_text.delta", item_id="msg_1", output_index=0, content_index=0,
                      delta=self._piece(i), logprobs=[]) for i in range(plan.chunks)]
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
                "content": [{"type": "text", "text": self._whole()}], "stop_reason": plan.finish or "end_turn",
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
                                            "delta": {"type": "text_delta", "text": self._piece(i)}}, True)
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


    # --- Google Gemini (Developer API and Vertex AI paths) ------------------------------------
    def _gemini(self, plan: Plan, path: str) -> None:
        if plan.status != 200:
            return self._json(plan.status, {"error": {"code": plan.status, "message": f"status {plan.status}",
                                                      "status": _GOOGLE_STATUS.get(plan.status, "UNKNOWN")}})
        model = path.rsplit("models/", 1)[-1].split(":", 1)[0] + plan.model_suffix
        if ":streamGenerateContent" not in path:
            return self._json(200, self._gemini_response(plan, model, [self._piece(i) for i in range(plan.chunks)], True))
        # As the API does: usage on every chunk, the finish reason with the last text.
        events: list[Item] = [(None, self._gemini_response(plan, model, [self._piece(i)], i == plan.chunks - 1
                                                           and not plan.end_without_finish, i + 1), True)
                              for i in range(plan.chunks)]
        self._sse(plan, events)

    def _gemini_response(self, plan: Plan, model: str, texts: list[str], last: bool,
                         produced: int | None = None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": "".join(texts)}]}, "index": 0}
        if last:
            candidate["finishReason"] = plan.finish or "STOP"
        out = plan.chunks if produced is None else produced
        return {"candidates": [candidate], "modelVersion": model, "responseId": "resp-1",
                "usageMetadata": {"promptTokenCount": plan.input_tokens, "candidatesTokenCount": out,
                                  "totalTokenCount": plan.input_tokens + out}}

    # --- Amazon Bedrock runtime -----------------------------------------------------------------
    def _bedrock(self, plan: Plan, path: str, body: dict[str, Any]) -> None:
        model_id, _, op = unquote(path[len("/model/"):]).rpartition("/")
        if plan.status != 200:
            code = _AWS_ERRORS.get(plan.status, "InternalServerException")
            return self._json(plan.status, {"message": f"status {plan.status}"}, {"x-amzn-ErrorType": code})
        finish = plan.finish or "end_turn"
        usage = {"inputTokens": plan.input_tokens, "outputTokens": plan.chunks,
                 "totalTokens": plan.input_tokens + plan.chunks}
        if op == "converse":
            return self._json(200, {"output": {"message": {"role": "assistant", "content": [{"text": self._whole()}]}},
                                    "stopReason": finish, "usage": usage, "metrics": {"latencyMs": 5}})
        if op == "invoke":
            return self._json(200, self._message(plan, model_id), {
                "x-amzn-bedrock-input-token-count": str(plan.input_tokens),
                "x-amzn-bedrock-output-token-count": str(plan.chunks), "x-amzn-bedrock-invocation-latency": "5"})
        if op == "converse-stream":
            events: list[Item] = [("messageStart", {"role": "assistant", "p": "a"}, False)]
            events += [("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": self._piece(i)}, "p": "a"}, True)
                       for i in range(plan.chunks)]
            if not plan.end_without_finish:
                events += [("contentBlockStop", {"contentBlockIndex": 0, "p": "a"}, False),
                           ("messageStop", {"stopReason": finish, "p": "a"}, False),
                           ("metadata", {"usage": usage, "metrics": {"latencyMs": 5}, "p": "a"}, False)]
            return self._sse(plan, events, _aws_event_frame, "application/vnd.amazon.eventstream")
        if op == "invoke-with-response-stream":
            # The model's own stream (Anthropic's messages events here), each event one chunk.
            inner = self._anthropic_events(plan, model_id)
            if inner and inner[-1][0] == "message_stop":
                inner[-1] = ("message_stop", {"type": "message_stop", "amazon-bedrock-invocationMetrics": {
                    "inputTokenCount": plan.input_tokens, "outputTokenCount": plan.chunks,
                    "invocationLatency": 5, "firstByteLatency": 1}}, False)
            events = [("chunk", {"bytes": base64.b64encode(json.dumps(data).encode()).decode(), "p": "a"}, content)
                      for _, data, content in inner]
            return self._sse(plan, events, _aws_event_frame, "application/vnd.amazon.eventstream")
        self._json(404, {"message": f"no operation {op!r}"}, {"x-amzn-ErrorType": "UnknownOperationException"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: "FakeLLMServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out or cut the stream on purpose close their end mid-answer


class FakeLLMServer:
    """The server on a free port of ``host`` (loopback), in a thread.

    ``text`` is what every answer says (streamed: all in the first chunk), so a test can tell which
    server answered; by default "hi" whole and ``t0``, ``t1``, ... streamed. ``hits`` counts the
    requests. ``default`` answers every request no :meth:`plan` is queued for: set
    ``server.default = Plan(status=503)`` to make it fail until set back.

    >>> with FakeLLMServer(text="east") as s:
    ...     s.url.startswith("http://127.0.0.1:"), s.api_base.endswith("/v1"), s.hits
    (True, True, 0)
    """

    def __init__(self, host: str = "127.0.0.1", *, text: str | None = None) -> None:
        self._plans: deque[Plan] = deque()
        self.default = Plan()
        self.text = text
        self.hits = 0
        self.requests: deque[tuple[str, dict[str, Any]]] = deque(maxlen=1000)
        self._lock = threading.Lock()
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def plan(self, *plans: Plan) -> None:
        with self._lock:
            self._plans.extend(plans)

    @property
    def api_base(self) -> str:
        """The OpenAI-style base URL (``.../v1``), as LiteLLM and the SDKs take it."""
        return f"{self.url}/v1"

    def take(self, path: str, body: dict[str, Any]) -> Plan:
        with self._lock:
            self.hits += 1
            self.requests.append((path, body))
            return self._plans.popleft() if self._plans else self.default

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> "FakeLLMServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m brownout.hooks.testing [--chunks N]``: serve on a free port, print the URL,
    stop when standard input closes (so a benchmark can keep the server in another process)."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(description="fake OpenAI/Anthropic/Gemini/Bedrock server for tests and benchmarks")
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
