"""Kafka transport through aiokafka: keyed records with headers, batched consumption,
commit after processing, topics created with their policies, PLAINTEXT or SASL_SSL.

>>> KafkaSettings("localhost:9092").client_kwargs()["bootstrap_servers"]
'localhost:9092'
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any, Sequence

from brownout.transport.base import (CommitFailedError, DeliveryError, Headers, RebalanceListener, Record,
                                     TopicSpec)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KafkaSettings:
    """How to reach the brokers. Secrets come from the environment or files, never flags."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"  # PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
    sasl_mechanism: str | None = None  # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    client_id: str = "brownout"
    # consumer-group membership (group consumers only): a static member id, the session timeout,
    # and whether a clean stop of a static member leaves the group
    group_instance_id: str | None = None
    session_timeout_ms: int | None = None
    leave_group_on_stop: bool = True

    def __repr__(self) -> str:  # never print the password
        return (f"KafkaSettings(bootstrap_servers={self.bootstrap_servers!r}, "
                f"security_protocol={self.security_protocol!r}, sasl_mechanism={self.sasl_mechanism!r})")

    def client_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers, "client_id": self.client_id,
                              "security_protocol": self.security_protocol}
        if self.sasl_mechanism:
            kw["sasl_mechanism"] = self.sasl_mechanism
            kw["sasl_plain_username"] = self.sasl_username
            kw["sasl_plain_password"] = self.sasl_password
        if "SSL" in self.security_protocol:
            from aiokafka.helpers import create_ssl_context

            kw["ssl_context"] = create_ssl_context(cafile=self.ssl_cafile, certfile=self.ssl_certfile,
                                                   keyfile=self.ssl_keyfile)
        return kw


class KafkaTransport:
    """Producers, consumers and topic creation against real brokers."""

    def __init__(self, settings: KafkaSettings | str) -> None:
        self.settings = KafkaSettings(settings) if isinstance(settings, str) else settings

    def producer(self, **overrides: Any) -> "KafkaProducer":
        return KafkaProducer(self.settings, **overrides)

    def consumer(self, topics: Sequence[str], group_id: str | None = None,
                 from_beginning: bool = False, listener: RebalanceListener | None = None,
                 **overrides: Any) -> "KafkaConsumer":
        return KafkaConsumer(self.settings, list(topics), group_id, from_beginning, listener=listener,
                             **overrides)

    async def create_topics(self, specs: Sequence[TopicSpec]) -> list[str]:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic
        from aiokafka.errors import TopicAlreadyExistsError

        admin = AIOKafkaAdminClient(**self.settings.client_kwargs())
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            todo = [s for s in specs if s.name not in existing]
            if not todo:
                return []
            resp = await admin.create_topics(
                [NewTopic(s.name, s.partitions, s.replication, topic_configs=dict(s.config)) for s in todo])
            created = []
            for name, code, *_ in getattr(resp, "topic_errors", getattr(resp, "topic_error_codes", [])):
                if code == 0:
                    created.append(name)
                elif code != TopicAlreadyExistsError.errno:
                    raise RuntimeError(f"creating topic {name!r} failed with Kafka error code {code}")
            return created
        finally:
            await admin.close()


class KafkaProducer:
    """An idempotent aiokafka producer (acks=all) that reports failed deliveries from ``flush``."""

    def __init__(self, settings: KafkaSettings, **overrides: Any) -> None:
        from aiokafka import AIOKafkaProducer

        kw = settings.client_kwargs()
        kw.update(acks="all", enable_idempotence=True, linger_ms=5, request_timeout_ms=30000)
        kw.update(overrides)
        self._p = AIOKafkaProducer(**kw)
        self._inflight: set[asyncio.Future[Any]] = set()
        self._failed = 0
        self._first_failure: str | None = None

    async def start(self) -> None:
        await self._p.start()

    async def send(self, topic: str, value: bytes | None, key: bytes | None = None,
                   headers: Headers = ()) -> None:
        from aiokafka.errors import KafkaError

        try:
            fut = await self._p.send(topic, value=value, key=key, headers=list(headers) or None)
        except KafkaError as exc:  # an unknown topic times out here, before any delivery
            raise DeliveryError(f"topic {topic!r} key {key!r}: {type(exc).__name__}: {exc}") from exc
        self._inflight.add(fut)
        fut.add_done_callback(partial(self._delivered, topic, key))

    def _delivered(self, topic: str, key: bytes | None, fut: asyncio.Future[Any]) -> None:
        self._inflight.discard(fut)
        exc = None if fut.cancelled() else fut.exception()  # retrieving it also silences asyncio
        if fut.cancelled() or exc is not None:
            reason = "cancelled" if exc is None else f"{type(exc).__name__}: {exc}"
            self._failed += 1
            if self._first_failure is None:
                self._first_failure = f"topic {topic!r} key {key!r}: {reason}"

    def _raise_failures(self) -> None:
        if self._failed:
            failed, first = self._failed, self._first_failure
            self._failed, self._first_failure = 0, None
            raise DeliveryError(f"{failed} record(s) not delivered, first: {first}")

    async def flush(self) -> None:
        await self._p.flush()
        if self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)
        self._raise_failures()

    async def stop(self) -> None:
        await self._p.stop()
        if self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)
        try:
            self._raise_failures()
        except DeliveryError as exc:
            log.error("producer stopped with undelivered records: %s", exc)


