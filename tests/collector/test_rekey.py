"""Re-keying on the in-memory transport: records without a provider/region/model key (the
OpenTelemetry Collector's Kafka exporter writes none) are judged by the one member that owns
each key, never by whichever member they landed on."""

import orjson
import pytest

from collector_support import EAST, WEST, traffic

from brownout import codec
from brownout import semconv as sc
from brownout.breakers import ControlRecord
from brownout.collector.rekey import HEADER_REKEYED, is_keyed
from brownout.collector.service import Collector
from brownout.collector.state import StateKeeper
from brownout.endpoints import RegionMap
from brownout.model import Event
from brownout.pipeline import Pipeline
from brownout.transport import MemoryTransport
from brownout.transport.base import DeliveryError

PROTO = ((sc.HEADER_CONTENT_TYPE, sc.CONTENT_OTLP_PROTO.encode()),)


async def send_unkeyed(t, events, per_record=20, topic=sc.TOPIC_EVENTS):
    """As an OTel Collector batches spans: several keys per record, keyed by a trace id or not at all."""
    p = t.producer()
    for n, i in enumerate(range(0, len(events), per_record)):
        key = None if n % 3 == 0 else f"{n:032x}".encode()  # unkeyed, or keyed by trace id
        await p.send(topic, codec.encode_otlp_proto(events[i:i + per_record]), key=key, headers=PROTO)


async def started(**kw):
    """A collector alone in its group on a fresh in-memory broker, its clock at 2000."""
    t = MemoryTransport()
    c = Collector(t, clock=lambda: 2000.0, **kw)
    await c.start()
    return t, c


def member(t, clock, decisions, **kw):
    p = Pipeline()
    return Collector(t, p, clock=clock, on_decision=[decisions.append], group_id="g",
                     state=StateKeeper(p, sc.TOPIC_STATE, interval=60.0), **kw)


@pytest.mark.parametrize("key,keyed", [
    (b"openai/eastus/gpt-4o", True), (b"azure.ai.openai/swedencentral/org/model", True),
    (None, False), (b"", False), (b"4bf92f3577b34da6a3ce929d0e0e4736", False), (b"a/b", False),
    (b"/eastus/gpt-4o", False), (b"openai//gpt-4o", False), (b"openai/eastus/", False)])
def test_only_provider_region_model_keys_count_as_keyed(key, keyed):
    assert is_keyed(key) is keyed


async def test_two_members_judge_each_key_once_whatever_partition_its_records_landed_on():
    t = MemoryTransport(default_partitions=4)
    now = [1605.0]
    seen_a, seen_b = [], []
    a, b = member(t, lambda: now[0], seen_a), member(t, lambda: now[0], seen_b)
    await a.start()
    await b.start()
    events = traffic(1000.0, 600) + traffic(1600.0, 60, degraded=True)
    await send_unkeyed(t, events)
    assert len({r.partition for r in t.records(sc.TOPIC_EVENTS)}) > 1  # the spread that broke scale-out
    for _ in range(30):
        now[0] += 5.0
        await a.poll_once(timeout=0.0)
        await b.poll_once(timeout=0.0)
    opened = [(d.key, who) for who, seen in (("a", seen_a), ("b", seen_b))
              for d in seen if d.kind == "breaker" and d.state == "open"]
    assert [k for k, _ in opened] == [EAST]  # once, by one member, for the right key
    owner, other = (a, b) if opened[0][1] == "a" else (b, a)
    assert EAST in owner.pipeline.status() and EAST not in other.pipeline.status()
    assert owner.counts["events:accepted"] + other.counts["events:accepted"] == len(events)
    assert a.counts["rekeyed:events"] + b.counts["rekeyed:events"] == len(events)
    # every control record of EAST comes from the owner's book: one seq sequence, no alternation
    seqs = [r.seq for r in map(ControlRecord.from_bytes, (x.value for x in t.records(sc.TOPIC_CONTROL)))
            if r.key == EAST]
    assert seqs == sorted(seqs) and len(seqs) >= 1
    # the republished records sit on their key's partition, naming their source record
    rekeyed = [r for r in t.records(sc.TOPIC_EVENTS) if r.header(HEADER_REKEYED)]
    assert {r.key for r in rekeyed} == {str(EAST).encode(), str(WEST).encode()}
    for r in rekeyed:
        assert r.partition == a._consumer.partition_of(sc.TOPIC_EVENTS, r.key)
        assert r.header(sc.HEADER_CONTENT_TYPE) == sc.CONTENT_FLAT_JSON.encode()


