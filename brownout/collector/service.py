"""The collector: consume events, decode and validate them, judge them in event time,
publish breaker state, hand alerts on, commit only after all of that.

Bad input never stops it: undecodable records and invalid spans go to the dead-letter
topic (the original bytes, with the reason in a header) and a counter, with one log line.
Records without a ``provider/region/model`` key (the OpenTelemetry Collector's Kafka exporter
writes none) are not judged where they land: their events are republished keyed
(:mod:`brownout.collector.rekey`), so each key is judged by the one member that owns it.

>>> import asyncio
>>> from brownout.transport import MemoryTransport
>>> async def main():
...     t = MemoryTransport()
...     c = Collector(t, clock=lambda: 0.0)
...     await t.producer().send("brownout.events", b"not protobuf", key=b"x/y/z")
...     await c.start(); await c.poll_once(timeout=0.01); await c.stop()
...     dl = t.records("brownout.dead-letter")
...     return c.counts["decode_error:malformed_protobuf"], dl[0].header("brownout-reason")
>>> asyncio.run(main())
(1, b'malformed_protobuf')
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any, Awaitable, Callable, Iterable

from brownout import codec
from brownout import semconv as sc
from brownout.collector.health import PollProgress
from brownout.collector.rekey import Rekeyer, is_keyed
from brownout.endpoints import RegionMap
from brownout.model import Decision, Event, InvalidEvent
from brownout.pipeline import Pipeline
from brownout.transport.base import CommitFailedError, Consumer, Record, TopicPartitions, Transport

log = logging.getLogger("brownout.collector")

DecisionHandler = Callable[[Decision], Awaitable[None] | None]


class Collector:
    """One collector instance: a consumer-group member on the events topic.

    Parameters
    ----------
    transport
        Where the topics live (:class:`MemoryTransport` or :class:`KafkaTransport`).
    pipeline
        Detectors and breakers; a default :class:`Pipeline` when None.
    clock
        Event-time clock for ``advance``: wall clock live, simulated in the demo.
    on_decision
        Called for every decision (alerts and breaker transitions), in order.
    state
        A :class:`~brownout.collector.state.StateKeeper`: per-key state is saved to the state
        topic (periodically, after a key's transition, on revocation and on stop) and restored
        when partitions are assigned. None keeps state in memory only.
    keyed_topic
        Where events of records without a ``provider/region/model`` key are republished keyed
        (None: the events topic). Also consumed; its partitions are the ones that own keys.
    regions
        The :class:`~brownout.endpoints.RegionMap` that gives spans without ``cloud.region`` one
        (by ``server.address``, else its default); None dead-letters them.
    progress
        Where the poll loop records its progress (read by ``/healthz``); a default
        :class:`~brownout.collector.health.PollProgress` when None.
    """

    def __init__(self, transport: Transport, pipeline: Pipeline | None = None, *,
                 events_topic: str = sc.TOPIC_EVENTS, control_topic: str = sc.TOPIC_CONTROL,
                 dead_letter_topic: str = sc.TOPIC_DEAD_LETTER, group_id: str = "brownout-collector",
                 clock: Callable[[], float] = time.time, batch_size: int = 2000,
                 max_future_skew: float = 300.0, max_age: float = 7 * 86400.0,
                 on_decision: Iterable[DecisionHandler] = (), metrics: Any = None,
                 status_board: Any = None, status_interval: float = 1.0, state: Any = None,
                 history: Any = None, keyed_topic: str | None = None, regions: RegionMap | None = None,
                 progress: PollProgress | None = None) -> None:
        self.transport = transport
        self.pipeline = pipeline or Pipeline()
        self.events_topic = events_topic
        self.keyed_topic = keyed_topic or events_topic
        self.rekeyer = Rekeyer(self.keyed_topic)
        self.regions = regions
        self.control_topic = control_topic
        self.dead_letter_topic = dead_letter_topic
        self.group_id = group_id
        self.clock = clock
        self.batch_size = batch_size
        self.max_future_skew = max_future_skew
        self.max_age = max_age
        self.handlers = list(on_decision)
        self.metrics = metrics
        self.status_board = status_board
        self.status_interval = status_interval
        self._exported: collections.Counter[str] = collections.Counter()
        self._status_at = float("-inf")
        self.counts: collections.Counter[str] = collections.Counter()
        self.decisions: collections.deque[Decision] = collections.deque(maxlen=1000)
        self.last_processing_delay: float | None = None
        self._consumer: Any = None
        self._producer: Any = None
        self._ready = False
        self.state = state
        self.history = history  # a brownout.status.HistoryRecorder: fed after every step
        self._lock = asyncio.Lock()  # one batch, or one rebalance callback, at a time
        self._generation = 0  # rebalances seen: a batch fetched before one is not processed
        self._judged = float("-inf")  # event time the pipeline has been advanced to
        self.catch_up_after = 30.0  # seconds behind the wall clock that count as a backlog
        self._batch_end: float | None = None  # newest event end in the batch being ingested
        self._owned: set[tuple[str, int]] | None = None  # partitions assigned (None: no listener)
        self.progress = progress or PollProgress()

    @property
    def ready(self) -> bool:
        return self._ready

    async def start(self) -> None:
        self.progress.restart()
        self._producer = self.transport.producer()
        await self._producer.start()
        topics = list(dict.fromkeys([self.events_topic, self.keyed_topic]))
        if self.state is not None:
            self.state.partition_for = self._partition_for
            self._consumer = self.transport.consumer(topics, group_id=self.group_id,
                                                     from_beginning=True, listener=self)
        else:
            self._consumer = self.transport.consumer(topics, group_id=self.group_id, from_beginning=True)
        await self._consumer.start()
        self._ready = True
        log.info("collector started: events=%s control=%s group=%s", self.events_topic,
                 self.control_topic, self.group_id)

    async def stop(self) -> None:
        self._ready = False
        if self.state is not None and self._producer is not None:
            async with self._lock:
                await self._save_quietly(None)
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            try:
                await self._producer.flush()
            finally:
                await self._producer.stop()
        log.info("collector stopped: %s", dict(self.counts))

    async def poll_once(self, timeout: float = 0.5) -> int:
        """Consume one batch, judge, publish, commit. Returns the number of records read."""
        records = await self._consumer.getmany(timeout=timeout, max_records=self.batch_size)
        generation = self._generation  # no await between the fetch and this line
        async with self._lock:
            if records and (generation != self._generation or self._owned is not None
                            and any((r.topic, r.partition) not in self._owned for r in records)):
                # a rebalance came between the fetch and now: positions went back to the committed
                # offsets, so whoever owns these partitions now reads the batch again
                self.counts["records_rebalanced"] += len(records)
                records = []
            now = self.clock()
            self._batch_end = None
            for rec in records:
                await self._ingest(rec, now)
            await self.tick(self._event_clock(now))
            if self.state is not None:
                due = self.state.due(now)
                if due:
                    await self._save_quietly(due, now)
            if records:
                await self._producer.flush()
                try:
                    await self._consumer.commit()
                except CommitFailedError as exc:
                    self.counts["commit_failed"] += 1
                    log.warning("commit failed, the group rebalanced (records will be read again): %s", exc)
        self.progress.polled(len(records))
        self._publish_metrics()
        return len(records)

    def _event_clock(self, wall: float) -> float:
        """Where to judge up to: the wall clock while the collector keeps up (or a poll brought
        nothing, so time moves when traffic stops); the newest event end read while it is
        catching up a backlog more than ``catch_up_after`` seconds old.

        A backlog (after a restart or an outage) is then replayed in event time, instead of
        judging every step up to now at its first batch and finding the rest of it late.
        """
        end = self._batch_end
        at = wall if end is None or end >= wall - self.catch_up_after else end
        self._judged = max(self._judged, at)
        return self._judged

    # --- state handoff (a RebalanceListener) --------------------------------------------
    def _partition_for(self, key: Any) -> int | None:
        consumer: Consumer = self._consumer
        return consumer.partition_of(self.keyed_topic, str(key).encode())

    async def on_revoked(self, partitions: TopicPartitions) -> None:
        """Save the state of the keys of ``partitions`` for their next owner, then drop it."""
        if not partitions or self.state is None:
            return
        parts = {p for t, p in partitions if t == self.keyed_topic}
        async with self._lock:
            self._generation += 1
            self._owned = (self._owned or set()) - set(partitions)
            if not parts:
                return
            keys = self.state.keys_of(parts)
            await self._save_quietly(keys)
            self.state.forget(parts)
        log.info("partitions %s revoked: saved and dropped the state of %d keys", sorted(parts), len(keys))

    async def on_assigned(self, partitions: TopicPartitions) -> None:
        """Load the latest state of the keys of ``partitions`` (and their breakers' records)."""
        parts = {p for t, p in partitions if t == self.keyed_topic}
        if partitions:
            took = self.progress.assigned()
            log.info("partitions %s assigned %.2f s after the collector started", sorted(partitions), took)
        if self.state is None:
            return
        async with self._lock:
            self._generation += 1
            self._owned = (self._owned or set()) | set(partitions)
            if not parts:
                return
            t0 = time.monotonic()
            try:
                keys = await self.state.load(self.transport, self.control_topic, parts)
            except Exception:  # a state topic we cannot read means fresh state, not a dead collector
                self.counts["state_load_failed"] += 1
                log.exception("could not load state for partitions %s: those keys start fresh", sorted(parts))
                return
            self.state.last_restore_seconds = time.monotonic() - t0
            if self.metrics is not None:
                self.metrics.restored(self.state.last_restore_seconds)
        log.info("partitions %s assigned: restored %d keys in %.2f s", sorted(parts), len(keys),
                 self.state.last_restore_seconds)

    async def _save_quietly(self, keys: Any, now: float | None = None) -> None:
        assert self.state is not None
        try:
            await self.state.save(self._producer, keys, self.clock() if now is None else now)
            await self._producer.flush()
        except Exception:  # state is a best effort: judging goes on without it
            self.counts["state_save_failed"] += 1
            log.exception("could not save state to %s", self.state.topic)

    async def measure_lag(self) -> dict[tuple[str, int], int]:
        """Records between this consumer's position and the end of each assigned partition."""
        ends = await self._consumer.end_offsets()
        pos = await self._consumer.positions()
        lag = {tp: max(0, end - pos.get(tp, end)) for tp, end in ends.items()}
        if self.metrics is not None:
            for (topic, partition), n in lag.items():
                self.metrics.lag(topic, partition, n)
        self.progress.lagged(sum(lag.values()))
        return lag

    def _publish_metrics(self) -> None:
        # Counted cheaply per event in a dict; handed to Prometheus once per batch.
        if self.metrics is not None:
            for name, n in self.counts.items():
                delta = n - self._exported[name]
                if not delta:
                    continue
                self._exported[name] = n
                kind, _, label = name.partition(":")
                if kind == "events":
                    self.metrics.event(label, delta)
                elif kind == "decode_error":
                    self.metrics.decode_error(label, delta)
                elif kind == "rekeyed":
                    self.metrics.rekeyed(label, delta)
                elif kind in ("state_load_failed", "state_save_failed"):
                    self.metrics.state_error(kind.split("_")[1], delta)
            if self.state is not None:
                for name, n in self.state.counts.items():
                    delta = n - self._exported["state:" + name]
                    if delta:
                        self._exported["state:" + name] = n
                        self.metrics.state_record(name, delta)
            late = self.pipeline.late_events - self._exported["late"]
            if late > 0:
                self._exported["late"] += late
                self.metrics.late(late)
            if self.last_processing_delay is not None:
                self.metrics.delay(self.last_processing_delay)
                self.last_processing_delay = None
        if self.status_board is not None:
            t = time.monotonic()
            if t - self._status_at >= self.status_interval:
                self._status_at = t
                self.status_board.update(self.pipeline.status(), self.pipeline.breaker_states())

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set."""
        while not stop.is_set():
            await self.poll_once()

    async def tick(self, now: float) -> list[Decision]:
        """Advance event time to ``now``: act on decisions, publish control records."""
        decisions = self.pipeline.advance(now)
        for d in decisions:
            self.decisions.append(d)
            self.counts[f"decision:{d.kind}:{d.state}"] += 1
            log.info("%s %s %s %s at=%.3f observed=%s baseline=%s", d.kind, d.rule, d.key, d.state,
                     d.time, _fmt(d.observed), _fmt(d.baseline))
            for h in self.handlers:
                try:
                    res = h(d)
                    if asyncio.iscoroutine(res):
                        await res
                except Exception:  # a broken handler must not stop judging
                    log.exception("decision handler %r failed", h)
        if self.history is not None:
            self.history.tick(now, decisions, self.pipeline)
        if self.state is not None and decisions:
            # the state of a key that just changed goes out with its control record, so a
            # restart or the next owner does not announce the same transition again
            await self.state.save(self._producer, sorted({d.key for d in decisions}), now)
        self.counts["control_records"] += await self.pipeline.book.publish(self._producer, now, self.control_topic)
        return decisions

    async def _ingest(self, rec: Record, now: float) -> None:
        ctype = rec.header(sc.HEADER_CONTENT_TYPE)
        if rec.value is None:
            await self._dead_letter(rec, InvalidEvent("empty_value"))
            return
        try:
            items = codec.decode(rec.value, ctype.decode("latin-1") if ctype else None, self.regions)
        except Exception as exc:  # decode never raises by contract; a bug must not crash-loop us
            log.exception("decoder failed on %s[%d]@%d", rec.topic, rec.partition, rec.offset)
            items = [InvalidEvent("decoder_error", f"{type(exc).__name__}: {exc}"[:200])]
        if not is_keyed(rec.key):
            items = await self._rekey(rec, items, now)
        bad: InvalidEvent | None = None
        for item in items:
            if item is None:
                self.counts["events:skipped"] += 1
            elif isinstance(item, InvalidEvent):
                bad = bad or item
                self.counts["events:invalid"] += 1
                self.counts[f"decode_error:{item.reason}"] += 1
            elif self._out_of_range(item, now):
                bad = bad or InvalidEvent("bad_timestamp", f"start={item.start} is too far from now={now}")
                self.counts["events:invalid"] += 1
                self.counts["decode_error:bad_timestamp"] += 1
            else:
                self.counts["events:accepted"] += 1
                self.pipeline.observe(item)
                end = item.end
                self.last_processing_delay = max(0.0, now - end)
                if self._batch_end is None or end > self._batch_end:
                    self._batch_end = end
        if bad is not None:
            await self._dead_letter(rec, bad)

    def _out_of_range(self, ev: Event, now: float) -> bool:
        return ev.start > now + self.max_future_skew or ev.end < now - self.max_age

    async def _rekey(self, rec: Record, items: list[codec.Decoded], now: float) -> list[codec.Decoded]:
        """Republish the usable events of an unkeyed record keyed (judged by their keys' owners);
        return the rest (skipped, invalid, too far from now), counted and dead-lettered here with
        the original record, as for a keyed one."""
        events: list[Event] = []
        rest: list[codec.Decoded] = []
        for item in items:
            if isinstance(item, Event) and not self._out_of_range(item, now):
                events.append(item)
            else:
                rest.append(item)
        if events:
            self.counts["rekeyed:records"] += 1
            self.counts["rekeyed:events"] += len(events)
            await self.rekeyer.republish(self._producer, rec, events)
        return rest

    async def _dead_letter(self, rec: Record, err: InvalidEvent) -> None:
        if err.reason == "empty_value":
            self.counts["events:invalid"] += 1
            self.counts["decode_error:empty_value"] += 1
        log.warning("dead-lettered record %s[%d]@%d: %s", rec.topic, rec.partition, rec.offset, err)
        headers = tuple(h for h in rec.headers if h[0] != sc.HEADER_REASON) + (
            (sc.HEADER_REASON, err.reason.encode()),
            ("brownout-detail", err.detail.encode("utf-8", "replace")[:500]),
            (sc.HEADER_SOURCE, f"{rec.topic}/{rec.partition}/{rec.offset}".encode()),
        )
        await self._producer.send(self.dead_letter_topic, rec.value, key=rec.key, headers=headers)
        self.counts["dead_letters"] += 1


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def events_from_records(records: Iterable[Record], regions: RegionMap | None = None) -> list[Event]:
    """Decode records into valid events, dropping the rest (for tools and tests)."""
    out: list[Event] = []
    for r in records:
        if r.value is None:
            continue
        ct = r.header(sc.HEADER_CONTENT_TYPE)
        out.extend(e for e in codec.decode(r.value, ct.decode() if ct else None, regions) if isinstance(e, Event))
    return out
