"""The collector on the in-memory transport: judging, control records, dead letters, commits."""

import json

from prometheus_client import CollectorRegistry

from collector_support import EAST, WEST, traffic

from brownout import codec
from brownout import semconv as sc
from brownout.breakers import ControlRecord
from brownout.collector.service import Collector
from brownout.exporters.prometheus import CollectorMetrics
from brownout.model import Event
from brownout.transport import MemoryTransport

CT = ((sc.HEADER_CONTENT_TYPE, sc.CONTENT_OTLP_PROTO.encode()),)


async def send(t, events, key=None):
    p = t.producer()
    await p.send(sc.TOPIC_EVENTS, codec.encode_otlp_proto(events), key=(key or str(events[0].key)).encode(),
                 headers=CT)


async def run_until(c, now_box, t_end, step=5.0):
    await c.poll_once(timeout=0.0)
    while now_box[0] < t_end:
        now_box[0] += step
        await c.poll_once(timeout=0.0)


async def test_degraded_key_opens_its_breaker_only_and_the_record_is_on_the_control_topic():
    t = MemoryTransport()
    now = [1605.0]  # events up to 1660 are already in: the collector judges them as its clock moves
    decisions = []
    c = Collector(t, clock=lambda: now[0], on_decision=[decisions.append])
    await c.start()
    healthy, bad = traffic(1000.0, 600), traffic(1600.0, 60, degraded=True)
    for k in (EAST, WEST):
        await send(t, [e for e in healthy + bad if e.key == k])
    await run_until(c, now, 1700.0)
    await c.stop()
    opened = [d for d in decisions if d.kind == "breaker" and d.state == "open"]
    assert [d.key for d in opened] == [EAST]
    assert 1600.0 < opened[0].time <= 1620.0
    records = [ControlRecord.from_bytes(r.value) for r in t.records(sc.TOPIC_CONTROL)]
    assert {r.key for r in records if r.state == "open"} == {EAST}
    # WEST never changed state: its records only carry readings (closed, no transition)
    assert all(r.key == EAST or (r.state, r.seq, r.reason) == ("closed", 0, None) for r in records)
    assert c.counts["events:accepted"] == len(healthy) + len(bad)


async def test_bad_records_go_to_the_dead_letter_topic_and_the_collector_goes_on():
    t = MemoryTransport()
    now = [2000.0]
    c = Collector(t, clock=lambda: now[0])
    await c.start()
    p = t.producer()
    await p.send(sc.TOPIC_EVENTS, b"\x00\x01garbage", key=b"k", headers=CT)
    no_provider = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "startTimeUnixNano": str(int(1990e9)), "endTimeUnixNano": str(int(1991e9)),
        "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}]}]}]}]}
    await p.send(sc.TOPIC_EVENTS, json.dumps(no_provider).encode(), key=b"k2",
                 headers=((sc.HEADER_CONTENT_TYPE, sc.CONTENT_OTLP_JSON.encode()),))
    await send(t, [Event(EAST, 1e9, 1.0)])  # 2001: far in the past
    await send(t, [Event(EAST, 1990.0, 1.0, ttft=0.1)])
    await p.send(sc.TOPIC_EVENTS, None, key=b"tombstone")
    await c.poll_once(timeout=0.0)
    await c.stop()
    dead = t.records(sc.TOPIC_DEAD_LETTER)
    assert [r.header(sc.HEADER_REASON) for r in dead] == [b"malformed_protobuf", b"missing_attribute",
                                                          b"bad_timestamp", b"empty_value"]
    assert dead[0].value == b"\x00\x01garbage" and dead[0].key == b"k"
    assert dead[0].header(sc.HEADER_SOURCE) == b"brownout.events/0/0"
    assert b"gen_ai.provider.name" in dead[1].header("brownout-detail")
    assert c.counts["events:accepted"] == 1 and c.counts["events:invalid"] == 4
    assert c.counts["decode_error:malformed_protobuf"] == 1


async def test_commits_only_after_processing():
    t = MemoryTransport()
    now = [3000.0]
    c = Collector(t, clock=lambda: now[0])
    await c.start()
    await send(t, [Event(EAST, 2990.0, 1.0)])
    await c.poll_once(timeout=0.0)
    await send(t, [Event(EAST, 2991.0, 1.0)])
    # a second member of the group starts after the first batch was committed
    c2 = Collector(t, clock=lambda: now[0])
    await c2.start()
    await c2.poll_once(timeout=0.0)
    assert c2.counts["events:accepted"] == 1


async def test_metrics_follow_the_counts():
    reg = CollectorRegistry()
    t = MemoryTransport()
    now = [4000.0]
    c = Collector(t, clock=lambda: now[0], metrics=CollectorMetrics(reg))
    await c.start()
    await send(t, [Event(EAST, 3990.0, 1.0), Event(WEST, 3991.0, 1.0)], key="x")  # not a key: re-keyed
    await t.producer().send(sc.TOPIC_EVENTS, b"\xff", key=b"k", headers=CT)
    await c.poll_once(timeout=0.0)
    assert reg.get_sample_value("brownout_rekeyed_records_total") == 1
    assert reg.get_sample_value("brownout_rekeyed_events_total") == 2
    await c.poll_once(timeout=0.0)  # the two keyed records republished by the first poll
    assert reg.get_sample_value("brownout_events_total", {"outcome": "accepted"}) == 2
    assert reg.get_sample_value("brownout_decode_errors_total", {"reason": "malformed_protobuf"}) == 1
    lag = await c.measure_lag()
    assert lag == {(sc.TOPIC_EVENTS, 0): 0}
    assert reg.get_sample_value("brownout_consumer_lag", {"topic": sc.TOPIC_EVENTS, "partition": "0"}) == 0


async def test_a_backlog_is_judged_in_event_time_not_found_late():
    """A collector that starts behind (restart, outage) replays its backlog in event time:
    an incident inside the backlog is still caught, and nothing is late."""
    t = MemoryTransport()
    for ev in traffic(1000.0, 600) + traffic(1600.0, 60, degraded=True):  # one record per request, as produced
        await send(t, [ev])
    decisions = []
    c = Collector(t, clock=lambda: 1900.0, batch_size=50, on_decision=[decisions.append])  # 240 s behind
    await c.start()
    while await c.poll_once(timeout=0.0):
        pass
    await c.stop()
    assert c.pipeline.late_events == 0
    assert {d.key for d in decisions if d.kind == "breaker" and d.state == "open"} == {EAST}
    assert min(d.time for d in decisions if d.state == "open") <= 1620.0


async def test_a_decoder_bug_dead_letters_the_record_instead_of_crashing(monkeypatch):
    t = MemoryTransport()
    c = Collector(t, clock=lambda: 2000.0)
    await c.start()
    await send(t, [Event(EAST, 1990.0, 1.0)])

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")
    monkeypatch.setattr("brownout.codec.decode", broken)
    await c.poll_once(timeout=0.0)
    assert [r.header(sc.HEADER_REASON) for r in t.records(sc.TOPIC_DEAD_LETTER)] == [b"decoder_error"]
