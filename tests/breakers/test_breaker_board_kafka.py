"""The board on a real broker: rebuild from a compacted control topic, follow, signed records."""

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from brownout.breakers import AsyncBreakerBoard, BreakerBook, BreakerConfig, Signer
from brownout.model import Event, Finding, Key
from brownout.transport import TopicSpec, default_topics

pytestmark = pytest.mark.integration

A = Key("openai", "eastus", "gpt-4o")
B = Key("azure.ai.openai", "swedencentral", "gpt-4o")


async def test_board_rebuilds_and_follows_on_kafka(kafka_transport, topic_name):
    control = default_topics()[1]
    topic = topic_name("control")
    await kafka_transport.create_topics([TopicSpec(topic, control.partitions, 1, control.config)])
    signer = Signer(b"k")
    book = BreakerBook(BreakerConfig(jitter=0.0), signer=signer)
    for k in (A, B):
        book.observe(Event(k, 0.0, 1.0))
    book.on_finding(Finding(100.0, "error_breaker", A, "trip", 0.4, 0.01, action="breaker"))
    book.advance(100.0)
    producer = kafka_transport.producer()
    await producer.start()
    try:
        assert await book.publish(producer, 100.0, topic) == 1
        board = AsyncBreakerBoard(kafka_transport, topic, [b"k"], clock=lambda: 110.0,
                                  registry=CollectorRegistry(), poll_timeout=0.1)
        await board.start(timeout=30.0)
        try:
            assert board.state(A) == "open"  # rebuilt from the topic
            book.advance(130.0)
            assert await book.publish(producer, 110.0, topic) == 1
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while board.state(A) != "half_open":
                assert loop.time() < deadline, "the board did not follow the topic"
                await asyncio.sleep(0.02)
        finally:
            await board.stop()
    finally:
        await producer.stop()


def test_control_tail_reads_kafka(kafka_bootstrap, kafka_transport, topic_name):
    from click.testing import CliRunner

    from brownout.breakers.cli import control_group

    topic = topic_name("control")
    control = default_topics()[1]

    async def seed():
        await kafka_transport.create_topics([TopicSpec(topic, 1, 1, control.config)])
        book = BreakerBook(BreakerConfig(jitter=0.0))
        for k in (A, B):
            book.observe(Event(k, 0.0, 1.0))
        book.on_finding(Finding(100.0, "error_breaker", A, "trip", 0.4, 0.01, action="breaker"))
        book.advance(100.0)
        producer = kafka_transport.producer()
        await producer.start()
        try:
            await book.publish(producer, 100.0, topic)
        finally:
            await producer.stop()

    asyncio.run(seed())
    result = CliRunner().invoke(control_group(), ["tail", "--once", "--topic", topic,
                                                  "--bootstrap-servers", kafka_bootstrap])
    assert result.exit_code == 0, result.output
    assert [ln.split()[:2] for ln in result.output.splitlines()[1:]] == [[str(A), "open"]]
