"""Per-key state handoff through the compacted state topic (``brownout.state``).

A key's detectors, baselines, alert lifecycles and breaker are written as one record keyed
``provider/region/model``: periodically, after a transition of that key, and when its
partition is revoked. The member that gets the partition next reads the latest record of each
of its keys and carries on where the last owner stopped, so a restart or a rebalance neither
re-learns baselines nor announces an alert or breaker transition a second time.

The record is data, never code: ``BOS2`` then zlib-compressed JSON, one versioned document

    {"v": 2, "key": [provider, region, model], "taken_at": unix s, "partition": int | null,
     "engine": <Engine.export_key(key)> | null, "breaker": <BreakerBook.export_key(key)> | null}

read back through the same two doors it came out of, ``Engine.install_key`` and
``BreakerBook.install_key``, which check every field as they parse it and change nothing unless all
of it fits. A record can be signed (HMAC-SHA256, the control records' :class:`~brownout.breakers.record.Signer`);
with keys to verify against, unsigned or forged records are refused. Whatever is wrong with a
record (foreign bytes, another version, too big, a field that does not fit), it is logged and the
key starts fresh: :class:`StateError` names the reason and the keeper counts it, nothing crashes.

>>> from brownout.model import Event, Key
>>> from brownout.pipeline import Pipeline
>>> key = Key("openai", "eastus", "gpt-4o")
>>> old = Pipeline()
>>> for i in range(900):                       # 15 healthy minutes
...     old.observe(Event(key, 1_000_020.0 + i, 0.8, ttft=0.3))
>>> _ = old.advance(1_000_920.0)
>>> codec = SnapshotCodec()
>>> value, headers = codec.encode(export_key(old, key, partition=0, taken_at=1_000_920.0))
>>> new = Pipeline()
>>> install(new, codec.decode(value, headers, key=str(key).encode()))
'restored'
>>> new.status()[key].warming, round(new.status()[key].ttft_p50_baseline, 2)
(False, 0.3)
"""

from __future__ import annotations

import logging
import math
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import orjson

from brownout.model import Key
from brownout.transport.base import Headers, Record

__all__ = ["KeySnapshot", "SnapshotCodec", "StateError", "StateKeeper", "export_key", "forget_key", "install",
           "read_latest", "MAGIC", "VERSION"]

log = logging.getLogger("brownout.collector.state")

#: Format tag at the start of every value (a version 1 pickle record starts with ``BOS1``: foreign now).
MAGIC = b"BOS2"
#: The document version inside.
VERSION = 2
#: Largest value accepted or written (compressed); Kafka's default ``message.max.bytes`` is 1 MB.
MAX_BYTES = 900_000
#: Largest payload after decompression (a zip bomb stops here).
MAX_RAW_BYTES = 8_000_000


