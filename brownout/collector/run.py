"""Wire a collector for production: Kafka transport, pipeline, metrics server, notifiers,
signals. ``brownout collect`` calls :func:`run_collector`."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

from brownout.collector.service import Collector
from brownout.collector.settings import Settings
from brownout.pipeline import Pipeline
from brownout.transport.base import default_topics

log = logging.getLogger("brownout.collector")


async def run_collector(settings: Settings, rules: Any, *, create_topics: bool = True,
                        transport: Any = None, stop: asyncio.Event | None = None) -> Collector:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); returns the stopped collector."""
    from brownout.transport import KafkaTransport

    transport = transport or KafkaTransport(settings.kafka_settings())
    t = settings.topics
    if create_topics:
        created = await transport.create_topics(default_topics(
            t.events, t.control, t.state, t.dead_letter, partitions=settings.kafka.partitions,
            replication=settings.kafka.replication_factor, retention_hours=settings.kafka.retention_hours))
        if created:
            log.info("created topics: %s", ", ".join(created))
    signer = _signer(settings)
    pipeline = Pipeline(rules, signer=signer)
    collector = Collector(transport, pipeline, events_topic=t.events, control_topic=t.control,
                          dead_letter_topic=t.dead_letter, group_id=settings.group_id,
                          batch_size=settings.batch_size)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    await _restore_breakers(transport, t.control, pipeline)
    await collector.start()
    try:
        await collector.run(stop)
    finally:
        await collector.stop()
    return collector


async def _restore_breakers(transport: Any, topic: str, pipeline: Pipeline) -> None:
    """Seed the breakers from the control topic so a restart announces nothing old as new."""
    from brownout.breakers import AsyncBreakerBoard

    board = AsyncBreakerBoard(transport, topic, registry=None)
    await board.start()
    try:
        records = list(board.records().values())
    finally:
        await board.stop()
    pipeline.book.restore_from_records(records)
    log.info("restored %d breaker records from %s", len(records), topic)


def _signer(settings: Settings) -> Any:
    key = settings.secret(os.environ, "SIGNING_KEY", settings.signing.key_file)
    if not key:
        return None
    from brownout.breakers.record import Signer

    return Signer(key.encode())
