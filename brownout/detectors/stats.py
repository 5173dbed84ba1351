"""Streaming statistics the detectors read: a log-binned histogram sketch, rolling windows, Wilson bound.

Percentiles are read from a mergeable log-binned histogram (the idea of DDSketch with fixed bins):
each sample falls in the bin ``floor(log(x / LOW) / log(GAMMA))``, so a quantile read back is within
a relative error of ``GAMMA - 1`` (2 %) of the exact nearest-rank quantile, whatever the data. Adding
and removing a whole bucket is a vector add, so a 5 min window over 5 s buckets costs the same at
10 or 100,000 events per second; exact quantiles (numpy partition over every sample in the window)
cost O(samples) per step and memory grows with traffic (see bench/collector_throughput.py).

>>> import numpy as np
>>> h = RollingHistogram(width=2)
>>> h.push(bin_counts([0.1, 0.2, 0.3]))
>>> h.push(bin_counts([0.4]))
>>> h.count, round(h.quantile(0.5), 2)
(4, 0.2)
>>> h.push(bin_counts([]))   # the first bucket leaves the window
>>> h.count, round(h.quantile(0.5), 2)
(1, 0.4)
"""

from __future__ import annotations

import functools
import math
import statistics
from collections import deque
from typing import Any, Sequence

import numpy as np

__all__ = [
    "GAMMA",
    "LOW",
    "NBINS",
    "SparseCounts",
    "bin_counts",
    "bin_value",
    "RollingHistogram",
    "RollingSum",
    "WindowSums",
    "wilson_lower_bound",
    "nearest_rank",
]

#: Bin growth factor: quantiles come back within this relative factor of the exact value.
GAMMA = 1.02
#: Smallest value told apart from zero (0.1 ms, or 1e-4 tokens/s); smaller values share bin 0.
LOW = 1e-4
#: Bins up to 1e7 (115 days in seconds, 10M tokens/s): above that everything shares the last bin.
NBINS = int(math.ceil(math.log(1e7 / LOW) / math.log(GAMMA))) + 1
_LOG_GAMMA = math.log(GAMMA)
_LOG_LOW = math.log(LOW)
#: A bin's representative value: the geometric middle of its bounds.
_BIN_VALUES = np.exp(_LOG_LOW + (np.arange(NBINS) + 0.5) * _LOG_GAMMA)

#: One bucket's histogram, kept sparse: (bin indices, counts, total). Small buckets use Python
#: lists (a numpy call costs more than a short loop), large ones numpy arrays.
SparseCounts = tuple[Any, Any, int]
_EMPTY: SparseCounts = ([], [], 0)
#: Buckets with more samples than this are binned with numpy.
SMALL = 48


def bin_value(i: int) -> float:
    """The value a bin reads back as.

    >>> abs(bin_value(bin_counts([0.25])[0][0]) / 0.25 - 1) < GAMMA - 1
    True
    """
    return float(_BIN_VALUES[i])


