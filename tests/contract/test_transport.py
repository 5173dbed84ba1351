"""The transport contract: every implementation (MemoryTransport, KafkaTransport on a real
broker) keeps the same promises. Kafka cases are marked ``integration``; the test command starts
the broker, so they run everywhere and are never skipped.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from typing import Any, Callable, Iterator, Sequence

import pytest

from brownout.transport import (Consumer, DeliveryError, MemoryTransport, Record, TopicSpec, Transport, caught_up,
                                default_topics)

SAFETY_NET_S = 60.0  # only stops a broken implementation from hanging the suite; never asserted on


class Case:
    """One implementation under test, with the broker-side look-ups the interface does not offer."""

    name: str
    transport: Transport

    async def topic_config(self, topic: str) -> dict[str, str]:
        raise NotImplementedError


class MemoryCase(Case):
    name = "memory"

    def __init__(self) -> None:
        self.transport = MemoryTransport()

    async def topic_config(self, topic: str) -> dict[str, str]:
        assert isinstance(self.transport, MemoryTransport)
        return self.transport.topic_config(topic)


class KafkaCase(Case):
    name = "kafka"

    def __init__(self, bootstrap: str) -> None:
        from brownout.transport import KafkaTransport

        self.bootstrap = bootstrap
        self.transport = KafkaTransport(bootstrap)

    async def topic_config(self, topic: str) -> dict[str, str]:
        """The topic's configuration as the broker reports it (DescribeConfigs)."""
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        finally:
            await admin.close()
        out: dict[str, str] = {}
        for resp in responses:
            for error_code, error_message, _type, name, entries in resp.resources:
                assert error_code == 0, f"DescribeConfigs({name}) failed: {error_code} {error_message}"
                for entry in entries:
                    out[entry[0]] = entry[1]
        return out


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.integration)])
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    if request.param == "memory":
        yield MemoryCase()
    else:
        yield KafkaCase(request.getfixturevalue("kafka_bootstrap"))


def group() -> str:
    return f"test-group-{uuid.uuid4().hex[:10]}"


async def create(case: Case, name: str, partitions: int = 1, **config: str) -> str:
    created = await case.transport.create_topics([TopicSpec(name, partitions, 1, dict(config))])
    assert created == [name]
    return name


