"""In-memory transport: Kafka's semantics (partitions by key, offsets, consumer groups,
commit after processing) inside one process. Safe to produce from other threads.

>>> import asyncio
>>> async def main():
...     t = MemoryTransport()
...     p = t.producer(); await p.start()
...     await p.send("events", b"v1", key=b"k")
...     c = t.consumer(["events"], group_id="g", from_beginning=True); await c.start()
...     recs = await c.getmany(timeout=0.1)
...     return [(r.key, r.value, r.offset) for r in recs]
>>> asyncio.run(main())
[(b'k', b'v1', 0)]
"""

from __future__ import annotations

import asyncio
import threading
import time
import zlib
from typing import Sequence

from brownout.transport.base import DeliveryError, Headers, RebalanceListener, Record, TopicPartitions, TopicSpec


class MemoryTransport:
    """A broker in a dict. ``default_partitions`` applies to topics created on first use."""

    def __init__(self, default_partitions: int = 1) -> None:
        self.default_partitions = default_partitions
        self._lock = threading.Lock()
        self._topics: dict[str, list[list[Record]]] = {}
        self._configs: dict[str, dict[str, str]] = {}
        self._committed: dict[tuple[str, str, int], int] = {}
        self._groups: dict[str, list[MemoryConsumer]] = {}

    # --- broker side ------------------------------------------------------------------
    def _partitions(self, topic: str) -> list[list[Record]]:
        parts = self._topics.get(topic)
        if parts is None:
            parts = self._topics[topic] = [[] for _ in range(self.default_partitions)]
        return parts

    def append(self, topic: str, value: bytes | None, key: bytes | None = None,
               headers: Headers = ()) -> Record:
        """Append a record now (what a producer's send does); thread-safe."""
        with self._lock:
            if key is None and "compact" in self._configs.get(topic, {}).get("cleanup.policy", "").split(","):
                raise DeliveryError(f"topic {topic!r} is compacted: a record needs a key")
            parts = self._partitions(topic)
            p = _partition(key, len(parts)) if key is not None else 0
            rec = Record(topic, key, value, tuple(headers), p, len(parts[p]), int(time.time() * 1000))
            parts[p].append(rec)
            return rec

    def records(self, topic: str) -> list[Record]:
        """Every record of a topic, partition by partition (for tests and tools)."""
        with self._lock:
            return [r for part in self._partitions(topic) for r in part]

    def topic_config(self, topic: str) -> dict[str, str]:
        return dict(self._configs.get(topic, {}))

    async def create_topics(self, specs: Sequence[TopicSpec]) -> list[str]:
        created = []
        with self._lock:
            for s in specs:
                if s.name not in self._topics:
                    self._topics[s.name] = [[] for _ in range(s.partitions)]
                    self._configs[s.name] = dict(s.config)
                    created.append(s.name)
        return created

    # --- clients ----------------------------------------------------------------------
    def producer(self) -> "MemoryProducer":
        return MemoryProducer(self)

    def consumer(self, topics: Sequence[str], group_id: str | None = None,
                 from_beginning: bool = False, listener: RebalanceListener | None = None) -> "MemoryConsumer":
        return MemoryConsumer(self, list(topics), group_id, from_beginning, listener)

    async def _rebalance(self, group: str) -> None:
        """Revoke every member's partitions, then deal them out again (partition i of a topic to
        the i-th member subscribed to it, in joining order) and tell each member."""
        members = list(self._groups.get(group, ()))
        for m in members:
            await m._revoke()
        shares: dict[MemoryConsumer, TopicPartitions] = {m: [] for m in members}
        with self._lock:
            topics = sorted({t for m in members for t in m._topics})
            for t in topics:
                subscribed = [m for m in members if t in m._topics]
                for p in range(len(self._partitions(t))):
                    shares[subscribed[p % len(subscribed)]].append((t, p))
        for m in members:
            await m._assign(shares[m])


def _partition(key: bytes, partitions: int) -> int:
    return zlib.crc32(key) % partitions