def bin_counts(values: Sequence[float]) -> SparseCounts:
    """Histogram one bucket's samples, once per bucket (never per event).

    >>> idx, n, total = bin_counts([1.0, 1.0, 2.0])
    >>> list(n), total
    ([2, 1], 3)
    """
    if not values:
        return _EMPTY
    if len(values) <= SMALL:
        d: dict[int, int] = {}
        log = math.log
        for x in values:
            i = int((log(x) - _LOG_LOW) // _LOG_GAMMA) if x > LOW else 0
            if i >= NBINS:
                i = NBINS - 1
            d[i] = d.get(i, 0) + 1
        if len(d) <= 6:  # a short loop of item updates beats building arrays
            return list(d), list(d.values()), len(values)
        return np.fromiter(d, np.intp, len(d)), np.fromiter(d.values(), np.int32, len(d)), len(values)
    x = np.asarray(values, dtype=np.float64)
    b = (np.log(np.maximum(x, LOW)) - _LOG_LOW) // _LOG_GAMMA
    idx = np.clip(b, 0, NBINS - 1).astype(np.intp)
    dense = np.bincount(idx, minlength=NBINS)
    nz = dense.nonzero()[0]
    return nz, dense[nz], len(values)


@functools.lru_cache(maxsize=64)
def _quantile_factor(q: float) -> float:
    q = min(max(q, 0.01), 0.99)
    nd = statistics.NormalDist()
    return math.sqrt(q * (1 - q)) / nd.pdf(nd.inv_cdf(q))


def nearest_rank(n: int, q: float) -> int:
    """1-based nearest rank of quantile ``q`` among ``n`` samples (numpy's ``inverted_cdf``).

    >>> nearest_rank(10, 0.5), nearest_rank(10, 0.95), nearest_rank(1, 0.0)
    (5, 10, 1)
    """
    return min(n, max(1, math.ceil(q * n - 1e-9)))


class RollingHistogram:
    """Histogram of the samples of the last ``width`` buckets; ``push`` one bucket per step.

    Parameters
    ----------
    width
        Buckets in the window (a 1 min window over 5 s buckets has width 12).

    >>> h = RollingHistogram(width=12)
    >>> h.quantile(0.5) is None
    True
    """

    __slots__ = ("width", "_hist", "_parts", "count", "_cum", "_memo")

    def __init__(self, width: int) -> None:
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.width = width
        self._hist: Any = None  # allocated while the window holds samples (idle keys stay small)
        self._parts: deque[SparseCounts] = deque()
        self.count = 0
        self._cum: Any = None
        self._memo: dict[float, float] = {}

    def push(self, part: SparseCounts) -> None:
        if part[2]:
            self._add(part, 1)
        self._parts.append(part)
        if len(self._parts) > self.width:
            old = self._parts.popleft()
            if old[2]:
                self._add(old, -1)

    def _add(self, part: SparseCounts, sign: int) -> None:
        idx, n, total = part
        h = self._hist
        if h is None:
            h = self._hist = np.zeros(NBINS, dtype=np.int32)
        if type(idx) is list:
            for i, c in zip(idx, n):
                h[i] += sign * c
        elif sign > 0:
            h[idx] += n
        else:
            h[idx] -= n
        self.count += sign * total
        self._cum = None
        self._memo.clear()
        if self.count == 0:
            self._hist = None

    def quantile(self, q: float) -> float | None:
        """Nearest-rank quantile within a factor GAMMA, or None when the window is empty."""
        if self.count == 0:
            return None
        got = self._memo.get(q)
        if got is None:
            if self._cum is None:
                self._cum = self._hist.cumsum(dtype=np.int32)
            got = self._memo[q] = float(_BIN_VALUES[int(self._cum.searchsorted(nearest_rank(self.count, q)))])
        return got

    def log_se(self, q: float) -> float:
        """Standard error of ``log(quantile(q))``: the log-spread (from the IQR) x k(q) / sqrt(n).

        ``k(q) = sqrt(q (1 - q)) / pdf(ppf(q))`` is the large-sample factor for a normal quantile
        (1.25 for the median, 2.1 for p95). Detectors use it to demand a margin above a threshold
        that shrinks with traffic: a key with 20 requests a minute does not alert on noise.
        """
        if self.count < 2:
            return math.inf
        lo, hi = self.quantile(0.25), self.quantile(0.75)
        assert lo is not None and hi is not None
        sigma = max(math.log(hi / lo) / 1.349, _LOG_GAMMA)
        return sigma * _quantile_factor(q) / math.sqrt(self.count)


class RollingSum:
    """Sums of a few counters over the last ``width`` buckets.

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
        self._parts: deque[Sequence[int]] = deque()

    def push(self, counts: Sequence[int]) -> None:
        t = self.total
        for i, c in enumerate(counts):
            t[i] += c
        self._parts.append(counts)
        if len(self._parts) > self.width:
            for i, c in enumerate(self._parts.popleft()):
                t[i] -= c


class WindowSums:
    """Sums of a few counters over several trailing windows at once (one push per step).

    >>> w = WindowSums(widths=(1, 3), fields=2)
    >>> for counts in ([1, 0], [2, 1], [3, 3], [4, 0]):
    ...     w.push(counts)
    >>> w.total(1), w.total(3)
    ([4, 0], [9, 4])
    """

    __slots__ = ("widths", "_totals", "_parts", "_zero")

    def __init__(self, widths: Sequence[int], fields: int) -> None:
        if not widths or min(widths) < 1:
            raise ValueError(f"widths must be >= 1, got {widths!r}")
        self.widths = tuple(sorted(set(widths)))
        self._totals = {w: [0] * fields for w in self.widths}
        self._parts: deque[Sequence[int]] = deque(maxlen=max(self.widths))
        self._zero = (0,) * fields

    def push(self, counts: Sequence[int]) -> None:
        parts = self._parts
        have = len(parts)
        for w, t in self._totals.items():
            old = parts[-w] if have >= w else self._zero
            for i, c in enumerate(counts):
                t[i] += c - old[i]
        parts.append(counts)

    def total(self, width: int) -> list[int]:
        """The sums over the last ``width`` pushes (``width`` must be one of ``widths``)."""
        return self._totals[width]


def wilson_lower_bound(successes: int, n: int, z: float) -> float:
    """Lower end of the Wilson score interval for a proportion (0.0 when ``n`` is 0).

    Used by the error breaker: a short window whose bound already clears the threshold trips
    before the long window fills, without tripping on a handful of unlucky requests.

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
