"""Events from the events topic over a time range, for reports: Kafka offsets by timestamp.

Each partition is read from the first offset whose record timestamp is at least ``start -
slack`` (``offsets_for_times``) until a record stamped after ``end + slack`` or the end offset
seen at the start; records are decoded as the collector decodes them, and events whose start
falls in ``[start, end]`` are kept. The slack covers hooks that publish in batches a little
after a call ends. No consumer group: nothing is committed, the collectors are not disturbed.
"""

from __future__ import annotations

import collections
from typing import Any

from brownout import codec
from brownout import semconv as sc
from brownout.model import Event

__all__ = ["read_topic_range"]


async def read_topic_range(settings: Any, topic: str, start: float, end: float, *, slack: float = 300.0,
                           poll_timeout: float = 1.0,
                           max_idle_polls: int = 5) -> tuple[list[Event], collections.Counter[str]]:
    """Events of ``topic`` with ``start <= event.start <= end`` (``settings``: a
    :class:`~brownout.transport.kafka.KafkaSettings`), ordered by start, and counts of
    ``records``, ``events``, ``invalid`` and ``out_of_range``."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    if end < start:
        raise ValueError(f"the range ends ({end}) before it starts ({start})")
    counts: collections.Counter[str] = collections.Counter()
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:  # asked first: a consumer's metadata request could make the broker create the topic
        known = set(await admin.list_topics())
    finally:
        await admin.close()
    if topic not in known:
        raise ValueError(f"topic {topic!r} does not exist")
    # no group: every partition of the topic is assigned at start, nothing is ever committed
    consumer = AIOKafkaConsumer(topic, **settings.client_kwargs(), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = sorted(consumer.assignment())
        begin = await consumer.offsets_for_times({tp: max(0, int((start - slack) * 1000)) for tp in tps})
        ends = await consumer.end_offsets(tps)
        todo = set()
        for tp in tps:
            found = begin.get(tp)
            if found is None or found.offset >= ends[tp]:
                continue  # nothing stamped at or after the start in this partition
            consumer.seek(tp, found.offset)
            todo.add(tp)
        stop_ms = (end + slack) * 1000
        events: list[Event] = []
        idle = 0
        while todo and idle < max_idle_polls:
            batches = await consumer.getmany(*todo, timeout_ms=int(poll_timeout * 1000), max_records=5000)
            idle = 0 if batches else idle + 1
            for tp, msgs in batches.items():
                for m in msgs:
                    if tp not in todo:
                        break
                    if m.offset >= ends[tp] or (m.timestamp is not None and m.timestamp > stop_ms):
                        todo.discard(tp)
                        break
                    counts["records"] += 1
                    ctype = dict(m.headers or ()).get(sc.HEADER_CONTENT_TYPE)
                    for item in codec.decode(m.value or b"", ctype.decode("latin-1") if ctype else None):
                        if isinstance(item, Event):
                            if start <= item.start <= end:
                                events.append(item)
                                counts["events"] += 1
                            else:
                                counts["out_of_range"] += 1
                        elif item is not None:
                            counts["invalid"] += 1
                if tp in todo and await consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)
    finally:
        await consumer.stop()
    events.sort(key=lambda e: e.start)
    return events, counts
