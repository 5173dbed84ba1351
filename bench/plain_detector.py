"""A plain detector of about 200 lines, the competitor brownout's detectors are measured against.

Issue 11 describes it: "10-minute seasonal slot medians over past days, Wilson lower bounds, one
step loop", and it beat brownout's detectors of the time on incidents they were never tuned to. This
is our rendering of that description, written once and not tuned to our scenarios: per key, a 5 s
step loop over the events ending in each step; per rule a trailing window and a Wilson lower bound
on the share of requests past a threshold; baselines from the same 10-minute slot of the past days
(the median of their per-slot medians) or, without history, the median of the last hour's per-minute
medians while no alert fires. Breakers open on errors only, close after a 60 s cooldown.

It reads the same events as ``brownout replay`` and prints decisions the way the bench scores them:
``(time, key, rule, state)``. ``python bench/plain_detector.py EVENTS.jsonl`` replays a flat JSON file.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections import defaultdict, deque
from typing import Iterable, Iterator

STEP = 5.0
SLOT = 600.0
DAY = 86_400.0
Z = 2.576
CAPACITY = {"429", "529", "timeout"}

Signal = tuple  # (time, key, rule, state)


def wilson_lb(k: int, n: int, z: float = Z) -> float:
    if n == 0:
        return 0.0
    p = k / n
    c = p + z * z / (2 * n)
    s = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (c - s) / (1 + z * z / n)


def capacity(err: str | None) -> bool:
    return bool(err) and (err in CAPACITY or err.startswith("5"))


class Baseline:
    """10-minute slot medians over past days; else the trailing hour of per-minute medians."""

    def __init__(self) -> None:
        self.slots: dict[tuple[int, int], list[float]] = defaultdict(list)  # (day, slot) -> minute medians
        self.recent: deque[float] = deque(maxlen=60)

    def learn(self, t: float, minute_median: float, alerting: bool) -> None:
        day, slot = int(t // DAY), int((t % DAY) // SLOT)
        self.slots[(day, slot)].append(minute_median)
        if not alerting:
            self.recent.append(minute_median)

    def value(self, t: float) -> float | None:
        day, slot = int(t // DAY), int((t % DAY) // SLOT)
        past = [statistics.median(v) for (d, s), v in self.slots.items() if s == slot and day - 7 <= d < day and v]
        if past:
            return statistics.median(past)
        return statistics.median(self.recent) if len(self.recent) >= 10 else None


class KeyState:
    def __init__(self) -> None:
        self.events: deque[tuple] = deque()  # (end, ok, cap, ttft, tps, itl)
        self.minute: list[tuple] = []
        self.base = {"ttft": Baseline(), "ttft95": Baseline(), "tps": Baseline()}
        self.firing: dict[str, float] = {}  # rule -> last time its condition held
        self.open_until = -math.inf


RULES = ("errors", "ttft", "ttft_tail", "throughput", "itl")


def judge(ks: KeyState, t: float) -> dict[str, bool]:
    """Each rule's condition over its window at step end ``t``."""
    w60 = [e for e in ks.events if e[0] > t - 60]
    w300 = [e for e in ks.events if e[0] > t - 300]
    out = dict.fromkeys(RULES, False)
    n = len(w60)
    if n >= 10:
        caps = sum(1 for e in w60 if e[2])
        out["errors"] = caps >= 3 and wilson_lb(caps, n) >= 0.05
    ok = [e for e in w60 if e[1]]
    base = ks.base["ttft"].value(t)
    ttfts = [e[3] for e in ok if e[3] is not None]
    if base and len(ttfts) >= 10:
        out["ttft"] = wilson_lb(sum(1 for x in ttfts if x >= 1.2 * base), len(ttfts)) >= 0.5
    base95 = ks.base["ttft95"].value(t)
    tail = [e[3] for e in w300 if e[1] and e[3] is not None]
    if base95 and len(tail) >= 20:
        out["ttft_tail"] = wilson_lb(sum(1 for x in tail if x >= 1.5 * base95), len(tail)) >= 0.05
    tbase = ks.base["tps"].value(t)
    tps = [e[4] for e in ok if e[4] is not None]
    if tbase and len(tps) >= 10:
        out["throughput"] = wilson_lb(sum(1 for x in tps if x <= 0.5 * tbase), len(tps)) >= 0.5
    itl = [e[5] for e in ok if e[5] is not None]
    if len(itl) >= 10:
        out["itl"] = wilson_lb(sum(1 for x in itl if x > 0.1), len(itl)) >= 0.05
    return out


