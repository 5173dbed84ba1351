"""Readings on control records: every key with traffic gets a record, closed ones included, at a
phase of its own; the pipeline feeds them from the detectors; a single-key model opens too."""

import logging
from collections import Counter

import numpy as np
import pytest

from brownout.breakers import BreakerBook, BreakerConfig, ControlRecord, Readings
from brownout.model import Event, Finding, Key
from brownout.pipeline import Pipeline

A = Key("openai", "eastus", "gpt-4o")
B = Key("openai", "westus", "gpt-4o")


def test_a_closed_key_with_readings_gets_a_record_each_heartbeat_with_fresh_values():
    book = BreakerBook(BreakerConfig(heartbeat_interval=10.0, record_ttl=30.0))
    book.update_readings({A: {"ttft_p50": 0.4, "ttft_p50_baseline": 0.3}, B: {"ttft_p50": None}})
    first = [r for t in range(11) for r in book.records(float(t))]
    assert [(r.key, r.state, r.seq, r.reason) for r in first] == [(A, "closed", 0, None)]  # B knows nothing
    assert first[0].readings == Readings(ttft_p50=0.4, ttft_p50_baseline=0.3)
    book.update_readings({A: {"ttft_p50": 0.5, "ttft_p50_baseline": 0.3}})
    t0 = first[0].issued_at
    assert book.records(t0 + 9.0) == []
    [beat] = book.records(t0 + 10.0)
    assert (beat.issued_at, beat.expires_at, beat.readings.ttft_p50) == (t0 + 10.0, t0 + 40.0, 0.5)


def test_transitions_go_out_at_once_and_carry_the_readings():
    book = BreakerBook(BreakerConfig(jitter=0.0))
    book.update_readings({A: {"ttft_p95": 4.0, "ttft_p95_baseline": 0.8}})
    book.on_finding(Finding(5.0, "latency_breaker", A, "trip", 4.0, 0.8, action="breaker"))
    book.advance(5.0)
    [rec] = book.records(5.0)
    assert (rec.state, rec.reason, rec.readings.ttft_p95) == ("open", "tripped", 4.0)
    assert book.readings(A) == Readings(ttft_p95=4.0, ttft_p95_baseline=0.8)


def test_ten_thousand_keys_heartbeat_spread_over_the_interval():
    book = BreakerBook(BreakerConfig(heartbeat_interval=10.0, record_ttl=30.0))
    keys = [Key("p", f"r{i % 100}", f"m{i // 100}") for i in range(10_000)]
    book.update_readings({k: {"ttft_p50": 0.5} for k in keys})
    per_second: Counter[int] = Counter()
    issued: dict[Key, list[float]] = {}
    for t in range(41):
        recs = book.records(float(t))
        per_second[t] = len(recs)
        for r in recs:
            issued.setdefault(r.key, []).append(r.issued_at)
    assert len(issued) == 10_000 and all(times[0] <= 10.0 for times in issued.values())  # first within one interval
    assert all(np.all(np.diff(times) == 10.0) and len(times) >= 3 for times in issued.values())  # then every 10 s
    assert max(per_second.values()) < 2 * 1000  # never more than twice the mean in one second


def test_bad_readings_are_logged_and_the_previous_ones_kept(caplog):
    book = BreakerBook()
    book.update_readings({A: {"ttft_p50": 0.4}})
    with caplog.at_level(logging.WARNING, logger="brownout.breakers.machine"):
        book.update_readings({A: {"ttft_p50": float("nan")}})
    assert book.readings(A) == Readings(ttft_p50=0.4)
    assert "readings for openai/eastus/gpt-4o ignored: readings.ttft_p50" in caplog.text


def test_a_restart_keeps_publishing_the_restored_readings():
    book = BreakerBook(BreakerConfig(heartbeat_interval=10.0, record_ttl=30.0))
    rec = ControlRecord(A, "closed", since=0.0, seq=0, issued_at=100.0, expires_at=130.0,
                        readings=Readings(ttft_p50=0.4))
    book.restore_from_records([rec])
    assert book.records(105.0) == []
    [beat] = book.records(110.0)
    assert (beat.seq, beat.readings) == (0, Readings(ttft_p50=0.4))


def test_the_pipeline_publishes_the_detectors_ttft_readings():
    rng = np.random.default_rng(3)
    p = Pipeline()
    t0 = 1_700_000_000.0
    ttfts = []
    for i in range(15 * 60 * 5):  # 15 minutes at 5 requests/s: past the baselines' warm-up
        t = t0 + i / 5
        ttft = float(rng.lognormal(np.log(0.4), 0.3))
        ttfts.append((t, ttft))
        p.observe(Event(A, t, ttft + 1.0, ttft=ttft, output_tokens=50))
    now = t0 + 15 * 60 + 10
    p.advance(now)
    recs = {r.key: r for t in range(11) for r in p.book.records(now + t)}
    r = recs[A].readings
    last_minute = [x for t, x in ttfts if t + x + 1.0 >= now - 5 - 60 - 10]
    assert r.ttft_p50 == pytest.approx(float(np.median(last_minute)), rel=0.1)
    assert r.ttft_p95 == pytest.approx(float(np.quantile(last_minute, 0.95)), rel=0.15)
    assert r.ttft_p50_baseline == pytest.approx(0.4, rel=0.15)
    assert r.requests_per_s == pytest.approx(5.0, rel=0.1) and r.capacity_error_rate == 0.0
    assert recs[A].state == "closed"


@pytest.mark.parametrize("error, share", [("503", 0.45), ("429", 0.85)])
def test_a_model_served_by_one_key_opens_within_15_s_of_a_hard_burst(error, share):
    """Issue 11: nothing held it closed but the guard; the collector now publishes the true state."""
    rng = np.random.default_rng(11)
    p = Pipeline()
    only = Key("azure.ai.openai", "swedencentral", "o1-preview")
    t0, burst = 1_700_000_000.0, 1_700_000_000.0 + 120
    opened = None
    for i in range(180 * 10):  # 10 requests/s for 3 minutes, the burst from minute 2
        t = t0 + i / 10
        bad = t >= burst and rng.random() < share
        p.observe(Event(only, t, 0.2 if bad else 1.2, ttft=None if bad else 0.4,
                        error_type=error if bad else None))
        if i % 10 == 0:
            for d in p.advance(t):
                if d.kind == "breaker" and d.state == "open" and opened is None:
                    opened = d.time
    assert opened is not None and burst <= opened <= burst + 15.0