async def produce(case: Case, topic: str, records: Sequence[tuple[bytes | None, bytes | None, Any]]) -> None:
    producer = case.transport.producer()
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send(topic, value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


async def drain(consumer: Consumer, want: int, max_records: int = 1000,
                batches: list[int] | None = None) -> list[Record]:
    """Read until ``want`` records arrived (or the safety net); record each batch's size."""
    out: list[Record] = []
    deadline = time.monotonic() + SAFETY_NET_S
    while len(out) < want and time.monotonic() < deadline:
        got = await consumer.getmany(timeout=0.5, max_records=max_records)
        if got and batches is not None:
            batches.append(len(got))
        out.extend(got)
    return out


async def started(consumer: Consumer) -> Consumer:
    await consumer.start()
    return consumer


async def test_create_topics_applies_policies_once(case: Case, topic_name: Callable[[str], str]) -> None:
    specs = default_topics(events=topic_name("events"), control=topic_name("control"),
                           state=topic_name("state"), dead_letter=topic_name("dlq"), partitions=3)

    created = await case.transport.create_topics(specs)
    again = await case.transport.create_topics(specs)

    assert sorted(created) == sorted(s.name for s in specs)
    assert again == []
    for spec in specs:
        config = await case.topic_config(spec.name)
        for key, value in spec.config.items():
            assert config.get(key) == value, f"{spec.name}: {key}"
    assert (await case.topic_config(specs[1].name))["cleanup.policy"] == "compact"
    consumer = await started(case.transport.consumer([specs[0].name, specs[1].name]))
    try:
        ends = await consumer.end_offsets()
    finally:
        await consumer.stop()
    assert sorted(ends) == sorted([(specs[0].name, p) for p in range(3)] + [(specs[1].name, 0)])
    assert set(ends.values()) == {0}


async def test_keys_headers_and_per_key_order_survive_the_round_trip(
        case: Case, topic_name: Callable[[str], str]) -> None:
    topic = await create(case, topic_name("events"), partitions=3)
    sent = [(f"openai/eastus/gpt-{i % 4}".encode(), f"v{i}".encode(),
             (("content-type", b"application/x-protobuf"), ("seq", str(i).encode())))
            for i in range(40)]
    consumer = await started(case.transport.consumer([topic], group_id=group(), from_beginning=True))
    try:
        await produce(case, topic, sent)
        got = await drain(consumer, len(sent))
    finally:
        await consumer.stop()

    assert len(got) == len(sent)
    assert all(r.topic == topic for r in got)
    by_key: dict[bytes | None, list[Record]] = defaultdict(list)
    for r in got:
        by_key[r.key].append(r)
    for key, value, headers in sent:
        assert any(r.value == value and r.headers == headers for r in by_key[key])
    for key, recs in by_key.items():
        expected = [v for k, v, _ in sent if k == key]
        assert [r.value for r in recs] == expected, f"order broken for {key!r}"
        assert len({r.partition for r in recs}) == 1, f"{key!r} spread over partitions"
        offsets = [r.offset for r in recs]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
        assert all(r.timestamp_ms is not None and r.timestamp_ms > 0 for r in recs)
    assert got[0].header("content-type") == b"application/x-protobuf"


async def test_tombstones_on_a_compacted_topic(case: Case, topic_name: Callable[[str], str]) -> None:
    topic = await create(case, topic_name("control"), **{"cleanup.policy": "compact"})
    consumer = await started(case.transport.consumer([topic], from_beginning=True))
    try:
        await produce(case, topic, [(b"openai/eastus/gpt-4o", b"{}", ()), (b"openai/eastus/gpt-4o", None, ())])
        got = await drain(consumer, 2)
    finally:
        await consumer.stop()
    assert [(r.key, r.value) for r in got] == [(b"openai/eastus/gpt-4o", b"{}"), (b"openai/eastus/gpt-4o", None)]


async def test_keyless_records_go_to_delete_topics_only(case: Case, topic_name: Callable[[str], str]) -> None:
    events = await create(case, topic_name("events"), **{"cleanup.policy": "delete"})
    control = await create(case, topic_name("control"), **{"cleanup.policy": "compact"})
    await produce(case, events, [(None, b"no key", ())])
    consumer = await started(case.transport.consumer([events], from_beginning=True))
    try:
        got = await drain(consumer, 1)
    finally:
        await consumer.stop()
    assert [(r.key, r.value) for r in got] == [(None, b"no key")]

    with pytest.raises(DeliveryError, match=control):
        await produce(case, control, [(None, b"no key", ())])


async def test_batches_respect_max_records(case: Case, topic_name: Callable[[str], str]) -> None:
    topic = await create(case, topic_name("events"))
    await produce(case, topic, [(b"k", str(i).encode(), ()) for i in range(25)])
    consumer = await started(case.transport.consumer([topic], group_id=group(), from_beginning=True))
    sizes: list[int] = []
    try:
        got = await drain(consumer, 25, max_records=7, batches=sizes)
    finally:
        await consumer.stop()
    assert [r.value for r in got] == [str(i).encode() for i in range(25)]
    assert sizes and max(sizes) <= 7


async def test_getmany_returns_empty_when_nothing_arrives(case: Case, topic_name: Callable[[str], str]) -> None:
    topic = await create(case, topic_name("events"))
    consumer = await started(case.transport.consumer([topic], group_id=group(), from_beginning=True))
    try:
        assert await consumer.getmany(timeout=0.2) == []
    finally:
        await consumer.stop()


async def test_a_new_member_resumes_after_the_commit_and_gets_uncommitted_records_again(
        case: Case, topic_name: Callable[[str], str]) -> None:
    topic = await create(case, topic_name("events"))
    gid = group()
    await produce(case, topic, [(b"k", str(i).encode(), ()) for i in range(12)])

    first = await started(case.transport.consumer([topic], group_id=gid, from_beginning=True))
    try:
        processed = await drain(first, 4, max_records=4)
        await first.commit()
        unprocessed = await drain(first, 12 - len(processed))  # read, then crash before committing
    finally:
        await first.stop()
    assert len(processed) + len(unprocessed) == 12

    second = await started(case.transport.consumer([topic], group_id=gid, from_beginning=True))
    try:
        redelivered = await drain(second, len(unprocessed))
        await second.commit()
    finally:
        await second.stop()
    assert [r.offset for r in redelivered] == [r.offset for r in unprocessed]
    assert [r.value for r in redelivered] == [r.value for r in unprocessed]

    third = await started(case.transport.consumer([topic], group_id=gid, from_beginning=True))
    try:
        assert await third.positions() == {(topic, 0): 12}
        assert await third.getmany(timeout=0.2) == []
    finally:
        await third.stop()


async def test_commit_without_a_group_is_a_no_op(case: Case, topic_name: Callable[[str], str]) -> None:
    topic = await create(case, topic_name("events"))
    await produce(case, topic, [(b"k", b"v", ())])
    consumer = await started(case.transport.consumer([topic], from_beginning=True))
    try:
        assert len(await drain(consumer, 1)) == 1
        await consumer.commit()
    finally:
        await consumer.stop()


async def test_end_offsets_and_positions_tell_when_caught_up(case: Case, topic_name: Callable[[str], str]) -> None:
    topic = await create(case, topic_name("control"), partitions=2)
    await produce(case, topic, [(f"key-{i}".encode(), b"x", ()) for i in range(9)])
    consumer = await started(case.transport.consumer([topic], group_id=group(), from_beginning=True))
    try:
        targets = await consumer.end_offsets()
        before = await consumer.positions()
        behind = await caught_up(consumer, targets)
        got = await drain(consumer, 9)
        after = await consumer.positions()
        done = await caught_up(consumer, targets)
    finally:
        await consumer.stop()
    assert sorted(targets) == [(topic, 0), (topic, 1)]
    assert sum(targets.values()) == 9
    assert before == {(topic, 0): 0, (topic, 1): 0}
    assert not behind
    assert len(got) == 9
    assert after == targets
    assert done


async def test_latest_sees_only_records_produced_after_start(case: Case, topic_name: Callable[[str], str]) -> None:
    topic = await create(case, topic_name("events"))
    await produce(case, topic, [(b"k", b"old-1", ()), (b"k", b"old-2", ())])
    latest = await started(case.transport.consumer([topic], group_id=group(), from_beginning=False))
    earliest = await started(case.transport.consumer([topic], group_id=group(), from_beginning=True))
    try:
        await produce(case, topic, [(b"k", b"new-1", ())])
        from_latest = await drain(latest, 1)
        from_earliest = await drain(earliest, 3)
        positions = await latest.positions()
    finally:
        await latest.stop()
        await earliest.stop()
    assert [r.value for r in from_latest] == [b"new-1"]
    assert positions == {(topic, 0): 3}
    assert [r.value for r in from_earliest] == [b"old-1", b"old-2", b"new-1"]


async def test_a_committed_offset_wins_over_from_beginning(case: Case, topic_name: Callable[[str], str]) -> None:
    topic = await create(case, topic_name("events"))
    gid = group()
    await produce(case, topic, [(b"k", b"a", ()), (b"k", b"b", ())])
    first = await started(case.transport.consumer([topic], group_id=gid, from_beginning=False))
    try:
        await produce(case, topic, [(b"k", b"c", ())])
        assert [r.value for r in await drain(first, 1)] == [b"c"]
        await first.commit()
    finally:
        await first.stop()
    await produce(case, topic, [(b"k", b"d", ())])
    second = await started(case.transport.consumer([topic], group_id=gid, from_beginning=True))
    try:
        assert [r.value for r in await drain(second, 1)] == [b"d"]
    finally:
        await second.stop()


async def test_stop_delivers_what_was_sent_and_is_idempotent(case: Case, topic_name: Callable[[str], str]) -> None:
    topic = await create(case, topic_name("events"))
    producer = case.transport.producer()
    await producer.start()
    for i in range(5):
        await producer.send(topic, str(i).encode(), key=b"k")
    await producer.stop()  # no explicit flush: stop must deliver what was queued
    await producer.stop()

    consumer = await started(case.transport.consumer([topic], from_beginning=True))
    got = await drain(consumer, 5)
    await consumer.stop()
    await consumer.stop()
    assert [r.value for r in got] == [str(i).encode() for i in range(5)]


async def test_stopping_clients_that_never_started_is_harmless(case: Case, topic_name: Callable[[str], str]) -> None:
    topic = await create(case, topic_name("events"))
    await case.transport.producer().stop()
    await case.transport.consumer([topic], group_id=group()).stop()
