"""Replay speed: ``brownout replay`` of a flat JSON file against the plain detector, same file, same run.

Writes a replay file of calibrated traffic (``brownout.sim``: ``--keys`` keys at ``--rate`` requests
per second each for ``--hours``, one of them browning out for a while), then times, on one core and
in CPU seconds (best of ``--repeat``):

- ``brownout``: :func:`brownout.replay.replay` (parse each line, validate, detectors and breakers in
  event time, decisions written out), what ``brownout replay FILE`` does;
- ``plain``: ``bench/plain_detector.py`` reading the same lines (orjson) and deciding, the ~200-line
  detector issue 11 measured brownout against;
- ``parse``: reading and validating the lines into events and nothing else (the floor).

Usage: ``python bench/replay_speed.py [--json] [--keys 20] [--rate 5] [--hours 2] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from typing import Any, Callable

import orjson

from brownout import codec
from brownout.model import Key
from brownout.replay import ReplayStats, read_events, replay
from brownout.sim import Incident, Simulator, Traffic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plain_detector  # noqa: E402

T0 = 1_767_571_200.0
PROFILES = ("fireworks-70b", "together-70b", "groq-70b", "bedrock-70b", "anyscale-13b", "together-7b")


def write_file(path: str, keys: int, rate: float, hours: float, seed: int = 1) -> int:
    ks = [Key(("fireworks", "together", "groq", "aws.bedrock")[i % 4], f"region-{i % 5}", f"model-{i}")
          for i in range(keys)]
    traffic = [Traffic(k, PROFILES[i % len(PROFILES)], rate=rate) for i, k in enumerate(ks)]
    on = T0 + hours * 3600 / 2
    incidents = [Incident(ks[0], on, on + 900, error_rate=0.4, ttft_factor=3.0)]
    sim = Simulator(traffic, incidents, seed=seed)
    n = 0
    with open(path, "wb") as f:
        t = T0
        while t < T0 + hours * 3600:
            events = sim.events(t, t + 60.0)
            if events:
                f.write(codec.encode_flat(events))
                f.write(b"\n")
                n += len(events)
            t += 60.0
    return n


def run_brownout(path: str) -> int:
    out = io.StringIO()
    with open(path, "rb") as f:  # as `brownout replay FILE` reads it
        stats = replay(f, out)
    return stats.events


def run_parse(path: str) -> int:
    stats = ReplayStats()
    with open(path, "rb") as f:
        return sum(1 for _ in read_events(f, stats))


def run_plain(path: str) -> int:
    with open(path, "rb") as f:
        rows = [orjson.loads(line) for line in f if line.strip()]
    plain_detector.run(rows)
    return len(rows)


def timed(fn: Callable[[str], int], path: str, repeat: int) -> tuple[float, int]:
    best, n = float("inf"), 0
    for _ in range(repeat):
        t = time.process_time()
        n = fn(path)
        best = min(best, time.process_time() - t)
    return best, n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keys", type=int, default=20)
    ap.add_argument("--rate", type=float, default=5.0, help="requests per second per key")
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "events.jsonl")
        n = write_file(path, args.keys, args.rate, args.hours)
        report: dict[str, Any] = {"events": n, "keys": args.keys, "rate_per_key": args.rate, "hours": args.hours,
                                  "bytes": os.path.getsize(path)}
        for name, fn in (("parse", run_parse), ("brownout", run_brownout), ("plain", run_plain)):
            seconds, count = timed(fn, path, args.repeat)
            report[name] = {"cpu_seconds": round(seconds, 3), "events_per_s": round(count / seconds)}
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{n:,} events ({args.keys} keys x {args.rate:g} req/s x {args.hours:g} h), "
          f"{report['bytes'] / 1e6:.0f} MB of flat JSON; CPU seconds, best of {args.repeat}")
    for name in ("parse", "brownout", "plain"):
        r = report[name]
        print(f"  {name:<9} {r['events_per_s']:>10,} events/s   ({r['cpu_seconds']:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