class MemoryProducer:
    def __init__(self, broker: MemoryTransport) -> None:
        self._broker = broker
        self.sent = 0

    async def start(self) -> None:
        pass

    async def send(self, topic: str, value: bytes | None, key: bytes | None = None,
                   headers: Headers = ()) -> None:
        self._broker.append(topic, value, key, headers)
        self.sent += 1

    async def flush(self) -> None:
        pass

    async def stop(self) -> None:
        pass


class MemoryConsumer:
    """Reads every partition of its topics. Members of one group that pass a ``listener`` split
    the partitions like Kafka's: one joining or leaving rebalances the others, and each hears
    of its partitions revoked and assigned. A member without a listener reads every partition
    (as the group's only member would)."""

    def __init__(self, broker: MemoryTransport, topics: list[str], group_id: str | None,
                 from_beginning: bool, listener: RebalanceListener | None = None) -> None:
        self._broker = broker
        self._topics = topics
        self._group = group_id
        self._from_beginning = from_beginning
        self._listener = listener
        self._pos: dict[tuple[str, int], int] = {}
        self._started = False

    async def start(self) -> None:
        b = self._broker
        if self._group is None or self._listener is None:
            with b._lock:
                self._position([(t, p) for t in self._topics for p in range(len(b._partitions(t)))])
            self._started = True
            return
        b._groups.setdefault(self._group, []).append(self)
        self._started = True
        await b._rebalance(self._group)

    def _position(self, parts: TopicPartitions) -> None:
        b = self._broker
        for t, p in parts:
            committed = b._committed.get((self._group, t, p)) if self._group else None
            if committed is not None:
                self._pos[(t, p)] = committed
            else:
                self._pos[(t, p)] = 0 if self._from_beginning else len(b._partitions(t)[p])

    async def _revoke(self) -> None:
        # as with Kafka, the member still holds its partitions while told (a commit there counts)
        parts = sorted(self._pos)
        if parts and self._listener is not None:
            await self._listener.on_revoked(parts)
        self._pos = {}

    async def _assign(self, parts: TopicPartitions) -> None:
        with self._broker._lock:
            self._position(parts)
        if self._listener is not None:
            await self._listener.on_assigned(list(parts))

    def partition_of(self, topic: str, key: bytes) -> int | None:
        with self._broker._lock:
            return _partition(key, len(self._broker._partitions(topic)))

    def _take(self, max_records: int) -> list[Record]:
        out: list[Record] = []
        b = self._broker
        with b._lock:
            for (t, p), pos in self._pos.items():
                part = b._partitions(t)[p]
                if pos < len(part):
                    chunk = part[pos:pos + max_records - len(out)]
                    out.extend(chunk)
                    self._pos[(t, p)] = pos + len(chunk)
                    if len(out) >= max_records:
                        break
        return out

    async def getmany(self, timeout: float = 1.0, max_records: int = 1000) -> list[Record]:
        if not self._started:
            raise RuntimeError("consumer not started")
        deadline = time.monotonic() + timeout
        while True:
            out = self._take(max_records)
            if out or time.monotonic() >= deadline:
                return out
            await asyncio.sleep(min(0.005, max(0.0, deadline - time.monotonic())))

    async def commit(self) -> None:
        if self._group is None:
            return
        with self._broker._lock:
            for (t, p), pos in self._pos.items():
                self._broker._committed[(self._group, t, p)] = pos

    async def end_offsets(self) -> dict[tuple[str, int], int]:
        with self._broker._lock:
            return {(t, p): len(self._broker._partitions(t)[p]) for (t, p) in self._pos}

    async def positions(self) -> dict[tuple[str, int], int]:
        return dict(self._pos)

    async def stop(self) -> None:
        """Leave the group (no revocation callback, as with Kafka); the others rebalance."""
        if not self._started:
            return
        self._started = False
        members = self._broker._groups.get(self._group or "", [])
        if self in members:
            members.remove(self)
            self._pos = {}
            await self._broker._rebalance(self._group or "")
