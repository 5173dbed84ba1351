"""The hooks' exporter on a real Kafka broker: keyed OTLP protobuf records on the events topic."""

from __future__ import annotations

import pytest

import brownout.hooks as hooks
from brownout import semconv as sc
from brownout.codec import decode
from brownout.model import Event, Key
from brownout.transport import TopicSpec

pytestmark = pytest.mark.integration


async def test_events_reach_kafka_keyed_by_provider_region_model(kafka_bootstrap, kafka_transport, topic_name):
    topic = topic_name("events")
    await kafka_transport.create_topics([TopicSpec(topic, partitions=3)])
    hooks.configure(bootstrap_servers=kafka_bootstrap, topic=topic, interval=0.05)
    try:
        for model in ("gpt-4o", "gpt-4o-mini", "gpt-4o"):
            with hooks.observe(provider="openai", region="eastus", model=model, stream=True) as call:
                call.chunk()
                call.chunk()
                call.usage(5, 2)
        with pytest.raises(TimeoutError):
            with hooks.observe(provider="anthropic", region="us-east-1", model="claude-sonnet-4"):
                raise TimeoutError()
        assert hooks.flush(30.0)
        assert hooks.stats()["sent"] == 4 and hooks.stats()["errors"] == 0
    finally:
        hooks.configure()

    consumer = kafka_transport.consumer([topic], group_id=None, from_beginning=True)
    await consumer.start()
    try:
        records = []
        for _ in range(50):
            records += await consumer.getmany(timeout=0.5)
            if sum(len(decode(r.value, sc.CONTENT_OTLP_PROTO)) for r in records) >= 4:
                break
    finally:
        await consumer.stop()
    events = []
    for rec in records:
        assert rec.header(sc.HEADER_CONTENT_TYPE) == sc.CONTENT_OTLP_PROTO.encode()
        for ev in decode(rec.value, rec.header(sc.HEADER_CONTENT_TYPE).decode()):
            assert isinstance(ev, Event) and str(ev.key).encode() == rec.key
            events.append(ev)
    assert sorted(str(e.key) for e in events) == sorted(
        ["openai/eastus/gpt-4o", "openai/eastus/gpt-4o", "openai/eastus/gpt-4o-mini",
         "anthropic/us-east-1/claude-sonnet-4"])
    (failed,) = [e for e in events if e.key == Key("anthropic", "us-east-1", "claude-sonnet-4")]
    assert failed.error_type == "timeout"
