"""Engine contract: lifecycle table, event-time clock, late events, status, snapshot/restore."""

from __future__ import annotations

import dataclasses
import sys

import pytest
from _det_streams import KEY, merge, replay, stream

import brownout.detectors as detectors
from brownout.detectors import AlertLifecycle, Engine, KeyStatus
from brownout.model import Event, Key

# (fire, clear) per step of 5 s -> expected transition, for for_=10, keep_firing_for=10
LIFECYCLE = [
    ([(True, False), (True, False), (True, False)], ["pending", None, "firing"]),
    ([(True, False), (False, True)], ["pending", "resolved"]),  # a pending alert that clears
    ([(True, False), (False, False), (True, False)], ["pending", None, "firing"]),  # band holds
    ([(True, False)] * 3 + [(False, True), (True, False), (False, True), (False, True), (False, True)],
     ["pending", None, "firing", None, None, None, None, "resolved"]),  # the clear timer restarts
    ([(False, False)] * 3, [None, None, None]),
    ([(False, True)] * 3, [None, None, None]),
]


@pytest.mark.parametrize("steps,expected", LIFECYCLE)
def test_lifecycle_table(steps, expected):
    life = AlertLifecycle(for_=10, keep_firing_for=10)
    assert [life.update(i * 5.0, fire=f, clear=c) for i, (f, c) in enumerate(steps)] == expected


def test_lifecycle_without_for_fires_at_once():
    life = AlertLifecycle()
    assert life.update(0.0, fire=True, clear=False) == "firing"
    assert life.update(5.0, fire=False, clear=True) == "resolved"


def test_findings_are_in_time_order_then_key_then_rule():
    keys = [Key("openai", r, "gpt-4o") for r in ("westus", "eastus", "northeu")]
    err = lambda t: "503" if 100 <= t < 200 else None  # noqa: E731
    events = merge(*(stream(400, rate=10, key=k, seed=i, error=err) for i, k in enumerate(keys)))
    findings = replay(events)
    order = {"error_rate": 0, "error_breaker": 1}
    assert [(f.time, f.key) for f in findings] == sorted((f.time, f.key) for f in findings)
    for a, b in zip(findings, findings[1:]):
        if (a.time, a.key) == (b.time, b.key):
            assert order.get(a.rule, 9) <= order.get(b.rule, 9)
    assert {f.key for f in findings} == set(keys)


def test_advance_is_idempotent_and_never_goes_back():
    engine = Engine()
    for e in stream(300, rate=10, error=lambda t: "503" if t > 100 else None):
        engine.observe(e)
    first = engine.advance(200.0)
    assert engine.advance(200.0) == [] and engine.advance(150.0) == []
    rest = engine.advance(400.0)
    assert first and rest and max(f.time for f in first) < min(f.time for f in rest)


def test_advancing_in_small_steps_equals_one_big_step():
    events = list(stream(600, rate=10, error=lambda t: "429" if 200 <= t < 300 else None))
    a, b = Engine(), Engine()
    for e in events:
        a.observe(e)
        b.observe(e)
    small = [f for now in range(0, 1300, 7) for f in a.advance(float(now))]
    assert small == b.advance(1300.0)


def test_advance_rejects_a_non_finite_clock():
    engine = Engine()
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            engine.advance(bad)


def test_watermark_respects_allowed_lateness():
    engine = Engine()
    engine.observe(Event(KEY, 100.0, 1.0))
    engine.advance(112.0)
    # step [100, 105) ends at 105 <= 112 - 5: closed; [105, 110) is still open
    assert engine.watermark == 105.0
    engine.observe(Event(KEY, 105.5, 1.0))   # ends at 106.5, inside the open step: fine
    engine.observe(Event(KEY, 99.0, 1.0))    # ends at 100, inside a closed step: late
    assert engine.late_events == 1


