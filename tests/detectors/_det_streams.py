"""Synthetic event streams for detector tests (deterministic given the seed)."""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import numpy as np

from brownout.detectors import Engine
from brownout.model import Event, Finding, Key

KEY = Key("openai", "eastus", "gpt-4o")


def stream(
    seconds: float,
    *,
    rate: float = 10.0,
    key: Key = KEY,
    t0: float = 0.0,
    seed: int = 0,
    ttft: Callable[[float], float] | float = 0.4,
    error: Callable[[float], str | None] | None = None,
    output_tokens: int = 200,
    decode_tps: Callable[[float], float] | float = 50.0,
    itl: Callable[[float], float] | float | None = 0.02,
    deadline: float | None = None,
    jitter: float = 0.25,
) -> Iterator[Event]:
    """Poisson arrivals at ``rate``/s, log-normal TTFT around ``ttft(t)``, ordered by start."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(rate * seconds)
    starts = np.sort(rng.uniform(t0, t0 + seconds, n))
    noise = rng.lognormal(0.0, jitter, (n, 3))
    for i, s in enumerate(starts):
        t = float(s)
        a, b, c = (float(v) for v in noise[i])
        err = error(t - t0) if error else None
        if err:
            yield Event(key, t, 0.2 * a, error_type=err)
            continue
        ft = (ttft(t - t0) if callable(ttft) else ttft) * a
        speed = (decode_tps(t - t0) if callable(decode_tps) else decode_tps) / b
        gen = output_tokens / speed
        it = None if itl is None else (itl(t - t0) if callable(itl) else itl) * c
        yield Event(key, t, ft + gen, ttft=ft, output_tokens=output_tokens + 1, itl_p95=it,
                    deadline=deadline)


def merge(*streams: Iterable[Event]) -> list[Event]:
    return sorted((e for s in streams for e in s), key=lambda e: e.start)


def replay(events: Iterable[Event], engine: Engine | None = None, *, every: float = 1.0,
           final: bool = True) -> list[Finding]:
    """Feed events in start order, advancing with the max start seen (the replay clock).

    ``final``: drain an hour past the last event at the end (as replay does at end of file).
    """
    engine = engine or Engine()
    out: list[Finding] = []
    last = None
    now = 0.0
    for e in events:
        engine.observe(e)
        now = max(now, e.start)
        if last is None or now - last >= every:
            out.extend(engine.advance(now))
            last = now
    if final:
        out.extend(engine.advance(now + 3600.0))
    return out


def transitions(findings: Iterable[Finding], rule: str, key: Key = KEY) -> list[tuple[float, str]]:
    return [(f.time, f.state) for f in findings if f.rule == rule and f.key == key]
