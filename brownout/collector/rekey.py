"""Re-keying: records without a ``provider/region/model`` key are split per key and republished keyed.

The OpenTelemetry Collector's Kafka exporter writes records with no key (or keyed by trace id),
so one key's spans land on every partition and each collector of a group would judge a part of
it. The collector that reads such a record does not judge it: it republishes its events, one
record per key (flat JSON lines, the ``brownout-rekeyed`` header naming the source record), to the
keyed topic (the events topic itself by default), where they land on the key's partition and its
one owner judges them. The source offset is committed only after the republished records are
flushed (the collector's poll does both, in that order): at least once.

>>> is_keyed(b"openai/eastus/gpt-4o"), is_keyed(None), is_keyed(b"4bf92f3577b34da6a3ce929d0e0e4736")
(True, False, False)
>>> import asyncio
>>> from brownout.model import Event, Key
>>> from brownout.transport import MemoryTransport
>>> from brownout.transport.base import Record
>>> t = MemoryTransport(); p = t.producer()
>>> evs = [Event(Key("openai", r, "gpt-4o"), 100.0, 1.0) for r in ("eastus", "westus", "eastus")]
>>> asyncio.run(Rekeyer("brownout.events").republish(p, Record("brownout.events", None, b"...", offset=7), evs))
2
>>> [(r.key, r.header("brownout-rekeyed")) for r in t.records("brownout.events")]
[(b'openai/eastus/gpt-4o', b'brownout.events/0/7'), (b'openai/westus/gpt-4o', b'brownout.events/0/7')]
"""

from __future__ import annotations

from typing import Any, Iterable

from brownout import codec
from brownout import semconv as sc
from brownout.model import Event, Key
from brownout.transport.base import Record

__all__ = ["HEADER_REKEYED", "Rekeyer", "is_keyed"]

#: Header of a republished record: ``topic/partition/offset`` of the unkeyed record it came from.
HEADER_REKEYED = "brownout-rekeyed"
_FLAT = sc.CONTENT_FLAT_JSON.encode()


def is_keyed(key: bytes | None) -> bool:
    """True for a record key of the form ``provider/region/model`` (three non-empty parts)."""
    if not key:
        return False
    first = key.find(b"/")
    if first <= 0:
        return False
    second = key.find(b"/", first + 1)
    return first + 1 < second < len(key) - 1


class Rekeyer:
    """Republishes events keyed by ``provider/region/model`` to ``topic``, one record per key."""

    def __init__(self, topic: str) -> None:
        self.topic = topic

    async def republish(self, producer: Any, source: Record, events: Iterable[Event]) -> int:
        """Queue one record per key on ``producer`` (durable once it is flushed); return how many."""
        groups: dict[Key, list[Event]] = {}
        for ev in events:
            groups.setdefault(ev.key, []).append(ev)
        headers = ((sc.HEADER_CONTENT_TYPE, _FLAT),
                   (HEADER_REKEYED, f"{source.topic}/{source.partition}/{source.offset}".encode()))
        for key, evs in groups.items():
            await producer.send(self.topic, codec.encode_flat(evs), key=str(key).encode(), headers=headers)
        return len(groups)
