#!/usr/bin/env python
"""Hook overhead: what brownout's OpenAI hook adds per call and per streamed chunk, next to
OTel's GenAI OpenAI instrumentation (opentelemetry-instrumentation-openai-v2) and OpenLLMetry's
opentelemetry-instrumentation-openai, in the same run, against the same local server.

    python bench/hook_overhead.py [--json] [--rounds 15] [--calls 30] [--chunks 100]

End to end: the real openai SDK against brownout.hooks.testing.FakeLLMServer (loopback HTTP,
JSON and SSE) running in its own process, as a provider would. Each mode (bare SDK, brownout,
each peer) lives in its own worker process, so no instrumentation can leak into another mode
(an uninstrument that leaves wrappers behind, a background thread); the parent drives the
workers one at a time, round by round, order rotated. Result: the median time of a call in a
mode minus the bare SDK's; per chunk, (streamed-call overhead - per-call overhead) / chunks.
``noise_us_*`` is the standard error of such a difference of medians, and ``process_bias_*``
what a second, identical bare worker measures against the first: smaller differences are not
resolved on this machine. ``<mode>_cpu_*`` are the same differences in CPU time of the calling
thread (robust to a loaded machine; they leave out waiting, which an instrumentation that
never blocks does not add to). A peer that is not installed, or fails to instrument, is reported
unavailable. Peers get an SDK TracerProvider with a BatchSpanProcessor and an exporter that
drops spans (their export cost is not counted); content capture is off for every mode.

A few microseconds are below the noise of a ~1 ms loopback call, so every mode is also timed
offline, in its worker: the same SDK path with the HTTP exchange replaced by a ready
ChatCompletion or a real ``openai.Stream`` over ready SSE bytes, timed in CPU time of the
calling thread, so a loaded machine's descheduling does not count (``<mode>_offline_*``; the
peer/brownout ratios come from these). And brownout's own cost in isolation: the hook's wrapper around a ``create`` that returns a ready
ChatCompletion, and its stream proxy iterating a ready list of ChatCompletionChunk objects,
each against the bare call or list (``brownout_isolated_*``), plus the CPU its exporter thread
spends per event, off the call's path (``brownout_background_us_per_event``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("TRACELOOP_TRACE_CONTENT", "false")
os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "NO_CONTENT")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MESSAGES = [{"role": "user", "content": "hello"}]
PEERS = ("otel_openai_v2", "openllmetry")
OFFLINE_CHUNKS = 100
OFFLINE_ROUNDS = 7


# --- worker: one mode, one process ------------------------------------------------------------
def _setup(mode: str) -> Callable[[], int]:
    """Instrument this process for ``mode``; return a function counting the spans/events made."""
    if mode in ("bare", "bare_control"):
        return lambda: 0
    if mode == "brownout":
        import brownout.hooks as hooks
        from brownout.transport import MemoryTransport

        hooks.configure(transport=MemoryTransport())
        hooks.instrument_openai(region="local")
        return lambda: (hooks.flush(30.0), hooks.stats()["sent"])[1]
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    if mode == "otel_openai_v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    elif mode == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor  # type: ignore[no-redef]
    else:
        raise ValueError(f"unknown mode {mode!r}")
    count = [0]

    class DropExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            count[0] += len(spans)
            return SpanExportResult.SUCCESS

    tp = TracerProvider()
    tp.add_span_processor(BatchSpanProcessor(DropExporter()))
    OpenAIInstrumentor().instrument(tracer_provider=tp)
    return lambda: (tp.force_flush(), count[0])[1]


def _calls(client: Any, n: int, stream: bool) -> list[tuple[float, float]]:
    """(wall seconds, CPU seconds of this thread) of each of ``n`` calls."""
    out = []
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.thread_time()
        if stream:
            for _ in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                                    stream_options={"include_usage": True}):
                pass
        else:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        out.append((time.perf_counter() - t0, time.thread_time() - c0))
    return out


def _offline(client: Any, chunks: int) -> None:
    """Answer this client's chat completions from memory: a ready ChatCompletion, or a real
    ``openai.Stream`` over ready SSE bytes (the SDK still decodes them), so that what differs
    between modes is the instrumentation alone."""
    import httpx2
    from openai import Stream
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    ready = ChatCompletion.model_validate({
        "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o-2025",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}})

    def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
        body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2025",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if usage is None else [],
                "usage": usage}
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    sse = b"".join([chunk({"role": "assistant", "content": ""})] + [chunk({"content": "t"})] * chunks
                   + [chunk({}, "stop"), chunk({}, usage={"prompt_tokens": 11, "completion_tokens": chunks,
                                                          "total_tokens": 11 + chunks}), b"data: [DONE]\n\n"])
    request = httpx2.Request("POST", "http://offline/v1/chat/completions")

    def post(path: str, *, cast_to: Any, body: Any = None, options: Any = None, stream: bool = False,
             stream_cls: Any = None, **_: Any) -> Any:
        if not stream:
            return ready
        response = httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=sse,
                                   request=request)
        return Stream(cast_to=ChatCompletionChunk, response=response, client=client)

    client.chat.completions._post = post


def _timed(client: Any, n: int, stream: bool) -> float:
    # CPU time of this thread: what the call costs the app's thread, without the time a loaded
    # machine keeps the process descheduled (nor the peers' or our exporter threads).
    t0 = time.thread_time()
    for _ in range(n):
        if stream:
            for _ in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                                    stream_options={"include_usage": True}):
                pass
        else:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    return (time.thread_time() - t0) / n


def worker(mode: str, url: str) -> int:
    """Answer the parent's commands on stdin: ``call N``, ``stream N``, ``seen``, one JSON line each."""
    import openai

    try:
        seen = _setup(mode)
    except Exception as exc:  # not installed, or does not fit this openai version
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:200]}), flush=True)
        return 0
    client = openai.OpenAI(base_url=url + "/v1", api_key="bench", max_retries=0)
    offline = openai.OpenAI(base_url="http://offline/v1", api_key="bench", max_retries=0)
    _offline(offline, OFFLINE_CHUNKS)
    _calls(client, 5, False)  # warm up: imports, connection pool, caches
    _calls(client, 2, True)
    _timed(offline, 50, False)
    _timed(offline, 5, True)
    base = seen()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "call":
            print(json.dumps(_calls(client, int(arg), False)), flush=True)
        elif cmd == "stream":
            print(json.dumps(_calls(client, int(arg), True)), flush=True)
        elif cmd == "offline_call":
            print(json.dumps(_timed(offline, int(arg), False)), flush=True)
        elif cmd == "offline_stream":
            print(json.dumps(_timed(offline, int(arg), True)), flush=True)
        elif cmd == "seen":
            print(json.dumps(seen() - base), flush=True)
    client.close()
    return 0