def test_status_reports_readings_and_warming():
    engine = Engine()
    for e in stream(900, rate=10, deadline=30.0):
        engine.observe(e)
    engine.advance(100.0)
    s = engine.status()[KEY]
    assert isinstance(s, KeyStatus)
    assert s.warming and s.ttft_p50_baseline is None
    assert 0.3 < s.ttft_p50 < 0.5 and s.requests > 400 and s.firing == ()
    assert s.error_rate == 0.0 and s.goodput == 1.0 and s.itl_p95 is not None
    engine.advance(900.0)
    s = engine.status()[KEY]
    assert not s.warming and s.ttft_p50_baseline == pytest.approx(0.4, rel=0.1)
    assert s.tokens_per_s_baseline == pytest.approx(50.0, rel=0.15)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.requests = 0  # type: ignore[misc]


def test_a_key_exported_and_installed_judges_on_identically():
    import orjson

    events = list(stream(2400, rate=10, ttft=lambda t: 0.9 if t > 1500 else 0.4))
    cut = next(i for i, e in enumerate(events) if e.start > 1200)
    whole = replay(events)
    engine = Engine()
    head = replay(events[:cut], engine, final=False)
    doc = orjson.loads(orjson.dumps(engine.export_key(KEY)))  # plain JSON, nothing else
    restored = Engine()
    assert restored.install_key(KEY, doc) == "restored"
    tail = replay(events[cut:], restored)
    assert head + tail == whole
    assert any(f.rule == "ttft_drift" for f in tail)


def test_a_state_that_does_not_fit_is_refused_and_changes_nothing():
    engine = Engine()
    replay(stream(900, rate=10), engine, final=False)
    good = engine.export_key(KEY)
    before = engine.status()[KEY]
    broken = [
        {**good, "v": 1},
        {**good, "late": -1},
        {**good, "counts": [[1, 2]]},
        {**good, "signals": {**good["signals"], "ttft": {**good["signals"]["ttft"], "baselines": {}}}},
        {**good, "rules": {**good["rules"], "error_rate": {**good["rules"]["error_rate"],
                                                          "state": {"sums": [["x", 1]]}}}},
        {**good, "open": [[1, {"counts": [1, 2, 3]}]]},
        "not a mapping",
    ]
    for doc in broken:
        with pytest.raises(ValueError):
            engine.install_key(KEY, doc)  # type: ignore[arg-type]
        assert engine.status()[KEY] == before


def test_after_a_rule_change_the_rules_that_changed_start_fresh():
    from brownout.rules import parse_rules

    old = Engine()
    replay(stream(900, rate=10), old, final=False)
    new = Engine(parse_rules("rules:\n  error_rate:\n    window: 120\n"))
    assert new.install_key(KEY, old.export_key(KEY)) == "restored_partly"
    assert new.status()[KEY].ttft_p50_baseline == old.status()[KEY].ttft_p50_baseline
    changed = next(d for d in new._keys[KEY].detectors if d.rule == "error_rate")
    assert changed.sums.empty  # its windows start over


def test_memory_per_key_is_bounded_by_windows_not_traffic():
    engine = Engine()
    for e in stream(3600, rate=50):
        engine.observe(e)
        if e.start % 60 < 0.02:
            engine.advance(e.start)
    engine.advance(3600.0)
    ks = engine._keys[KEY]
    assert len(ks.open) <= 3
    for sig in ks.signals.values():
        assert sum(len(p) for p in sig.ring.export()) <= sig.ring.width * sig.ring.keep
        assert all(len(v) < 1000 for v in sig.carry.values())


def test_public_surface():
    assert set(detectors.__all__) >= {"Engine", "KeyStatus"}
    for name in detectors.__all__:
        assert hasattr(detectors, name)


def test_detectors_import_no_collector_exporters_or_transport():
    import subprocess
    code = ("import sys, brownout.detectors, brownout.rules; "
            "bad = [m for m in sys.modules if m.startswith(('brownout.collector', 'brownout.exporters', "
            "'brownout.transport', 'aiokafka'))]; print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_an_odd_step_still_learns_baselines_once_a_minute():
    from brownout.rules import parse_rules

    engine = Engine(parse_rules("engine: {step: 7}\n"))
    for e in stream(1200, rate=10):
        engine.observe(e)
    engine.advance(1200.0)
    s = engine.status()[KEY]
    assert not s.warming and s.ttft_p50_baseline == pytest.approx(0.4, rel=0.1)
