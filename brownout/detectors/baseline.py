"""Baselines: what "normal" is for one key and one signal, in log space.

Three layers, read in order: an hour-of-week profile once it has ``min_cycles`` past weeks, else an
hour-of-day profile once it has ``min_cycles`` past days, else a non-seasonal EWMA fallback that
warms in minutes (so a fresh deployment still catches a hard incident in its first hour).

A profile slot keeps one value per past day (or week): the median of that hour's per-minute
values, and reads back the median over the kept cycles. A recurring peak is in every cycle, so it
becomes normal after ``min_cycles`` days; a one-off incident is in one cycle only, and a median
over three or more cycles ignores it. The fallback is fed only from minutes where the key's rule
is not pending or firing: an hour-long incident must not become the new normal.

>>> b = Baseline(halflife=3600, warmup=600)
>>> for minute in range(10):
...     b.update(minute * 60.0, 0.5)
>>> round(b.value(600.0), 3), b.source(600.0)
(0.5, 'fallback')
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["EwmaBaseline", "SeasonalProfile", "Baseline"]

HOUR = 3600.0
DAY = 86_400.0
WEEK = 7 * DAY


class EwmaBaseline:
    """Exponentially weighted mean of log values, bias-corrected, with a warm-up count.

    Parameters
    ----------
    halflife
        Samples after which an old sample weighs half.
    warm
        Samples needed before :meth:`value` reports (None until then: warming).

    >>> e = EwmaBaseline(halflife=10, warm=3)
    >>> for x in (1.0, 2.0, 4.0):
    ...     e.update(math.log(x))
    >>> round(math.exp(e.value()), 3)   # close to the geometric mean, 2
    2.065
    """

    __slots__ = ("alpha", "warm", "n", "_num", "_den")

    def __init__(self, halflife: float, warm: int) -> None:
        self.alpha = 1.0 - 0.5 ** (1.0 / max(halflife, 1e-9))
        self.warm = warm
        self.n = 0
        self._num = 0.0
        self._den = 0.0

    def update(self, logx: float) -> None:
        keep = 1.0 - self.alpha
        self._num = self._num * keep + logx
        self._den = self._den * keep + 1.0
        self.n += 1

    def value(self) -> float | None:
        """The mean log value, or None while warming."""
        if self.n < max(self.warm, 1):
            return None
        return self._num / self._den


class SeasonalProfile:
    """Per-slot medians over past cycles (hour of day over days, hour of week over weeks).

    Parameters
    ----------
    period
        Cycle length in seconds (86400 for a day, 604800 for a week).
    slots
        Slots per cycle (24 hours a day, 168 a week).
    cycles
        Past cycles kept per slot.

    >>> p = SeasonalProfile(period=86400, slots=24, cycles=7)
    >>> for day in range(3):
    ...     p.update(day * 86400 + 9 * 3600, math.log(2.0))
    >>> p.update(3 * 86400, 0.0)              # a later update closes day 2's 9 o'clock slot
    >>> round(math.exp(p.value(3 * 86400 + 9 * 3600 + 60, min_cycles=3)), 3)
    2.0
    >>> p.value(3 * 86400 + 10 * 3600, min_cycles=3) is None
    True
    """

    __slots__ = ("period", "slots", "cycles", "_values", "_ids", "_cur", "_acc", "_memo")

    def __init__(self, period: float, slots: int, cycles: int) -> None:
        self.period = period
        self.slots = slots
        self.cycles = cycles
        self._values = np.full((slots, cycles), np.nan, dtype=np.float32)
        self._ids = np.full((slots, cycles), -1, dtype=np.int32)
        self._cur: tuple[int, int] | None = None
        self._acc: list[float] = []
        self._memo: dict[tuple[int, int, int], float | None] = {}

    def _where(self, t: float) -> tuple[int, int]:
        cycle = int(t // self.period)
        slot = int((t - cycle * self.period) * self.slots // self.period)
        return cycle, min(slot, self.slots - 1)

    def update(self, t: float, logx: float) -> None:
        where = self._where(t)
        if where != self._cur:
            self._close()
            self._cur = where
        self._acc.append(logx)

    def _close(self) -> None:
        if self._cur is not None and self._acc:
            cycle, slot = self._cur
            col = cycle % self.cycles
            self._values[slot, col] = float(np.median(self._acc))
            self._ids[slot, col] = cycle
            self._memo.clear()
        self._acc = []

    def value(self, t: float, min_cycles: int) -> float | None:
        """Median over the past cycles' values of ``t``'s slot, or None with fewer than ``min_cycles``."""
        cycle, slot = self._where(t)
        memo = (cycle, slot, min_cycles)
        if memo in self._memo:
            return self._memo[memo]
        ids = self._ids[slot]
        ok = (ids >= 0) & (ids >= cycle - self.cycles) & (ids < cycle)
        got = float(np.median(self._values[slot][ok])) if int(ok.sum()) >= min_cycles else None
        if len(self._memo) > 64:
            self._memo.clear()
        self._memo[memo] = got
        return got

    def __getstate__(self) -> dict[str, Any]:
        return {s: getattr(self, s) for s in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)


class Baseline:
    """The baseline of one signal for one key: hour of week, else hour of day, else the fallback.

    ``update(t, x, learn=...)`` takes a per-minute value (seconds or tokens/s, > 0). ``learn=False``
    (the rule is pending or firing) keeps the value out of the fallback; the profiles always take
    it, as one vote among the past days' medians.

    Parameters
    ----------
    halflife
        Fallback half-life in seconds (updates are per minute).
    warmup
        Seconds of per-minute updates before the fallback reports.
    min_cycles, day_cycles, week_cycles
        Profile settings (see :class:`SeasonalProfile`).
    """

    __slots__ = ("fallback", "day", "week", "min_cycles", "_last_t", "_memo")

    def __init__(self, halflife: float = 3600.0, warmup: float = 600.0, min_cycles: int = 3,
                 day_cycles: int = 7, week_cycles: int = 4) -> None:
        self.fallback = EwmaBaseline(halflife / 60.0, int(math.ceil(warmup / 60.0)))
        self.day = SeasonalProfile(DAY, 24, day_cycles)
        self.week = SeasonalProfile(WEEK, 168, week_cycles)
        self.min_cycles = min_cycles
        self._last_t = -math.inf
        self._memo: dict[int, tuple[float | None, str | None]] = {}

    def update(self, t: float, x: float, *, learn: bool = True) -> None:
        if not x > 0 or not math.isfinite(x):
            return
        logx = math.log(x)
        self.day.update(t, logx)
        self.week.update(t, logx)
        if learn:
            self.fallback.update(logx)
        self._last_t = t
        self._memo.clear()

    def _log_value(self, t: float) -> tuple[float | None, str | None]:
        hour = int(t // HOUR)
        got = self._memo.get(hour)
        if got is None:
            if len(self._memo) > 4:
                self._memo.clear()
            got = self._memo[hour] = self._read(t)
        return got

    def _read(self, t: float) -> tuple[float | None, str | None]:
        v = self.week.value(t, self.min_cycles)
        if v is not None:
            return v, "week"
        v = self.day.value(t, self.min_cycles)
        if v is not None:
            return v, "day"
        v = self.fallback.value()
        return (v, "fallback") if v is not None else (None, None)

    def value(self, t: float) -> float | None:
        """The baseline at time ``t`` in the signal's unit, or None while warming."""
        v, _ = self._log_value(t)
        return None if v is None else math.exp(v)

    def source(self, t: float) -> str | None:
        """Which layer answers at ``t``: ``week``, ``day``, ``fallback`` or None (warming)."""
        return self._log_value(t)[1]

    def __getstate__(self) -> dict[str, Any]:
        return {s: getattr(self, s) for s in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
