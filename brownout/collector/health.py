"""The poll loop's progress, for ``/healthz``: a collector whose loop stopped completing polls is
unhealthy, so Kubernetes restarts it; one that polls and finds nothing (Kafka down, no traffic) is
healthy, as restarting it would not help.

>>> t = [100.0]
>>> p = PollProgress(max_gap=60.0, clock=lambda: t[0])
>>> p.polled(records=25); p.lagged(3)
>>> t[0] = 130.0
>>> p.check()
(True, 'ok: last poll completed 30.0 s ago; last batch 25 records 30.0 s ago; consumer lag 3 records')
>>> t[0] = 200.5
>>> p.check()[0], p.check()[1].split(";")[0]
(False, 'no poll completed for 100.5 s (health.max_poll_gap is 60 s)')
"""

from __future__ import annotations

import time
from typing import Callable

__all__ = ["PollProgress"]


class PollProgress:
    """What the poll loop last achieved: when a poll last completed, when a batch with records was
    last processed (and its size), the consumer lag last measured, when partitions were assigned.

    The loop writes (``polled``, ``lagged``, ``assigned``); ``/healthz`` reads (``check``) from the
    metrics server's thread. Plain attribute stores and reads: no lock needed for a reading.

    Parameters
    ----------
    max_gap
        Seconds without a completed poll after which the loop counts as hung. It must cover the
        poll timeout, a rebalance and the state restore that follows one.
    clock
        Monotonic seconds.
    """

    def __init__(self, max_gap: float = 120.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not max_gap > 0:
            raise ValueError(f"health.max_poll_gap: must be positive, got {max_gap!r}")
        self.max_gap = max_gap
        self.clock = clock
        self.started = clock()
        self.last_poll: float | None = None
        self.last_batch: float | None = None
        self.last_batch_records = 0
        self.lag: int | None = None
        self.assigned_after: float | None = None  # seconds from start to the first partitions assigned

    def restart(self) -> None:
        """The loop starts (again): the gap counts from now."""
        self.started = self.clock()
        self.last_poll = self.last_batch = None
        self.assigned_after = None

    def polled(self, records: int) -> None:
        """A poll completed; ``records`` were read and processed (judged, published, committed)."""
        now = self.clock()
        self.last_poll = now
        if records:
            self.last_batch = now
            self.last_batch_records = records

    def lagged(self, records: int) -> None:
        """The consumer lag just measured, summed over the assigned partitions."""
        self.lag = records

    def assigned(self) -> float:
        """Partitions were assigned; returns the seconds since start (the first time only)."""
        took = self.clock() - self.started
        if self.assigned_after is None:
            self.assigned_after = took
        return took

    def check(self) -> tuple[bool, str]:
        """``(healthy, reason)``: unhealthy once no poll completed for longer than ``max_gap``."""
        now = self.clock()
        since = now - (self.last_poll if self.last_poll is not None else self.started)
        ok = since <= self.max_gap
        if self.last_poll is None:
            head = f"no poll completed since start {since:.1f} s ago"
        elif ok:
            head = f"last poll completed {since:.1f} s ago"
        else:
            head = f"no poll completed for {since:.1f} s"
        if not ok:
            head += f" (health.max_poll_gap is {self.max_gap:g} s)"
        parts = [("ok: " if ok else "") + head]
        if self.last_batch is not None:
            parts.append(f"last batch {self.last_batch_records} records {now - self.last_batch:.1f} s ago")
        if self.lag is not None:
            parts.append(f"consumer lag {self.lag} records")
        return ok, "; ".join(parts)
