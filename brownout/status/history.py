"""The last few hours of every key, one row per minute, in bounded memory: what the status page draws.

A :class:`HistoryRecorder` keeps, per key, a ring of ``minutes`` rows of the readings in
:data:`FIELDS` (float32, NaN where unknown) and a stamp per row saying which minute it holds, so
memory is fixed per key: ``bytes_per_key(240)`` is 12,480 bytes for four hours. At most
``max_keys`` keys are kept (keys silent for longer than the ring are evicted first; the rest of
the new keys are dropped and counted). Breaker and alert transitions go to a bounded list of
the newest ``max_decisions``.

The collector feeds it after each step with :meth:`HistoryRecorder.tick`: every decision, and the
pipeline's per-key status whenever event time enters a new minute (a status covers the minute
before its ``time``; a row is overwritten by later readings of the same minute).

>>> from types import SimpleNamespace as S
>>> from brownout.model import Decision, Key
>>> h = HistoryRecorder(minutes=60)
>>> k = Key("openai", "eastus", "gpt-4o")
>>> for m in range(90):                                  # 90 minutes of readings, 60 kept
...     h.record({k: S(time=m * 60.0 + 55, requests=600, ttft_p50=0.4 + m / 1000, error_rate=0.01)}, {})
>>> h.decision(Decision(89 * 60.0 + 10, "breaker", "error_breaker", k, "open", 0.4))
>>> s = h.series(k)
>>> len(s["minute"]), int(s["minute"][0]), int(s["minute"][-1]), round(float(s["ttft_p50"][-1]), 3)
(60, 30, 89, 0.489)
>>> float(s["breaker"][-1]), [d.state for d in h.decisions(k)]
(2.0, ['open'])
"""

from __future__ import annotations

import collections
import logging
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from brownout.model import Decision, Key

__all__ = ["BREAKER_CODES", "FIELDS", "HistoryRecorder", "bytes_per_key"]

#: The per-minute readings kept, from :class:`brownout.detectors.KeyStatus` (``breaker`` is the
#: worst breaker state seen in the minute: 0 closed, 1 half_open, 2 open).
FIELDS: tuple[str, ...] = (
    "requests", "error_rate", "capacity_error_rate", "ttft_p50", "ttft_p50_baseline", "ttft_p95",
    "ttft_p95_baseline", "latency_p95", "latency_p95_baseline", "tokens_per_s", "tokens_per_s_baseline",
    "breaker",
)
BREAKER_CODES: Mapping[str, float] = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
_INDEX = {name: i for i, name in enumerate(FIELDS)}
_BREAKER = _INDEX["breaker"]
_STATUS_FIELDS = [(i, name) for i, name in enumerate(FIELDS) if name != "breaker"]
_NO_MINUTE = -1
log = logging.getLogger(__name__)


def bytes_per_key(minutes: int) -> int:
    """The ring's array memory for one key: a float32 per field per minute plus an int32 stamp.

    >>> bytes_per_key(240)
    12480
    """
    return minutes * (4 * len(FIELDS) + 4)


class _Ring:
    """One key's rows: ``values[minute % n]`` holds ``minute`` when ``stamp[minute % n] == minute``."""

    __slots__ = ("stamp", "values", "last", "version")

    def __init__(self, n: int) -> None:
        self.stamp = np.full(n, _NO_MINUTE, dtype=np.int32)
        self.values = np.full((n, len(FIELDS)), np.nan, dtype=np.float32)
        self.last = _NO_MINUTE
        self.version = 0  # bumped on every write: a reader may cache what it drew from this ring

    def row(self, minute: int) -> np.ndarray | None:
        """The row for ``minute``, cleared if it held an older minute; None if it is too old to keep."""
        n = len(self.stamp)
        if minute <= self.last - n:
            return None
        i = minute % n
        self.version += 1
        if self.stamp[i] != minute:
            self.stamp[i] = minute
            self.values[i] = np.nan
        if minute > self.last:
            self.last = minute
        row: np.ndarray = self.values[i]
        return row


