"""Baselines against batch oracles, and seasonal behaviour over days of synthetic history."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _det_streams import replay, stream, transitions

from brownout.detectors import Baseline, DailyProfile, EwmaBaseline

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


def fill(p: DailyProfile, days: list[float], slot_start: float = 9 * 3600, minutes: int = 10) -> None:
    """One value per minute for one slot on each day (log values)."""
    for day, level in enumerate(days):
        for m in range(minutes):
            p.update(day * DAY + slot_start + m * 60, level)


@pytest.mark.parametrize("days", [[0.1, 0.3], [0.1, 0.3, 0.2], [0.5, 0.1, 0.3, 0.2], [0.0] * 7 + [1.0, 2.0]])
def test_profile_reads_a_lower_median_of_the_past_days_for_a_ceiling(days):
    p = DailyProfile(days=7, slot=600)
    fill(p, days)
    today = len(days)
    p.update(today * DAY, 0.0)  # closes the last day's slot
    past = sorted(days[-7:])
    want_high = past[(len(past) - 1) // 2]  # lower median: a ceiling rule stays sensitive
    want_low = past[len(past) // 2]  # upper median for a floor
    t = today * DAY + 9 * 3600 + 300
    assert float(p.value(t, min_days=2, high=True)) == pytest.approx(want_high, abs=2e-3)
    assert float(p.value(t, min_days=2, high=False)) == pytest.approx(want_low, abs=2e-3)


def test_a_peak_on_only_one_of_the_last_two_days_is_not_normal():
    p = DailyProfile(days=7, slot=600)
    fill(p, [0.0, math.log(1.3)])
    p.update(2 * DAY, 0.0)
    assert p.value(2 * DAY + 9 * 3600, min_days=2, high=True) == pytest.approx(0.0, abs=1e-3)
    q = DailyProfile(days=7, slot=600)
    fill(q, [math.log(1.3), math.log(1.28)])
    q.update(2 * DAY, 0.0)
    assert math.exp(q.value(2 * DAY + 9 * 3600, min_days=2, high=True)) == pytest.approx(1.28, rel=2e-3)


def test_a_peak_that_starts_a_few_minutes_early_is_judged_against_the_neighbouring_slot():
    p = DailyProfile(days=7, slot=600)
    fill(p, [0.0] * 2, slot_start=8 * 3600 + 50 * 60)         # 08:50-09:00, normal
    fill(p, [math.log(1.3)] * 2, slot_start=9 * 3600)       # the peak's first slot, 09:00-09:10
    p.update(2 * DAY, 0.0)
    t = 2 * DAY + 8 * 3600 + 55 * 60  # today it began at 08:55
    assert math.exp(p.value(t, min_days=2, high=True)) == pytest.approx(1.3, rel=2e-3)
    assert p.value(t - 1800, min_days=2, high=True) is None  # no history there


def test_one_off_incident_does_not_move_the_profile():
    p = DailyProfile(days=7, slot=600)
    fill(p, [0.0, 0.0, math.log(5.0), 0.0])
    p.update(4 * DAY, 0.0)
    assert math.exp(p.value(4 * DAY + 9 * 3600, min_days=2, high=True)) == pytest.approx(1.0, abs=2e-3)


def test_profile_round_trips_through_export():
    p = DailyProfile(days=7, slot=600)
    fill(p, [0.1, 0.2, 0.3])
    q = DailyProfile(days=7, slot=600)
    q.install(p.export())
    t = 3 * DAY + 9 * 3600
    assert q.value(t, 2, True) == p.value(t, 2, True)
    with pytest.raises(ValueError):
        DailyProfile(days=3, slot=600).install(p.export())


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


def test_recurring_daily_peak_stops_alerting_once_seen_on_two_days():
    findings = replay(stream(3 * DAY + 12 * 3600, rate=0.3, ttft=peak_ttft, seed=2))
    firing_days = sorted({int(t // DAY) for t, s in transitions(findings, "ttft_drift") if s == "firing"})
    assert 0 in firing_days            # day one: no history, the fallback sees a jump
    assert not [d for d in firing_days if d >= 2]  # seen at 09:00 on the last two days: normal
