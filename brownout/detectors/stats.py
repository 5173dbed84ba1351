"""Streaming statistics the detectors are made of: window sums, Wilson bounds, a Bernoulli CUSUM,
quantiles of sorted samples and a bounded ring of recent samples.

The rules judge *shares*: "median TTFT >= 1.2 x baseline" is "at least half of the requests took
longer than 1.2 x baseline", so a window needs only two counts per threshold, and the evidence is a
Wilson bound on a binomial share, which is right at 20 requests and at 20,000 alike.

>>> w = WindowSums(widths=(1, 3), fields=2)
>>> for counts in ([10, 1], [10, 9], [10, 10]):
...     w.push(counts)
>>> w.total(1), w.total(3)
([10, 10], [30, 20])
>>> round(wilson_lower_bound(20, 30, z=2.576), 3)
0.434
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_left, bisect_right
from operator import add, sub
from collections import deque
from typing import Any, Sequence

__all__ = ["WindowSums", "RollingSum", "wilson_lower_bound", "wilson_upper_bound", "nearest_rank",
           "quantile_sorted", "count_at_least", "count_at_most", "BernoulliCusum", "Ewma", "NormalShare", "SampleRing", "thin"]


class WindowSums:
    """Sums of a few counters over several trailing windows at once (one push per step).

    Kept as running prefix sums, so a push is one tuple and a window's total two: a step with
    nothing in it costs almost nothing, and totals are read only when a verdict needs them.

    Parameters
    ----------
    widths
        Window widths in pushes (steps).
    fields
        Counters per push.

    >>> w = WindowSums(widths=(1, 3), fields=2)
    >>> for counts in ([1, 0], [2, 1], [3, 3], [4, 0]):
    ...     w.push(counts)
    >>> w.total(1), w.total(3)
    ([4, 0], [9, 4])
    """

    __slots__ = ("widths", "fields", "_prefix", "_zero", "_maxlen")

    def __init__(self, widths: Sequence[int], fields: int) -> None:
        if not widths or min(widths) < 1:
            raise ValueError(f"widths must be >= 1, got {widths!r}")
        self.widths = _widths(tuple(widths))
        self.fields = fields
        self._zero = _zeros(fields)
        self._maxlen = max(self.widths) + 1
        self._prefix: deque[tuple[int, ...]] | None = None  # allocated at the first count (idle keys stay small)

    def push(self, counts: Sequence[int]) -> None:
        prefix = self._prefix
        if prefix is None:
            if not any(counts):
                return  # every window is empty and stays so
            prefix = self._prefix = deque([self._zero], maxlen=self._maxlen)
        last = prefix[-1]
        if not any(counts):
            if last == prefix[0]:  # every window emptied: drop the window of zeros
                self._prefix = None
                return
            prefix.append(last)
        else:
            prefix.append(tuple(map(add, last, counts)))

    def total(self, width: int) -> list[int]:
        """The sums over the last ``width`` pushes."""
        prefix = self._prefix
        if prefix is None:
            return list(self._zero)
        old = prefix[-1 - width] if len(prefix) > width else prefix[0]
        return list(map(sub, prefix[-1], old))

    @property
    def empty(self) -> bool:
        """Nothing counted in any window."""
        return self._prefix is None or self._prefix[-1] == self._prefix[0]

    def export(self) -> list[list[int]]:
        """The per-push counts still in the longest window, oldest first."""
        prefix = list(self._prefix or ())
        return [list(map(sub, b, a)) for a, b in zip(prefix, prefix[1:])]

    def install(self, parts: list[list[int]]) -> None:
        self._prefix = None
        for p in parts[-(self._maxlen - 1):]:
            if len(p) != self.fields or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in p):
                raise ValueError(f"a window part must be {self.fields} counts, got {p!r}")
            if self._prefix is None:
                self._prefix = deque([self._zero], maxlen=self._maxlen)
            self._prefix.append(tuple(map(add, self._prefix[-1], p)))


@functools.lru_cache(maxsize=None)
def _zeros(fields: int) -> tuple[int, ...]:
    return (0,) * fields


@functools.lru_cache(maxsize=256)
def _widths(widths: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted(set(widths)))  # one tuple shared by every window of that shape


class RollingSum:
    """Sums of a few counters over the last ``width`` pushes (per-minute windows).

    >>> s = RollingSum(width=2, fields=2)
    >>> for counts in ([1, 0], [2, 1], [3, 3]):
    ...     s.push(counts)
    >>> s.total
    [5, 4]
    """

    __slots__ = ("width", "total", "_parts")

    def __init__(self, width: int, fields: int) -> None:
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.width = width
        self.total = [0] * fields
        self._parts: deque[Sequence[int]] | None = None  # allocated at the first count

    def push(self, counts: Sequence[int]) -> None:
        t = self.total
        if not any(counts) and not any(t):  # all zero: nothing to keep (an idle key stays small)
            self._parts = None
            return
        for i, c in enumerate(counts):
            t[i] += c
        parts = self._parts
        if parts is None:
            parts = self._parts = deque()
        parts.append(tuple(counts))
        if len(parts) > self.width:
            for i, c in enumerate(parts.popleft()):
                t[i] -= c

    def export(self) -> list[list[int]]:
        return [list(p) for p in self._parts or ()]

    def install(self, parts: list[list[int]]) -> None:
        self.total = [0] * len(self.total)
        self._parts = None
        for p in parts[-self.width:]:
            if len(p) != len(self.total):
                raise ValueError(f"a window part has {len(p)} counters, expected {len(self.total)}")
            self.push([int(c) for c in p])


def wilson_lower_bound(successes: int, n: int, z: float) -> float:
    """Lower end of the Wilson score interval for a proportion (0.0 when ``n`` is 0).

    >>> round(wilson_lower_bound(10, 10, 2.576), 3)
    0.601
    >>> wilson_lower_bound(1, 2, 2.576) < 0.25
    True
    """
    if n <= 0:
        return 0.0
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z2 / n))


def wilson_upper_bound(successes: int, n: int, z: float) -> float:
    """Upper end of the Wilson score interval (1.0 when ``n`` is 0).

    >>> round(wilson_upper_bound(0, 10, 2.576), 3)
    0.399
    """
    if n <= 0:
        return 1.0
    return 1.0 - wilson_lower_bound(n - successes, n, z)


def nearest_rank(n: int, q: float) -> int:
    """1-based nearest rank of quantile ``q`` among ``n`` samples (numpy's ``inverted_cdf``).

    >>> nearest_rank(10, 0.5), nearest_rank(10, 0.95), nearest_rank(1, 0.0)
    (5, 10, 1)
    """
    return min(n, max(1, math.ceil(q * n - 1e-9)))


def quantile_sorted(xs: Sequence[float], q: float) -> float | None:
    """Nearest-rank quantile of sorted ``xs`` (None when empty).

    >>> quantile_sorted([1.0, 2.0, 3.0, 4.0], 0.5), quantile_sorted([], 0.5)
    (2.0, None)
    """
    if not xs:
        return None
    return xs[nearest_rank(len(xs), q) - 1]


def count_at_least(xs: Sequence[float], threshold: float) -> int:
    """How many of sorted ``xs`` are >= ``threshold``.

    >>> count_at_least([0.1, 0.5, 0.5, 2.0], 0.5)
    3
    """
    return len(xs) - bisect_left(xs, threshold)


def count_at_most(xs: Sequence[float], threshold: float) -> int:
    """How many of sorted ``xs`` are <= ``threshold``.

    >>> count_at_most([0.1, 0.5, 0.5, 2.0], 0.5)
    3
    """
    return bisect_right(xs, threshold)


def thin(xs: list[float], keep: int) -> list[float]:
    """At most ``keep`` of sorted ``xs``, evenly spaced by rank (quantiles survive, memory is bounded).

    >>> thin([float(i) for i in range(10)], 4)
    [0.0, 3.0, 6.0, 9.0]
    """
    n = len(xs)
    if n <= keep:
        return xs
    if keep < 2:
        return [xs[n // 2]]
    return [xs[round(i * (n - 1) / (keep - 1))] for i in range(keep)]


class BernoulliCusum:
    """Page's CUSUM over Bernoulli trials: has the share of successes moved above ``share``?

    Each trial adds its log-likelihood ratio of two shares ``shift`` apart on either side of ``share``
    on the logit scale (0.40 against 0.60 around a median's 0.5);
    the statistic is floored at zero and ``alarm`` is true once it reaches ``h``. A share held just
    past ``share`` accumulates evidence step after step, so a slow creep is flagged minutes after it
    crosses the line, while a share just below it drifts back to zero (Page 1954).

    Parameters
    ----------
    share
        The boundary share (0.5 for a median rule, 0.05 for a p95 rule).
    h
        Evidence (nats) that raises the alarm.
    shift
        Half the logit distance between the two hypotheses around ``share``.

    >>> c = BernoulliCusum(share=0.5, h=8.0)
    >>> for _ in range(13):
    ...     c.update(successes=11, n=20)    # 55 %: just above the boundary, for 13 steps
    >>> c.alarm, round(c.value, 2)
    (True, 10.4)
    >>> c.reset(); c.update(successes=9, n=20); c.value
    0.0
    """

    __slots__ = ("share", "h", "shift", "_up", "_down", "value")

    def __init__(self, share: float, h: float, shift: float = 0.4) -> None:
        self.h = h
        self.shift = shift
        self.value = 0.0
        self.share = share
        self.move(share)

    def move(self, share: float) -> None:
        """Judge against another boundary share from now on (the evidence gathered so far stays)."""
        if not 0 < share < 1:
            raise ValueError(f"share must be in (0, 1), got {share}")
        logit = math.log(share / (1 - share))
        p0 = 1 / (1 + math.exp(-(logit - self.shift)))
        p1 = 1 / (1 + math.exp(-(logit + self.shift)))
        self.share = share
        self._up = math.log(p1 / p0)
        self._down = math.log((1 - p1) / (1 - p0))

    def update(self, successes: int, n: int) -> None:
        if n <= 0:
            return
        v = self.value + successes * self._up + (n - successes) * self._down
        # capped: after a long incident the statistic must fall back below h within minutes
        self.value = min(max(0.0, v), 2.0 * self.h)

    @property
    def alarm(self) -> bool:
        return self.value >= self.h

    def reset(self) -> None:
        self.value = 0.0


class Ewma:
    """Exponentially weighted mean, bias-corrected, reported once ``warm`` updates came in.

    Parameters
    ----------
    halflife
        Updates after which an old value weighs half.
    warm
        Updates needed before :meth:`value` reports (None until then: warming).

    >>> m = Ewma(halflife=10, warm=2)
    >>> m.update(0.2); m.value() is None
    True
    >>> m.update(0.4); round(m.value(), 3)
    0.303
    """

    __slots__ = ("alpha", "warm", "n", "_num", "_den")

    def __init__(self, halflife: float, warm: int) -> None:
        self.alpha = 1.0 - 0.5 ** (1.0 / max(halflife, 1e-9))
        self.warm = warm
        self.n = 0
        self._num = self._den = 0.0

    def update(self, x: float) -> None:
        keep = 1.0 - self.alpha
        self._num = self._num * keep + x
        self._den = self._den * keep + 1.0
        self.n += 1

    def value(self) -> float | None:
        return self._num / self._den if self.n >= max(self.warm, 1) else None

    def export(self) -> dict[str, Any]:
        return {"n": self.n, "num": self._num, "den": self._den}

    def install(self, state: dict[str, Any]) -> None:
        n, num, den = int(state["n"]), float(state["num"]), float(state["den"])
        if n < 0 or not (math.isfinite(num) and math.isfinite(den)) or den < 0:
            raise ValueError(f"not an exponentially weighted mean: {state!r}")
        self.n, self._num, self._den = n, num, den


class NormalShare:
    """The share of requests past a rule's threshold in quiet minutes, and the boundary it implies.

    A rule that fires when ``share`` of the requests are past its threshold demands, once it has
    learned what is normal for the key, ``max(share, 1.5 x normal + 0.4 x share)``: a key that sits
    near the line in normal times (a TTFT split between two modes, a heavy tail whose p95 baseline
    runs low) needs a real shift to fire; a key far from it is judged at ``share``. It learns slowly
    (a 6-hour half-life), so an hour of creeping drift cannot teach it that the drift is normal.

    >>> ns = NormalShare(share=0.5, min_requests=10, warm=2, halflife=60)
    >>> for _ in range(2):
    ...     ns.add(n=100, k=47); _ = ns.minute(learn=True)
    >>> round(ns.boundary, 3)
    0.905
    """

    __slots__ = ("share", "min_requests", "mean", "pool", "boundary")

    def __init__(self, share: float, min_requests: int, warm: int = 30, halflife: float = 360.0) -> None:
        self.share = share
        self.min_requests = max(1, min_requests)
        self.mean = Ewma(halflife, warm)
        self.pool = [0, 0]  # requests and those past the threshold since the last learning
        self.boundary = share

    def add(self, n: int, k: int) -> None:
        self.pool[0] += n
        self.pool[1] += k

    def minute(self, learn: bool) -> bool:
        """At a minute's end: learn the pooled share (a quiet key pools minutes); True when the
        boundary moved."""
        n, k = self.pool
        if n < self.min_requests:
            return False
        self.pool = [0, 0]
        if not learn:
            return False
        self.mean.update(k / n)
        normal = self.mean.value()
        boundary = self.share if normal is None else min(max(self.share, 1.5 * normal + 0.4 * self.share), 0.95)
        moved, self.boundary = boundary != self.boundary, boundary
        return moved

    def export(self) -> dict[str, Any]:
        return {"mean": self.mean.export(), "pool": list(self.pool), "boundary": self.boundary}

    def install(self, state: dict[str, Any]) -> None:
        self.mean.install(state["mean"])
        pool = [int(x) for x in state["pool"]]
        boundary = float(state["boundary"])
        if len(pool) != 2 or min(pool) < 0 or not self.share <= boundary <= 0.95:
            raise ValueError(f"not a normal share: {state!r}")
        self.pool, self.boundary = pool, boundary


class SampleRing:
    """The recent steps' samples, thinned to ``keep`` per step: quantiles of the last minute for
    readings and findings at a bounded cost in memory, whatever the traffic.

    >>> r = SampleRing(width=2, keep=4)
    >>> r.push([0.1, 0.2]); r.push([0.3, 0.4, 0.5])
    >>> r.quantile(0.5)
    0.3
    >>> r.push([])
    >>> r.quantile(0.5)
    0.4
    """

    __slots__ = ("width", "keep", "_parts", "_sorted")

    def __init__(self, width: int, keep: int = 64) -> None:
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.width = width
        self.keep = keep
        self._parts: deque[list[float]] | None = None  # allocated at the first samples
        self._sorted: list[float] | None = None

    def push(self, xs: list[float]) -> None:
        """One step's samples, sorted."""
        parts = self._parts
        if parts is None:
            if not xs:
                return
            parts = self._parts = deque(maxlen=self.width)
        elif not xs and not any(parts):
            self._parts = None
            self._sorted = None
            return
        parts.append(xs if len(xs) <= self.keep else thin(xs, self.keep))
        self._sorted = None

    def sorted(self) -> list[float]:
        """Every kept sample of the window, sorted."""
        if self._sorted is None:
            out: list[float] = []
            for p in self._parts or ():
                out.extend(p)
            out.sort()
            self._sorted = out
        return self._sorted

    def quantile(self, q: float, last: int | None = None) -> float | None:
        """Quantile ``q`` over the window, or over its ``last`` steps."""
        if last is None or self._parts is None or last >= len(self._parts):
            return quantile_sorted(self.sorted(), q)
        parts = list(self._parts)[-last:]
        return quantile_sorted(sorted(x for p in parts for x in p), q)

    @property
    def empty(self) -> bool:
        return self._parts is None or not any(self._parts)

    def export(self) -> list[list[float]]:
        return [list(p) for p in self._parts or ()]

    def install(self, parts: list[list[float]]) -> None:
        self._parts = None
        self._sorted = None
        for p in parts[-self.width:]:
            self.push(sorted(float(x) for x in p))
