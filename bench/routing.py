"""Routing: a fleet of routers during one deployment's brownout, strategies side by side.

Ten router processes share one stream of arrivals (each arrival goes to one process) and send
each request to one of three deployments of the same model. One deployment browns out (a slow
first token; an error burst; a heavy tail; a slow creep) while the others stay healthy. Every
strategy sees the same arrivals and the same per-request random draws, so the differences are
the strategies'. Deterministic for a seed.

Traffic (calibrated like ``brownout.sim``): arrivals Poisson at ``--rate`` requests/s shaped per
minute by Azure's public LLM trace (conversation workload), output tokens from that trace, TTFT
and inter-token latency from llmperf's real per-request measurements (``together-70b``), 0.2 %
background capacity errors. Each deployment serves at most ``SLOTS`` calls at once and queues
the rest (FIFO): a deployment that holds its calls longer queues the calls behind them, and two
deployments carry the whole load at about 80 % busy, so the physical limit matters.

Strategies:

- ``random``: LiteLLM's default: random among deployments not cooling down; a deployment cools
  down 5 s after a 429, or after 3 failures in the current minute (per process).
- ``latency``: per process, the lowest mean TTFT over the last 10 completed calls to each
  deployment (LiteLLM's latency-based routing), with the same cooldowns.
- ``brownout``: routers follow the breakers of the real ``brownout.pipeline.Pipeline`` (the
  default rule pack, or ``--rules``), through the real ``AsyncBreakerBoard`` of each process:
  random among the admitted deployments (half-open ones admit their probe share), the least
  degraded when all are refused. The collector sees each completed call 0.2 s after it ends
  (the hooks' export interval), judges every 0.5 s (its poll), and its records reach the
  routers 0.25 s later.
- ``+stalls``: as ``brownout``, and the hooks also report calls still waiting for their first
  token (an event with ``brownout.stall`` and ``ttft_at_least``) after ``board.stall_threshold``
  (8 x the key's normal TTFT p95 from the readings, at least 3 s; 3 s while unknown); the
  default pack's ``stall_breaker`` opens a key on a burst of them.
- ``+hedging``: as ``+stalls``, and a call still without a first token after the board's hedge
  delay for its key (its TTFT p95 baseline) gets a copy on another admitted deployment, within a
  ``HedgeBudget`` of 8 %; the first to start streaming is kept, the other cancelled and
  reported as ``error.type="cancelled"`` with ``ttft_at_least``.
- ``+timeout``: as ``+stalls``, and a call gives up on its first token after the board's
  first-token timeout for its key (4 x its normal TTFT p95, at least 1 s; 30 s unknown) and is
  retried on another admitted deployment, within the same 8 % budget (past it, or with nowhere
  admitted to go, the call keeps waiting: retries must not feed an overload); the hooks report
  it as ``error.type="timeout"`` with ``ttft_at_least`` (a capacity error to the detectors).
- ``oracle``: knows the truth instantly: never sends to a deployment while it is degraded.

Every strategy retries a failed call (capacity error) on another deployment, up to 3 attempts.

Measured over the requests that arrive while the incident lasts:

- ``goodput``: the share of requests that completed (successfully) within the SLO (10 s from
  arrival, first token and whole stream).
- ``p99 TTFT``: the 99th percentile of the time from arrival to the first token of the attempt
  kept (a request that never got one counts as infinite).
- ``to bad``: the share of all attempts (retries, hedges and probes included) sent to the
  degraded deployment.
- ``shed``: seconds from the incident's start to the first 10 s in which the degraded
  deployment got less than 20 % of its share of attempts in the 5 minutes before (blank: never).
- ``extra``: attempts beyond one per request (retries, hedges, timeouts) over requests.

Usage: ``python bench/routing.py [--json] [--only SCENARIO] [--strategy NAME] [--rules FILE]
[--rate R] [--quick]``
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from brownout import semconv as sc
from brownout.breakers import AsyncBreakerBoard, HedgeBudget
from brownout.model import Event, Key
from brownout.sim import calibration
from brownout.transport.base import Record

T0 = 1_767_258_000.0  # 2026-01-01T09:00:00Z
SLO = 10.0
ROUTERS = 10
SLOTS = 48  # concurrent calls a deployment serves; the rest queue
PROFILE = "together-70b"
BACKGROUND_ERRORS = 0.002
MAX_ATTEMPTS = 3
HOOK_DELAY = 0.2  # a completed call reaches the collector this long after it ends
TICK = 0.5  # the collector judges and publishes this often
BOARD_DELAY = 0.25  # its records reach the routers this long after
STALL_FLOOR = 3.0
COOLDOWN, ALLOWED_FAILS = 5.0, 3
LATENCY_SAMPLES = 10
HEDGE_RATIO = 0.08  # hedges plus retries stay under 10 % of requests

BAD = Key("azure.ai.openai", "swedencentral", "gpt-4o")
DEPLOYMENTS = (BAD, Key("azure.ai.openai", "eastus2", "gpt-4o"), Key("azure.ai.openai", "francecentral", "gpt-4o"))


@dataclass(frozen=True)
class Incident:
    """How the bad deployment degrades, by the time a call starts: factors reach full strength
    at once, or grow linearly over the incident (``ramp``)."""

    ttft_factor: float = 1.0
    error_rate: float = 0.0
    tail_fraction: float = 0.0  # these calls' first token is tail_factor x later
    tail_factor: float = 1.0
    ramp: bool = False

    def weight(self, t: float, start: float, end: float) -> float:
        if not start <= t < end:
            return 0.0
        return (t - start) / (end - start) if self.ramp else 1.0


SCENARIOS = {
    "slow_first_token": Incident(ttft_factor=9.0),  # Sweden-Central-like: errors unchanged
    "error_burst": Incident(error_rate=0.5),
    "tail": Incident(tail_fraction=0.15, tail_factor=20.0),
    "creep": Incident(ttft_factor=10.0, ramp=True),
}


@dataclass(frozen=True)
class Strategy:
    pick: str  # random | latency | board | oracle
    stalls: bool = False
    hedge: bool = False
    timeout: bool = False


STRATEGIES = {
    "random": Strategy("random"),
    "latency": Strategy("latency"),
    "brownout": Strategy("board"),
    "+stalls": Strategy("board", stalls=True),
    "+hedging": Strategy("board", stalls=True, hedge=True),
    "+timeout": Strategy("board", stalls=True, timeout=True),
    "oracle": Strategy("oracle"),
}


@dataclass
class Timeline:
    warmup: float = 1200.0  # the baselines warm (10 minutes) before the incident
    incident: float = 900.0
    after: float = 300.0

    @property
    def start(self) -> float:
        return T0 + self.warmup

    @property
    def end(self) -> float:
        return self.start + self.incident

    @property
    def stop(self) -> float:
        return self.end + self.after


@dataclass
class Traffic:
    """Arrivals and every per-request random draw, shared by all strategies (common random numbers)."""

    arrivals: np.ndarray
    router: np.ndarray
    tokens: np.ndarray
    ttft: np.ndarray  # (n, MAX_ATTEMPTS + 1) base TTFT of each possible attempt
    itl: np.ndarray
    u_err: np.ndarray
    u_tail: np.ndarray
    u_misc: np.ndarray

    @classmethod
    def make(cls, rate: float, timeline: Timeline, seed: int) -> "Traffic":
        cal = calibration()
        prof = cal["latency_profiles"][PROFILE]
        work = cal["workloads"]["conv"]
        rng = np.random.default_rng(seed)
        shape = np.asarray(work["rate_per_minute_shape"])
        starts = []
        minutes = int(math.ceil((timeline.stop - T0) / 60.0))
        for m in range(minutes):
            n = rng.poisson(rate * 60.0 * shape[m % len(shape)] / shape.mean())
            starts.append(np.sort(rng.uniform(T0 + 60.0 * m, T0 + 60.0 * (m + 1), n)))
        arrivals = np.concatenate(starts)
        arrivals = arrivals[arrivals < timeline.stop]
        n, k = len(arrivals), MAX_ATTEMPTS + 1
        q = np.linspace(0.0, 1.0, len(prof["ttft_s"]))

        def sample(table: list[float], size: Any) -> np.ndarray:
            return np.interp(rng.random(size), q, table)

        return cls(arrivals=arrivals, router=rng.integers(0, ROUTERS, n),
                   tokens=np.maximum(1, np.interp(rng.random(n), np.linspace(0, 1, len(work["output_tokens"])),
                                                  work["output_tokens"])).astype(int),
                   ttft=sample(prof["ttft_s"], (n, k)), itl=sample(prof["itl_s"], (n, k)),
                   u_err=rng.random((n, k)), u_tail=rng.random((n, k)), u_misc=rng.random((n, k)))


@dataclass
class Attempt:
    request: int
    index: int
    key: Key
    start: float
    first: float | None  # first token time; None: the call fails
    end: float  # failure time, or the end of the stream
    error: str | None
    served: float = 0.0  # when a slot took it (after any queueing)
    slot: Any = None
    cancelled: bool = False
    done: bool = False


@dataclass
class Request:
    arrival: float
    router: int
    attempts: list[Attempt] = field(default_factory=list)
    first: float | None = None  # first token of the attempt kept
    end: float | None = None
    failed: bool = False

    def active(self) -> list[Attempt]:
        return [a for a in self.attempts if not (a.cancelled or a.done)]


class Slots:
    """FIFO service with ``n`` slots: a call waits for the earliest free slot."""

    def __init__(self, n: int) -> None:
        self.heap: list[list[Any]] = [[0.0, -1] for _ in range(n)]

    def take(self, t: float, attempt_id: int) -> tuple[float, list[Any]]:
        entry = heapq.heappop(self.heap)
        start = max(t, entry[0])
        entry = [math.inf, attempt_id]
        heapq.heappush(self.heap, entry)
        return start, entry

    def hold_until(self, entry: list[Any], t: float) -> None:
        entry[0] = t
        heapq.heapify(self.heap)


class Router:
    """One router process: its board (brownout strategies), cooldowns, latency samples, budget."""

    def __init__(self, index: int, strategy: Strategy, clock: Any, seed: int) -> None:
        self.rng = random.Random(f"{seed}:router:{index}")
        self.strategy = strategy
        self.board = (AsyncBreakerBoard(_NoTransport(), clock=clock, rng=random.Random(f"{seed}:board:{index}"),
                                        registry=CollectorRegistry()) if strategy.pick == "board" else None)
        self.cooldown_until: dict[Key, float] = {}
        self.fails: dict[Key, tuple[int, int]] = {}  # key -> (minute, failures in it)
        self.samples: dict[Key, deque[float]] = {k: deque(maxlen=LATENCY_SAMPLES) for k in DEPLOYMENTS}
        self.budget = HedgeBudget(HEDGE_RATIO)

    def pick(self, now: float, exclude: set[Key], degraded: set[Key]) -> Key:
        options = [k for k in DEPLOYMENTS if k not in exclude] or list(DEPLOYMENTS)
        kind = self.strategy.pick
        if kind == "board":
            assert self.board is not None
            return self.board.pick([options])
        if kind == "oracle":
            good = [k for k in options if k not in degraded]
            return self.rng.choice(good or options)
        warm = [k for k in options if self.cooldown_until.get(k, -math.inf) <= now] or options
        if kind == "random":
            return self.rng.choice(warm)
        fresh = [k for k in warm if not self.samples[k]]
        if fresh:
            return self.rng.choice(fresh)
        return min(warm, key=lambda k: (sum(self.samples[k]) / len(self.samples[k]), DEPLOYMENTS.index(k)))

    def failed(self, key: Key, now: float, error: str) -> None:
        minute = int(now // 60)
        m, n = self.fails.get(key, (minute, 0))
        n = n + 1 if m == minute else 1
        self.fails[key] = (minute, n)
        if error == "429" or n >= ALLOWED_FAILS:
            self.cooldown_until[key] = now + COOLDOWN


class _NoTransport:
    """The boards are fed record by record (``apply``); they never read a topic."""

    def consumer(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the bench feeds boards directly")


class Sim:
    """One strategy through one scenario."""

    def __init__(self, scenario: str, strategy: str, traffic: Traffic, timeline: Timeline, *,
                 rules: Any = None, seed: int = 0) -> None:
        self.scenario, self.name = scenario, strategy
        self.incident = SCENARIOS[scenario]
        self.strategy = STRATEGIES[strategy]
        self.traffic, self.timeline, self.seed = traffic, timeline, seed
        self.now = T0
        self.heap: list[tuple[float, int, str, Any]] = []
        self.seq = 0
        self.slots = {k: Slots(SLOTS) for k in DEPLOYMENTS}
        self.routers = [Router(i, self.strategy, lambda: self.now, seed) for i in range(ROUTERS)]
        self.requests: list[Request] = []
        self.attempt_log: list[tuple[float, bool]] = []  # (start, sent to BAD)
        self.inbox: list[tuple[float, int, Event]] = []  # events on their way to the collector
        self.pipeline = None
        if self.strategy.pick == "board":
            from brownout.pipeline import Pipeline

            self.pipeline = Pipeline(rules, seed=seed)
        self.records_out = 0

    # --- the event loop ------------------------------------------------------------------
    def push(self, t: float, kind: str, payload: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, payload))

    def run(self) -> dict[str, Any]:
        arrivals = self.traffic.arrivals
        if self.pipeline is not None:
            self.push(T0 + TICK, "tick")
        nxt = 0
        while nxt < len(arrivals) or self.heap:
            if nxt < len(arrivals) and (not self.heap or arrivals[nxt] <= self.heap[0][0]):
                self.now = float(arrivals[nxt])
                self.arrive(nxt)
                nxt += 1
                continue
            t, _, kind, payload = heapq.heappop(self.heap)
            if t > self.timeline.stop + 120.0:
                break
            self.now = t
            getattr(self, f"on_{kind}")(payload)
        return self.result()

    def degraded(self) -> set[Key]:
        tl = self.timeline
        return {BAD} if self.incident.weight(self.now, tl.start, tl.end) > 0 else set()

    # --- requests and attempts -----------------------------------------------------------
    def arrive(self, i: int) -> None:
        req = Request(self.now, int(self.traffic.router[i]))
        self.requests.append(req)
        router = self.routers[req.router]
        router.budget.call()
        self.start_attempt(len(self.requests) - 1)

    def start_attempt(self, r: int, key: Key | None = None) -> Attempt | None:
        req = self.requests[r]
        if len(req.attempts) >= MAX_ATTEMPTS:
            return None
        router = self.routers[req.router]
        if key is None:
            key = router.pick(self.now, {a.key for a in req.attempts}, self.degraded())
        a = self.outcome(r, len(req.attempts), key)
        req.attempts.append(a)
        self.attempt_log.append((a.start, key == BAD))
        if a.first is not None:
            self.push(a.first, "first", a)
        else:
            self.push(a.end, "error", a)
        s = self.strategy
        if s.stalls:
            after = self.stall_after(router, key)
            if (a.first if a.first is not None else a.end) - a.start > after:
                self.push(a.start + after, "stall", (a, after))
        if s.timeout and router.board is not None:
            limit = router.board.first_token_timeout(key)
            if a.first is not None and a.first - a.start > limit:
                self.push(a.start + limit, "timeout", (a, limit))
        if s.hedge and router.board is not None and len(req.attempts) == 1:
            delay = router.board.hedge_delay(key)
            if delay is not None and a.first is not None and a.first - a.start > delay:
                self.push(a.start + delay, "hedge", r)
        return a

    def outcome(self, r: int, j: int, key: Key) -> Attempt:
        tr, inc, tl = self.traffic, self.incident, self.timeline
        now = self.now
        w = inc.weight(now, tl.start, tl.end) if key == BAD else 0.0
        i = r
        attempt_id = r * (MAX_ATTEMPTS + 1) + j
        served, slot = self.slots[key].take(now, attempt_id)
        err_p = max(BACKGROUND_ERRORS, inc.error_rate * w)
        if tr.u_err[i, j] < err_p:
            end = served + 0.05 + 0.2 * tr.u_misc[i, j]
            self.slots[key].hold_until(slot, end)
            a = Attempt(r, j, key, now, None, end, "429" if tr.u_misc[i, j] < 0.3 else "503", served, slot)
        else:
            ttft = tr.ttft[i, j] * (1.0 + (inc.ttft_factor - 1.0) * w)
            if tr.u_tail[i, j] < inc.tail_fraction * w:
                ttft *= inc.tail_factor
            first = served + ttft
            end = first + tr.itl[i, j] * max(0, int(tr.tokens[i]) - 1)
            self.slots[key].hold_until(slot, end)
            a = Attempt(r, j, key, now, first, end, None, served, slot)
        return a

    def stall_after(self, router: Router, key: Key) -> float:
        """The hooks' threshold as a router process hands it in (``board.stall_threshold``);
        the hooks' own floor while the key is unknown."""
        after = router.board.stall_threshold(key) if router.board is not None else None
        return STALL_FLOOR if after is None else after

    def cancel(self, a: Attempt, error: str, at: float) -> None:
        """Stop ``a`` before its first token; the hooks report it with ``ttft_at_least``."""
        a.cancelled = True
        self.slots[a.key].hold_until(a.slot, max(at, a.served))
        waited = at - a.start
        self.report(Event(a.key, a.start, waited, error_type=error, ttft_at_least=waited, stream=True), at)

    def on_first(self, a: Attempt) -> None:
        if a.cancelled:
            return
        req = self.requests[a.request]
        if req.first is not None:  # the other copy started first (cannot happen: it cancels this one)
            return
        req.first, req.end = a.first, a.end
        for other in req.active():
            if other is not a:
                self.cancel(other, sc.CANCELLED, self.now)
        self.push(a.end, "end", a)

    def on_end(self, a: Attempt) -> None:
        a.done = True
        router = self.routers[self.requests[a.request].router]
        assert a.first is not None
        router.samples[a.key].append(a.first - a.start)
        self.report(Event(a.key, a.start, a.end - a.start, ttft=a.first - a.start, stream=True,
                          output_tokens=int(self.traffic.tokens[a.request])), a.end)

    def on_error(self, a: Attempt) -> None:
        if a.cancelled:
            return
        a.done = True
        req = self.requests[a.request]
        self.routers[req.router].failed(a.key, self.now, a.error or "503")
        self.report(Event(a.key, a.start, a.end - a.start, error_type=a.error, stream=True), a.end)
        if req.first is None and not req.active():
            self.retry(a.request)

    def retry(self, r: int) -> None:
        if self.start_attempt(r) is None:
            self.requests[r].failed = True

    def on_timeout(self, payload: tuple[Attempt, float]) -> None:
        a, limit = payload
        req = self.requests[a.request]
        if a.cancelled or a.done or req.first is not None or len(req.attempts) >= MAX_ATTEMPTS:
            return
        router = self.routers[req.router]
        elsewhere = self.admitted_elsewhere(router, req)
        if not elsewhere or not router.budget.try_hedge():  # a retry storm would make it worse: keep waiting
            return
        self.cancel(a, "timeout", self.now)
        self.start_attempt(a.request, router.rng.choice(elsewhere))

    def admitted_elsewhere(self, router: Router, req: Request) -> list[Key]:
        """Deployments not tried yet for ``req`` that this router's board admits now."""
        assert router.board is not None
        tried = {a.key for a in req.attempts}
        return router.board.admitted([k for k in DEPLOYMENTS if k not in tried])

    def on_stall(self, payload: tuple[Attempt, float]) -> None:
        a, after = payload
        if a.cancelled or a.done or (a.first is not None and a.first <= self.now):
            return
        self.report(Event(a.key, a.start, after, stall=True, ttft_at_least=after, stream=True), self.now)

    def on_hedge(self, r: int) -> None:
        req = self.requests[r]
        if req.first is not None or not req.active() or len(req.attempts) >= MAX_ATTEMPTS:
            return
        router = self.routers[req.router]
        elsewhere = self.admitted_elsewhere(router, req)
        if not elsewhere or not router.budget.try_hedge():  # nowhere healthy to hedge to, or over budget
            return
        self.start_attempt(r, router.rng.choice(elsewhere))

    # --- the collector -------------------------------------------------------------------
    def report(self, event: Event, at: float) -> None:
        if self.pipeline is not None:
            self.seq += 1
            heapq.heappush(self.inbox, (at + HOOK_DELAY, self.seq, event))

    def on_tick(self, _: Any) -> None:
        assert self.pipeline is not None
        inbox, now = self.inbox, self.now
        while inbox and inbox[0][0] <= now:
            self.pipeline.observe(heapq.heappop(inbox)[2])
        self.pipeline.advance(now)
        recs = self.pipeline.book.records(now)
        if recs:
            self.records_out += len(recs)
            raws = [Record(sc.TOPIC_CONTROL, rec.kafka_key(), rec.to_bytes()) for rec in recs]
            self.push(now + BOARD_DELAY, "records", raws)
        if now < self.timeline.stop:
            self.push(now + TICK, "tick")

    def on_records(self, raws: list[Record]) -> None:
        for router in self.routers:
            assert router.board is not None
            for raw in raws:
                router.board.apply(raw)

    # --- scoring -------------------------------------------------------------------------
    def result(self) -> dict[str, Any]:
        tl = self.timeline
        window = [q for q in self.requests if tl.start <= q.arrival < tl.end]
        good = sum(1 for q in window if q.end is not None and q.end - q.arrival <= SLO)
        ttfts = np.array([q.first - q.arrival if q.first is not None else math.inf for q in window])
        attempts = sum(len(q.attempts) for q in window)
        log = np.array(self.attempt_log)
        starts, bad = log[:, 0], log[:, 1].astype(bool)
        before = (starts >= tl.start - 300) & (starts < tl.start)
        inside = (starts >= tl.start) & (starts < tl.end)
        share_before = bad[before].mean() if before.any() else 0.0
        cum = np.concatenate([[0], np.cumsum(bad)])
        s = np.arange(tl.start, tl.end, 1.0)
        lo, hi = np.searchsorted(starts, s), np.searchsorted(starts, s + 10.0)
        n, nbad = hi - lo, cum[hi] - cum[lo]
        shed_at = np.nonzero((n > 0) & (nbad < 0.2 * share_before * n))[0]
        shed = float(s[shed_at[0]] - tl.start) if len(shed_at) else None
        p99 = float(np.quantile(ttfts, 0.99)) if len(ttfts) else math.nan
        return {"scenario": self.scenario, "strategy": self.name, "requests": len(window),
                "goodput": good / len(window) if window else math.nan,
                "p99_ttft_s": p99 if math.isfinite(p99) else None,
                "to_bad": float(bad[inside].mean()) if inside.any() else math.nan,
                "shed_s": shed, "extra": attempts / len(window) - 1.0 if window else math.nan,
                "failed": sum(q.failed for q in window) / len(window) if window else math.nan,
                "records": self.records_out}


