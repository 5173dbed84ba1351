"""Baselines against batch oracles, and seasonal behaviour over days of synthetic history."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _det_streams import replay, stream, transitions

from brownout.detectors import Baseline, Engine, EwmaBaseline, SeasonalProfile
from brownout.rules import parse_rules

DAY = 86_400.0


def test_ewma_matches_the_weighted_mean_oracle():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    e = EwmaBaseline(halflife=20, warm=5)
    keep = 0.5 ** (1 / 20)
    for i, v in enumerate(x):
        e.update(float(v))
        w = keep ** np.arange(i, -1, -1)
        if i + 1 < 5:
            assert e.value() is None
        else:
            assert e.value() == pytest.approx(float(np.sum(w * x[: i + 1]) / np.sum(w)))


def test_profile_slot_is_the_median_of_daily_medians():
    rng = np.random.default_rng(1)
    p = SeasonalProfile(period=DAY, slots=24, cycles=7)
    daily = []
    for day in range(9):
        vals = rng.normal(loc=day % 3, size=60)
        for m, v in enumerate(vals):
            p.update(day * DAY + 9 * 3600 + m * 60, float(v))
        daily.append(float(np.median(vals)))
    p.update(9 * DAY, 0.0)  # closes day 8's slot
    got = p.value(9 * DAY + 9.5 * 3600, min_cycles=3)
    assert got == pytest.approx(float(np.median(daily[-7:])))


def test_one_off_incident_does_not_move_the_profile():
    p = SeasonalProfile(period=DAY, slots=24, cycles=7)
    for day, level in enumerate([1.0, 1.0, 5.0, 1.0]):
        p.update(day * DAY + 3600, math.log(level))
    p.update(4 * DAY, 0.0)
    assert math.exp(p.value(4 * DAY + 3600, min_cycles=3)) == pytest.approx(1.0)


def test_baseline_reports_warming_until_enough_data():
    b = Baseline(halflife=3600, warmup=600)
    for minute in range(9):
        b.update(minute * 60.0, 0.4)
        assert b.value(minute * 60.0) is None and b.source(0.0) is None
    b.update(540.0, 0.4)
    assert b.value(600.0) == pytest.approx(0.4)


def test_not_learning_keeps_the_fallback_where_it_was():
    b = Baseline(halflife=600, warmup=60)
    for minute in range(30):
        b.update(minute * 60.0, 0.4)
    for minute in range(30, 90):
        b.update(minute * 60.0, 4.0, learn=False)
    assert b.value(90 * 60.0) == pytest.approx(0.4)


def test_bad_values_are_ignored():
    b = Baseline(warmup=60)
    for x in (0.0, -1.0, math.nan, math.inf):
        b.update(0.0, x)
    assert b.value(0.0) is None


def peak_ttft(t: float) -> float:
    hour = (t % DAY) / 3600
    return 0.4 * (1.6 if 9 <= hour < 11 else 1.0)


def test_recurring_daily_peak_stops_alerting_after_a_few_days():
    rules = parse_rules("rules:\n  ttft_drift: {min_requests: 10}\n  latency_p95: {min_requests: 10}\n")
    findings = replay(stream(5 * DAY, rate=0.3, ttft=peak_ttft, seed=2), Engine(rules))
    firing_days = sorted({int(t // DAY) for t, s in transitions(findings, "ttft_drift") if s == "firing"})
    assert 0 in firing_days            # day one: no history, the fallback sees a jump
    assert not [d for d in firing_days if d >= 3]  # three days later the peak is normal
    assert all(f.rule == "ttft_drift" for f in findings if f.state == "firing")


def test_hour_of_week_profile_takes_over_after_three_weeks():
    # Mondays 10:00-11:00 are 2 x slower; after three weeks that Monday hour is normal,
    # while the same hour on Tuesday keeps the ordinary level
    b = Baseline(halflife=3600, warmup=600)
    week = 7 * DAY
    monday_10 = 4 * DAY + 10 * 3600  # 1970-01-05 was a Monday
    for minute in range(int(3 * week // 60) + 1):
        t = minute * 60.0
        slow = (t % week) // 3600 == monday_10 // 3600
        b.update(t, 0.8 if slow else 0.4)
    t = 3 * week + monday_10 + 1800
    assert b.source(t) == "week"
    assert b.value(t) == pytest.approx(0.8, rel=0.01)
    assert b.value(t + DAY) == pytest.approx(0.4, rel=0.01)
