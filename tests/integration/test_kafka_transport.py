"""Kafka-only behaviour the contract suite cannot express with one in-process member, and the
throwaway broker itself (scripts/kafka_broker.py)."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from typing import Callable

import pytest
from support import kafka_broker_module

from brownout.transport import (
    DeliveryError,
    KafkaSettings,
    KafkaTransport,
    Record,
    TopicSpec,
)

kb = kafka_broker_module()


def test_settings_never_show_the_password() -> None:
    settings = KafkaSettings("broker:9093", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                             sasl_username="brownout", sasl_password="s3cret-value")
    assert "s3cret-value" not in repr(settings)
    assert "s3cret-value" not in str(settings)
    assert settings.client_kwargs()["sasl_plain_password"] == "s3cret-value"


@pytest.mark.integration
async def test_members_of_one_group_split_the_partitions_and_see_each_record_once(
        kafka_bootstrap: str, topic_name: Callable[[str], str]) -> None:
    transport = KafkaTransport(kafka_bootstrap)
    topic = topic_name("events")
    await transport.create_topics([TopicSpec(topic, partitions=4)])
    gid = f"test-group-{uuid.uuid4().hex[:10]}"
    first = transport.consumer([topic], group_id=gid, from_beginning=True)
    second = transport.consumer([topic], group_id=gid, from_beginning=True)
    await first.start()
    await second.start()
    try:
        # The second join rebalances the first; poll both until the split is settled.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            await asyncio.gather(first.getmany(timeout=0.1), second.getmany(timeout=0.1))
            a, b = set(await first.positions()), set(await second.positions())
            if a and b and not a & b and len(a | b) == 4:
                break
        producer = transport.producer()
        await producer.start()
        for i in range(40):
            await producer.send(topic, str(i).encode(), key=f"openai/region-{i % 8}/gpt-4o".encode())
        await producer.stop()

        got: dict[str, list[Record]] = {"first": [], "second": []}
        deadline = time.monotonic() + 60
        while sum(map(len, got.values())) < 40 and time.monotonic() < deadline:
            r1, r2 = await asyncio.gather(first.getmany(timeout=0.2), second.getmany(timeout=0.2))
            got["first"] += r1
            got["second"] += r2
    finally:
        await first.stop()
        await second.stop()

    assert a and b and not a & b and len(a | b) == 4
    values = sorted(int(r.value or b"") for recs in got.values() for r in recs)
    assert values == list(range(40))
    assert {r.partition for r in got["first"]} <= {p for _, p in a}
    assert {r.partition for r in got["second"]} <= {p for _, p in b}


@pytest.mark.integration
async def test_producing_to_a_topic_nobody_created_fails_instead_of_creating_it(
        kafka_bootstrap: str, topic_name: Callable[[str], str]) -> None:
    """The test broker, like most production clusters, does not auto-create topics."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("an external broker (KAFKA_BOOTSTRAP_SERVERS) may auto-create topics")
    transport = KafkaTransport(kafka_bootstrap)
    producer = transport.producer(request_timeout_ms=2000)
    missing = topic_name("missing")
    await producer.start()
    try:
        with pytest.raises(DeliveryError, match=missing):
            await producer.send(missing, b"v", key=b"k")
            await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.integration
def test_a_broker_starts_on_free_ports_and_stops_without_leftovers() -> None:
    broker = kb.KafkaBroker()
    with broker:
        host, port = broker.bootstrap_servers.split(":")
        listed = kb.metadata_brokers(host, int(port))
        workdir = broker.workdir
        assert workdir is not None and (workdir / "kafka.log").exists()
    assert listed == [(1, "127.0.0.1", int(port))]
    assert not workdir.exists()
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=1).close()


@pytest.mark.integration
def test_a_broker_that_cannot_start_raises_with_its_log() -> None:
    broker = kb.KafkaBroker(config={"process.roles": "no-such-role"})
    with pytest.raises(kb.BrokerError, match="no-such-role"):
        broker.start()
    assert broker.proc is None and broker.workdir is None


@pytest.mark.integration
def test_a_taken_port_is_reported_not_hidden() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = kb.KafkaBroker(port=port)
        with pytest.raises(kb.BrokerError, match="Address already in use"):
            broker.start()
    assert broker.proc is None and broker.workdir is None
