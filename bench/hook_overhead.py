#!/usr/bin/env python
"""Hook overhead: what brownout's OpenAI hook adds per call and per streamed chunk, next to
OTel's GenAI OpenAI instrumentation (opentelemetry-instrumentation-openai-v2) and OpenLLMetry's
opentelemetry-instrumentation-openai, in the same run, against the same local server.

    python bench/hook_overhead.py [--json] [--rounds 12] [--calls 20] [--chunks 100]

End to end: the real openai SDK against brownout.hooks.testing.FakeLLMServer (loopback HTTP,
JSON and SSE, in its own process), modes interleaved round by round (order rotated), the median time of a call
in each mode minus the bare SDK's. Per chunk: (streamed-call overhead - per-call overhead) /
chunks. ``noise_us_*`` is the standard error of such a difference of medians: smaller
differences are not resolved. A peer that is not installed, or fails to instrument, is reported
unavailable. Peers get an SDK TracerProvider with a BatchSpanProcessor and an exporter that
drops spans (their own export cost is not counted); content capture is off for all.

End to end, a few microseconds are below the noise of a ~1-4 ms loopback call (``noise_us``
says how much), so brownout's own cost is also measured in isolation: the hook's wrapper around
a ``create`` that returns a ready ChatCompletion, and the stream proxy iterating a ready list of
ChatCompletionChunk objects, each against the bare call or list.
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
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai  # noqa: E402

import brownout.hooks as hooks  # noqa: E402
from brownout.transport import MemoryTransport  # noqa: E402

MESSAGES = [{"role": "user", "content": "hello"}]
PEERS = ("otel_openai_v2", "openllmetry")


# --- modes -------------------------------------------------------------------------------------
class Mode:
    def __init__(self, name: str, on: Callable[[], None], off: Callable[[], None],
                 seen: Callable[[], int]) -> None:
        self.name, self.on, self.off, self.seen = name, on, off, seen


def _peer_tracer() -> tuple[Any, list[int]]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    count = [0]

    class DropExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            count[0] += len(spans)
            return SpanExportResult.SUCCESS

    tp = TracerProvider()
    tp.add_span_processor(BatchSpanProcessor(DropExporter()))
    return tp, count


def _peer(name: str) -> Mode:
    if name == "otel_openai_v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    else:
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor  # type: ignore[no-redef]
    tp, count = _peer_tracer()
    inst = OpenAIInstrumentor()

    def seen() -> int:
        tp.force_flush()
        return count[0]

    return Mode(name, lambda: inst.instrument(tracer_provider=tp), inst.uninstrument, seen)


def modes(peers: tuple[str, ...] = PEERS) -> tuple[list[Mode], dict[str, str]]:
    out = [Mode("bare", lambda: None, lambda: None, lambda: 0),
           Mode("brownout", lambda: hooks.instrument_openai(region="local"), hooks.uninstrument_openai,
                lambda: hooks.flush(30.0) and hooks.stats()["sent"])]
    unavailable: dict[str, str] = {}
    for name in PEERS:
        if name not in peers:
            unavailable[name] = "not selected (--peers)"
            continue
        try:
            m = _peer(name)
            m.on()
            m.off()
            out.append(m)
        except Exception as exc:  # not installed, or does not fit this openai version
            unavailable[name] = f"{type(exc).__name__}: {exc}"[:200]
    return out, unavailable


# --- end to end ---------------------------------------------------------------------------------
def _calls(client: Any, n: int, stream: bool) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        if stream:
            for _ in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                                    stream_options={"include_usage": True}):
                pass
        else:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        out.append(time.perf_counter() - t0)
    return out


def _sem_of_median(xs: list[float]) -> float:
    """Standard error of a median, from the MAD (robust to the shared machine's outliers)."""
    med = statistics.median(xs)
    mad = statistics.median(abs(x - med) for x in xs)
    return 1.253 * 1.4826 * mad / len(xs) ** 0.5


def end_to_end(ms: list[Mode], rounds: int, calls: int, stream_calls: int, chunks: int) -> dict[str, Any]:
    # The server runs in its own process, as a provider would: in this one it would compete for
    # the GIL with the app's thread and the hooks' exporter.
    server = subprocess.Popen([sys.executable, "-m", "brownout.hooks.testing", "--chunks", str(chunks)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              cwd=str(Path(__file__).resolve().parent.parent))
    url = server.stdout.readline().strip()
    client = openai.OpenAI(base_url=url + "/v1", api_key="bench", max_retries=0)
    per_call: dict[str, list[float]] = {m.name: [] for m in ms}
    per_stream: dict[str, list[float]] = {m.name: [] for m in ms}
    seen_before = {}
    try:
        for m in ms:  # warm up every path (imports, connection pool, caches)
            m.on()
            seen_before[m.name] = m.seen()
            _calls(client, 5, False)
            _calls(client, 2, True)
            m.off()
        for r in range(rounds):
            order = ms[r % len(ms):] + ms[:r % len(ms)]
            for m in order:
                m.on()
                try:
                    per_call[m.name].extend(_calls(client, calls, False))
                    per_stream[m.name].extend(_calls(client, stream_calls, True))
                finally:
                    m.off()
                    m.seen()  # let its background export finish before the next mode is timed
        spans = {}
        for m in ms:
            m.on()
            spans[m.name] = m.seen() - seen_before[m.name]
            m.off()
    finally:
        client.close()
        server.stdin.close()
        server.wait(10)
    med_call = {k: statistics.median(v) for k, v in per_call.items()}
    med_stream = {k: statistics.median(v) for k, v in per_stream.items()}
    out: dict[str, Any] = {"bare_us_per_call": round(med_call["bare"] * 1e6, 1),
                           "bare_us_per_chunk": round(med_stream["bare"] / chunks * 1e6, 2),
                           "noise_us_per_call": round(_sem_of_median(per_call["bare"]) * 2 ** 0.5 * 1e6, 1),
                           "noise_us_per_chunk": round(_sem_of_median(per_stream["bare"]) * 2 ** 0.5
                                                       / chunks * 1e6, 2),
                           "spans_or_events_seen": spans}
    for m in ms:
        if m.name == "bare":
            continue
        call = med_call[m.name] - med_call["bare"]
        stream = med_stream[m.name] - med_stream["bare"]
        out[f"{m.name}_us_per_call"] = round(call * 1e6, 1)
        out[f"{m.name}_us_per_chunk"] = round((stream - call) / chunks * 1e6, 2)
        out[f"{m.name}_us_per_streamed_call"] = round(stream * 1e6, 1)
    return out


# --- isolation ----------------------------------------------------------------------------------
def isolated(n_calls: int, n_chunks: int, repeats: int) -> dict[str, float]:
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    from brownout.hooks import openai as oh
    from brownout.hooks._observation import Observation
    from brownout.hooks._streams import SyncStreamProxy

    ready = ChatCompletion.model_validate({
        "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o-2025",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}})

    def original(self: Any, *args: Any, **kwargs: Any) -> Any:
        return ready

    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="bench")
    resource = client.chat.completions
    wrapped = oh._sync_wrapper(original, oh.CHAT)

    def loop(fn: Callable[..., Any]) -> float:
        t0 = time.perf_counter()
        for _ in range(n_calls):
            fn(resource, model="gpt-4o", messages=MESSAGES)
        return (time.perf_counter() - t0) / n_calls

    chunks = [ChatCompletionChunk.model_validate({
        "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2025",
        "choices": [{"index": 0, "delta": {"content": "t"}, "finish_reason": None}]}) for _ in range(n_chunks)]

    def bare_list() -> float:
        t0 = time.perf_counter()
        for _ in range(repeats):
            for _c in chunks:
                pass
        return (time.perf_counter() - t0) / (repeats * n_chunks)

    def proxied_list() -> float:
        t0 = time.perf_counter()
        for _ in range(repeats):
            obs = Observation("openai", "local", "gpt-4o", stream=True).start()
            for _c in SyncStreamProxy(chunks, obs, oh.CHAT):
                pass
        return (time.perf_counter() - t0) / (repeats * n_chunks)

    # The exporter's thread is parked (long interval) while the caller's side is timed, then
    # timed on its own: it runs during the app's I/O waits, not on the call's path.
    hooks.configure(transport=MemoryTransport(), max_queue=10_000_000, batch_size=4096, interval=3600)
    bare_c, hook_c, bare_k, hook_k = [], [], [], []
    for _ in range(5):
        bare_c.append(loop(original))
        hook_c.append(loop(wrapped))
        bare_k.append(bare_list())
        hook_k.append(proxied_list())
    queued = hooks.stats()["queued"]
    t0 = time.perf_counter()
    hooks.flush(600.0)
    background = (time.perf_counter() - t0) / max(1, queued)
    client.close()
    return {"brownout_isolated_us_per_call": round((min(hook_c) - min(bare_c)) * 1e6, 2),
            "brownout_isolated_us_per_chunk": round((min(hook_k) - min(bare_k)) * 1e6, 3),
            "isolated_bare_us_per_call": round(min(bare_c) * 1e6, 3),
            "isolated_bare_us_per_chunk": round(min(bare_k) * 1e6, 3),
            "brownout_background_us_per_event": round(background * 1e6, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=30, help="non-streamed calls per mode per round")
    ap.add_argument("--stream-calls", type=int, default=5, help="streamed calls per mode per round")
    ap.add_argument("--chunks", type=int, default=100, help="content chunks per streamed call")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers to compare (default: all)")
    args = ap.parse_args(argv)
    if min(args.rounds, args.calls, args.stream_calls, args.chunks) < 1 or args.rounds < 2:
        ap.error("--rounds must be >= 2 and --calls, --stream-calls, --chunks >= 1")

    result: dict[str, Any] = {"python": sys.version.split()[0], "openai": openai.__version__}
    hooks.configure(transport=MemoryTransport())
    ms, unavailable = modes(tuple(p for p in args.peers.split(",") if p))
    result["unavailable"] = unavailable
    result.update(end_to_end(ms, args.rounds, args.calls, args.stream_calls, args.chunks))
    # after the end-to-end runs: its ~10^5 queued events would otherwise weigh on them
    result.update(isolated(n_calls=20_000, n_chunks=1_000, repeats=50))
    for peer in PEERS:
        if peer in unavailable:
            result[f"{peer}_us_per_call"] = None
            result[f"{peer}_us_per_chunk"] = None
            continue
        for unit in ("call", "chunk"):
            ours = result[f"brownout_isolated_us_per_{unit}"]
            theirs = result[f"{peer}_us_per_{unit}"]
            result[f"{peer}_{unit}_ratio_vs_brownout_isolated"] = \
                round(theirs / ours, 1) if ours and ours > 0 and theirs is not None else None
    hooks.shutdown()
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        width = max(len(k) for k in result)
        for k, v in result.items():
            print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
