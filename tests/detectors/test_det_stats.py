"""Each streaming statistic against a batch oracle (numpy over the same data)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brownout.detectors.stats import (
    GAMMA,
    SMALL,
    RollingHistogram,
    RollingSum,
    WindowSums,
    bin_counts,
    nearest_rank,
    wilson_lower_bound,
)

samples = st.lists(st.floats(min_value=1e-3, max_value=1e4, allow_nan=False), min_size=0, max_size=120)


@settings(max_examples=60, deadline=None)
@given(st.lists(samples, min_size=1, max_size=20), st.integers(1, 8),
       st.sampled_from([0.0, 0.05, 0.5, 0.9, 0.95, 0.99, 1.0]))
def test_rolling_quantile_matches_numpy_within_gamma(buckets, width, q):
    h = RollingHistogram(width)
    for i, bucket in enumerate(buckets):
        h.push(bin_counts(bucket))
        window = [x for b in buckets[max(0, i - width + 1): i + 1] for x in b]
        assert h.count == len(window)
        got = h.quantile(q)
        if not window:
            assert got is None
            continue
        exact = float(np.quantile(np.asarray(window), q, method="inverted_cdf"))
        assert exact / GAMMA <= got <= exact * GAMMA


def test_small_and_large_buckets_bin_alike():
    rng = np.random.default_rng(0)
    x = rng.lognormal(0, 2, SMALL * 4).tolist()
    big = bin_counts(x)
    small = [bin_counts(x[i:i + SMALL]) for i in range(0, len(x), SMALL)]
    dense_big = np.zeros(2000, dtype=int)
    dense_big[np.asarray(big[0])] += np.asarray(big[1])
    dense_small = np.zeros(2000, dtype=int)
    for idx, n, _ in small:
        for i, c in zip(idx, n):
            dense_small[i] += c
    assert (dense_big == dense_small).all()


def test_values_outside_the_bin_range_are_clamped_not_lost():
    h = RollingHistogram(1)
    h.push(bin_counts([0.0, 1e-9, 1e12]))
    assert h.count == 3
    assert h.quantile(0.0) <= 1e-4 * GAMMA
    assert h.quantile(1.0) >= 1e7 / GAMMA


@given(st.lists(st.lists(st.integers(0, 50), min_size=3, max_size=3), max_size=40), st.integers(1, 10))
def test_rolling_sum_matches_numpy(parts, width):
    s = RollingSum(width, 3)
    for i, p in enumerate(parts):
        s.push(p)
        assert s.total == np.sum(np.asarray(parts[max(0, i - width + 1): i + 1]), axis=0).tolist()


@given(st.lists(st.lists(st.integers(0, 50), min_size=2, max_size=2), max_size=40),
       st.lists(st.integers(1, 12), min_size=1, max_size=4))
def test_window_sums_match_numpy(parts, widths):
    w = WindowSums(widths, 2)
    for i, p in enumerate(parts):
        w.push(p)
        for width in widths:
            assert w.total(width) == np.sum(np.asarray(parts[max(0, i - width + 1): i + 1]), axis=0).tolist()


@given(st.integers(0, 400), st.integers(1, 400), st.sampled_from([1.0, 1.96, 2.576, 3.0]))
def test_wilson_lower_bound_solves_the_score_equation(k, n, z):
    k = min(k, n)
    p = k / n
    lb = wilson_lower_bound(k, n, z)
    assert 0.0 <= lb <= p + 1e-12
    if k > 0:
        # the bound is the root of (p - x)^2 = z^2 x (1 - x) / n below p
        assert (p - lb) ** 2 == pytest.approx(z * z * lb * (1 - lb) / n, abs=1e-9)
    else:
        assert lb == pytest.approx(0.0, abs=1e-12)


def test_nearest_rank_is_numpy_inverted_cdf():
    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 20, 101):
        x = np.sort(rng.normal(size=n))
        for q in (0.0, 0.1, 0.5, 0.95, 1.0):
            assert x[nearest_rank(n, q) - 1] == np.quantile(x, q, method="inverted_cdf")


def test_bad_widths_are_rejected():
    for make in (lambda: RollingHistogram(0), lambda: RollingSum(0, 1), lambda: WindowSums([], 1)):
        with pytest.raises(ValueError):
            make()
    assert math.isclose(wilson_lower_bound(0, 0, 2.0), 0.0)
