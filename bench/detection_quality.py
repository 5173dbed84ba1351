"""Detection quality: incidents of every failure class on calibrated traffic, brownout against three others.

Traffic comes from ``brownout.sim`` (latency quantiles of real llmperf requests, token counts and
arrival burstiness of Azure's public LLM trace, see /work/shared/data), with diurnal load, heavy
tails and noise. Each scenario injects incidents (or none) and is replayed in event time. Side by side:

- ``brownout``: the default rule pack through ``brownout.pipeline.Pipeline`` (the code path of
  ``brownout replay`` and the collector), alerts and breakers;
- ``plain``: ``bench/plain_detector.py``, the ~200-line detector issue 11 measured brownout against
  (10-minute seasonal slot medians over past days, Wilson lower bounds, one step loop);
- ``static``: fixed global thresholds, the same for every key, no hysteresis (TTFT p50 1 min >= 1 s,
  p95 duration 5 min >= 30 s, capacity errors 1 min >= 5 % of >= 20, ITL p95 > 100 ms);
- ``cooldown``: LiteLLM-style: a key cools down for 60 s when >= 50 % of its requests failed over
  the last 60 s (at least 5 requests).

Each scenario names its budgets: ``alert`` (first firing alert on an incident key), ``breaker``
(first breaker opened on it), or a kind of alert (``errors``, ``ttft``, ``latency``, ``throughput``,
``itl``), in seconds from the incident's start (or from ``reference`` seconds into it: a creep
crossing +20 %). Every incident of the scenario must meet every budget. A scenario passes when all
budgets are met, it raised no false alert (a firing alert or an open outside any incident and 10
minutes of grace after one), and nothing fired again on a key after its traffic stopped. Detectors
that decide once a step is over (brownout, plain) are charged the 5 s they wait for late events.

Usage: ``python bench/detection_quality.py [--json] [--only NAME ...] [--days N] [--detectors a,b]``
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

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import plain_detector  # noqa: E402  (the competitor, beside this file)

HOUR = 3600.0
DAY = 86_400.0
GRACE = 600.0
T0 = 1_767_571_200.0  # 2026-01-05T00:00:00Z, a Monday
ON = T0 + 2 * HOUR  # incidents start after two healthy hours: the fallback baselines are warm


@dataclass
class Scenario:
    name: str
    klass: str  # the failure class it belongs to (issue 11's, or "unlisted")
    traffic: list[Traffic]
    incidents: list[Incident]
    seconds: float
    budgets: dict[str, float] = field(default_factory=dict)
    reference: float = 0.0  # budgets count from incident start + reference
    score_after: float = 0.0  # false alerts count from here (history warm-up)
    silent_from: float | None = None  # nothing may go pending or firing from here on (traffic stopped)
    peaks: list[Incident] = field(default_factory=list)  # recurring load peaks: normal, not incidents
    note: str = ""


@dataclass
class Result:
    scenario: str
    klass: str
    detector: str
    passed: bool
    delays: dict[str, float | None]
    budgets: dict[str, float]
    false_alerts: int
    refires: int
    rules: list[str]
    seconds: float
    events_per_s: float


def k(region: str = "eastus", model: str = "llama-2-70b", provider: str = "fireworks") -> Key:
    return Key(provider, region, model)


def siblings(rate: float = 4.0, profile: str = "fireworks-70b", **kw: Any) -> list[Traffic]:
    """The main key (eastus) plus two sibling regions serving the same model."""
    return [Traffic(k(r), profile, rate=rate if r == "eastus" else 2.0, **kw) for r in ("eastus", "westus", "northeurope")]


def daily_peaks(key: Key, days: int, start_h: float, hours: float, factor: float) -> list[Incident]:
    """A load peak at the same time every day, starting up to 6 minutes early or late."""
    out = []
    for d in range(days):
        jitter = ((d * 37) % 13 - 6) * 60.0
        s = T0 + d * DAY + start_h * HOUR + jitter
        out.append(Incident(key, s, s + hours * HOUR, ttft_factor=factor))
    return out


def scenarios(days: float) -> list[Scenario]:
    main = k()
    two_hours = 4 * HOUR
    mixtral, groq = Key("together", "us-east-1", "mixtral-8x7b"), Key("groq", "us-east-1", "llama-3-70b")
    quiet = k(model="llama-2-13b")
    peak_key = Key("fireworks", "us-central1", "llama-2-70b")
    week = max(days, 1.0)
    shape = diurnal(0.6, 15.0)
    out = [
        # 1. a model served by one key
        Scenario("single_key_5xx", "single key", [Traffic(mixtral, "together-70b", rate=5.0)],
                 [Incident(mixtral, ON, ON + 3600, error_rate=0.5, error_types=("503",))], two_hours,
                 {"breaker": 15.0}, note="the only key of a model: 50 % 503 for an hour"),
        Scenario("single_key_429", "single key", [Traffic(groq, "groq-70b", rate=6.0)],
                 [Incident(groq, ON, ON + 900, error_rate=0.8, error_types=("429",))], two_hours,
                 {"breaker": 15.0}, note="the only key of a model: an 80 % 429 storm"),
        # 2. tail-only degradation
        Scenario("ttft_tail", "tail only", siblings(3.0),
                 [Incident(main, ON, ON + 1800, tail_fraction=0.1, tail_factor=6.0, tail_on="ttft")], two_hours,
                 {"alert": 420.0}, note="10 % of first tokens 6 x slower, the median unchanged"),
        Scenario("ttft_tail_heavy", "tail only", [Traffic(k(provider="together", model="llama-2-13b"),
                                                           "together-13b", rate=2.0)],
                 [Incident(k(provider="together", model="llama-2-13b"), ON, ON + 1800, tail_fraction=0.15,
                           tail_factor=5.0, tail_on="ttft")], two_hours,
                 {"alert": 420.0}, note="15 % of first tokens 5 x slower on a heavy-tailed provider, 2 req/s"),
        # 3. slow creep
        Scenario("ttft_creep", "slow creep", siblings(4.0),
                 [Incident(main, ON, ON + 2400, ttft_factor=1.4, ramp=True)], two_hours + HOUR,
                 {"ttft": 240.0}, reference=1200.0,
                 note="median TTFT +40 % over 40 min; flagged within 4 min of crossing +20 % (at 20 min)"),
        Scenario("ttft_creep_slow", "slow creep", [Traffic(peak_key, "fireworks-70b", rate=2.0, shape=shape,
                                                           load_latency=0.1)],
                 [Incident(peak_key, T0 + 2 * DAY + 10 * HOUR, T0 + 2 * DAY + 13 * HOUR, ttft_factor=1.5, ramp=True)],
                 2 * DAY + 14 * HOUR, {"ttft": 240.0}, reference=3 * HOUR * 0.2 / 0.5, score_after=2 * DAY,
                 note="on day 3, median TTFT +50 % over 3 h at 2 req/s; within 4 min of crossing +20 % (at 72 min)"),
        # 4. a recurring daily peak
        Scenario("recurring_peak", "daily peak", [Traffic(peak_key, "fireworks-70b", rate=2.0, shape=shape,
                                                          load_latency=0.1)],
                 [], max(4.0, week) * DAY, score_after=2 * DAY,
                 peaks=daily_peaks(peak_key, int(max(4.0, week)), 13.0, 1.5, 1.25),
                 note="TTFT +25 % at 13:00-14:30 every day (start +-6 min); scored from day 3"),
        Scenario("peak_then_incident", "daily peak", [Traffic(peak_key, "fireworks-70b", rate=2.0, shape=shape)],
                 [Incident(peak_key, T0 + 3 * DAY + 13.5 * HOUR, T0 + 3 * DAY + 14 * HOUR, ttft_factor=1.8)],
                 3 * DAY + 16 * HOUR, {"alert": 120.0}, score_after=2 * DAY,
                 peaks=daily_peaks(peak_key, 4, 13.0, 1.5, 1.25),
                 note="the same peak, and on day 4 a real x1.8 TTFT incident inside it"),
        # 5. hard steps at 4 req/s
        Scenario("ttft_step_x8", "hard step", siblings(4.0), [Incident(main, ON, ON + 1200, ttft_factor=8.0)],
                 two_hours, {"alert": 45.0}, note="first token 8 x slower at 4 req/s"),
        Scenario("error_step", "hard step", siblings(4.0),
                 [Incident(main, ON, ON + 900, error_rate=0.6, error_types=("503", "500"))], two_hours,
                 {"breaker": 15.0, "errors": 45.0}, note="60 % 5xx at 4 req/s"),
        Scenario("error_step_20", "hard step", siblings(4.0),
                 [Incident(main, ON, ON + 900, error_rate=0.2, error_types=("503",))], two_hours,
                 {"errors": 45.0}, note="20 % 503 at 4 req/s: an alert, no breaker needed"),
        Scenario("error_rate_10", "unlisted", siblings(4.0),
                 [Incident(main, ON, ON + 900, error_rate=0.1, error_types=("429",))], two_hours,
                 {"errors": 150.0}, note="10 % 429 held: twice the alert's rate, within 2.5 minutes"),
        Scenario("throughput_step", "hard step", siblings(4.0), [Incident(main, ON, ON + 1200, itl_factor=4.0)],
                 two_hours, {"throughput": 45.0}, note="decoding 4 x slower, first token unchanged"),
        Scenario("itl_step", "hard step", siblings(4.0), [Incident(main, ON, ON + 1200, itl_factor=6.0)],
                 two_hours, {"itl": 45.0}, note="inter-token gaps 6 x longer (~170 ms p95)"),
        # 6. a silent key after an error burst
        Scenario("silent_after_burst", "silent key",
                 [Traffic(main, "fireworks-70b", rate=4.0, shape=lambda t: 1.0 if t < ON + 300 else 0.0),
                  *siblings(4.0)[1:]],
                 [Incident(main, ON, ON + 300, error_rate=0.9, error_types=("503",))], two_hours + HOUR,
                 {"breaker": 15.0}, silent_from=ON + 300 + 120,
                 note="90 % 503 for 5 min, then no traffic for an hour: nothing may fire again"),
        # unlisted: what else happens to LLM providers
        Scenario("quiet_key_outage", "unlisted", [Traffic(quiet, "fireworks-13b", rate=0.2)],
                 [Incident(quiet, ON, ON + 1200, error_rate=1.0, error_types=("503",))], two_hours,
                 {"breaker": 90.0, "errors": 90.0}, note="a key at 12 req/min fails every call"),
        Scenario("timeouts", "unlisted", siblings(4.0),
                 [Incident(main, ON, ON + 900, error_rate=0.7, error_types=("timeout",), error_duration=30.0)],
                 two_hours, {"breaker": 45.0}, note="70 % of calls hang and time out after 30 s"),
        Scenario("stall_x20", "unlisted", siblings(4.0, stall_after=2.5),
                 [Incident(main, ON, ON + 1200, ttft_factor=20.0)], two_hours, {"breaker": 30.0},
                 note="first token 20 x slower (~10 s), the hooks report stalls after 2.5 s"),
        Scenario("error_creep", "unlisted", siblings(4.0),
                 [Incident(main, ON, ON + 1800, error_rate=0.12, error_types=("503",), ramp=True)], two_hours,
                 {"errors": 180.0}, reference=1800 * 0.05 / 0.12,
                 note="capacity errors ramp to 12 % over 30 min; within 3 min of crossing 5 %"),
        Scenario("region_outage", "unlisted",
                 [Traffic(k("eastus", m), prof, rate=4.0) for m, prof in
                  (("llama-2-70b", "fireworks-70b"), ("llama-2-13b", "fireworks-13b"), ("llama-2-7b", "fireworks-7b"))],
                 [Incident(k("eastus", m), ON, ON + 900, error_rate=0.55, error_types=("503",))
                  for m in ("llama-2-70b", "llama-2-13b", "llama-2-7b")], two_hours, {"breaker": 15.0},
                 note="one region fails 55 % for every model it serves"),
        Scenario("nonstreaming_slowdown", "unlisted", [Traffic(k(model="llama-2-70b-batch"), "fireworks-70b",
                                                                rate=3.0, stream=False)],
                 [Incident(k(model="llama-2-70b-batch"), ON, ON + 1800, itl_factor=2.5, ttft_factor=2.0)],
                 two_hours, {"latency": 300.0}, note="a non-streaming key (no TTFT) generates 2.5 x slower"),
        Scenario("low_rate_ttft_step", "unlisted", [Traffic(k(model="llama-2-7b"), "fireworks-7b", rate=0.5)],
                 [Incident(k(model="llama-2-7b"), ON, ON + 1800, ttft_factor=5.0)], two_hours, {"alert": 180.0},
                 note="first token 5 x slower on a key at 30 req/min"),
        Scenario("region_degraded", "unlisted", siblings(4.0),
                 [Incident(k("westus"), ON, ON + 1800, ttft_factor=2.0, error_rate=0.15)], two_hours,
                 {"alert": 60.0}, note="one region slow and failing, its siblings healthy"),
        # healthy traffic: never alert
        Scenario("healthy_week", "healthy",
                 [Traffic(k(), "fireworks-70b", rate=3.0, shape=shape, load_latency=0.15),
                  Traffic(k(provider="together", model="llama-2-13b"), "together-13b", rate=2.0,
                          shape=diurnal(0.5, 17.0), load_latency=0.1),
                  Traffic(k(provider="replicate"), "replicate-70b", rate=0.5, shape=diurnal(0.4, 14.0)),
                  Traffic(groq, "groq-70b", rate=4.0, shape=diurnal(0.7, 16.0), load_latency=0.2),
                  Traffic(quiet, "fireworks-13b", rate=0.05, error_rate=0.01)],
                 [], week * DAY, note=f"{week:g} days of diurnal traffic on 5 keys (incl. heavy tails, a quiet key)"),
    ]
    return out


def generate(s: Scenario, seed: int) -> list[Event]:
    sim = Simulator(s.traffic, s.incidents + s.peaks, seed=seed)
    out: list[Event] = []
    t = T0
    while t < T0 + s.seconds:
        out.extend(sim.events(t, t + 60.0))
        t += 60.0
    return out


# --- detectors -------------------------------------------------------------------------
Signal = tuple[float, Key, str, str]  # time, key, rule, state ("firing" / "open" / "pending" / "resolved")

CATEGORY = {
    "error_rate": "errors", "ttft_drift": "ttft", "ttft_p95": "ttft", "latency_p95": "latency",
    "throughput": "throughput", "itl": "itl", "goodput_page": "goodput", "goodput_ticket": "goodput",
    "plain_errors": "errors", "plain_ttft": "ttft", "plain_ttft_tail": "ttft", "plain_throughput": "throughput",
    "plain_itl": "itl", "static_errors": "errors", "static_ttft": "ttft", "static_p95": "latency",
    "static_itl": "itl",
}


def run_brownout(events: list[Event]) -> list[Signal]:
    from brownout.pipeline import Pipeline

    p = Pipeline()
    out: list[Signal] = []
    last = now = -math.inf
    for e in events:
        p.observe(e)
        if e.start > now:
            now = e.start
        if now - last >= 1.0:
            out.extend((d.time, d.key, d.rule, d.state) for d in p.advance(now))
            last = now
    out.extend((d.time, d.key, d.rule, d.state) for d in p.advance(now + HOUR))
    return out


def run_plain(events: list[Event]) -> list[Signal]:
    return [(t, Key(*key) if isinstance(key, tuple) else key, rule, state)
            for t, key, rule, state in plain_detector.run(events)]


def run_static(events: list[Event]) -> list[Signal]:
    """Fixed global thresholds over tumbling windows, alert while above (no hysteresis)."""
    by_key: dict[Key, list[Event]] = defaultdict(list)
    for e in events:
        if not e.stall:
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
            t1 = ttft[m1 & ok]
            i1 = itl[m1 & ok]
            checks = {
                "static_ttft": m1.sum() >= 10 and (~np.isnan(t1)).any() and np.nanmedian(t1) >= 1.0,
                "static_p95": (m5 & ok).sum() >= 20 and np.percentile(dur[m5 & ok], 95) >= 30.0,
                "static_errors": m1.sum() >= 20 and cap[m1].mean() >= 0.05,
                "static_itl": (m1 & ok).sum() >= 10 and (~np.isnan(i1)).any() and np.nanpercentile(i1, 95) > 0.1,
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
    for e in sorted((e for e in events if not e.stall), key=lambda e: e.end):
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


DETECTORS: dict[str, tuple[Callable[[list[Event]], list[Signal]], float]] = {
    # name: (run, seconds between a step's end and when a live deployment can act on it)
    "brownout": (run_brownout, 5.0), "plain": (run_plain, 5.0), "static": (run_static, 0.0),
    "cooldown": (run_cooldown, 0.0),
}


# --- scoring ---------------------------------------------------------------------------
def score(s: Scenario, detector: str, signals: Iterable[Signal], lag: float, seconds: float,
          n_events: int) -> Result:
    signals = sorted((t + lag, key, rule, state) for t, key, rule, state in signals)
    inc = s.incidents
    first: dict[tuple[int, str], float] = {}
    false = refires = 0
    rules: set[str] = set()
    for t, key, rule, state in signals:
        if s.silent_from is not None and t >= s.silent_from and state in ("pending", "firing") and \
                any(x.key == key for x in inc):
            refires += 1
        if state not in ("firing", "open"):
            continue
        hit = next((i for i, x in enumerate(inc) if x.key == key and x.start <= t <= x.end + GRACE), None)
        if hit is None:
            if t >= T0 + s.score_after:
                false += 1
            continue
        rules.add(rule)
        if t > inc[hit].end:
            continue
        kinds = ["breaker"] if state == "open" else ["alert", CATEGORY.get(rule, rule)]
        for kind in kinds:
            first.setdefault((hit, kind), t)
    delays: dict[str, float | None] = {}
    passed = not false and not refires
    for kind, budget in s.budgets.items():
        worst: float | None = -math.inf
        for i, x in enumerate(inc):
            t = first.get((i, kind))
            if t is None:
                worst = None
                break
            worst = max(worst, t - x.start - s.reference)
        delays[kind] = None if worst is None else round(worst, 1)
        if worst is None or worst > budget:
            passed = False
    return Result(s.name, s.klass, detector, passed, delays, s.budgets, false, refires, sorted(rules),
                  round(seconds, 2), round(n_events / seconds) if seconds else 0.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="one JSON object per scenario and detector")
    ap.add_argument("--only", nargs="*", help="run only these scenarios")
    ap.add_argument("--days", type=float, default=7.0, help="length of the healthy and peak scenarios (days)")
    ap.add_argument("--detectors", default=",".join(DETECTORS), help="comma-separated subset of detectors")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    wanted = args.detectors.split(",")
    results: list[Result] = []
    for s in scenarios(args.days):
        if args.only and s.name not in args.only:
            continue
        t = time.perf_counter()
        events = generate(s, args.seed)
        gen = time.perf_counter() - t
        for name in wanted:
            run, lag = DETECTORS[name]
            t1 = time.perf_counter()
            signals = run(events)
            results.append(score(s, name, signals, lag, time.perf_counter() - t1, len(events)))
        if not args.json:
            print(f"# {s.name}: {s.note} ({len(events):,} events, generated in {gen:.1f}s)", file=sys.stderr)
    if args.json:
        for r in results:
            print(json.dumps(r.__dict__))
        return 0
    head = f"{'scenario':<22} {'class':<11} {'detector':<9} {'pass':<4} {'delays s (budget)':<34} " \
           f"{'false':>5} {'refire':>6}  rules"
    print(head)
    print("-" * len(head))
    for r in results:
        delays = ", ".join(f"{kind} {'-' if d is None else f'{d:g}'} ({r.budgets[kind]:g})"
                           for kind, d in r.delays.items()) or "-"
        print(f"{r.scenario:<22} {r.klass:<11} {r.detector:<9} {'yes' if r.passed else 'NO':<4} {delays:<34} "
              f"{r.false_alerts:>5} {r.refires:>6}  {','.join(r.rules)}")
    print()
    for name in wanted:
        mine = [r for r in results if r.detector == name]
        speed = sum(r.events_per_s * r.seconds for r in mine) / max(sum(r.seconds for r in mine), 1e-9)
        print(f"{name:<9} passed {sum(r.passed for r in mine)} of {len(mine)} scenarios; "
              f"{speed:,.0f} events/s on average")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
