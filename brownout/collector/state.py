"""Per-key state handoff through the compacted state topic (``brownout.state``).

A key's windows, baselines, alert lifecycles and breaker are written as one record keyed
``provider/region/model``: periodically, after a transition of that key, and when its
partition is revoked. The member that gets the partition next reads the latest record of each
of its keys and carries on where the last owner stopped, so a restart or a rebalance neither
re-learns baselines nor announces an alert or breaker transition a second time.

Loading never executes code from the topic: the payload is a pickle read by an unpickler whose
``find_class`` allows only the few brownout, numpy and builtins types a key's state is made of
(:data:`ALLOWED`), then checked attribute by attribute against a fresh key of the current rules.
A record can be signed (HMAC-SHA256, the control records' :class:`~brownout.breakers.record.Signer`);
with keys to verify against, unsigned or forged records are refused. Whatever is wrong with a
record (foreign bytes, another version, a rule change, too big), it is logged and the key starts
fresh: :class:`StateError` names the reason and the keeper counts it, nothing crashes.

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

import copy
import hashlib
import io
import json
import logging
import math
import pickle
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from brownout.model import Key
from brownout.transport.base import Headers, Record

__all__ = ["ALLOWED", "KeySnapshot", "SnapshotCodec", "StateError", "StateKeeper", "export_key",
           "forget_key", "install", "read_latest"]

log = logging.getLogger("brownout.collector.state")

#: Format tag and version at the start of every value; anything else is foreign.
MAGIC = b"BOS1"
#: Largest value accepted or written (compressed); Kafka's default ``message.max.bytes`` is 1 MB.
MAX_BYTES = 900_000
#: Largest payload after decompression (a zip bomb stops here).
MAX_RAW_BYTES = 8_000_000

#: Globals a snapshot may name: everything else makes the load fail before anything is built.
ALLOWED: frozenset[tuple[str, str]] = frozenset({
    ("builtins", "set"), ("builtins", "frozenset"), ("collections", "deque"),
    ("brownout.model", "Key"),
    ("brownout.detectors.engine", "_Bucket"), ("brownout.detectors.engine", "KeyStatus"),
    ("brownout.detectors.stats", "RollingHistogram"), ("brownout.detectors.stats", "RollingSum"),
    ("brownout.detectors.stats", "WindowSums"),
    ("brownout.detectors.baseline", "Baseline"), ("brownout.detectors.baseline", "EwmaBaseline"),
    ("brownout.detectors.baseline", "SeasonalProfile"),
    ("brownout.detectors.lifecycle", "AlertLifecycle"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
} | {("numpy.dtypes", f"{n}DType") for n in (
    "Bool", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
    "Float16", "Float32", "Float64", "Long", "ULong", "LongLong", "ULongLong", "Int", "UInt")})

_BREAKER_FIELDS = ("state", "since", "until", "rule", "reason", "observed", "baseline", "seq", "level",
                   "closed_at", "guard_last", "probe_ok", "probe_bad", "verdict", "verdict_at", "published",
                   "dirty", "last_issued")


class StateError(ValueError):
    """A state record that cannot be used; ``reason`` is a short label for counters."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class KeySnapshot:
    """One key's state as written to the state topic.

    ``evaluated`` is the engine step its windows had reached; ``partition`` the events-topic
    partition its events came from (so the next owner of that partition picks it up);
    ``engine`` the key's detector state and ``breaker`` its breaker fields (None: no breaker yet).
    """

    key: Key
    taken_at: float
    partition: int | None
    evaluated: int | None
    rules: str
    baseline_rules: str
    engine: dict[str, Any]
    breaker: dict[str, Any] | None = None


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise StateError("forbidden_type", f"{module}.{name} is not a state type")
        return super().find_class(module, name)


