"""Baselines: what "normal" is for one key and one reading (TTFT p50, say), in log space.

Two layers, read in order: a **daily profile** (the reading of each 10-minute slot of the day on each
of the last days) once the slot has ``min_days`` past days, else a non-seasonal **fallback** (an EWMA
that warms in minutes, so a fresh deployment still catches a hard incident in its first hour).

The profile reads back a *lower* median of the past days' values for the slot (an upper median for a
floor such as throughput): a peak seen at that time on each of the last two days is normal, one
seen on only one of them is not, and with three or more days a one-off incident is outvoted. It also
takes the highest of the slot and its two neighbours, so a daily peak that starts a few minutes early
is judged against the peak. The profile learns every value, alerting or not (a recurring peak must be
learnable); the fallback learns only while the rules that read it are quiet, so an incident (or a creep
that is gathering evidence) never becomes the fallback's normal.

>>> b = Baseline(halflife=3600, warmup=600)
>>> for minute in range(10):
...     b.update(minute * 60.0, 0.5)
>>> round(b.value(600.0), 3), b.source(600.0)
(0.5, 'fallback')
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

from brownout.detectors.stats import Ewma

__all__ = ["EwmaBaseline", "DailyProfile", "Baseline", "DAY"]

DAY = 86_400.0


#: The fallback: an exponentially weighted mean of log values (see :class:`~brownout.detectors.stats.Ewma`).
EwmaBaseline = Ewma


class DailyProfile:
    """One value per slot of the day for each of the last ``days`` days (float16, NaN when unseen).

    ``update(t, logx)`` collects the slot's values; when the slot changes, their median is stored.
    ``value(t, ...)`` reads the past days only (today's slot is still being collected).

    Parameters
    ----------
    days
        Past days kept.
    slot
        Slot width in seconds (600: 144 slots a day).

    >>> p = DailyProfile(days=7, slot=600)
    >>> for day in range(2):
    ...     p.update(day * DAY + 9 * 3600, math.log(2.0))
    >>> p.update(2 * DAY, 0.0)              # a later update closes day 1's 09:00 slot
    >>> round(math.exp(p.value(2 * DAY + 9 * 3600 + 60, min_days=2, high=True)), 3)
    2.0
    >>> p.value(2 * DAY + 12 * 3600, min_days=2, high=True) is None
    True
    """

    __slots__ = ("days", "slot", "slots", "_values", "_day", "_cur", "_acc", "_memo")

    def __init__(self, days: int = 7, slot: float = 600.0) -> None:
        if days < 1 or not 0 < slot <= DAY:
            raise ValueError(f"days must be >= 1 and slot in (0, 86400], got {days}, {slot}")
        self.days = days
        self.slot = slot
        self.slots = int(math.ceil(DAY / slot))
        self._values: np.ndarray | None = None  # allocated at the first stored value
        self._day = [-1] * days  # the day number each row holds
        self._cur: tuple[int, int] | None = None
        self._acc: list[float] = []
        self._memo: dict[tuple[int, int, int, bool], float | None] | None = None

    def _where(self, t: float) -> tuple[int, int]:
        day = int(t // DAY)
        return day, min(int((t - day * DAY) // self.slot), self.slots - 1)

    def update(self, t: float, logx: float) -> None:
        where = self._where(t)
        if where != self._cur:
            self._close()
            self._cur = where
        self._acc.append(logx)

    def _close(self) -> None:
        if self._cur is None or not self._acc:
            self._acc = []
            return
        day, slot = self._cur
        if self._values is None:
            self._values = np.full((self.days, self.slots), np.nan, dtype=np.float16)
        row = day % self.days
        if self._day[row] != day:
            self._values[row, :] = np.nan
            self._day[row] = day
        acc = sorted(self._acc)
        self._values[row, slot] = acc[len(acc) // 2]
        self._acc = []
        self._memo = None

    def value(self, t: float, min_days: int, high: bool) -> float | None:
        """The slot's normal log value at ``t`` from past days, or None with fewer than ``min_days``.

        ``high``: a ceiling rule reads the lower median over days and the highest of the slot and
        its neighbours; a floor rule (``high=False``) the upper median and the lowest.
        """
        if self._values is None:
            return None
        day, slot = self._where(t)
        memo = (day, slot, min_days, high)
        if self._memo is None:
            self._memo = {}
        got = self._memo.get(memo, _MISSING)
        if got is not _MISSING:
            return got  # type: ignore[return-value]
        rows = [r for r, d in enumerate(self._day) if day - self.days <= d < day]
        got = None
        if len(rows) >= min_days:
            centre = self._slot_value(rows, slot, min_days, high)
            if centre is not None:
                got = centre
                for s in (slot - 1, slot + 1):
                    v = self._slot_value(rows, s % self.slots, min_days, high)
                    if v is not None:
                        got = max(got, v) if high else min(got, v)
        if len(self._memo) > 16:
            self._memo.clear()
        self._memo[memo] = got
        return got

    def _slot_value(self, rows: list[int], slot: int, min_days: int, high: bool) -> float | None:
        assert self._values is not None
        vals = sorted(float(v) for v in self._values[rows, slot] if not math.isnan(v))
        if len(vals) < min_days:
            return None
        return vals[(len(vals) - 1) // 2] if high else vals[len(vals) // 2]

    def export(self) -> dict[str, Any]:
        return {"days": self.days, "slot": self.slot, "day": list(self._day),
                "values": None if self._values is None else base64.b64encode(self._values.tobytes()).decode(),
                "cur": None if self._cur is None else list(self._cur), "acc": list(self._acc)}

    def install(self, state: dict[str, Any]) -> None:
        if state["days"] != self.days or state["slot"] != self.slot:
            raise ValueError(f"profile shape {state['days']}x{state['slot']} differs from {self.days}x{self.slot}")
        day = [int(d) for d in state["day"]]
        if len(day) != self.days:
            raise ValueError(f"profile has {len(day)} day rows, expected {self.days}")
        values = None
        if state["values"] is not None:
            raw = base64.b64decode(state["values"], validate=True)
            if len(raw) != self.days * self.slots * 2:
                raise ValueError(f"profile values are {len(raw)} bytes, expected {self.days * self.slots * 2}")
            values = np.frombuffer(raw, dtype=np.float16).reshape(self.days, self.slots).copy()
        cur = state["cur"]
        self._values, self._day = values, day
        self._cur = None if cur is None else (int(cur[0]), int(cur[1]))
        self._acc = [float(x) for x in state["acc"]]
        self._memo = None


_MISSING = object()


class Baseline:
    """The baseline of one reading for one key: the daily profile, else the fallback.

    ``update(t, x, learn=...)`` takes a value (seconds, tokens/s; > 0) about once a minute.
    ``learn=False`` (a rule reading it is pending, firing or gathering evidence) keeps it out of
    the fallback; the profile always takes it, as one vote among the past days.

    Parameters
    ----------
    halflife
        Fallback half-life in seconds (updates come about once a minute).
    warmup
        Seconds of updates before the fallback reports.
    min_days, days, slot
        Profile settings (see :class:`DailyProfile`).
    high
        A ceiling (TTFT, latency: True) or a floor (throughput: False); see :meth:`DailyProfile.value`.
    """

    __slots__ = ("fallback", "profile", "min_days", "high")

    def __init__(self, halflife: float = 3600.0, warmup: float = 600.0, min_days: int = 2,
                 days: int = 7, slot: float = 600.0, high: bool = True) -> None:
        self.fallback = EwmaBaseline(halflife / 60.0, int(math.ceil(warmup / 60.0)))
        self.profile = DailyProfile(days, slot)
        self.min_days = min_days
        self.high = high

    def update(self, t: float, x: float, *, learn: bool = True) -> None:
        if not x > 0 or not math.isfinite(x):
            return
        logx = math.log(x)
        self.profile.update(t, logx)
        if learn:
            self.fallback.update(logx)

    def _log_value(self, t: float) -> tuple[float | None, str | None]:
        v = self.profile.value(t, self.min_days, self.high)
        if v is not None:
            return v, "day"
        v = self.fallback.value()
        return (v, "fallback") if v is not None else (None, None)

    def value(self, t: float) -> float | None:
        """The baseline at time ``t`` in the reading's unit, or None while warming."""
        v, _ = self._log_value(t)
        return None if v is None else math.exp(v)

    def source(self, t: float) -> str | None:
        """Which layer answers at ``t``: ``day``, ``fallback`` or None (warming)."""
        return self._log_value(t)[1]

    def export(self) -> dict[str, Any]:
        return {"fallback": self.fallback.export(), "profile": self.profile.export()}

    def install(self, state: dict[str, Any]) -> None:
        self.fallback.install(state["fallback"])
        self.profile.install(state["profile"])
