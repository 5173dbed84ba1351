"""What the detectors are fed: one key's closed step (:class:`Step`) and its shared readings (:class:`Signal`).

A step holds the events of one key whose *end* falls in one ``engine.step`` of event time: counters
(requests, capacity / client / other errors, cancelled calls, stall reports, goodput) and, for the
requests that succeeded, the samples of each per-request measurement, sorted when the step closes:

- ``ttft``: time to first chunk, plus ``brownout.ttft.at_least`` of calls abandoned before it came
  (a lower bound, so a slow key hidden behind hedging still shows);
- ``latency``: request duration per output token (robust to output length; the whole duration when
  no token count is known);
- ``tps``: output tokens per second after the first chunk (decode speed);
- ``itl``: each request's p95 inter-token latency.

>>> from brownout.model import Event, Key
>>> k = Key("openai", "eastus", "gpt-4o")
>>> s = Step()
>>> s.add(Event(k, 0.0, 2.0, ttft=0.5, output_tokens=101))
>>> s.add(Event(k, 0.0, 0.1, error_type="503"))
>>> s.close()
>>> s.n, s.cap, s.ttft, s.latency, s.tps
(2, 1, [0.5], [0.019801980198019802], [67.33333333333333])
"""

from __future__ import annotations

import math
from typing import Any

from brownout import semconv as sc
from brownout.detectors.baseline import Baseline
from brownout.detectors.stats import SampleRing, quantile_sorted
from brownout.model import Event

__all__ = ["Step", "EMPTY", "Signal", "SIGNALS"]

#: The per-request measurements a step carries, in this order.
SIGNALS = ("ttft", "latency", "tps", "itl")

_classify = sc.error_class


class Step:
    """One key's events for one step; :meth:`close` sorts the samples (once, never per event)."""

    __slots__ = ("n", "cap", "client", "other", "cancelled", "stalls", "slo_n", "slo_good",
                 "ttft", "latency", "tps", "itl")

    def __init__(self) -> None:
        self.n = self.cap = self.client = self.other = self.cancelled = 0
        self.stalls = self.slo_n = self.slo_good = 0
        self.ttft: list[float] = []
        self.latency: list[float] = []
        self.tps: list[float] = []
        self.itl: list[float] = []

    def add(self, e: Event) -> None:
        """Count one event (the collector's per-event path: a few appends)."""
        if e.stall:
            self.stalls += 1
            return
        err = e.error_type
        if err is None:
            self.n += 1
            duration = e.duration
            ttft = e.ttft
            out = e.output_tokens
            if ttft is not None:
                self.ttft.append(ttft)
            if out:
                self.latency.append(duration / out)
                if out >= 2 and ttft is not None and duration > ttft:
                    self.tps.append(out / (duration - ttft))
            else:
                self.latency.append(duration)
            if e.itl_p95 is not None:
                self.itl.append(e.itl_p95)
            if e.deadline is not None:
                self.slo_n += 1
                if duration <= e.deadline:
                    self.slo_good += 1
            return
        cls = _classify(err)
        if cls == "cancelled":
            self.cancelled += 1
            if e.ttft_at_least is not None:
                self.ttft.append(e.ttft_at_least)
            return
        self.n += 1
        if cls == "capacity":
            self.cap += 1
        elif cls == "client":
            self.client += 1
            return  # the caller's fault: not a miss of the provider's SLO either
        else:
            self.other += 1
        if e.deadline is not None:
            self.slo_n += 1

    def close(self) -> None:
        self.ttft.sort()
        self.latency.sort()
        self.tps.sort()
        self.itl.sort()

    def samples(self, signal: str) -> list[float]:
        return getattr(self, signal)  # type: ignore[no-any-return]


#: The step of a key that saw no event (shared, never written to).
EMPTY = Step()
_UNSET = object()


