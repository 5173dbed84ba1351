"""The transport interface: topics of keyed records, produced and consumed in batches.

Two implementations share it: :class:`~brownout.transport.memory.MemoryTransport` (one
process: the demo, tests, replay) and :class:`~brownout.transport.kafka.KafkaTransport`
(aiokafka). Both pass the same contract suite (``tests/contract/test_transport.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

from brownout import semconv as sc

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class Record:
    """One record read from a topic.

    >>> Record("t", b"k", b"v", (("content-type", b"application/json"),)).header("content-type")
    b'application/json'
    """

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    partition: int = 0
    offset: int = -1
    timestamp_ms: int | None = None

    def header(self, name: str) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


class CommitFailedError(RuntimeError):
    """The group rebalanced before the commit: the partitions may belong to another member now,
    which will read the records since the last commit again (at least once)."""


class DeliveryError(RuntimeError):
    """The broker refused or lost a record (a keyless record on a compacted topic, a timeout...).

    Raised by ``send`` or ``flush``: a record is durable only once ``flush`` returned without it.
    """


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create, with its policy (``cleanup.policy`` and friends)."""

    name: str
    partitions: int = 1
    replication: int = 1
    config: dict[str, str] = field(default_factory=dict)


def default_topics(events: str = sc.TOPIC_EVENTS, control: str = sc.TOPIC_CONTROL,
                   state: str = sc.TOPIC_STATE, dead_letter: str = sc.TOPIC_DEAD_LETTER,
                   partitions: int = 6, replication: int = 1,
                   retention_hours: int = 24) -> list[TopicSpec]:
    """The four topics of DESIGN's table with their policies.

    >>> [t.config["cleanup.policy"] for t in default_topics()]
    ['delete', 'compact', 'compact', 'delete']
    """
    retention = str(retention_hours * 3600 * 1000)
    return [
        TopicSpec(events, partitions, replication, {"cleanup.policy": "delete", "retention.ms": retention}),
        TopicSpec(control, 1, replication, {"cleanup.policy": "compact", "min.compaction.lag.ms": "0",
                                            "segment.ms": "600000"}),
        TopicSpec(state, partitions, replication, {"cleanup.policy": "compact"}),
        TopicSpec(dead_letter, 1, replication, {"cleanup.policy": "delete",
                                                "retention.ms": str(7 * 24 * 3600 * 1000)}),
    ]


class Producer(Protocol):
    async def start(self) -> None: ...
    async def send(self, topic: str, value: bytes | None, key: bytes | None = None,
                   headers: Headers = ()) -> None:
        """Queue a record; it is durable after :meth:`flush` returns."""
    async def flush(self) -> None:
        """Wait until every queued record is acknowledged; raise :class:`DeliveryError` if one failed."""
    async def stop(self) -> None:
        """Deliver what is queued and close; failures are logged, not raised (use ``flush``)."""


TopicPartitions = list[tuple[str, int]]


class RebalanceListener(Protocol):
    """Told when a group member gets or loses partitions (Kafka's ConsumerRebalanceListener).

    Every member's ``on_revoked`` completes before any member's ``on_assigned`` of the same
    rebalance: state saved on revocation is there for the next owner to load on assignment.
    """

    async def on_revoked(self, partitions: TopicPartitions) -> None: ...
    async def on_assigned(self, partitions: TopicPartitions) -> None: ...


class Consumer(Protocol):
    async def start(self) -> None: ...
    async def getmany(self, timeout: float = 1.0, max_records: int = 1000) -> list[Record]:
        """Up to ``max_records`` records, waiting at most ``timeout`` seconds for the first."""
    async def commit(self) -> None:
        """Commit the position after the records returned so far (commit after processing).

        A no-op without a ``group_id``."""
    async def end_offsets(self) -> dict[tuple[str, int], int]:
        """The current end offset of every assigned partition."""
    async def positions(self) -> dict[tuple[str, int], int]:
        """The next offset this consumer will read on every assigned partition."""
    def partition_of(self, topic: str, key: bytes) -> int | None:
        """The partition a producer sends ``key`` to on ``topic`` (None while unknown)."""
    async def stop(self) -> None: ...


class Transport(Protocol):
    """Makes producers and consumers, and creates topics."""

    def producer(self) -> Producer: ...
    def consumer(self, topics: Sequence[str], group_id: str | None = None,
                 from_beginning: bool = False, listener: RebalanceListener | None = None) -> Consumer:
        """Once ``start()`` returns, positions are fixed: a ``from_beginning=False`` consumer sees
        exactly the records produced after that; a group's committed offset wins over both.
        ``listener`` hears of partitions assigned and revoked (group members only)."""
    async def create_topics(self, specs: Sequence[TopicSpec]) -> list[str]:
        """Create the topics that do not exist yet; return the names created."""


async def caught_up(consumer: Consumer, targets: dict[tuple[str, int], int]) -> bool:
    """True once the consumer's position reached ``targets`` (end offsets taken earlier)."""
    pos = await consumer.positions()
    return all(pos.get(tp, 0) >= end for tp, end in targets.items())