def run(scenarios: list[str], strategies: list[str], *, rate: float, timeline: Timeline, rules: Any,
        seed: int) -> list[dict[str, Any]]:
    traffic = Traffic.make(rate, timeline, seed)
    out = []
    for scenario in scenarios:
        for strategy in strategies:
            t = time.perf_counter()
            res = Sim(scenario, strategy, traffic, timeline, rules=rules, seed=seed).run()
            res["seconds"] = round(time.perf_counter() - t, 1)
            out.append(res)
    return out


def _fmt(v: float | None, pct: bool = False, unit: str = "") -> str:
    if v is None:
        return "-"
    return f"{100 * v:.1f} %" if pct else f"{v:.1f}{unit}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="one JSON object per scenario and strategy")
    ap.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="run only these scenarios")
    ap.add_argument("--strategy", action="append", choices=list(STRATEGIES), help="run only these strategies")
    ap.add_argument("--rules", help="a rule file for the brownout strategies (default: the built-in pack)")
    ap.add_argument("--rate", type=float, default=20.0, help="requests per second, the whole fleet")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="a short incident at a lower rate (tests, a first look)")
    args = ap.parse_args(argv)
    from brownout.rules import load_rules

    rules = load_rules(args.rules)
    timeline = Timeline(warmup=660.0, incident=240.0, after=60.0) if args.quick else Timeline()
    rate = 12.0 if args.quick and args.rate == 20.0 else args.rate
    results = run(args.only or list(SCENARIOS), args.strategy or list(STRATEGIES), rate=rate,
                  timeline=timeline, rules=rules, seed=args.seed)
    if args.json:
        for r in results:
            print(json.dumps(r))
        return 0
    print(f"{ROUTERS} routers, {len(DEPLOYMENTS)} deployments x {SLOTS} slots, {rate:g} req/s, "
          f"SLO {SLO:g} s; incident {timeline.incident:g} s on {BAD} after {timeline.warmup:g} s")
    head = f"{'scenario':<18} {'strategy':<10} {'goodput':>8} {'p99 TTFT':>9} {'to bad':>7} {'shed':>7} {'extra':>7}"
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['scenario']:<18} {r['strategy']:<10} {_fmt(r['goodput'], pct=True):>8} "
              f"{_fmt(r['p99_ttft_s'], unit=' s') if r['p99_ttft_s'] is not None else 'inf':>9} "
              f"{_fmt(r['to_bad'], pct=True):>7} {_fmt(r['shed_s'], unit=' s'):>7} {_fmt(r['extra'], pct=True):>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
