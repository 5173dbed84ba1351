"""Stall watch: which in-flight streamed calls have waited too long for their first token.

Runs on the exporter's thread, never on the call path: every ``interval`` it scans
:data:`~brownout.hooks._observation.waiting`, drops the calls that got a chunk or ended, and
returns the ones past their key's threshold, once each. The threshold of a key, first that answers:

1. ``threshold(key)``: seconds, from the caller (a router handing in the collector's baselines);
2. ``after``: a fixed number of seconds for every key;
3. learned: ``MULTIPLE`` x the p95 of the key's last ``WINDOW`` first-token times (successful
   streamed calls this process made), at least ``FLOOR`` seconds, once ``MIN_SAMPLES`` are known.
   Until then a key has no threshold and its calls are not reported.

>>> from brownout.hooks import Observation
>>> from brownout.model import Key
>>> watch = StallWatch(after="auto")
>>> for _ in range(20):
...     watch.learn(Key("openai", "eastus", "gpt-4o"), 0.4)
>>> watch.limit(Key("openai", "eastus", "gpt-4o")), watch.limit(Key("openai", "westus", "gpt-4o"))
(3.2, None)
>>> obs = Observation("openai", "eastus", "gpt-4o", stream=True)
>>> obs.t0 = 100.0
>>> waiting = {id(obs): obs}
>>> watch.scan(waiting, now=102.0), watch.scan(waiting, now=104.0) == [obs], watch.scan(waiting, now=105.0)
([], True, [])
>>> obs.chunk_times.append(104.5); watch.scan(waiting, now=105.0), waiting
([], {})
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict, deque
from typing import Any, Callable

from brownout.model import Key

log = logging.getLogger("brownout.hooks")

__all__ = ["StallWatch"]

AUTO = "auto"


def check_stall_after(after: Any) -> float | str | None:
    """``"auto"``, None (off) or seconds in (0, 86400); 0 is off too. Else a ValueError naming it."""
    if after is None or after == AUTO:
        return None if after is None else AUTO
    if isinstance(after, bool) or not isinstance(after, (int, float)) or not math.isfinite(after) \
            or not 0 <= after < 86_400:
        raise ValueError(f"stall_after must be 'auto', None, 0 (off) or seconds in (0, 86400), got {after!r}")
    return float(after) if after else None


class StallWatch:
    """Finds the streamed calls waiting past their key's threshold; see the module docstring.

    ``after``: ``"auto"`` (learn per key), seconds (one threshold for every key), or None / 0
    (off). ``threshold``: optional ``callable(key) -> seconds | None``, asked first.
    """

    MULTIPLE = 8.0  # far past what queueing adds (as AsyncBreakerBoard.stall_threshold)
    FLOOR = 3.0
    WINDOW = 200
    MIN_SAMPLES = 20
    MAX_KEYS = 2_000

    def __init__(self, after: float | str | None = AUTO,
                 threshold: Callable[[Key], float | None] | None = None) -> None:
        if threshold is not None and not callable(threshold):
            raise ValueError(f"stall_threshold must be a callable(key) -> seconds | None, got {threshold!r}")
        self.after = check_stall_after(after)
        self.threshold = threshold
        self._ttfts: OrderedDict[Key, deque[float]] = OrderedDict()
        self._p95: dict[Key, float] = {}
        self._reported: set[int] = set()
        self._warned = False

    @property
    def on(self) -> bool:
        return self.after is not None

    def learn(self, key: Key, ttft: float) -> None:
        """Take one successful streamed call's time to first token (seconds)."""
        if self.after != AUTO:
            return
        ts = self._ttfts.get(key)
        if ts is None:
            ts = self._ttfts[key] = deque(maxlen=self.WINDOW)
            if len(self._ttfts) > self.MAX_KEYS:
                old, _ = self._ttfts.popitem(last=False)
                self._p95.pop(old, None)
        ts.append(ttft)
        self._p95.pop(key, None)

    def limit(self, key: Key) -> float | None:
        """Seconds a streamed call of ``key`` may wait for its first token; None: not watched."""
        if self.after is None:
            return None
        if self.threshold is not None:
            try:
                v = self.threshold(key)
            except Exception:
                if not self._warned:
                    self._warned = True
                    log.warning("brownout: stall_threshold(%s) failed; using the fallback", key, exc_info=True)
                v = None
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0:
                return float(v)
        if self.after != AUTO:
            return self.after  # type: ignore[return-value]
        p95 = self._p95.get(key)
        if p95 is None:
            ts = self._ttfts.get(key)
            if ts is None or len(ts) < self.MIN_SAMPLES:
                return None
            xs = sorted(ts)
            p95 = self._p95[key] = xs[min(len(xs) - 1, math.ceil(0.95 * len(xs)) - 1)]
        return max(self.FLOOR, self.MULTIPLE * p95)

    def scan(self, waiting: dict[int, Any], now: float) -> list[Any]:
        """The observations in ``waiting`` newly past their threshold at ``now`` (perf_counter
        seconds); removes from ``waiting`` the ones that got a first chunk or ended."""
        out = []
        reported = self._reported
        limits: dict[Key, float | None] = {}  # once per key per scan
        for k, obs in list(waiting.items()):
            if obs.done or obs.chunk_times or obs.ttft_at is not None:
                del waiting[k]
                reported.discard(k)
                continue
            if k in reported or not obs.t0 or self.after is None:
                continue
            waited = now - obs.t0
            if waited < self.FLOOR and self.after == AUTO and self.threshold is None:
                continue  # the common case: no learned threshold is below the floor
            key = Key(obs.provider, obs.region, obs.model)
            limit = limits[key] if key in limits else limits.setdefault(key, self.limit(key))
            if limit is not None and waited >= limit:
                reported.add(k)
                out.append(obs)
        return out
