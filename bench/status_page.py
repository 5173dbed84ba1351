"""Status page: time to serve /status with N keys (budget: 1,000 keys within 200 ms), and the
history's memory per key; /metrics for the same keys on the same server is the floor.

Each key gets a full history (``--minutes`` rows of readings, as four hours of traffic leave) and
a live status; a tenth of the keys are degraded or open. Timings are wall-clock over HTTP on
loopback (urllib, one request at a time), median and max of ``--runs``:

- ``status cold``: every row's chart is drawn (what the first request after a minute's new rows costs);
- ``status warm``: charts come from the per-key cache (what the page's own reloads cost);
- ``metrics``: the Prometheus exposition of the same keys.

Memory: tracemalloc around filling the history (numpy's arrays are traced) against
:func:`brownout.status.bytes_per_key`.

    .venv/bin/python bench/status_page.py [--keys 1000] [--minutes 240] [--runs 15] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
import tracemalloc
import urllib.request
from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from brownout.exporters.prometheus import KeyStatusCollector, MetricsServer, StatusBoard
from brownout.model import Decision, Key
from brownout.status import HistoryRecorder, StatusPage, bytes_per_key


def make_keys(n: int) -> list[Key]:
    providers = ("openai", "anthropic", "azure.ai.openai", "aws.bedrock", "gcp.vertex_ai")
    return [Key(providers[i % 5], f"region-{i // 5 % 40:02d}", f"model-{i // 200:02d}-{i}") for i in range(n)]


def status(rng: random.Random, t: float, bad: bool) -> SimpleNamespace:
    base = 0.3 + rng.random() * 0.5
    ttft = base * (2.5 if bad else 1.0) * (0.9 + 0.2 * rng.random())
    return SimpleNamespace(
        time=t, requests=rng.randint(100, 3000), error_rate=0.2 if bad else 0.01 * rng.random(),
        capacity_error_rate=0.18 if bad else 0.005 * rng.random(), ttft_p50=ttft, ttft_p50_baseline=base,
        ttft_p95=ttft * 2.2, ttft_p95_baseline=base * 2.2, latency_p95=ttft * 8, latency_p95_baseline=base * 8,
        tokens_per_s=60 * (0.5 if bad else 1.0), tokens_per_s_baseline=60.0, itl_p95=0.04, goodput=0.99,
        warming=False, firing=("error_rate", "ttft_drift") if bad else (), late_events=0, stalls=0)


def fill(keys: list[Key], minutes: int, seed: int = 1) -> tuple[HistoryRecorder, StatusBoard, int]:
    rng = random.Random(seed)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    history = HistoryRecorder(minutes, max_keys=len(keys))
    t0 = 1_795_510_800.0
    board = StatusBoard()
    last: dict[Key, SimpleNamespace] = {}
    breakers: dict[Key, str] = {}
    for m in range(minutes):
        t = t0 + m * 60.0 + 55.0
        cur = {k: status(rng, t, bad=(i % 10 == 0 and m > minutes - 30)) for i, k in enumerate(keys)}
        breakers = {k: "open" for i, k in enumerate(keys) if i % 20 == 0 and m > minutes - 20}
        history.record(cur, breakers)
        last = cur
    for i, k in enumerate(keys[::20]):
        history.decision(Decision(t0 + (minutes - 20) * 60.0 + i, "breaker", "error_breaker", k, "open", 0.3))
        history.decision(Decision(t0 + (minutes - 29) * 60.0 + i, "alert", "error_rate", k, "firing", 0.2))
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    board.update(last, breakers)
    return history, board, used


def fetch(url: str) -> tuple[float, int]:
    t = time.perf_counter()
    with urllib.request.urlopen(url) as r:
        body = r.read()
    return time.perf_counter() - t, len(body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--minutes", type=int, default=240)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    keys = make_keys(a.keys)
    history, board, traced = fill(keys, a.minutes)
    page = StatusPage(board, history)
    registry = CollectorRegistry()
    registry.register(KeyStatusCollector(board, max_keys=a.keys))
    server = MetricsServer(registry, host="127.0.0.1", port=0, pages=page.handle)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    results: dict[str, dict[str, float]] = {}
    try:
        fetch(base + "/status")  # imports and first-use costs out of the way
        for name, path, cold in (("status cold", "/status", True), ("status warm", "/status", False),
                                 ("key page", "/status/key/" + "/".join(
                                     urllib.request.quote(p, safe="") for p in
                                     (keys[0].provider, keys[0].region, keys[0].model)), False),
                                 ("metrics (floor)", "/metrics", False)):
            times, size = [], 0
            for _ in range(a.runs):
                if cold:
                    page._sparks.clear()
                dt, size = fetch(base + path)
                times.append(dt)
            results[name] = {"median_ms": 1000 * statistics.median(times), "max_ms": 1000 * max(times),
                             "bytes": size}
    finally:
        server.stop()
    memory = {"keys": a.keys, "minutes": a.minutes, "bytes_per_key_arrays": bytes_per_key(a.minutes),
              "traced_bytes_per_key": traced / a.keys, "traced_total_mb": traced / 2 ** 20}
    if a.json:
        print(json.dumps({"serve": results, "memory": memory}, indent=2))
        return
    print(f"{a.keys} keys, {a.minutes} minutes of history each, {a.runs} requests per row, HTTP on loopback")
    print(f"{'':18s} {'median':>9s} {'max':>9s} {'body':>10s}")
    for name, r in results.items():
        print(f"{name:18s} {r['median_ms']:7.1f}ms {r['max_ms']:7.1f}ms {r['bytes'] / 1024:8.0f}KB")
    print(f"history memory: {memory['traced_bytes_per_key']:,.0f} B per key traced "
          f"({memory['bytes_per_key_arrays']:,} B of arrays), {memory['traced_total_mb']:.1f} MB for {a.keys} keys")


if __name__ == "__main__":
    main()
