"""The per-minute history behind the status page: bounded rings, minute mapping, breaker marks,
key limits, and the collector feeding it from a real pipeline."""

from __future__ import annotations

import asyncio
import math
import random
from types import SimpleNamespace

import numpy as np
import pytest

from brownout import codec
from brownout import semconv as sc
from brownout.collector.service import Collector
from brownout.model import Decision, Event, Key
from brownout.pipeline import Pipeline
from brownout.status.history import FIELDS, HistoryRecorder, bytes_per_key
from brownout.transport import MemoryTransport, default_topics

K = Key("openai", "eastus", "gpt-4o")
T0 = 1_795_510_800.0  # a minute boundary


def st(t: float, **kw: float | None) -> SimpleNamespace:
    base = {name: None for name in FIELDS if name != "breaker"}
    base.update(time=t, requests=60, ttft_p50=0.5)
    base.update(kw)
    return SimpleNamespace(**base)


def test_a_status_fills_the_minute_its_time_closes() -> None:
    h = HistoryRecorder(minutes=10)
    h.record({K: st(T0 + 60.0, ttft_p50=0.1)}, {})     # end of minute 0: (T0, T0 + 60]
    h.record({K: st(T0 + 65.0, ttft_p50=0.2)}, {})     # in minute 1
    h.record({K: st(T0 + 120.0, ttft_p50=0.3)}, {})    # end of minute 1: overwrites
    s = h.series(K)
    m0 = int(T0 // 60)
    assert s["minute"][-2:].tolist() == [m0, m0 + 1]
    assert s["ttft_p50"][-2:].tolist() == pytest.approx([0.1, 0.3])


def test_rings_are_bounded_and_match_an_oracle_over_random_writes() -> None:
    rng = random.Random(5)
    minutes = 30
    h = HistoryRecorder(minutes=minutes, max_keys=10)
    keys = [Key("p", f"r{i}", "m") for i in range(4)]
    oracle: dict[tuple[Key, int], tuple[float, float]] = {}
    for step in range(400):
        t = T0 + step * 7.0 + rng.random()
        status = {}
        for k in keys:
            if rng.random() < 0.6:
                v, e = rng.random(), rng.random() / 10
                status[k] = st(t, ttft_p50=v, error_rate=e)
                oracle[(k, math.ceil(t / 60) - 1)] = (v, e)
        h.record(status, {})
    assert h.memory_bytes() == len(keys) * bytes_per_key(minutes)
    for k in keys:
        s = h.series(k)
        assert len(s["minute"]) == minutes
        for i, m in enumerate(s["minute"].tolist()):
            want = oracle.get((k, m))
            if want is None:
                assert math.isnan(s["ttft_p50"][i])
            else:
                assert s["ttft_p50"][i] == pytest.approx(want[0], rel=1e-6)
                assert s["error_rate"][i] == pytest.approx(want[1], rel=1e-6)


def test_minutes_older_than_the_ring_are_gone_and_gaps_stay_nan() -> None:
    h = HistoryRecorder(minutes=5)
    for m in (0, 1, 2, 9):  # minutes 3..8 silent
        h.record({K: st(T0 + 60 * m + 30, requests=m + 1)}, {})
    s = h.series(K)
    m0 = int(T0 // 60)
    assert s["minute"].tolist() == [m0 + 5, m0 + 6, m0 + 7, m0 + 8, m0 + 9]
    assert np.isnan(s["requests"][:4]).all() and s["requests"][4] == 10
    h.record({K: st(T0 + 60 * 2 + 30, requests=99)}, {})  # too old for the ring now: ignored
    assert 99 not in h.series(K)["requests"].tolist()


def test_breaker_rows_keep_the_worst_state_of_the_minute() -> None:
    h = HistoryRecorder(minutes=5)
    t = T0 + 30
    h.decision(Decision(t, "breaker", "error_breaker", K, "open", 0.4))
    h.decision(Decision(t + 10, "breaker", "error_breaker", K, "half_open"))
    h.decision(Decision(t + 20, "breaker", "error_breaker", K, "closed"))
    h.record({K: st(t + 25)}, {K: "closed"})
    h.record({K: st(t + 70)}, {K: "half_open"})
    h.record({K: st(t + 130)}, {})
    assert h.series(K)["breaker"][-3:].tolist() == [2.0, 1.0, 0.0]
    assert [d.state for d in h.decisions(K)] == ["open", "half_open", "closed"]


def test_decisions_are_bounded_and_filtered() -> None:
    h = HistoryRecorder(minutes=5, max_decisions=3)
    other = Key("anthropic", "us-east-1", "claude")
    for i in range(5):
        h.decision(Decision(T0 + i, "alert", "error_rate", K if i % 2 else other, "firing"))
    assert [d.time - T0 for d in h.decisions()] == [2, 3, 4]
    assert [d.time - T0 for d in h.decisions(K)] == [3]
    assert [d.time - T0 for d in h.decisions(since=T0 + 4)] == [4]


def test_key_limit_drops_new_keys_until_an_old_one_falls_silent() -> None:
    h = HistoryRecorder(minutes=5, max_keys=2)
    a, b, c = (Key("p", r, "m") for r in ("a", "b", "c"))
    h.record({a: st(T0 + 30), b: st(T0 + 30)}, {})
    h.record({c: st(T0 + 90)}, {})
    assert h.keys() == [a, b] and h.dropped_keys == 1
    h.record({b: st(T0 + 60 * 10)}, {})  # a has been silent longer than the ring holds
    h.record({c: st(T0 + 60 * 10)}, {})
    assert h.keys() == [b, c]


def test_tick_reads_the_pipeline_once_per_minute_of_event_time() -> None:
    calls = []

    class FakePipeline:
        def status(self) -> dict[Key, SimpleNamespace]:
            calls.append(1)
            return {K: st(T0 + 55 + 60 * (len(calls) - 1))}

        def breaker_states(self) -> dict[Key, str]:
            return {}

    h = HistoryRecorder(minutes=10)
    p = FakePipeline()
    for i in range(5, 305, 5):  # five minutes, a tick every 5 s
        h.tick(T0 + i, [], p)
    assert len(calls) == 5


def test_a_broken_pipeline_reading_never_raises_out_of_tick(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def status(self) -> dict[Key, object]:
            raise RuntimeError("boom")

    h = HistoryRecorder(minutes=5)
    h.tick(T0, [Decision(T0, "alert", "error_rate", K, "firing")], Broken())
    assert len(h.decisions()) == 1 and "recording failed" in caplog.text


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="history_minutes"):
        HistoryRecorder(minutes=1)
    with pytest.raises(ValueError, match="max_keys"):
        HistoryRecorder(minutes=5, max_keys=0)


def test_the_collector_feeds_it_from_a_real_pipeline() -> None:
    """Eleven healthy minutes then a 503 burst on one of two regions, through the real collector on
    the in-memory transport: a row per minute with the measured error rate, and the breaker's open."""
    east, west = Key("openai", "eastus", "gpt-4o"), Key("openai", "westus", "gpt-4o")

    async def main() -> HistoryRecorder:
        transport = MemoryTransport()
        await transport.create_topics(default_topics(partitions=1))
        now = [T0]
        history = HistoryRecorder(minutes=30)
        collector = Collector(transport, Pipeline(), clock=lambda: now[0], history=history, batch_size=10_000)
        producer = transport.producer()
        await collector.start()
        for second in range(16 * 60):
            t = T0 + second
            for key in (east, west):
                bad = key == east and second >= 660
                evs = [Event(key, t + i / 4, 0.6, ttft=0.3, error_type="503" if bad else None) for i in range(4)]
                await producer.send(sc.TOPIC_EVENTS, codec.encode_otlp_proto(evs), key=str(key).encode(),
                                    headers=((sc.HEADER_CONTENT_TYPE, sc.CONTENT_OTLP_PROTO.encode()),))
            now[0] = t + 1
            await collector.poll_once(timeout=0.0)
        await collector.stop()
        return history

    history = asyncio.run(main())
    s = history.series(east)
    row = {m - int(T0 // 60): i for i, m in enumerate(s["minute"].tolist())}
    assert s["requests"][row[5]] == 240  # 4 requests/s over a full minute
    assert s["error_rate"][row[9]] == pytest.approx(0.0)
    assert s["error_rate"][row[13]] == pytest.approx(1.0)
    assert np.isfinite(s["ttft_p50_baseline"][row[11]])  # warmed by ten minutes of data
    assert s["breaker"][row[9]] == 0.0 and np.nanmax(s["breaker"]) == 2.0
    assert any(d.kind == "breaker" and d.state == "open" for d in history.decisions(east))
    assert np.nanmax(history.series(west)["error_rate"]) == 0.0
