"""Each streaming statistic against a batch oracle (numpy over the same data)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brownout.detectors.stats import (
    BernoulliCusum,
    NormalShare,
    RollingSum,
    SampleRing,
    Ewma,
    WindowSums,
    count_at_least,
    count_at_most,
    nearest_rank,
    quantile_sorted,
    thin,
    wilson_lower_bound,
    wilson_upper_bound,
)

samples = st.lists(st.floats(min_value=1e-3, max_value=1e4, allow_nan=False), min_size=0, max_size=120)


@settings(max_examples=60, deadline=None)
@given(samples, st.floats(min_value=1e-3, max_value=1e4, allow_nan=False))
def test_counts_past_a_threshold_match_numpy(xs, threshold):
    xs = sorted(xs)
    a = np.asarray(xs)
    assert count_at_least(xs, threshold) == int(np.sum(a >= threshold))
    assert count_at_most(xs, threshold) == int(np.sum(a <= threshold))


@settings(max_examples=60, deadline=None)
@given(st.lists(samples, min_size=1, max_size=15), st.integers(1, 8),
       st.sampled_from([0.0, 0.05, 0.5, 0.9, 0.95, 1.0]))
def test_sample_ring_quantile_is_numpy_over_the_last_steps(steps, width, q):
    ring = SampleRing(width, keep=10_000)  # nothing thinned: exact
    for i, xs in enumerate(steps):
        ring.push(sorted(xs))
        window = [x for part in steps[max(0, i - width + 1): i + 1] for x in part]
        want = float(np.quantile(window, q, method="inverted_cdf")) if window else None
        assert ring.quantile(q) == want


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=100.0, allow_nan=False), min_size=1, max_size=2000),
       st.integers(2, 64))
def test_thinning_keeps_quantiles_within_one_rank_step(xs, keep):
    xs = sorted(xs)
    kept = thin(xs, keep)
    assert len(kept) == min(len(xs), keep) and kept == sorted(kept)
    assert kept[0] == xs[0] and kept[-1] == xs[-1]
    for q in (0.25, 0.5, 0.95):
        got = quantile_sorted(kept, q)
        lo, hi = np.searchsorted(xs, got, "left"), np.searchsorted(xs, got, "right")  # its ranks among all
        tol = 1.0 / (keep - 1) + 1.0 / len(xs) + 1e-9
        assert lo / len(xs) - tol <= q <= hi / len(xs) + tol


def cusum_oracle(llrs, h):
    """Page's statistic without the cap: the best suffix sum, floored at 0."""
    best, run = 0.0, 0.0
    for x in llrs:
        run = max(0.0, run + x)
        best = run
    return best


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=40),
       st.sampled_from([0.05, 0.3, 0.5]))
def test_cusum_is_the_floored_sum_of_log_likelihood_ratios(steps, share):
    c = BernoulliCusum(share, h=1e9)
    up, down = c._up, c._down
    llrs = []
    for k, extra in steps:
        n = k + extra
        c.update(k, n)
        if n:
            llrs.append(k * up + extra * down)
    assert c.value == pytest.approx(cusum_oracle(llrs, 1e9), rel=1e-9, abs=1e-9)
    # the two hypotheses sit `shift` either side of the boundary on the logit scale
    p0, p1 = 1 / (1 + math.exp(-(math.log(share / (1 - share)) - 0.4))), 1 / (1 + math.exp(-(math.log(share / (1 - share)) + 0.4)))
    assert up == pytest.approx(math.log(p1 / p0)) and down == pytest.approx(math.log((1 - p1) / (1 - p0)))


def test_cusum_alarms_on_a_held_excess_and_not_on_the_boundary_share():
    rng = np.random.default_rng(3)
    held, boundary = BernoulliCusum(0.5, h=10.0), BernoulliCusum(0.5, h=10.0)
    first = None
    for step in range(2000):
        held.update(int(rng.binomial(20, 0.6)), 20)
        boundary.update(int(rng.binomial(20, 0.4)), 20)
        if held.alarm and first is None:
            first = step
        assert not boundary.alarm
    assert first is not None and first < 30  # ~0.08 nats a trial, 20 trials a step
    assert held.value <= 2 * held.h  # capped: it comes back down within minutes


def test_ewma_of_shares_is_the_weighted_mean_oracle():
    m = Ewma(halflife=10.0, warm=3)
    xs = [0.1, 0.5, 0.2, 0.4, 0.3]
    a = 1 - 0.5 ** (1 / 10)
    for i, x in enumerate(xs):
        m.update(x)
        w = np.array([(1 - a) ** (i - j) for j in range(i + 1)])
        want = float(np.dot(w, xs[: i + 1]) / w.sum())
        assert (m.value() is None) == (i < 2)
        if m.value() is not None:
            assert m.value() == pytest.approx(want)


def test_normal_share_raises_the_boundary_only_for_keys_that_sit_near_it():
    near, far = NormalShare(0.5, min_requests=10, warm=3), NormalShare(0.5, min_requests=10, warm=3)
    for _ in range(5):
        near.add(100, 47)   # a key split between two modes: 47 % past 1.2 x its median
        far.add(100, 15)
        assert near.minute(learn=True) in (True, False)
        far.minute(learn=True)
    assert near.boundary == pytest.approx(min(0.95, 1.5 * 0.47 + 0.2))
    assert far.boundary == 0.5
    quiet = NormalShare(0.05, min_requests=100, warm=1)
    quiet.add(60, 3)
    assert quiet.minute(learn=True) is False and quiet.pool == [60, 3]  # pools until 100 requests


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


def test_wilson_bounds_are_symmetric():
    for k, n in ((0, 10), (3, 10), (10, 10), (7, 250)):
        assert wilson_upper_bound(k, n, 2.576) == pytest.approx(1 - wilson_lower_bound(n - k, n, 2.576))


def test_bad_widths_are_rejected():
    for make in (lambda: SampleRing(0), lambda: RollingSum(0, 1), lambda: WindowSums([], 1),
                 lambda: BernoulliCusum(1.0, 5.0)):
        with pytest.raises(ValueError):
            make()
    assert math.isclose(wilson_lower_bound(0, 0, 2.0), 0.0)