class SnapshotCodec:
    """Bytes for the state topic and back: tag, zlib, restricted pickle, optional HMAC.

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
    brownout.collector.state.StateError: foreign: the value does not start with b'BOS1'
    """

    def __init__(self, signer: Any = None, verify_keys: Mapping[str, bytes] | Sequence[bytes] = (),
                 max_bytes: int = MAX_BYTES) -> None:
        self.signer = signer
        self.verify_keys = verify_keys
        self.max_bytes = max_bytes

    def encode(self, snap: KeySnapshot) -> tuple[bytes, Headers]:
        body = {"key": [snap.key.provider, snap.key.region, snap.key.model], "taken_at": snap.taken_at,
                "partition": snap.partition, "evaluated": snap.evaluated, "rules": snap.rules,
                "baseline_rules": snap.baseline_rules, "engine": snap.engine, "breaker": snap.breaker}
        value = MAGIC + zlib.compress(pickle.dumps(body, protocol=5), 3)
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
            body = _RestrictedUnpickler(io.BytesIO(raw)).load()
        except StateError:
            raise
        except Exception as exc:  # any malformed payload: zlib, pickle or a type's setstate
            raise StateError("malformed", f"{type(exc).__name__}: {exc}") from None
        return _snapshot_from_body(body, key)