class KafkaConsumer:
    """An aiokafka consumer with manual commits (commit only after processing)."""

    def __init__(self, settings: KafkaSettings, topics: list[str], group_id: str | None,
                 from_beginning: bool, listener: RebalanceListener | None = None, **overrides: Any) -> None:
        from aiokafka import AIOKafkaConsumer

        kw = settings.client_kwargs()
        kw.update(group_id=group_id, enable_auto_commit=False,
                  auto_offset_reset="earliest" if from_beginning else "latest",
                  max_partition_fetch_bytes=4 * 1024 * 1024)
        if group_id is not None:
            kw.update(_membership(settings))
        kw.update(overrides)
        self._topics = topics
        self._group_id = group_id
        self._leave_on_stop = settings.leave_group_on_stop
        if listener is None or group_id is None:
            self._c = AIOKafkaConsumer(*topics, **kw)
        else:
            self._c = AIOKafkaConsumer(**kw)
            self._c.subscribe(topics=list(topics), listener=_Listener(listener))

    async def start(self) -> None:
        await self._c.start()
        # Resolve "latest" now, not at the first fetch, so records produced after start() are seen.
        for tp in self._c.assignment():
            await self._c.position(tp)

    async def getmany(self, timeout: float = 1.0, max_records: int = 1000) -> list[Record]:
        batches = await self._c.getmany(timeout_ms=int(timeout * 1000), max_records=max_records)
        out: list[Record] = []
        for tp, msgs in batches.items():
            for m in msgs:
                out.append(Record(tp.topic, m.key, m.value, tuple(m.headers or ()), tp.partition,
                                  m.offset, m.timestamp))
        return out

    async def commit(self) -> None:
        from aiokafka.errors import CommitFailedError as _KafkaCommitFailed, IllegalStateError

        if self._group_id is not None:
            try:
                await self._c.commit()
            except (_KafkaCommitFailed, IllegalStateError) as exc:
                raise CommitFailedError(str(exc)) from exc

    def partition_of(self, topic: str, key: bytes) -> int | None:
        from aiokafka.partitioner import murmur2

        parts = self._c.partitions_for_topic(topic)
        if not parts:
            return None
        hashed: int = murmur2(key)
        return (hashed & 0x7FFFFFFF) % len(parts)  # the producers' default partitioner

    async def _partitions(self) -> list[Any]:
        from aiokafka import TopicPartition

        assigned = self._c.assignment()
        if assigned:
            return sorted(assigned)
        parts = []
        for t in self._topics:
            for p in sorted(self._c.partitions_for_topic(t) or ()):
                parts.append(TopicPartition(t, p))
        return parts

    async def end_offsets(self) -> dict[tuple[str, int], int]:
        parts = await self._partitions()
        if not parts:
            return {}
        ends = await self._c.end_offsets(parts)
        return {(tp.topic, tp.partition): off for tp, off in ends.items()}

    async def positions(self) -> dict[tuple[str, int], int]:
        out = {}
        for tp in self._c.assignment():
            out[(tp.topic, tp.partition)] = await self._c.position(tp)
        return out

    async def stop(self) -> None:
        coordinator: Any = getattr(self._c, "_coordinator", None)
        if self._leave_on_stop and getattr(coordinator, "_group_instance_id", None) is not None:
            # aiokafka never sends LeaveGroup for a static member; a clean stop (a rolling update,
            # whose new pods get new names) should hand the partitions over at once, not after
            # the session timeout, so leave by member id as a dynamic member does
            coordinator._group_instance_id = None
        await self._c.stop()


def _membership(settings: KafkaSettings) -> dict[str, Any]:
    """aiokafka's group settings: static membership and a session timeout with its heartbeat."""
    kw: dict[str, Any] = {}
    if settings.group_instance_id:
        kw["group_instance_id"] = settings.group_instance_id
    if settings.session_timeout_ms:
        kw["session_timeout_ms"] = settings.session_timeout_ms
        kw["heartbeat_interval_ms"] = min(3000, settings.session_timeout_ms // 3)
    return kw


def _Listener(listener: RebalanceListener) -> Any:
    """Adapt a :class:`RebalanceListener` to aiokafka's (topic-partition objects to tuples)."""
    from aiokafka.abc import ConsumerRebalanceListener

    class Adapter(ConsumerRebalanceListener):  # type: ignore[misc]
        async def on_partitions_revoked(self, revoked: Any) -> None:
            await listener.on_revoked(sorted((tp.topic, tp.partition) for tp in revoked))

        async def on_partitions_assigned(self, assigned: Any) -> None:
            await listener.on_assigned(sorted((tp.topic, tp.partition) for tp in assigned))

    return Adapter()
