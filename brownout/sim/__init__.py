"""Synthetic LLM traffic calibrated on real data, with incidents injected: for the demo,
the detection-quality benchmark and tests.

Latency comes from real per-request measurements (llmperf leaderboard, 8 providers), token
counts and arrival burstiness from Azure's public LLM inference trace; ``calibration.json``
holds their quantile tables (made by ``scripts/calibrate.py``; attribution inside).

>>> from brownout.model import Key
>>> k = Key("fireworks", "us-east-1", "llama-2-70b")
>>> sim = Simulator([Traffic(k, "fireworks-70b", rate=5.0)], seed=1)
>>> evs = sim.events(0.0, 60.0)
>>> 100 < len(evs) < 500, all(0 <= e.start < 60 for e in evs)
(True, True)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Sequence

import numpy as np

from brownout.model import Event, Key

__all__ = ["Traffic", "Incident", "Simulator", "calibration", "diurnal"]


@lru_cache(maxsize=1)
def calibration() -> dict[str, Any]:
    """The quantile tables shipped with the package."""
    tables: dict[str, Any] = json.loads(resources.files("brownout.sim").joinpath("calibration.json").read_text())
    return tables


def diurnal(amplitude: float = 0.6, peak_hour: float = 15.0) -> Callable[[float], float]:
    """A daily traffic shape: 1 + amplitude x cos, peaking at ``peak_hour`` UTC."""
    def shape(t: float) -> float:
        hour = (t % 86400.0) / 3600.0
        return max(0.05, 1.0 + amplitude * math.cos((hour - peak_hour) / 24.0 * 2 * math.pi))
    return shape


@dataclass(frozen=True)
class Traffic:
    """Steady traffic for one key. ``latency`` names an llmperf profile (``fireworks-70b``)."""

    key: Key
    latency: str
    rate: float = 5.0  # requests per second, on average
    workload: str = "conv"  # Azure trace: "conv" or "code"
    error_rate: float = 0.002  # background capacity errors
    stream: bool = True
    deadline: float | None = None
    shape: Callable[[float], float] | None = None  # rate multiplier over time (diurnal)
    ttft_scale: float = 1.0  # e.g. a recurring peak: latency grows with load
    stall_after: float | None = None  # as the hooks do: report a call still without a first token then
    load_latency: float = 0.0  # TTFT x (1 + load_latency x (shape - 1)): providers slow down with load


@dataclass(frozen=True)
class Incident:
    """A degradation of one key between ``start`` and ``end`` (seconds, event time).

    Factors multiply TTFT and inter-token latency; ``tail_fraction`` of requests get
    ``tail_factor`` x their duration (``tail_on="request"``: a p95 blow-up with the median
    unchanged) or x their first token only (``tail_on="ttft"``); ``ramp`` grows the factors
    linearly from 1 over the incident (a slow creep). Failed calls take ``error_duration``
    seconds when set (a client timeout), else they fail fast.
    """

    key: Key
    start: float
    end: float
    error_rate: float = 0.0
    error_types: tuple[str, ...] = ("503", "429")
    ttft_factor: float = 1.0
    itl_factor: float = 1.0
    tail_fraction: float = 0.0
    tail_factor: float = 1.0
    ramp: bool = False
    tail_on: str = "request"
    error_duration: float | None = None
    name: str = ""

    def weight(self, t: float) -> float:
        """How far into the incident ``t`` is: 0 outside, 1 at full strength."""
        if not self.start <= t < self.end:
            return 0.0
        return (t - self.start) / (self.end - self.start) if self.ramp else 1.0


class Simulator:
    """Generates events for a set of keys, deterministic for a seed."""

    def __init__(self, traffic: Sequence[Traffic], incidents: Sequence[Incident] = (), seed: int = 0) -> None:
        cal = calibration()
        self.traffic = list(traffic)
        self.incidents = list(incidents)
        self.rng = np.random.default_rng(seed)
        self._q = np.linspace(0.0, 1.0, 101)
        for tr in self.traffic:
            if tr.latency not in cal["latency_profiles"]:
                raise ValueError(f"unknown latency profile {tr.latency!r}; valid: "
                                 f"{', '.join(sorted(cal['latency_profiles']))}")
            if tr.workload not in cal["workloads"]:
                raise ValueError(f"unknown workload {tr.workload!r}; valid: {', '.join(cal['workloads'])}")

    def _sample(self, table: list[float], n: int) -> np.ndarray:
        return np.interp(self.rng.random(n), self._q, table)

    def events(self, t0: float, t1: float) -> list[Event]:
        """Requests that start in ``[t0, t1)``, sorted by start."""
        cal = calibration()
        out: list[Event] = []
        for tr in self.traffic:
            work = cal["workloads"][tr.workload]
            prof = cal["latency_profiles"][tr.latency]
            minute_shape = work["rate_per_minute_shape"]
            mid = (t0 + t1) / 2
            rate = tr.rate * (tr.shape(mid) if tr.shape else 1.0) * minute_shape[int(mid // 60) % len(minute_shape)]
            n = int(self.rng.poisson(max(0.0, rate * (t1 - t0))))
            if n == 0:
                continue
            starts = np.sort(self.rng.uniform(t0, t1, n))
            ttft = self._sample(prof["ttft_s"], n) * tr.ttft_scale
            if tr.load_latency and tr.shape:
                ttft *= max(0.1, 1.0 + tr.load_latency * (tr.shape(mid) - 1.0))
            itl = self._sample(prof["itl_s"], n)
            out_tok = np.maximum(1, self._sample(work["output_tokens"], n)).astype(int)
            in_tok = np.maximum(1, self._sample(work["input_tokens"], n)).astype(int)
            err_u = self.rng.random(n)
            tail_u = self.rng.random(n)
            jitter = self.rng.random(n)
            incs = [i for i in self.incidents if i.key == tr.key and i.start < t1 and i.end > t0]
            for j in range(n):
                s = float(starts[j])
                f_ttft = f_itl = 1.0
                err_p = tr.error_rate
                err_types: tuple[str, ...] = ("503", "429")
                tail = ttft_tail = 1.0
                err_duration = None
                for inc in incs:
                    w = inc.weight(s)
                    if w <= 0:
                        continue
                    f_ttft *= 1.0 + (inc.ttft_factor - 1.0) * w
                    f_itl *= 1.0 + (inc.itl_factor - 1.0) * w
                    err_p = max(err_p, inc.error_rate * w)
                    if inc.error_rate * w >= err_p:
                        err_types, err_duration = inc.error_types, inc.error_duration
                    if tail_u[j] < inc.tail_fraction * w:
                        if inc.tail_on == "ttft":
                            ttft_tail = inc.tail_factor
                        else:
                            tail = inc.tail_factor
                t_first = float(ttft[j]) * f_ttft * ttft_tail
                gap = float(itl[j]) * f_itl
                if err_u[j] < err_p:
                    etype = err_types[int(jitter[j] * len(err_types)) % len(err_types)]
                    took = err_duration if err_duration is not None else min(t_first, 0.05 + 0.2 * float(jitter[j]))
                    out.append(Event(tr.key, s, round(took, 6), stream=tr.stream,
                                     error_type=etype, status_code=int(etype) if etype.isdigit() else None,
                                     input_tokens=int(in_tok[j]), deadline=tr.deadline,
                                     finish_reasons=("error",)))
                    continue
                n_out = int(out_tok[j])
                duration = (t_first + gap * max(0, n_out - 1)) * tail
                if tr.stall_after is not None and t_first * tail > tr.stall_after:
                    out.append(Event(tr.key, s, tr.stall_after, stream=tr.stream, stall=True,
                                     ttft_at_least=tr.stall_after))
                out.append(Event(tr.key, s, round(duration, 6), stream=tr.stream,
                                 ttft=round(t_first * tail, 6) if tr.stream else None,
                                 input_tokens=int(in_tok[j]), output_tokens=n_out,
                                 response_model=tr.key.model, finish_reasons=("stop",),
                                 itl_p50=round(gap, 6) if tr.stream else None,
                                 itl_p95=round(gap * 1.3, 6) if tr.stream else None,
                                 itl_max=round(gap * 3, 6) if tr.stream else None, deadline=tr.deadline))
        out.sort(key=lambda e: (e.start, str(e.key), e.duration))
        return out