def learn(ks: KeyState, t: float) -> None:
    ttfts = sorted(e[3] for e in ks.minute if e[1] and e[3] is not None)
    tps = sorted(e[4] for e in ks.minute if e[1] and e[4] is not None)
    if len(ttfts) >= 5:
        ks.base["ttft"].learn(t, ttfts[len(ttfts) // 2], "ttft" in ks.firing)
        ks.base["ttft95"].learn(t, ttfts[min(len(ttfts) - 1, int(0.95 * len(ttfts)))], "ttft_tail" in ks.firing)
    if len(tps) >= 5:
        ks.base["tps"].learn(t, tps[len(tps) // 2], "throughput" in ks.firing)
    ks.minute = []


def breaker(ks: KeyState, t: float) -> bool:
    w15 = [e for e in ks.events if e[0] > t - 15]
    caps = sum(1 for e in w15 if e[2])
    return len(w15) >= 10 and wilson_lb(caps, len(w15)) >= 0.25


def run(events: Iterable) -> list[Signal]:
    """Decisions for events ordered by start (``brownout.model.Event`` or flat dicts)."""
    keys: dict[object, KeyState] = defaultdict(KeyState)
    pending: dict[int, list] = defaultdict(list)
    out: list[Signal] = []
    clock = None
    for e in _rows(events):
        start, end = e[1], e[2]
        pending[int(end // STEP)].append(e)
        if clock is None:
            clock = int(start // STEP)
        while (clock + 1) * STEP + STEP <= start:  # close steps a step after they end (lateness)
            _step(keys, pending.pop(clock, []), clock, out)
            clock += 1
    if clock is not None:
        for _ in range(720):
            _step(keys, pending.pop(clock, []), clock, out)
            clock += 1
    return out


def _step(keys: dict, arrived: list, i: int, out: list) -> None:
    t = (i + 1) * STEP
    for key, _, end, ok, cap, ttft, tps, itl in arrived:
        ks = keys[key]
        row = (end, ok, cap, ttft, tps, itl)
        ks.events.append(row)
        ks.minute.append(row)
    for key, ks in keys.items():
        while ks.events and ks.events[0][0] <= t - 300:
            ks.events.popleft()
        if not ks.events and not ks.firing:
            continue
        held = judge(ks, t)
        for rule, on in held.items():
            if on and rule not in ks.firing:
                out.append((t, key, f"plain_{rule}", "firing"))
            if on:
                ks.firing[rule] = t
            elif rule in ks.firing and t - ks.firing[rule] >= 60:
                del ks.firing[rule]
                out.append((t, key, f"plain_{rule}", "resolved"))
        if t >= ks.open_until and breaker(ks, t):
            ks.open_until = t + 60
            out.append((t, key, "plain_breaker", "open"))
        if t % 60 == 0:
            learn(ks, t)


def _rows(events: Iterable) -> Iterator[tuple]:
    for e in events:
        if isinstance(e, dict):
            key = (e["gen_ai.provider.name"], e["cloud.region"], e["gen_ai.request.model"])
            start, dur, err = float(e["start"]), float(e["duration"]), e.get("error.type")
            ttft, out_tok, itl = e.get("gen_ai.response.time_to_first_chunk"), e.get("gen_ai.usage.output_tokens"), \
                e.get("brownout.itl.p95")
        else:
            key, start, dur, err, ttft, out_tok, itl = e.key, e.start, e.duration, e.error_type, e.ttft, \
                e.output_tokens, e.itl_p95
            if getattr(e, "stall", None):
                continue
        tps = out_tok / (dur - ttft) if err is None and out_tok and ttft is not None and dur > ttft else None
        yield key, start, start + dur, err is None, capacity(err), ttft if err is None else None, tps, \
            itl if err is None else None


def main(argv: list[str]) -> int:
    import orjson

    with open(argv[0], "rb") as f:
        decisions = run(orjson.loads(line) for line in f if line.strip())
    for t, key, rule, state in decisions:
        print(f'{{"time": {t}, "key": "{"/".join(key)}", "rule": "{rule}", "state": "{state}"}}')
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
