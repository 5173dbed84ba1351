"""Detection quality: injected incidents on calibrated traffic, brownout against two common baselines.

Traffic comes from ``brownout.sim`` (latency quantiles of real llmperf requests, token counts and
arrival burstiness of Azure's public LLM trace, see /work/shared/data), with diurnal load, heavy
tails and noise; each scenario injects one incident (or none) and is replayed in event time
through ``brownout.pipeline.Pipeline`` (the code path of ``brownout replay`` and the collector).
Side by side:

- ``brownout``: the default rule pack (alerts and breakers);
- ``static``: fixed global thresholds, the same for every key, no hysteresis (TTFT p50 1 min >= 1 s,
  p95 duration 5 min >= 30 s, capacity errors 1 min >= 5 % of >= 20, ITL p95 > 100 ms);
- ``cooldown``: LiteLLM-style: a key cools down for 60 s when >= 50 % of its requests failed over
  the last 60 s (at least 5 requests).

Delays of brownout include the allowed lateness (5 s): a live collector decides about a step that
long after the step ends. Per scenario and detector: caught (a firing alert or an opened breaker on the incident key while
it lasts), delay (from the incident start), false alerts per key-day (firing alerts or opens
outside any incident, plus 10 min of grace after one), flaps (an alert re-firing during one incident).

Usage: ``python bench/detection_quality.py [--json] [--only NAME] [--days N]``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from brownout.model import Event, Key
from brownout.sim import Incident, Simulator, Traffic, diurnal

HOUR = 3600.0
DAY = 86_400.0
GRACE = 600.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a Thursday


@dataclass
class Scenario:
    name: str
    traffic: list[Traffic]
    incidents: list[Incident]
    seconds: float
    budget: float | None = None  # seconds: DESIGN's detection budget when it names one
    score_after: float = 0.0  # false alerts are counted from here (history warm-up)
    note: str = ""


@dataclass
class Result:
    scenario: str
    detector: str
    caught: bool | None
    delay_s: float | None
    first_flag_s: float | None
    false_alerts_per_key_day: float
    flaps: int
    budget_s: float | None = None
    rules: list[str] = field(default_factory=list)


def k(region: str = "eastus", model: str = "llama-2-70b", provider: str = "fireworks") -> Key:
    return Key(provider, region, model)


def scenarios(days: float) -> list[Scenario]:
    on = T0 + 2 * HOUR  # two healthy hours first: the fallback baselines are warm
    main = k()
    # siblings serve the same model: a breaker may open only while most of them stay closed
    base = [Traffic(k(r), "fireworks-70b", rate=4.0 if r == "eastus" else 2.0)
            for r in ("eastus", "westus", "northeurope")]
    three = base
    peak_days = max(4.0, days)
    return [
        Scenario("error_burst", base, [Incident(main, on, on + 600, error_rate=0.9, error_types=("503",))],
                 on - T0 + 2 * HOUR, budget=15.0, note="hard 503 burst: breaker within 15 s"),
        Scenario("ttft_step", base, [Incident(main, on, on + 1800, ttft_factor=1.5)], on - T0 + 2 * HOUR,
                 budget=90.0, note="+50 % TTFT step: flagged within 90 s"),
        Scenario("ttft_creep", base, [Incident(main, on, on + 3 * HOUR, ttft_factor=2.5, ramp=True)],
                 on - T0 + 4 * HOUR, note="TTFT grows linearly to 2.5 x over 3 h"),
        Scenario("p95_blowup", base, [Incident(main, on, on + 1800, tail_fraction=0.1, tail_factor=6.0)],
                 on - T0 + 2 * HOUR, note="10 % of requests 6 x slower; the median unchanged"),
        Scenario("throughput_collapse", base, [Incident(main, on, on + 1800, itl_factor=3.0)],
                 on - T0 + 2 * HOUR, note="decoding 3 x slower, TTFT unchanged"),
        Scenario("region_degraded", three, [Incident(k("westus"), on, on + 1800, ttft_factor=2.0,
                                                     error_rate=0.15)],
                 on - T0 + 2 * HOUR, note="one region slow and failing, its siblings healthy"),
        Scenario("storm_429", base, [Incident(main, on, on + 900, error_rate=0.5, error_types=("429",))],
                 on - T0 + 2 * HOUR, budget=15.0, note="half the requests rate limited"),
        Scenario("recurring_peak", [Traffic(main, "fireworks-70b", rate=1.0, shape=diurnal(0.5, 10.0))],
                 [], peak_days * DAY, score_after=3 * DAY,
                 note=f"TTFT 1.6 x every morning 09-11 UTC for {peak_days:g} days; scored from day 3"),
        Scenario("healthy_diurnal", [Traffic(k(r), "fireworks-70b", rate=3.0, shape=diurnal(0.7, 15.0))
                                     for r in ("eastus", "westus")], [], days * DAY,
                 note=f"{days:g} days of healthy diurnal traffic on two keys: never alert"),
        Scenario("quiet_key", [Traffic(k(model="llama-2-13b"), "fireworks-13b", rate=0.05, error_rate=0.01)],
                 [], days * DAY, note="3 requests a minute, 1 % errors: never alert"),
    ]


def peak_incidents(s: Scenario) -> list[Incident]:
    if s.name != "recurring_peak":
        return []
    return [Incident(s.traffic[0].key, T0 + d * DAY + 9 * HOUR, T0 + d * DAY + 11 * HOUR, ttft_factor=1.6)
            for d in range(int(s.seconds // DAY))]


def generate(s: Scenario, seed: int) -> list[Event]:
    sim = Simulator(s.traffic, s.incidents + peak_incidents(s), seed=seed)
    out: list[Event] = []
    t = T0
    while t < T0 + s.seconds:
        out.extend(sim.events(t, t + 60.0))
        t += 60.0
    return out


# --- detectors -------------------------------------------------------------------------
Signal = tuple[float, Key, str, str]  # time, key, rule, state ("firing" / "open" / "pending")


def run_brownout(events: list[Event]) -> list[Signal]:
    from brownout.pipeline import Pipeline

    p = Pipeline()
    out: list[Signal] = []
    last = -math.inf
    now = -math.inf
    for e in events:
        p.observe(e)
        now = max(now, e.start)
        if now - last >= 1.0:
            out.extend((d.time, d.key, d.rule, d.state) for d in p.advance(now))
            last = now
    out.extend((d.time, d.key, d.rule, d.state) for d in p.advance(now + HOUR))
    return out


def run_static(events: list[Event]) -> list[Signal]:
    """Fixed global thresholds over tumbling windows, alert while above (no hysteresis)."""
    by_key: dict[Key, list[Event]] = defaultdict(list)
    for e in events:
        by_key[e.key].append(e)
    out: list[Signal] = []
    for key, evs in by_key.items():
        ends = np.array([e.end for e in evs])
        ok = np.array([e.error_type is None for e in evs])
        cap = np.array([e.error_class == "capacity" for e in evs])
        ttft = np.array([e.ttft if e.ttft is not None else np.nan for e in evs])
        dur = np.array([e.duration for e in evs])
        itl = np.array([e.itl_p95 if e.itl_p95 is not None else np.nan for e in evs])
        state: dict[str, bool] = defaultdict(bool)
        t = math.floor(ends.min() / 60) * 60 + 60
        while t <= ends.max() + 300:
            m1 = (ends > t - 60) & (ends <= t)
            m5 = (ends > t - 300) & (ends <= t)
            checks = {
                "static_ttft": m1.sum() >= 10 and np.nanmedian(ttft[m1 & ok]) >= 1.0 if (m1 & ok).any() else False,
                "static_p95": (m5 & ok).sum() >= 20 and np.percentile(dur[m5 & ok], 95) >= 30.0,
                "static_errors": m1.sum() >= 20 and cap[m1].mean() >= 0.05,
                "static_itl": (m1 & ok).sum() >= 10 and np.nanpercentile(itl[m1 & ok], 95) > 0.1,
            }
            for rule, on in checks.items():
                on = bool(on)
                if on and not state[rule]:
                    out.append((t, key, rule, "firing"))
                state[rule] = on
            t += 60
    return sorted(out, key=lambda s: (s[0], str(s[1]), s[2]))


def run_cooldown(events: list[Event], share: float = 0.5, window: float = 60.0, cooldown: float = 60.0,
                 min_requests: int = 5) -> list[Signal]:
    """LiteLLM-style deployment cooldown on failures (any error) in the last 60 s."""
    recent: dict[Key, deque[tuple[float, bool]]] = defaultdict(deque)
    until: dict[Key, float] = {}
    out: list[Signal] = []
    for e in sorted(events, key=lambda e: e.end):
        t = e.end
        q = recent[e.key]
        q.append((t, e.error_type is not None and e.error_class != "client"))
        while q and q[0][0] <= t - window:
            q.popleft()
        if until.get(e.key, -math.inf) > t:
            continue
        fails = sum(1 for _, f in q if f)
        if len(q) >= min_requests and fails / len(q) >= share:
            until[e.key] = t + cooldown
            out.append((t, e.key, "cooldown", "open"))
            q.clear()
    return out


DETECTORS: dict[str, Callable[[list[Event]], list[Signal]]] = {
    "brownout": run_brownout, "static": run_static, "cooldown": run_cooldown,
}


# --- scoring ---------------------------------------------------------------------------
def score(s: Scenario, detector: str, signals: Iterable[Signal], keys: int, lag: float = 0.0) -> Result:
    """``lag``: seconds between a signal's event time and when a live deployment can act on it."""
    signals = [(t + lag, key, rule, state) for t, key, rule, state in signals]
    acts = [x for x in signals if x[3] in ("firing", "open")]
    inc = s.incidents
    first_hit: float | None = None
    first_flag: float | None = None
    false = 0
    flaps = 0
    fired: dict[tuple[Key, str, int], int] = defaultdict(int)
    rules: set[str] = set()
    for t, key, rule, state in signals:
        hit = next((i for i, x in enumerate(inc) if x.key == key and x.start <= t <= x.end + GRACE), None)
        if hit is not None and state in ("pending", "firing", "open"):
            first_flag = t if first_flag is None else min(first_flag, t)
    for t, key, rule, state in acts:
        hit = next((i for i, x in enumerate(inc) if x.key == key and x.start <= t <= x.end + GRACE), None)
        if hit is None:
            if t >= T0 + s.score_after:
                false += 1
            continue
        rules.add(rule)
        if t <= inc[hit].end:
            first_hit = t if first_hit is None else min(first_hit, t)
        if state == "firing":
            fired[(key, rule, hit)] += 1
    flaps = sum(n - 1 for n in fired.values() if n > 1)
    key_days = keys * max(s.seconds - s.score_after, 1.0) / DAY
    start = inc[0].start if inc else None
    return Result(
        scenario=s.name, detector=detector,
        caught=(first_hit is not None) if inc else None,
        delay_s=None if first_hit is None or start is None else round(first_hit - start, 1),
        first_flag_s=None if first_flag is None or start is None else round(first_flag - start, 1),
        false_alerts_per_key_day=round(false / key_days, 2), flaps=flaps, budget_s=s.budget,
        rules=sorted(rules),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="one JSON object per scenario and detector")
    ap.add_argument("--only", action="append", help="run only these scenarios")
    ap.add_argument("--days", type=float, default=2.0, help="length of the no-incident scenarios (days)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    results: list[Result] = []
    timings: dict[str, float] = {}
    for s in scenarios(args.days):
        if args.only and s.name not in args.only:
            continue
        t = time.perf_counter()
        events = generate(s, args.seed)
        keys = len({e.key for e in events})
        for name, run in DETECTORS.items():
            t1 = time.perf_counter()
            # brownout stamps a decision with its step's end; live, it is taken allowed_lateness later
            lag = 5.0 if name == "brownout" else 0.0
            results.append(score(s, name, run(events), keys, lag))
            timings[f"{s.name}/{name}"] = time.perf_counter() - t1
        if not args.json:
            print(f"# {s.name}: {s.note} ({len(events)} events, {keys} keys, "
                  f"{time.perf_counter() - t:.1f}s)", file=sys.stderr)
    if args.json:
        for r in results:
            print(json.dumps(r.__dict__))
        return 0
    head = f"{'scenario':<20} {'detector':<9} {'caught':<6} {'delay s':>8} {'flag s':>8} {'budget':>6} " \
           f"{'false/key-day':>13} {'flaps':>5}  rules"
    print(head)
    print("-" * len(head))
    for r in results:
        caught = "-" if r.caught is None else ("yes" if r.caught else "NO")
        fmt = lambda v: "-" if v is None else f"{v:g}"  # noqa: E731
        print(f"{r.scenario:<20} {r.detector:<9} {caught:<6} {fmt(r.delay_s):>8} {fmt(r.first_flag_s):>8} "
              f"{fmt(r.budget_s):>6} {r.false_alerts_per_key_day:>13g} {r.flaps:>5}  {','.join(r.rules)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