class StateError(ValueError):
    """A state record that cannot be used; ``reason`` is a short label for counters."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class KeySnapshot:
    """One key's state as written to the state topic.

    ``partition`` is the events-topic partition its events came from (so the next owner of that
    partition picks it up); ``engine`` the key's detector state (``Engine.export_key``) and
    ``breaker`` its breaker (``BreakerBook.export_key``); either may be None.
    """

    key: Key
    taken_at: float
    partition: int | None
    engine: dict[str, Any] | None
    breaker: dict[str, Any] | None = None


class SnapshotCodec:
    """Bytes for the state topic and back: tag, zlib, JSON, optional HMAC.

    Parameters
    ----------
    signer
        Signs what :meth:`encode` returns (headers); None leaves records unsigned.
    verify_keys
        Keys (or key id -> key) a record must be signed with; empty accepts unsigned records.
    max_bytes
        Largest encoded value; bigger snapshots are not written (and not read).

    >>> SnapshotCodec().decode(b"\\x80\\x05garbage", (), key=b"a/b/c")
    Traceback (most recent call last):
    ...
    brownout.collector.state.StateError: foreign: the value does not start with b'BOS2'
    """

    def __init__(self, signer: Any = None, verify_keys: Mapping[str, bytes] | Sequence[bytes] = (),
                 max_bytes: int = MAX_BYTES) -> None:
        self.signer = signer
        self.verify_keys = verify_keys
        self.max_bytes = max_bytes

    def encode(self, snap: KeySnapshot) -> tuple[bytes, Headers]:
        doc = {"v": VERSION, "key": [snap.key.provider, snap.key.region, snap.key.model], "taken_at": snap.taken_at,
               "partition": snap.partition, "engine": snap.engine, "breaker": snap.breaker}
        value = MAGIC + zlib.compress(orjson.dumps(doc), 3)
        if len(value) > self.max_bytes:
            raise StateError("too_big", f"{snap.key}: {len(value)} bytes > {self.max_bytes}")
        headers: Headers = (("content-type", b"application/x-brownout-state"),)
        if self.signer is not None:
            headers += self.signer.headers(value)
        return value, headers

    def decode(self, value: bytes | None, headers: Iterable[tuple[str, bytes]] = (), *,
               key: bytes | None = None) -> KeySnapshot:
        """The snapshot in ``value``; :class:`StateError` says why it cannot be used."""
        if value is None:
            raise StateError("tombstone")
        if len(value) > self.max_bytes:
            raise StateError("too_big", f"{len(value)} bytes > {self.max_bytes}")
        if not value.startswith(MAGIC):
            raise StateError("foreign", f"the value does not start with {MAGIC!r}")
        if self.verify_keys:
            from brownout.breakers.record import verify

            if not verify(value, tuple(headers), self.verify_keys):
                raise StateError("bad_signature", "missing or invalid brownout-signature")
        try:
            d = zlib.decompressobj()
            raw = d.decompress(value[len(MAGIC):], MAX_RAW_BYTES)
            if d.unconsumed_tail:
                raise StateError("too_big", f"more than {MAX_RAW_BYTES} bytes once decompressed")
            doc = orjson.loads(raw)
        except StateError:
            raise
        except (zlib.error, orjson.JSONDecodeError) as exc:
            raise StateError("malformed", f"{type(exc).__name__}: {exc}") from None
        return _snapshot_from_doc(doc, key)


def _snapshot_from_doc(doc: Any, key: bytes | None) -> KeySnapshot:
    if not isinstance(doc, dict):
        raise StateError("malformed", "the payload is not an object")
    if doc.get("v") != VERSION:
        raise StateError("incompatible", f"state version {doc.get('v')!r}, this collector reads {VERSION}")
    try:
        parts = doc["key"]
        if not (isinstance(parts, list) and len(parts) == 3 and all(isinstance(x, str) and x for x in parts)):
            raise ValueError("key must be [provider, region, model]")
        taken_at = doc["taken_at"]
        if isinstance(taken_at, bool) or not isinstance(taken_at, (int, float)) or not math.isfinite(taken_at):
            raise ValueError(f"taken_at must be a unix time, got {taken_at!r}")
        partition = doc["partition"]
        if partition is not None and (isinstance(partition, bool) or not isinstance(partition, int) or partition < 0):
            raise ValueError(f"partition must be a partition number, got {partition!r}")
        engine, breaker = doc["engine"], doc["breaker"]
        if not (engine is None or isinstance(engine, dict)) or not (breaker is None or isinstance(breaker, dict)):
            raise ValueError("engine and breaker must be objects or null")
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError("malformed", f"{type(exc).__name__}: {exc}") from None
    snap = KeySnapshot(Key(*parts), float(taken_at), partition, engine, breaker)
    if key is not None and str(snap.key).encode() != key:
        raise StateError("wrong_key", f"record key {key!r} holds the state of {snap.key}")
    return snap


# --- the pipeline side: the engine's and the breakers' per-key doors ---------------------

def export_key(pipeline: Any, key: Key, *, partition: int | None, taken_at: float) -> KeySnapshot:
    """The current state of ``key`` in ``pipeline``."""
    engine = pipeline.engine.export_key(key) if key in pipeline.engine else None
    return KeySnapshot(key, taken_at, partition, engine, pipeline.book.export_key(key))


def install(pipeline: Any, snap: KeySnapshot, control: Any = None) -> str:
    """Put ``snap`` into ``pipeline`` (replacing what it had for the key); say what came back.

    ``"restored"``: the whole key state; ``"restored_partly"`` after a rule change (rules whose
    settings changed, or the baselines if theirs did, start fresh); ``"restored_breaker_only"``
    without engine state. ``control`` (the key's latest control record) wins over the snapshot's
    breaker when it is newer. :class:`StateError` (``incompatible``) if anything does not fit, and
    then nothing changed.
    """
    from brownout.breakers.machine import _checked_state

    try:
        if snap.breaker is not None:
            _checked_state(snap.breaker)  # before the engine changes: all or nothing
        what = pipeline.engine.install_key(snap.key, snap.engine) if snap.engine is not None else None
    except ValueError as exc:
        raise StateError("incompatible", str(exc)) from None
    if what is None:
        pipeline.engine.forget_key(snap.key)
    pipeline.book.install_key(snap.key, snap.breaker, control)
    return what or "restored_breaker_only"


def forget_key(pipeline: Any, key: Key) -> None:
    """Drop everything ``pipeline`` holds for ``key`` (its partition went to another member)."""
    pipeline.engine.forget_key(key)
    pipeline.book.forget_key(key)


# --- reading compacted topics -----------------------------------------------------------

async def read_latest(transport: Any, topics: Sequence[str], timeout: float = 30.0) -> dict[str, dict[bytes, Record]]:
    """The last record of every key of compacted ``topics``, read from the beginning up to
    the end offsets at start: ``{topic: {key: record}}`` (tombstones drop the key)."""
    import asyncio
    import time

    from brownout.transport.base import caught_up

    consumer = transport.consumer(list(topics), from_beginning=True)
    await consumer.start()
    out: dict[str, dict[bytes, Record]] = {t: {} for t in topics}
    try:
        ends = await consumer.end_offsets()
        deadline = time.monotonic() + timeout
        while not await caught_up(consumer, ends):
            if time.monotonic() > deadline:
                raise asyncio.TimeoutError(f"reading {', '.join(topics)} took longer than {timeout:g} s")
            for rec in await consumer.getmany(timeout=0.5, max_records=5000):
                if rec.key is None:
                    continue
                if rec.value is None:
                    out[rec.topic].pop(rec.key, None)
                else:
                    out[rec.topic][rec.key] = rec
    finally:
        await consumer.stop()
    return out


class StateKeeper:
    """Writes and restores a pipeline's per-key state on the state topic.

    Parameters
    ----------
    pipeline
        The collector's :class:`~brownout.pipeline.Pipeline`.
    topic
        The compacted state topic.
    codec
        How snapshots become bytes (signing, size bound).
    interval
        Seconds between periodic snapshots of every key.
    partition_for
        The events partition of a key (the collector sets it from its consumer); None: all keys
        are owned (a single member).
    max_per_poll
        At most this many periodic snapshots per poll: with many keys the work is spread out
        instead of stalling the consumer once per interval.

    Counters in ``counts``: ``saved``, ``restored``, ``restored_partly``, ``restored_breaker_only``
    and ``rejected:<reason>`` (records ignored: the key started fresh).
    """

    def __init__(self, pipeline: Any, topic: str, codec: SnapshotCodec | None = None,
                 interval: float = 30.0, partition_for: Callable[[Key], int | None] | None = None,
                 control_verify_keys: Mapping[str, bytes] | Sequence[bytes] = (),
                 max_per_poll: int = 200) -> None:
        self.pipeline = pipeline
        self.topic = topic
        self.codec = codec or SnapshotCodec()
        self.interval = interval
        self.partition_for = partition_for
        self.control_verify_keys = control_verify_keys
        self.max_per_poll = max_per_poll
        self.counts: dict[str, int] = {}
        self.last_restore_seconds: float | None = None
        self._saved_at: dict[Key, float] = {}

    def _part(self, key: Key) -> int | None:
        return None if self.partition_for is None else self.partition_for(key)

    def keys_of(self, partitions: Iterable[int]) -> list[Key]:
        """Keys held (detectors or breaker) whose events go to one of ``partitions``."""
        wanted = set(partitions)
        held = set(self.pipeline.engine.keys()) | set(self.pipeline.book.keys())
        return sorted(k for k in held if self._part(k) in wanted)

    def due(self, now: float) -> list[Key]:
        """Keys whose last snapshot is ``interval`` old (oldest first, at most ``max_per_poll``)."""
        saved = self._saved_at
        late = [(saved.get(k, -math.inf), k) for k in self.pipeline.engine.keys()
                if now - saved.get(k, -math.inf) >= self.interval]
        late.sort(key=lambda x: x[0])
        return [k for _, k in late[:self.max_per_poll]]

    async def save(self, producer: Any, keys: Iterable[Key] | None, now: float) -> int:
        """Send the snapshots of ``keys`` (None: every key); the caller flushes. Returns how
        many were sent."""
        held = set(self.pipeline.engine.keys())
        if keys is None:
            keys = sorted(held)
        n = 0
        for key in keys:
            if key not in held:
                continue
            snap = export_key(self.pipeline, key, partition=self._part(key), taken_at=now)
            try:
                value, headers = self.codec.encode(snap)
            except StateError as exc:
                self._count(f"rejected:{exc.reason}")
                log.warning("state of %s not saved: %s", key, exc)
                continue
            await producer.send(self.topic, value, key=str(key).encode(), headers=headers)
            self._saved_at[key] = now
            n += 1
        self._count("saved", n)
        return n

    def forget(self, partitions: Iterable[int]) -> list[Key]:
        """Drop the keys of ``partitions`` (revoked: their state was saved for the next owner)."""
        keys = self.keys_of(partitions)
        for key in keys:
            forget_key(self.pipeline, key)
            self._saved_at.pop(key, None)
        return keys

    async def load(self, transport: Any, control_topic: str | None, partitions: Iterable[int]) -> list[Key]:
        """Read the state (and control) topic and :meth:`restore` the keys of ``partitions``."""
        from brownout.breakers.record import ControlRecord, verify

        topics = [self.topic] + ([control_topic] if control_topic else [])
        latest = await read_latest(transport, topics)
        control: dict[Key, Any] = {}
        for rec in (latest.get(control_topic, {}) if control_topic else {}).values():
            if self.control_verify_keys and not verify(rec.value, rec.headers, self.control_verify_keys):
                self._count("rejected:control_signature")
                continue
            try:
                cr = ControlRecord.from_bytes(rec.value or b"")
            except ValueError as exc:
                self._count("rejected:control_malformed")
                log.warning("ignored control record %r: %s", rec.key, exc)
                continue
            if cr.key not in control or cr.seq >= control[cr.key].seq:
                control[cr.key] = cr
        return self.restore(latest[self.topic].values(), control, partitions)

    def restore(self, records: Iterable[Record], control: Mapping[Key, Any],
                partitions: Iterable[int] | None = None) -> list[Key]:
        """Install the snapshots in ``records`` whose key belongs to ``partitions`` (None: all),
        with the control records in ``control``; bad records are counted and skipped; owned
        keys with a control record and no snapshot get their breaker back. Returns the keys."""
        wanted = None if partitions is None else set(partitions)

        def owned(key: Key, fallback: int | None) -> bool:
            part = self._part(key)
            return wanted is None or (part if part is not None else fallback) in wanted

        done = []
        for rec in records:
            try:
                snap = self.codec.decode(rec.value, rec.headers, key=rec.key)
            except StateError as exc:
                self._count(f"rejected:{exc.reason}")
                log.warning("ignored state record %s[%d]@%d (%r): %s", rec.topic, rec.partition, rec.offset,
                            rec.key, exc)
                continue
            if not owned(snap.key, snap.partition):
                continue
            try:
                what = install(self.pipeline, snap, control.get(snap.key))
            except StateError as exc:
                self._count(f"rejected:{exc.reason}")
                log.warning("ignored the state of %s: %s", snap.key, exc)
                continue
            self._count(what)
            self._saved_at[snap.key] = snap.taken_at
            done.append(snap.key)
        restored = set(done)
        for key, cr in sorted(control.items()):
            if key not in restored and owned(key, None):
                self.pipeline.book.restore_from_records([cr])
                self._count("restored_breaker_only")
        return done

    def _count(self, name: str, n: int = 1) -> None:
        if n:
            self.counts[name] = self.counts.get(name, 0) + n


