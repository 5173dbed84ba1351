"""Control records at scale: what readings records cost a collector and a router with 10,000 keys.

Every key with traffic gets a record each heartbeat (10 s), closed keys included, so routers
have each key's TTFT readings. Measured here, side by side with records without readings (what
the collector published before: the floor):

- collector: records per second and bytes per second on ``brownout.control``; CPU to build and
  encode one heartbeat interval's records; CPU per evaluated step (5 s) to take the detectors'
  status into the book (``readings_from_status`` + ``update_readings``); the book's memory per key.
- router: CPU to apply one interval's records to a board, and the board's memory per key.

Usage: ``python bench/control_records.py [--keys N] [--json]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from types import SimpleNamespace
from typing import Any, Callable

from brownout import semconv as sc
from brownout.breakers import AsyncBreakerBoard, BreakerBook, BreakerConfig
from brownout.breakers.machine import readings_from_status
from brownout.model import Key
from brownout.transport.base import Record


def keys(n: int) -> list[Key]:
    return [Key("azure.ai.openai", f"region-{i % 50}", f"deployment-{i // 50}") for i in range(n)]


def status(n: int) -> dict[Key, Any]:
    """What ``Engine.status()`` hands the pipeline for ``n`` keys with traffic."""
    return {k: SimpleNamespace(ttft_p50=0.41 + i * 1e-6, ttft_p95=0.93, ttft_p50_baseline=0.388, ttft_p95_baseline=0.87,
                               requests=312, capacity_error_rate=0.0032)
            for i, k in enumerate(keys(n))}


def cpu(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """The best of ``repeat`` runs, in CPU seconds of this thread."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.thread_time()
        out = fn()
        best = min(best, time.thread_time() - t)
    return best, out


def measure(n: int, with_readings: bool) -> dict[str, Any]:
    cfg = BreakerConfig()
    st = status(n)

    def fresh_book() -> BreakerBook:
        book = BreakerBook(cfg)
        if with_readings:
            book.update_readings(readings_from_status(st))
        else:  # the floor: a record per key without readings, as a tripped-then-closed key had
            for k in st:
                book._breaker(k)
                book._move(book._breakers[k], 0.0, "closed", "probes_healthy")
        return book

    clock = [1000.0]

    def one_interval(book: BreakerBook) -> list[tuple[bytes, bytes]]:
        """Publish for one heartbeat interval, a second at a time (a collector publishes each poll)."""
        out = []
        for _ in range(int(cfg.heartbeat_interval)):
            clock[0] += 1.0
            out += [(r.kafka_key(), r.to_bytes()) for r in book.records(clock[0])]
        return out

    book = fresh_book()
    one_interval(book)  # the first records: every key once, at its phase
    interval_s, values = cpu(lambda: one_interval(book))
    step_s, _ = cpu(lambda: book.update_readings(readings_from_status(st))) if with_readings else (0.0, None)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    kept = fresh_book()
    book_bytes = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    raws = [Record(sc.TOPIC_CONTROL, k, v) for k, v in values]
    board = AsyncBreakerBoard(_Unused(), registry=None, clock=lambda: clock[0])
    apply_s, _ = cpu(lambda: [board.apply(r) for r in raws])
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    fresh = AsyncBreakerBoard(_Unused(), registry=None, clock=lambda: clock[0])
    for r in raws:
        fresh.apply(r)
    board_bytes = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    del kept, fresh
    size = sum(len(k) + len(v) for k, v in values) / len(values)
    per_s = len(values) / cfg.heartbeat_interval
    return {"keys": n, "readings": with_readings, "records_per_s": per_s, "bytes_per_record": round(size),
            "kbytes_per_s": round(per_s * size / 1024, 1),
            "collector_cpu_ms_per_interval": round(1000 * interval_s, 1),
            "collector_cpu_ms_per_step": round(1000 * step_s, 1),
            "collector_bytes_per_key": round(book_bytes / n), "router_cpu_ms_per_interval": round(1000 * apply_s, 1),
            "router_bytes_per_key": round(board_bytes / n)}


class _Unused:
    def consumer(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("records are applied directly")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = [measure(args.keys, False), measure(args.keys, True)]
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"{args.keys} keys, heartbeat {BreakerConfig().heartbeat_interval:g} s (CPU: best of 3)")
    cols = [("records/s", "records_per_s"), ("B/record", "bytes_per_record"), ("KiB/s", "kbytes_per_s"),
            ("collector ms/10s", "collector_cpu_ms_per_interval"), ("ms/step", "collector_cpu_ms_per_step"),
            ("B/key", "collector_bytes_per_key"), ("router ms/10s", "router_cpu_ms_per_interval"),
            ("router B/key", "router_bytes_per_key")]
    print(f"{'records':<18}" + "".join(f"{name:>17}" for name, _ in cols))
    for r in rows:
        label = "with readings" if r["readings"] else "without (floor)"
        print(f"{label:<18}" + "".join(f"{r[k]:>17}" for _, k in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