class Signal:
    """One measurement of one key: the last minute's samples, per-minute readings, and baselines.

    Parameters
    ----------
    name
        One of :data:`SIGNALS`.
    quantiles
        The quantiles with a baseline (0.5, 0.95), each mapped to ``high`` (True for a ceiling such as
        TTFT, False for a floor such as throughput).
    baseline
        Baseline settings (:class:`~brownout.rules.model.BaselineSettings` or a mapping with the same
        fields).
    width
        Steps in a minute.
    """

    __slots__ = ("name", "ring", "carry", "baselines", "readings", "min_samples", "_memo")

    def __init__(self, name: str, quantiles: dict[float, bool], baseline: Any, width: int) -> None:
        self.name = name
        self.ring = SampleRing(width, keep=32)
        self.carry: dict[float, list[float]] = {}  # per quantile: a quiet key's samples until there are enough
        self.baselines = {q: Baseline(baseline.halflife, baseline.warmup, baseline.min_days, baseline.days,
                                      baseline.slot, high) for q, high in quantiles.items()}
        self.readings: tuple[float | None, float | None] = (None, None)  # p50 and p95 of the last minute
        self.min_samples = baseline.min_samples
        self._memo: dict[tuple[float, int], float | None] | None = None  # (q, minute) -> baseline

    def push(self, xs: list[float]) -> None:
        self.ring.push(xs)

    def baseline(self, q: float, t: float) -> float | None:
        """The baseline of quantile ``q`` at ``t`` (None: warming, or no baseline for ``q``)."""
        memo = (q, int(t // 60.0))
        cache = self._memo
        if cache is None:
            cache = self._memo = {}
        got = cache.get(memo, _UNSET)
        if got is _UNSET:
            b = self.baselines.get(q)
            got = None if b is None else b.value(t)
            if len(cache) > 8:
                cache.clear()
            cache[memo] = got
        return got  # type: ignore[return-value]

    def minute(self, t: float, learn: dict[float, bool]) -> None:
        """At a minute's end: refresh the readings, and feed each baseline once it has enough data.

        A quantile learns from at least ``min_samples`` requests, and from enough that about five of
        them lie beyond it (100 for a p95): a quiet key pools several minutes into one value, so a
        tail baseline is not the noise of a few samples.
        """
        xs = self.ring.sorted()
        self.readings = (quantile_sorted(xs, 0.5), quantile_sorted(xs, 0.95)) if xs else (None, None)
        self._memo = None
        for q, b in self.baselines.items():
            need = max(self.min_samples, math.ceil(5.0 / min(q, 1.0 - q)))
            pool = self.carry.get(q)
            if pool is None and len(xs) >= need:
                pool = xs
            else:
                pool = (pool or []) + xs
                if len(pool) < need:
                    if pool:
                        self.carry[q] = pool
                    continue
                pool.sort()
            self.carry.pop(q, None)
            v = quantile_sorted(pool, q)
            if v is not None:
                b.update(t, v, learn=learn.get(q, True))

    @property
    def idle(self) -> bool:
        return self.ring.empty  # a quiet key's pooled samples wait for its next requests

    def export(self) -> dict[str, Any]:
        return {"ring": self.ring.export(), "carry": {str(q): list(v) for q, v in self.carry.items()},
                "baselines": {str(q): b.export() for q, b in self.baselines.items()}}

    def install(self, state: dict[str, Any]) -> None:
        got = set(state["baselines"])
        want = {str(q) for q in self.baselines}
        if got != want:
            raise ValueError(f"signal {self.name}: baselines {sorted(got)} differ from {sorted(want)}")
        self.ring.install(state["ring"])
        carry = state["carry"]
        if not set(carry) <= want:
            raise ValueError(f"signal {self.name}: samples pooled for {sorted(carry)}, baselines {sorted(want)}")
        self.carry = {float(q): sorted(float(x) for x in v) for q, v in carry.items()}
        for q, b in self.baselines.items():
            b.install(state["baselines"][str(q)])