async def test_keyed_records_are_judged_where_they_land_and_never_republished():
    t, c = await started()
    await t.producer().send(sc.TOPIC_EVENTS, codec.encode_otlp_proto([Event(EAST, 1990.0, 1.0)]),
                            key=str(EAST).encode(), headers=PROTO)
    await c.poll_once(timeout=0.0)
    assert len(t.records(sc.TOPIC_EVENTS)) == 1
    assert c.counts["events:accepted"] == 1 and c.counts["rekeyed:events"] == 0


async def test_a_keyed_topic_takes_the_republished_records_and_is_consumed_too():
    t, c = await started(events_topic="otlp_spans", keyed_topic="brownout.keyed")
    await send_unkeyed(t, [Event(EAST, 1990.0, 1.0), Event(WEST, 1991.0, 1.0)], topic="otlp_spans")
    await c.poll_once(timeout=0.0)
    assert len(t.records("otlp_spans")) == 1  # the source topic is not written to
    assert sorted(r.key for r in t.records("brownout.keyed")) == [str(EAST).encode(), str(WEST).encode()]
    await c.poll_once(timeout=0.0)
    assert c.counts["events:accepted"] == 2


async def test_bad_spans_of_an_unkeyed_record_are_dead_lettered_and_its_good_ones_republished():
    t, c = await started()
    good = codec.encode_otlp_json([Event(EAST, 1990.0, 1.0)])
    bad = good.replace(b'"gen_ai.provider.name"', b'"no.provider"')
    await t.producer().send(sc.TOPIC_EVENTS, good + b"\n" + bad, key=None)  # two OTLP JSON lines
    await c.poll_once(timeout=0.0)
    [dead] = t.records(sc.TOPIC_DEAD_LETTER)
    assert dead.header(sc.HEADER_REASON) == b"missing_attribute" and dead.key is None
    assert c.counts["rekeyed:events"] == 1
    await c.poll_once(timeout=0.0)
    assert c.counts["events:accepted"] == 1 and c.counts["events:invalid"] == 1


async def test_spans_without_a_region_get_one_and_are_rekeyed_under_it():
    t, c = await started(regions=RegionMap({"myres": "swedencentral"}, default="eastus"))
    flat = [{"start": 1990.0, "duration": 1.0, "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
             "server.address": host} for host in ("myres.openai.azure.com", "api.openai.com")]
    await t.producer().send(sc.TOPIC_EVENTS, b"\n".join(orjson.dumps(f) for f in flat))  # no content type
    await c.poll_once(timeout=0.0)
    assert sorted(r.key for r in t.records(sc.TOPIC_EVENTS) if r.key) == [
        b"azure.ai.openai/swedencentral/gpt-4o", b"openai/eastus/gpt-4o"]


class FailingFlush:
    """A producer whose records never become durable."""

    def __init__(self, inner):
        self.inner = inner

    async def start(self):
        await self.inner.start()

    async def send(self, *args, **kwargs):
        await self.inner.send(*args, **kwargs)

    async def flush(self):
        raise DeliveryError("broker gone")

    async def stop(self):
        await self.inner.stop()


async def test_the_source_offset_is_committed_only_after_the_republished_records_are_flushed():
    t, c = await started(group_id="g")
    c._producer = FailingFlush(c._producer)
    await send_unkeyed(t, [Event(EAST, 1990.0, 1.0)])
    with pytest.raises(DeliveryError):
        await c.poll_once(timeout=0.0)
    # the collector dies here; its replacement reads the source record again (at least once)
    again = Collector(t, clock=lambda: 2000.0, group_id="g")
    await again.start()
    await again.poll_once(timeout=0.0)
    assert again.counts["rekeyed:records"] == 1


async def test_events_too_far_from_now_are_dead_lettered_where_read_not_republished():
    t, c = await started()
    await send_unkeyed(t, [Event(EAST, 1990.0, 1.0), Event(WEST, 1e9, 1.0)])  # the second: 2001, far ahead
    await c.poll_once(timeout=0.0)
    [dead] = t.records(sc.TOPIC_DEAD_LETTER)
    assert dead.header(sc.HEADER_REASON) == b"bad_timestamp" and dead.value == t.records(sc.TOPIC_EVENTS)[0].value
    assert [r.key for r in t.records(sc.TOPIC_EVENTS) if r.header(HEADER_REKEYED)] == [str(EAST).encode()]