class Worker:
    def __init__(self, mode: str, url: str) -> None:
        self.mode = mode
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", mode, "--url", url],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(ROOT))
        first = json.loads(self.proc.stdout.readline() or '{"error": "worker died"}')
        self.error: str | None = first.get("error")

    def ask(self, command: str) -> Any:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(30)


# --- parent: end to end --------------------------------------------------------------------------
def _sem_of_median(xs: list[float]) -> float:
    """Standard error of a median, from the MAD (robust to a shared machine's outliers)."""
    med = statistics.median(xs)
    mad = statistics.median(abs(x - med) for x in xs)
    return 1.253 * 1.4826 * mad / len(xs) ** 0.5


def end_to_end(peers: tuple[str, ...], rounds: int, calls: int, stream_calls: int,
               chunks: int) -> dict[str, Any]:
    server = subprocess.Popen([sys.executable, "-m", "brownout.hooks.testing", "--chunks", str(chunks)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(ROOT))
    url = server.stdout.readline().strip()
    workers: list[Worker] = []
    unavailable: dict[str, str] = {p: "not selected (--peers)" for p in PEERS if p not in peers}
    try:
        for mode in ("bare", "bare_control", "brownout") + tuple(p for p in PEERS if p in peers):
            w = Worker(mode, url)
            if w.error:
                unavailable[mode] = w.error
                w.close()
            else:
                workers.append(w)
        per_call: dict[str, list[float]] = {w.mode: [] for w in workers}
        per_stream: dict[str, list[float]] = {w.mode: [] for w in workers}
        cpu_call: dict[str, list[float]] = {w.mode: [] for w in workers}
        cpu_stream: dict[str, list[float]] = {w.mode: [] for w in workers}
        for r in range(rounds):
            for w in workers[r % len(workers):] + workers[:r % len(workers)]:
                for wall, cpu in w.ask(f"call {calls}"):
                    per_call[w.mode].append(wall)
                    cpu_call[w.mode].append(cpu)
                for wall, cpu in w.ask(f"stream {stream_calls}"):
                    per_stream[w.mode].append(wall)
                    cpu_stream[w.mode].append(cpu)
                w.ask("seen")  # its background export finishes before the next mode is timed
        offline_call: dict[str, list[float]] = {w.mode: [] for w in workers}
        offline_stream: dict[str, list[float]] = {w.mode: [] for w in workers}
        for r in range(OFFLINE_ROUNDS):
            for w in workers[r % len(workers):] + workers[:r % len(workers)]:
                offline_call[w.mode].append(w.ask("offline_call 200"))
                offline_stream[w.mode].append(w.ask("offline_stream 10"))
                w.ask("seen")
        seen = {w.mode: w.ask("seen") for w in workers}
    finally:
        for w in workers:
            w.close()
        server.stdin.close()
        server.wait(30)
    med_call = {k: statistics.median(v) for k, v in per_call.items()}
    med_stream = {k: statistics.median(v) for k, v in per_stream.items()}
    out: dict[str, Any] = {
        "unavailable": unavailable,
        "bare_us_per_call": round(med_call["bare"] * 1e6, 1),
        "bare_us_per_chunk": round(med_stream["bare"] / chunks * 1e6, 2),
        "noise_us_per_call": round(_sem_of_median(per_call["bare"]) * 2 ** 0.5 * 1e6, 1),
        "noise_us_per_chunk": round(_sem_of_median(per_stream["bare"]) * 2 ** 0.5 / chunks * 1e6, 2),
        "spans_or_events_seen": seen,
        "calls_per_mode": rounds * calls, "streamed_calls_per_mode": rounds * stream_calls,
        "chunks_per_streamed_call": chunks,
    }
    # A second bare worker: how far two identical processes differ on this machine.
    out["process_bias_us_per_call"] = round((med_call["bare_control"] - med_call["bare"]) * 1e6, 1)
    out["process_bias_us_per_streamed_call"] = round((med_stream["bare_control"] - med_stream["bare"]) * 1e6, 1)
    for mode in [w.mode for w in workers if w.mode not in ("bare", "bare_control")]:
        call = med_call[mode] - med_call["bare"]
        stream = med_stream[mode] - med_stream["bare"]
        out[f"{mode}_us_per_call"] = round(call * 1e6, 1)
        out[f"{mode}_us_per_chunk"] = round((stream - call) / chunks * 1e6, 2)
        out[f"{mode}_us_per_streamed_call"] = round(stream * 1e6, 1)
    # The same calls in CPU time of the calling thread: robust to a loaded machine.
    c_call = {k: statistics.median(v) for k, v in cpu_call.items()}
    c_stream = {k: statistics.median(v) for k, v in cpu_stream.items()}
    out["cpu_process_bias_us_per_call"] = round((c_call["bare_control"] - c_call["bare"]) * 1e6, 1)
    for mode in [w.mode for w in workers if w.mode not in ("bare", "bare_control")]:
        call = c_call[mode] - c_call["bare"]
        out[f"{mode}_cpu_us_per_call"] = round(call * 1e6, 1)
        out[f"{mode}_cpu_us_per_chunk"] = round((c_stream[mode] - c_stream["bare"] - call) / chunks * 1e6, 2)
    # Offline: the same SDK code path minus the network, fastest round of each mode.
    off_call = {k: min(v) for k, v in offline_call.items()}
    off_stream = {k: min(v) for k, v in offline_stream.items()}
    out["offline_bare_us_per_call"] = round(off_call["bare"] * 1e6, 1)
    out["offline_bare_us_per_chunk"] = round(off_stream["bare"] / OFFLINE_CHUNKS * 1e6, 2)
    out["offline_process_bias_us_per_call"] = round((off_call["bare_control"] - off_call["bare"]) * 1e6, 2)
    for mode in [w.mode for w in workers if w.mode not in ("bare", "bare_control")]:
        call = off_call[mode] - off_call["bare"]
        stream = off_stream[mode] - off_stream["bare"]
        out[f"{mode}_offline_us_per_call"] = round(call * 1e6, 2)
        out[f"{mode}_offline_us_per_chunk"] = round((stream - call) / OFFLINE_CHUNKS * 1e6, 3)
    for peer in PEERS:
        for suffix in ("us_per_call", "us_per_chunk", "cpu_us_per_call", "cpu_us_per_chunk",
                       "offline_us_per_call", "offline_us_per_chunk"):
            out.setdefault(f"{peer}_{suffix}", None)
    return out


# --- parent: isolation ----------------------------------------------------------------------------
def _per_op(fn: Callable[[], Any], n: int) -> float:
    # CPU time of this thread: a loaded machine's descheduling does not count
    t0 = time.thread_time()
    for _ in range(n):
        fn()
    return (time.thread_time() - t0) / n


def _drain(it: Any) -> None:
    for _ in it:
        pass


class _Cases:
    """Bare and hooked forms of one SDK's call path, in memory: a non-streamed call, a streamed
    call (the wrapper, its stall watch and stream proxy over one chunk) and a chunk."""

    def __init__(self, call: tuple[Callable[[], Any], Callable[[], Any]],
                 streamed: tuple[Callable[[], Any], Callable[[], Any]], chunks: list[Any], adapter: Any,
                 provider: str) -> None:
        self.call, self.streamed, self.chunks, self.adapter, self.provider = call, streamed, chunks, adapter, provider


def _openai_cases(n_chunks: int) -> _Cases:
    import openai
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    from brownout.hooks import openai as oh

    ready = ChatCompletion.model_validate({
        "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o-2025",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}})
    chunks = [ChatCompletionChunk.model_validate({
        "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2025",
        "choices": [{"index": 0, "delta": {"content": "t"}, "finish_reason": None}]}) for _ in range(n_chunks)]

    class ReadyStream(openai.Stream):  # type: ignore[type-arg]
        def __init__(self) -> None:  # no response: iterates one ready chunk
            pass

        def __iter__(self) -> Any:
            return iter(chunks[:1])

        def close(self) -> None:
            pass

    def original(self: Any, *args: Any, **kwargs: Any) -> Any:
        return ReadyStream() if kwargs.get("stream") else ready

    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="bench")
    resource = client.chat.completions
    wrapped = oh._sync_wrapper(original, oh.CHAT)
    kw = {"model": "gpt-4o", "messages": MESSAGES}
    return _Cases((lambda: original(resource, **kw), lambda: wrapped(resource, **kw)),
                  (lambda: _drain(original(resource, stream=True, **kw)),
                   lambda: _drain(wrapped(resource, stream=True, **kw))), chunks, oh.CHAT, "openai")