def _snapshot_from_body(body: Any, key: bytes | None) -> KeySnapshot:
    if not isinstance(body, dict):
        raise StateError("malformed", "the payload is not a mapping")
    try:
        k = Key(*body["key"])
        if not all(isinstance(x, str) and x for x in (k.provider, k.region, k.model)):
            raise ValueError("key parts must be non-empty strings")
        snap = KeySnapshot(k, float(body["taken_at"]), _opt_int(body["partition"]), _opt_int(body["evaluated"]),
                           str(body["rules"]), str(body["baseline_rules"]), body["engine"], body["breaker"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError("malformed", f"{type(exc).__name__}: {exc}") from None
    if key is not None and str(snap.key).encode() != key:
        raise StateError("wrong_key", f"record key {key!r} holds the state of {snap.key}")
    if not isinstance(snap.engine, dict) or not (snap.breaker is None or isinstance(snap.breaker, dict)):
        raise StateError("malformed", "engine or breaker state is not a mapping")
    return snap


def _opt_int(x: Any) -> int | None:
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, int):
        raise TypeError(f"expected an int, got {x!r}")
    return x


# --- the pipeline side: what a key's state is, and how it goes back in ------------------
# These reach into Engine and BreakerBook internals (their owners have no per-key API yet);
# everything that does is here, checked by tests/reliability/test_state.py.

def fingerprint(obj: Any) -> str:
    """A short stable hash of settings (rules of a key, baseline settings)."""
    text = json.dumps(obj, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def export_key(pipeline: Any, key: Key, *, partition: int | None, taken_at: float) -> KeySnapshot:
    """The current state of ``key`` in ``pipeline`` (its engine key must exist)."""
    engine = pipeline.engine
    ks = engine._keys[key]
    attrs = {n: v for n, v in vars(ks).items() if n != "rules"}
    b = pipeline.book._breakers.get(key)
    breaker = None if b is None else {f: getattr(b, f) for f in _BREAKER_FIELDS}
    return KeySnapshot(key, taken_at, partition, engine._evaluated, fingerprint([engine.step, ks.rules]),
                       fingerprint(engine.rules.baseline), attrs, breaker)


def install(pipeline: Any, snap: KeySnapshot, control: Any = None) -> str:
    """Put ``snap`` into ``pipeline`` (replacing what it had for the key); say what came back.

    ``"restored"``: the whole key state. After a rule change only the baselines come back
    (``"restored_baselines_only"``, when their settings are unchanged) or nothing but the
    breaker (``"restored_breaker_only"``); windows and alerts start fresh. ``control`` (the
    key's latest control record) wins over the snapshot's breaker when it is newer; a snapshot
    transition the control topic never received is published again. Before anything changes,
    the state is checked against a fresh key and judged for a minute on a scratch engine:
    :class:`StateError` if it does not fit or does not run.
    """
    from brownout.detectors import Engine

    engine = pipeline.engine
    key = snap.key
    _check_breaker(snap.breaker)
    scratch = Engine(engine.rules)
    ks = scratch._new_key(key)
    fresh = dict(vars(ks))
    if snap.rules == fingerprint([engine.step, ks.rules]):
        _check_like(fresh, snap.engine)
        for name, value in snap.engine.items():
            setattr(ks, name, value)
        ks.rules, ks.key = fresh["rules"], key
        what = "restored"
    elif snap.baseline_rules == fingerprint(engine.rules.baseline):
        for name in ("base_ttft", "base_latency", "base_tps"):
            _check_like({name: fresh[name]}, {name: snap.engine.get(name)})
            setattr(ks, name, snap.engine[name])
        what = "restored_baselines_only"
    else:
        ks = None
        what = "restored_breaker_only"
    if ks is not None:
        _trial(engine.rules, ks, snap.evaluated if what == "restored" else None)
    forget_key(pipeline, key)
    if ks is not None:
        engine._keys[key] = ks
        if what == "restored":
            _align(engine, ks, snap.evaluated)
    _install_breaker(pipeline.book, key, snap.breaker, control)
    return what


def _trial(rules: Any, ks: Any, evaluated: int | None) -> None:
    """Judge a copy of ``ks`` for a minute and a bit on a scratch engine: state that passed the
    type checks but would raise later (a forged record) is refused here, not in the collector."""
    from brownout.detectors import Engine
    from brownout.model import Event

    eng = Engine(rules)
    copy_ = copy.deepcopy(ks)
    eng._keys[copy_.key] = copy_
    try:
        if evaluated is None:
            copy_.open = {}
        else:
            _align(eng, copy_, evaluated)
        start = ((eng._evaluated or 0) + 1) * eng.step
        eng.observe(Event(copy_.key, start, 0.5, ttft=0.1, output_tokens=10, itl_p95=0.01, deadline=1.0))
        eng.advance(start + 14 * eng.step + eng.allowed_lateness)
        eng.status()
    except Exception as exc:  # whatever a forged state makes the engine do, it stays out
        raise StateError("unusable", f"{type(exc).__name__}: {exc}") from None


_BREAKER_TYPES: dict[str, tuple[type, ...]] = {
    "state": (str,), "since": (float, int), "until": (float, int, type(None)), "rule": (str, type(None)),
    "reason": (str, type(None)), "observed": (float, int, type(None)), "baseline": (float, int, type(None)),
    "seq": (int,), "level": (int,), "closed_at": (float, int, type(None)), "guard_last": (float, int, type(None)),
    "probe_ok": (int,), "probe_bad": (int,), "verdict": (str, type(None)), "verdict_at": (float, int),
    "published": (bool,), "dirty": (bool,), "last_issued": (float, int),
}


def _check_breaker(fields: Mapping[str, Any] | None) -> None:
    if fields is None:
        return
    for name, types in _BREAKER_TYPES.items():
        if name not in fields:
            raise StateError("incompatible", f"breaker.{name} is missing")
        v = fields[name]
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            raise StateError("malformed", f"breaker.{name}: {v!r}")
    if fields["state"] not in ("closed", "open", "half_open") or fields["verdict"] not in (None, "healthy", "failed"):
        raise StateError("malformed", f"breaker state {fields['state']!r} verdict {fields['verdict']!r}")


def _check_like(fresh: Mapping[str, Any], got: Mapping[str, Any]) -> None:
    """Every attribute of a fresh key, with the same type and the same window shapes."""
    missing = set(fresh) - set(got) - {"rules"}
    extra = set(got) - set(fresh)
    if missing or extra:
        raise StateError("incompatible", f"attributes differ: missing {sorted(missing)}, unknown {sorted(extra)}")
    for name, want in fresh.items():
        if name == "rules":
            continue
        have = got[name]
        if want is None or have is None:
            continue
        if type(have) is not type(want):
            raise StateError("incompatible", f"{name}: {type(have).__name__}, expected {type(want).__name__}")
        if isinstance(want, dict) and want and set(want) != set(have):
            raise StateError("incompatible", f"{name}: entries differ")
        if isinstance(want, dict):
            for sub_name, sub in have.items():
                if sub_name in want and type(sub) is not type(want[sub_name]):
                    raise StateError("incompatible", f"{name}[{sub_name!r}]: {type(sub).__name__}")
        for sub in ("width", "widths", "period", "slots", "cycles"):
            if hasattr(want, sub) and getattr(want, sub) != getattr(have, sub, None):
                raise StateError("incompatible", f"{name}.{sub} differs")


def _align(engine: Any, ks: Any, evaluated: int | None) -> None:
    """Slide the restored windows over the steps evaluated since the snapshot (nothing seen
    for them here), so the key's windows and the engine's clock agree again."""
    key = ks.key
    if engine._evaluated is None:
        engine._evaluated = evaluated
    target = engine._evaluated
    if evaluated is not None and target is not None and evaluated < target:
        span = max([1] + [h.width for h in ks.hists.values()] + list(ks.sums.widths)) + 1
        for i in range(max(evaluated + 1, target - span + 1), target + 1):
            ks.push(ks.open.pop(i, None))
        ks.open = {i: b for i, b in ks.open.items() if i > target}
    for idx in ks.open:
        engine._due.setdefault(idx, set()).add(key)
    if not ks.idle:
        engine._active.add(key)


def _install_breaker(book: Any, key: Key, fields: Mapping[str, Any] | None, control: Any) -> None:
    if fields is None and control is None:
        return
    b = book._breaker(key)
    if fields is not None:
        for f in _BREAKER_FIELDS:
            setattr(b, f, fields[f])
    if control is not None and (fields is None or control.seq > b.seq):
        b.published = False
        book.restore_from_records([control])
    elif b.seq > (control.seq if control is not None else 0) and not b.dirty:
        b.dirty = True  # a transition decided before the crash but never published: publish it now
    if b.published or b.dirty:
        book._announced.add(key)
    if b.state != "closed" or b.reason == "guard":
        book._active.add(key)


def forget_key(pipeline: Any, key: Key) -> None:
    """Drop everything ``pipeline`` holds for ``key`` (its partition went to another member)."""
    engine = pipeline.engine
    engine._keys.pop(key, None)
    engine._active.discard(key)
    for idx in [i for i, keys in engine._due.items() if key in keys]:
        engine._due[idx].discard(key)
        if not engine._due[idx]:
            del engine._due[idx]
    book = pipeline.book
    if book._breakers.pop(key, None) is not None:
        peers = book._models.get(key.model)
        if peers is not None:
            peers.discard(key)
            if not peers:
                del book._models[key.model]
    book._active.discard(key)
    book._announced.discard(key)


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

    Counters in ``counts``: ``saved``, ``restored``, ``restored_baselines_only`` and
    ``rejected:<reason>`` (records ignored: the key started fresh).
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
        held = set(self.pipeline.engine._keys) | set(self.pipeline.book._breakers)
        return sorted(k for k in held if self._part(k) in wanted)

    def due(self, now: float) -> list[Key]:
        """Keys whose last snapshot is ``interval`` old (oldest first, at most ``max_per_poll``)."""
        saved = self._saved_at
        late = [(saved.get(k, -math.inf), k) for k in self.pipeline.engine._keys
                if now - saved.get(k, -math.inf) >= self.interval]
        late.sort(key=lambda x: x[0])
        return [k for _, k in late[:self.max_per_poll]]

    async def save(self, producer: Any, keys: Iterable[Key] | None, now: float) -> int:
        """Send the snapshots of ``keys`` (None: every key); the caller flushes. Returns how
        many were sent."""
        if keys is None:
            keys = sorted(self.pipeline.engine._keys)
        n = 0
        for key in keys:
            if key not in self.pipeline.engine._keys:
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