class HistoryRecorder:
    """Per-key rings of per-minute readings plus the newest decisions (thread-safe).

    Parameters
    ----------
    minutes
        Rows kept per key (240: four hours at one-minute resolution).
    max_keys
        Keys kept at most; see :func:`bytes_per_key` for what each costs.
    max_decisions
        Alert and breaker transitions kept (newest first out of the page's timeline).
    """

    def __init__(self, minutes: int = 240, *, max_keys: int = 2000, max_decisions: int = 2000) -> None:
        if minutes < 2:
            raise ValueError(f"status.history_minutes must be >= 2, got {minutes}")
        if max_keys < 1:
            raise ValueError(f"history max_keys must be >= 1, got {max_keys}")
        self.minutes = minutes
        self.max_keys = max_keys
        self._rings: dict[Key, _Ring] = {}
        self._decisions: collections.deque[Decision] = collections.deque(maxlen=max_decisions)
        self._lock = threading.Lock()
        self._minute: int | None = None  # the event-time minute of the last tick that recorded
        self.dropped_keys = 0

    # --- writing ---------------------------------------------------------------------
    def tick(self, now: float, decisions: Iterable[Decision], pipeline: Any) -> None:
        """After a pipeline step to event time ``now``: keep ``decisions``, and read the pipeline's
        status and breaker states once per minute of event time."""
        try:
            for d in decisions:
                self.decision(d)
            minute = _minute_of(now)
            if self._minute is None or minute != self._minute:
                self._minute = minute
                self.record(pipeline.status(), pipeline.breaker_states())
        except Exception:  # the page is a view: a bug here must not stop the collector judging
            log.exception("status history: recording failed")

    def record(self, status: Mapping[Key, Any], breakers: Mapping[Key, str]) -> None:
        """Write each key's status into the row of the minute its ``time`` closes."""
        with self._lock:
            for key, st in status.items():
                t = getattr(st, "time", None)
                if t is None or not math.isfinite(t):
                    continue
                row = self._row(key, _minute_of(t))
                if row is None:
                    continue
                for i, name in _STATUS_FIELDS:
                    v = getattr(st, name, None)
                    row[i] = np.nan if v is None else v
                code = BREAKER_CODES.get(breakers.get(key, "closed"), 0.0)
                if not row[_BREAKER] >= code:  # NaN or lower: keep the worst state of the minute
                    row[_BREAKER] = code

    def decision(self, d: Decision) -> None:
        """Keep a transition; a breaker's marks the worst state of its minute."""
        with self._lock:
            self._decisions.append(d)
            if d.kind == "breaker" and d.state in BREAKER_CODES:
                row = self._row(d.key, _minute_of(d.time))
                if row is not None and not row[_BREAKER] >= BREAKER_CODES[d.state]:
                    row[_BREAKER] = BREAKER_CODES[d.state]

    def _row(self, key: Key, minute: int) -> np.ndarray | None:
        ring = self._rings.get(key)
        if ring is None:
            if len(self._rings) >= self.max_keys and not self._evict(minute):
                self.dropped_keys += 1
                return None
            ring = self._rings[key] = _Ring(self.minutes)
        return ring.row(minute)

    def _evict(self, minute: int) -> bool:
        """Drop the key silent for longest, if it has been silent for longer than the ring."""
        key, ring = min(self._rings.items(), key=lambda kv: kv[1].last)
        if ring.last > minute - self.minutes:
            return False
        del self._rings[key]
        return True

    # --- reading ---------------------------------------------------------------------
    def keys(self) -> list[Key]:
        with self._lock:
            return sorted(self._rings)

    def key_version(self, key: Key) -> int:
        """Changes whenever ``key``'s rows change (-1 for an unknown key)."""
        ring = self._rings.get(key)
        return -1 if ring is None else ring.version

    @property
    def last_minute(self) -> int | None:
        """The newest minute any key has a row for."""
        with self._lock:
            return max((r.last for r in self._rings.values()), default=None)

    def series(self, key: Key, end_minute: int | None = None) -> dict[str, np.ndarray]:
        """``minute`` (unix minutes, oldest first, ending at ``end_minute`` or the key's last row)
        and one float array per field of :data:`FIELDS`, NaN where nothing was recorded."""
        with self._lock:
            ring = self._rings.get(key)
            n = self.minutes
            if ring is None:
                end = end_minute if end_minute is not None else 0
                minutes = np.arange(end - n + 1, end + 1, dtype=np.int64)
                return {"minute": minutes, **{f: np.full(n, np.nan) for f in FIELDS}}
            end = ring.last if end_minute is None else end_minute
            minutes = np.arange(end - n + 1, end + 1, dtype=np.int64)
            idx = minutes % n
            held = ring.stamp[idx] == minutes
            values = np.where(held[:, None], ring.values[idx], np.nan).astype(np.float64)
        out: dict[str, np.ndarray] = {"minute": minutes}
        for i, name in enumerate(FIELDS):
            out[name] = values[:, i]
        return out

    def matrix(self, key: Key, end_minute: int, fields: Sequence[str]) -> np.ndarray:
        """The ``fields`` of :meth:`series` as rows of one float array (the page's fast path)."""
        cols = [_INDEX[f] for f in fields]
        n = self.minutes
        minutes = np.arange(end_minute - n + 1, end_minute + 1, dtype=np.int64)
        with self._lock:
            ring = self._rings.get(key)
            if ring is None:
                return np.full((len(cols), n), np.nan)
            idx = minutes % n
            rows = ring.values[idx][:, cols].T.astype(np.float64)
            rows[:, ring.stamp[idx] != minutes] = np.nan
        return rows

    def decisions(self, key: Key | None = None, since: float | None = None) -> list[Decision]:
        """Kept transitions, oldest first; of one key and from ``since`` (unix seconds) when given."""
        with self._lock:
            items = list(self._decisions)
        return [d for d in items if (key is None or d.key == key) and (since is None or d.time >= since)]

    def memory_bytes(self) -> int:
        """Array memory of every ring (see :func:`bytes_per_key`)."""
        with self._lock:
            return sum(r.stamp.nbytes + r.values.nbytes for r in self._rings.values())


def _minute_of(t: float) -> int:
    """The minute a reading at ``t`` closes: (60 m, 60 m + 60] -> m."""
    return int(math.ceil(t / 60.0)) - 1