def _genai_cases(n_chunks: int) -> _Cases:
    from google import genai
    from google.genai import types

    from brownout.hooks import genai as gh
    from brownout.hooks._wrap import sync_create

    def response(last: bool) -> Any:
        cand: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": "t"}]}, "index": 0}
        if last:
            cand["finishReason"] = "STOP"
        return types.GenerateContentResponse.model_validate({
            "candidates": [cand], "modelVersion": "gemini-2.0-flash-001",
            "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 3, "totalTokenCount": 14}})

    ready = response(True)
    chunks = [response(False) for _ in range(n_chunks)]

    def content(self: Any, **kwargs: Any) -> Any:
        return ready

    def stream(self: Any, **kwargs: Any) -> Any:
        yield from chunks[:1]

    client = genai.Client(api_key="bench", http_options=types.HttpOptions(base_url="http://127.0.0.1:9"))
    models = client.models
    wrapped = sync_create(content, gh._target, None, gh.CONTENT)
    wrapped_stream = sync_create(stream, gh._target, None, gh.CONTENT, streamed=True)
    kw = {"model": "gemini-2.0-flash", "contents": "hello"}
    return _Cases((lambda: content(models, **kw), lambda: wrapped(models, **kw)),
                  (lambda: _drain(stream(models, **kw)), lambda: _drain(wrapped_stream(models, **kw))),
                  chunks, gh.CONTENT, "gcp.gemini")


def _bedrock_cases(n_chunks: int) -> _Cases:
    import boto3

    from brownout.hooks import bedrock as bh

    ready = {"output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}}, "stopReason": "end_turn",
             "usage": {"inputTokens": 11, "outputTokens": 3, "totalTokens": 14}, "metrics": {"latencyMs": 5},
             "ResponseMetadata": {"HTTPStatusCode": 200}}
    chunks = [{"contentBlockDelta": {"delta": {"text": "t"}, "contentBlockIndex": 0}} for _ in range(n_chunks)]

    def original(self: Any, operation_name: str, api_params: Any) -> Any:
        return {"stream": iter(chunks[:1])} if operation_name == "ConverseStream" else ready

    client = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
    wrapped = bh._wrapper(original)
    params = {"modelId": "anthropic.claude-3-5-sonnet-20240620-v1:0", "messages": []}
    return _Cases((lambda: original(client, "Converse", params), lambda: wrapped(client, "Converse", params)),
                  (lambda: _drain(original(client, "ConverseStream", params)["stream"]),
                   lambda: _drain(wrapped(client, "ConverseStream", params)["stream"])),
                  chunks, bh.CONVERSE, "aws.bedrock")


def isolated(n_calls: int, n_chunks: int, repeats: int) -> dict[str, float]:
    """Each SDK's wrapper against the bare call, in memory, in CPU time of the calling thread, fastest of 7 rounds (per call, per
    streamed call, per chunk of a ready list), then the exporter thread's CPU per event."""
    import brownout.hooks as hooks
    from brownout.hooks._observation import Observation, waiting
    from brownout.hooks._streams import SyncStreamProxy
    from brownout.transport import MemoryTransport

    # The exporter's thread is parked (long interval) while the caller's side is timed, then
    # timed on its own: it runs during the app's I/O waits, not on the call's path.
    hooks.configure(transport=MemoryTransport(), max_queue=10_000_000, batch_size=4096, interval=3600)
    out: dict[str, float] = {}
    for name, make in (("brownout", _openai_cases), ("genai", _genai_cases), ("bedrock", _bedrock_cases)):
        case = make(n_chunks)

        def bare_list(case: Any = case) -> None:
            for _ in range(repeats):
                for _c in case.chunks:
                    pass

        def proxied_list(case: Any = case) -> None:
            for _ in range(repeats):
                obs = Observation(case.provider, "local", "m", stream=True).start()
                for _c in SyncStreamProxy(case.chunks, obs, case.adapter):
                    pass

        rounds: dict[str, list[float]] = {k: [] for k in ("bc", "hc", "bs", "hs", "bk", "hk")}
        for _ in range(7):
            rounds["bc"].append(_per_op(case.call[0], n_calls))
            rounds["hc"].append(_per_op(case.call[1], n_calls))
            rounds["bs"].append(_per_op(case.streamed[0], n_calls // 4))
            rounds["hs"].append(_per_op(case.streamed[1], n_calls // 4))
            rounds["bk"].append(_per_op(bare_list, 1) / (repeats * n_chunks))
            rounds["hk"].append(_per_op(proxied_list, 1) / (repeats * n_chunks))
            waiting.clear()  # what the exporter's thread does every interval (parked here)
        best = {k: min(v) for k, v in rounds.items()}
        out[f"{name}_isolated_us_per_call"] = round((best["hc"] - best["bc"]) * 1e6, 2)
        out[f"{name}_isolated_us_per_streamed_call"] = round((best["hs"] - best["bs"]) * 1e6, 2)
        out[f"{name}_isolated_us_per_chunk"] = round((best["hk"] - best["bk"]) * 1e6, 3)
        if name == "brownout":
            out["isolated_bare_us_per_call"] = round(best["bc"] * 1e6, 3)
            out["isolated_bare_us_per_chunk"] = round(best["bk"] * 1e6, 3)
    queued = hooks.stats()["queued"]
    t0 = time.perf_counter()
    hooks.flush(600.0)
    out["brownout_background_us_per_event"] = round((time.perf_counter() - t0) / max(1, queued) * 1e6, 1)
    hooks.shutdown()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--calls", type=int, default=15, help="non-streamed calls per mode per round")
    ap.add_argument("--stream-calls", type=int, default=3, help="streamed calls per mode per round")
    ap.add_argument("--chunks", type=int, default=100, help="content chunks per streamed call")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers to compare (default: all)")
    ap.add_argument("--isolated-only", action="store_true", help="only the in-memory measurements (quick)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.url)
    if min(args.calls, args.stream_calls, args.chunks) < 1 or args.rounds < 2:
        ap.error("--rounds must be >= 2 and --calls, --stream-calls, --chunks >= 1")
    import openai

    result: dict[str, Any] = {"python": sys.version.split()[0], "openai": openai.__version__}
    if not args.isolated_only:
        result.update(end_to_end(tuple(p for p in args.peers.split(",") if p), args.rounds, args.calls,
                                 args.stream_calls, args.chunks))
    result.update(isolated(n_calls=20_000, n_chunks=1_000, repeats=50))
    if args.isolated_only:
        return _print(result, args.json)
    # Peer cost over ours; ours is the larger of the offline difference (noisy, may be <= 0) and
    # the isolated measurement, so the ratio is not flattered by noise.
    for peer in PEERS:
        for unit in ("call", "chunk"):
            ours = max(result[f"brownout_offline_us_per_{unit}"] or 0.0, result[f"brownout_isolated_us_per_{unit}"])
            theirs = result[f"{peer}_offline_us_per_{unit}"]
            result[f"{peer}_offline_{unit}_ratio"] = \
                round(theirs / ours, 1) if ours > 0 and theirs is not None and theirs > 0 else None
    return _print(result, args.json)


def _print(result: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(result, indent=1))
    else:
        width = max(len(k) for k in result)
        for k, v in result.items():
            print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
