"""Per-key state snapshots: round trips, refusal of foreign or forged records, handoff between
collectors on the in-memory transport (rebalance and restart)."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import zlib

import pytest
from prometheus_client import CollectorRegistry

from brownout import codec as wire
from brownout import semconv as sc
from brownout.breakers.record import Signer
from brownout.collector.service import Collector
from brownout.exporters.prometheus import CollectorMetrics
from brownout.collector.state import (
    MAGIC,
    VERSION,
    SnapshotCodec,
    StateError,
    StateKeeper,
    export_key,
    install,
)
from brownout.model import Event, Key
from brownout.pipeline import Pipeline
from brownout.rules import load_rules
from brownout.transport import MemoryTransport
from brownout.transport.base import Record, default_topics

EAST = Key("openai", "eastus", "gpt-4o")
WEST = Key("openai", "westus", "gpt-4o")
T0 = 1_700_000_000.0  # a minute boundary


def healthy(key: Key, start: float, seconds: int, per_s: int = 2) -> list[Event]:
    return [Event(key, start + i / per_s, 0.8 + 0.05 * (i % 5), ttft=0.3 + 0.01 * (i % 7), output_tokens=200)
            for i in range(seconds * per_s)]


def degraded(key: Key, start: float, seconds: int, per_s: int = 2) -> list[Event]:
    """Slow (TTFT and latency x2) and failing (one request in three is a 503)."""
    return [Event(key, start + i / per_s, 0.1, error_type="503") if i % 3 == 0 else
            Event(key, start + i / per_s, 1.6, ttft=0.7, output_tokens=200) for i in range(seconds * per_s)]


def run(p: Pipeline, events: list[Event], until: float) -> list[tuple]:
    out = []
    for e in sorted(events, key=lambda e: e.start):
        p.observe(e)
    out += p.advance(until)
    return [(d.time, d.kind, d.rule, str(d.key), d.state, d.observed, d.baseline) for d in out]


def handed_over(old: Pipeline, keys: list[Key], codec: SnapshotCodec | None = None) -> Pipeline:
    codec = codec or SnapshotCodec()
    new = Pipeline()
    for key in keys:
        value, headers = codec.encode(export_key(old, key, partition=0, taken_at=0.0))
        assert install(new, codec.decode(value, headers, key=str(key).encode())) == "restored"
    return new


def test_a_restored_pipeline_judges_the_rest_of_the_stream_like_the_original():
    old = Pipeline()
    run(old, healthy(EAST, T0, 900) + healthy(WEST, T0, 900), T0 + 900)
    # an incident starts before the handoff: alerts pending or firing must carry over
    opening = run(old, degraded(EAST, T0 + 900, 40) + healthy(WEST, T0 + 900, 40), T0 + 940)
    assert any(d[4] in ("pending", "firing", "open") for d in opening)
    new = handed_over(old, [EAST, WEST])
    assert new.status() == old.status()
    tail = degraded(EAST, T0 + 940, 200) + healthy(EAST, T0 + 1140, 300) + healthy(WEST, T0 + 940, 500)
    expected = run(old, tail, T0 + 1440)
    assert expected, "the tail must decide something for the comparison to mean anything"
    assert run(new, tail, T0 + 1440) == expected


def test_the_restored_baseline_is_not_warming_and_no_alert_fires_twice():
    old = Pipeline()
    run(old, healthy(EAST, T0, 900), T0 + 900)
    fired = run(old, degraded(EAST, T0 + 900, 120), T0 + 1020)
    assert (("alert", "error_rate", "firing") in {(d[1], d[2], d[4]) for d in fired})
    new = handed_over(old, [EAST])
    assert new.status()[EAST].warming is False
    again = run(new, degraded(EAST, T0 + 1020, 60), T0 + 1080)
    assert not [d for d in again if d[1] == "alert" and d[4] in ("pending", "firing")]
    assert not [d for d in again if d[1] == "breaker" and d[4] == "open" and d[6] is not None and d[0] < T0 + 1020]


def test_a_version_one_pickle_record_is_foreign_and_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    value = b"BOS1" + zlib.compress(pickle.dumps({"key": ["a", "b", "c"], "engine": Evil()}))
    with pytest.raises(StateError) as err:
        SnapshotCodec().decode(value, key=b"a/b/c")
    assert err.value.reason == "foreign"
    assert not marker.exists()


def doc(**over) -> bytes:
    body = {"v": VERSION, "key": ["a", "b", "c"], "taken_at": 0.0, "partition": 0, "engine": None,
            "breaker": None, **over}
    return MAGIC + zlib.compress(json.dumps(body).encode())


@pytest.mark.parametrize("value, reason", [
    (None, "tombstone"),
    (b"{\"json\": true}", "foreign"),
    (MAGIC + b"not zlib", "malformed"),
    (MAGIC + zlib.compress(b"\x80\x05garbage"), "malformed"),
    (MAGIC + zlib.compress(b'["a", "list"]'), "malformed"),
    (doc(key=["a", "b"]), "malformed"),
    (doc(taken_at="noon"), "malformed"),
    (doc(partition=-1), "malformed"),
    (doc(engine=[1, 2]), "malformed"),
    (doc(v=1), "incompatible"),
    (MAGIC + zlib.compress(b"\0" * 20_000_000), "too_big"),
])
def test_bad_values_name_their_reason(value, reason):
    with pytest.raises(StateError) as err:
        SnapshotCodec().decode(value, key=b"a/b/c")
    assert err.value.reason == reason


def test_a_record_under_another_key_is_refused():
    p = Pipeline()
    run(p, healthy(EAST, T0, 120), T0 + 120)
    value, headers = SnapshotCodec().encode(export_key(p, EAST, partition=0, taken_at=0.0))
    with pytest.raises(StateError) as err:
        SnapshotCodec().decode(value, headers, key=str(WEST).encode())
    assert err.value.reason == "wrong_key"


def test_signed_snapshots_refuse_forged_and_unsigned_ones():
    p = Pipeline()
    run(p, healthy(EAST, T0, 120), T0 + 120)
    snap = export_key(p, EAST, partition=0, taken_at=0.0)
    ours = SnapshotCodec(signer=Signer(b"k1"), verify_keys=[b"k1"])
    value, headers = ours.encode(snap)
    assert ours.decode(value, headers, key=str(EAST).encode()).key == EAST
    forged_value, forged_headers = SnapshotCodec(signer=Signer(b"other")).encode(snap)
    unsigned_value, unsigned_headers = SnapshotCodec().encode(snap)
    for v, h in ((forged_value, forged_headers), (unsigned_value, unsigned_headers), (value + b"x", headers)):
        with pytest.raises(StateError) as err:
            ours.decode(v, h, key=str(EAST).encode())
        assert err.value.reason == "bad_signature"


def test_a_snapshot_over_the_size_bound_is_not_written():
    p = Pipeline()
    run(p, healthy(EAST, T0, 120), T0 + 120)
    with pytest.raises(StateError) as err:
        SnapshotCodec(max_bytes=100).encode(export_key(p, EAST, partition=0, taken_at=0.0))
    assert err.value.reason == "too_big"


def test_after_a_rule_change_the_rest_comes_back(tmp_path):
    old = Pipeline()
    run(old, healthy(EAST, T0, 900), T0 + 900)
    value, headers = SnapshotCodec().encode(export_key(old, EAST, partition=0, taken_at=0.0))
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  error_rate:\n    window: 120\n")
    new = Pipeline(load_rules(str(rules)))
    what = install(new, SnapshotCodec().decode(value, headers, key=str(EAST).encode()))
    assert what == "restored_partly"
    assert new.status()[EAST].latency_p95_baseline == old.status()[EAST].latency_p95_baseline
    assert new.status()[EAST].warming is False


def test_the_keeper_counts_bad_records_and_restores_the_good_ones():
    p = Pipeline()
    run(p, healthy(EAST, T0, 900) + healthy(WEST, T0, 900), T0 + 900)
    value, headers = SnapshotCodec().encode(export_key(p, EAST, partition=0, taken_at=0.0))
    records = [Record("state", str(EAST).encode(), value, headers),
               Record("state", str(WEST).encode(), b"garbage", ())]
    fresh = Pipeline()
    keeper = StateKeeper(fresh, "state")
    assert keeper.restore(records, {}) == [EAST]
    assert keeper.counts == {"restored": 1, "rejected:foreign": 1}
    assert EAST in fresh.status() and WEST not in fresh.status()


# --- collectors on the in-memory transport -------------------------------------------------

class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def publish(t: MemoryTransport, events: list[Event]) -> None:
    p = t.producer()
    for e in events:
        await p.send(sc.TOPIC_EVENTS, wire.encode_flat([e]), key=str(e.key).encode(),
                     headers=((sc.HEADER_CONTENT_TYPE, sc.CONTENT_FLAT_JSON.encode()),))


def collector(t: MemoryTransport, clock: Clock) -> Collector:
    p = Pipeline()
    return Collector(t, p, clock=clock, state=StateKeeper(p, sc.TOPIC_STATE, interval=60.0))


async def drive(collectors: list[Collector], clock: Clock, until: float) -> list:
    decisions = []
    while clock.t < until:
        clock.t += 5.0
        for c in collectors:
            before = len(c.decisions)
            await c.poll_once(timeout=0.0)
            decisions += list(c.decisions)[before:]
    return decisions


async def test_a_joining_member_takes_its_keys_with_their_state():
    t = MemoryTransport()
    await t.create_topics(default_topics(partitions=4))
    keys = [Key("openai", f"region-{i}", "gpt-4o") for i in range(8)]
    clock = Clock(T0)
    a = collector(t, clock)
    await a.start()
    for minute in range(12):  # 12 healthy minutes, published and judged minute by minute
        await publish(t, [e for k in keys for e in healthy(k, T0 + 60 * minute, 60)])
        await drive([a], clock, T0 + 60 * (minute + 1) + 10)
    assert all(not s.warming for s in a.pipeline.status().values())
    b = collector(t, clock)
    await b.start()  # a's partitions are revoked (state saved), then split between a and b
    mine_a, mine_b = set(a.pipeline.status()), set(b.pipeline.status())
    assert mine_a and mine_b and not mine_a & mine_b and mine_a | mine_b == set(keys)
    assert all(not s.warming for s in b.pipeline.status().values())
    assert b.state.counts["restored"] == len(mine_b)
    await publish(t, [e for k in keys for e in healthy(k, clock.t, 30)])
    await drive([a, b], clock, clock.t + 40)
    assert set(a.pipeline.status()) == mine_a and set(b.pipeline.status()) == mine_b
    accepted = a.counts["events:accepted"] + b.counts["events:accepted"]
    assert accepted == len(t.records(sc.TOPIC_EVENTS))  # every event once across the two
    await a.stop()
    await b.stop()


async def test_a_restarted_collector_neither_rewarms_nor_announces_again():
    t = MemoryTransport()
    await t.create_topics(default_topics(partitions=2))
    clock = Clock(T0)
    a = collector(t, clock)
    await a.start()
    for minute in range(12):
        await publish(t, [e for k in (EAST, WEST) for e in healthy(k, T0 + 60 * minute, 60)])
        await drive([a], clock, T0 + 60 * (minute + 1) + 10)
    await publish(t, degraded(EAST, clock.t - 5, 120) + healthy(WEST, clock.t - 5, 120))
    first = await drive([a], clock, clock.t + 70)
    assert {(d.rule, d.state) for d in first if d.key == EAST} >= {("error_rate", "firing"), ("error_breaker", "open")}
    await a.stop()  # a graceful restart: state saved on stop
    control_before = len(t.records(sc.TOPIC_CONTROL))
    b = collector(t, clock)
    await b.start()
    assert not b.pipeline.status()[EAST].warming
    await publish(t, degraded(EAST, clock.t - 5, 20))
    again = await drive([b], clock, clock.t + 15)
    assert not [d for d in again if d.kind == "alert" and d.state in ("pending", "firing")]
    # the breaker may re-open after failed probes (a new transition), never trip open again
    assert not [d for d in again if d.kind == "breaker" and d.state == "open" and d.reason == "tripped"]
    seqs = [(r.key, r.value) for r in t.records(sc.TOPIC_CONTROL)[control_before:]]
    assert all(b"\"state\": \"open\"" not in v or b"probes_failed" in v for _, v in seqs)
    await b.stop()


class Recorder:
    def __init__(self, name: str, log: list) -> None:
        self.name, self.log = name, log

    async def on_revoked(self, partitions):
        self.log.append((self.name, "revoked", partitions))

    async def on_assigned(self, partitions):
        self.log.append((self.name, "assigned", partitions))


async def test_memory_group_members_split_partitions_and_every_revocation_comes_first():
    t = MemoryTransport()
    await t.create_topics(default_topics(partitions=4))
    log: list = []
    a = t.consumer([sc.TOPIC_EVENTS], group_id="g", listener=Recorder("a", log))
    b = t.consumer([sc.TOPIC_EVENTS], group_id="g", listener=Recorder("b", log))
    await a.start()
    assert log == [("a", "assigned", [(sc.TOPIC_EVENTS, p) for p in range(4)])]
    log.clear()
    await b.start()
    assert [x[:2] for x in log] == [("a", "revoked"), ("a", "assigned"), ("b", "assigned")]
    assert sorted(log[1][2] + log[2][2]) == [(sc.TOPIC_EVENTS, p) for p in range(4)]
    assert set(await a.positions()).isdisjoint(await b.positions())
    log.clear()
    await b.stop()  # leaving: no callback for the leaver, the others get everything back
    assert [x[:2] for x in log] == [("a", "revoked"), ("a", "assigned")]
    assert len(await a.positions()) == 4
    await a.stop()


async def test_periodic_snapshots_are_spread_over_polls():
    t = MemoryTransport()
    await t.create_topics(default_topics(partitions=1))
    clock = Clock(T0)
    p = Pipeline()
    keeper = StateKeeper(p, sc.TOPIC_STATE, interval=30.0, max_per_poll=3)
    c = Collector(t, p, clock=clock, state=keeper)
    await c.start()
    keys = [Key("openai", f"region-{i}", "gpt-4o") for i in range(7)]
    await publish(t, [e for k in keys for e in healthy(k, T0 - 10, 5)])
    sizes = []
    for _ in range(4):
        before = len(t.records(sc.TOPIC_STATE))
        await c.poll_once(timeout=0.0)
        sizes.append(len(t.records(sc.TOPIC_STATE)) - before)
    assert sizes == [3, 3, 1, 0]
    await c.stop()


def forged(mutate) -> tuple[bytes, tuple]:
    p = Pipeline()
    run(p, healthy(EAST, T0, 900), T0 + 900)
    snap = export_key(p, EAST, partition=0, taken_at=0.0)
    mutate(snap)
    return SnapshotCodec().encode(snap)


@pytest.mark.parametrize("mutate, reason", [
    (lambda s: s.engine.__setitem__("late", "many"), "incompatible"),
    (lambda s: s.engine.__setitem__("counts", [[1, 2]]), "incompatible"),
    (lambda s: s.engine.pop("signals"), "incompatible"),
    (lambda s: s.engine["signals"]["ttft"]["baselines"]["0.5"]["fallback"].__setitem__("n", None), "incompatible"),
    (lambda s: object.__setattr__(s, "breaker", {"state": "melted"}), "incompatible"),
    (lambda s: object.__setattr__(s, "breaker", {**s.breaker, "seq": "7"}), "incompatible"),
    (lambda s: object.__setattr__(s, "breaker", {**s.breaker, "state": "melted"}), "incompatible"),
], ids=["late", "counts", "missing", "baseline-inner", "breaker-fields", "breaker-seq", "breaker-state"])
def test_well_formed_but_wrong_state_is_refused_and_the_key_keeps_what_it_had(mutate, reason):
    def broken(snap):
        object.__setattr__(snap, "engine", json.loads(json.dumps(snap.engine)))
        mutate(snap)
    value, headers = forged(broken)
    p = Pipeline()
    run(p, healthy(EAST, T0 + 900, 60), T0 + 960)
    before = p.status()[EAST]
    keeper = StateKeeper(p, "state")
    assert keeper.restore([Record("state", str(EAST).encode(), value, headers)], {}) == []
    assert keeper.counts == {f"rejected:{reason}": 1}
    assert p.status()[EAST] == before
    run(p, healthy(EAST, T0 + 960, 60), T0 + 1020)  # and it judges on


async def test_a_batch_fetched_before_a_rebalance_is_left_to_the_new_owner():
    t = MemoryTransport()
    await t.create_topics(default_topics(partitions=4))
    clock = Clock(T0)
    a, b = collector(t, clock), collector(t, clock)
    await a.start()
    keys = [Key("openai", f"region-{i}", "gpt-4o") for i in range(8)]
    await publish(t, [e for k in keys for e in healthy(k, T0 - 10, 5)])
    await a._lock.acquire()  # a is busy: b's join queues a's revocation, then a fetches a batch
    join = asyncio.create_task(b.start())
    await asyncio.sleep(0)
    poll = asyncio.create_task(a.poll_once(timeout=0.0))
    await asyncio.sleep(0.01)
    a._lock.release()
    await join
    await poll
    assert a.counts["records_rebalanced"] == len(t.records(sc.TOPIC_EVENTS))
    await drive([a, b], clock, T0 + 20)
    assert a.counts["events:accepted"] + b.counts["events:accepted"] == len(t.records(sc.TOPIC_EVENTS))
    await a.stop()
    await b.stop()


# --- key rotation: the collector's key ring ------------------------------------------------

KEY_A, KEY_B = b"signing-key-A-0123456789", b"signing-key-B-9876543210"


def signed_collector(t: MemoryTransport, clock: Clock, tmp_path, current: bytes,
                     previous: dict[str, bytes] | None = None) -> Collector:
    """A collector wired as ``brownout collect`` wires it, from settings: a signing key in the
    environment and previous keys in files (``signing.previous_key_files``)."""
    from brownout.collector.run import signing, state_keeper
    from brownout.collector.settings import load_settings

    files = {}
    for kid, key in (previous or {}).items():
        files[kid] = str(tmp_path / f"{kid}.key")
        (tmp_path / f"{kid}.key").write_bytes(key + b"\n")
    env = {"BROWNOUT_SIGNING_KEY": current.decode()}
    settings = load_settings(env=env, overrides={"signing.previous_key_files": files, "state.interval": 60})
    signer, keys = signing(settings, env)
    p = Pipeline(signer=signer)
    return Collector(t, p, clock=clock, state=state_keeper(settings, p, signer, keys))


async def test_after_a_key_rotation_snapshots_of_the_previous_key_are_restored_and_forged_ones_refused(tmp_path):
    t = MemoryTransport()
    await t.create_topics(default_topics(partitions=2))
    clock = Clock(T0)
    a = signed_collector(t, clock, tmp_path, KEY_A)
    await a.start()
    for minute in range(12):
        await publish(t, [e for k in (EAST, WEST) for e in healthy(k, T0 + 60 * minute, 60)])
        await drive([a], clock, T0 + 60 * (minute + 1) + 10)
    await a.stop()  # snapshots signed with key A
    assert all(r.header(sc.HEADER_KEY_ID) == a.pipeline.book.signer.key_id.encode()
               for r in t.records(sc.TOPIC_STATE))

    only_new = signed_collector(t, clock, tmp_path, KEY_B)  # rotated without keeping A: baselines lost
    await only_new.start()
    # both the snapshots and the keys' control records (signed with A) are refused
    assert only_new.state.counts == {"rejected:bad_signature": 2, "rejected:control_signature": 2}
    assert not only_new.pipeline.status()
    await only_new.stop()

    ring = signed_collector(t, clock, tmp_path, KEY_B, {"a": KEY_A})  # rotated, A kept as a previous key
    await ring.start()
    assert ring.state.counts == {"restored": 2}
    assert not ring.pipeline.status()[EAST].warming and not ring.pipeline.status()[WEST].warming
    await ring.stop()  # now signed with key B

    # someone who can write to the state topic but holds no key forges EAST's snapshot, naming key A
    forged, _ = SnapshotCodec().encode(export_key(ring.pipeline, EAST, partition=None, taken_at=clock.t))
    t.append(sc.TOPIC_STATE, forged, key=str(EAST).encode(), headers=Signer(b"attacker", key_id="a").headers(forged))
    after = signed_collector(t, clock, tmp_path, KEY_B, {"a": KEY_A})
    registry = CollectorRegistry()
    after.metrics = CollectorMetrics(registry)
    await after.start()
    # EAST starts fresh (its genuine control record still brings its breaker back); WEST is restored
    assert after.state.counts == {"restored": 1, "rejected:bad_signature": 1, "restored_breaker_only": 1}
    assert EAST not in after.pipeline.status() and not after.pipeline.status()[WEST].warming
    await after.poll_once(timeout=0.0)  # the keeper's counters reach Prometheus once per poll
    def records(outcome: str, reason: str = "") -> float | None:
        return registry.get_sample_value("brownout_state_records_total", {"outcome": outcome, "reason": reason})

    assert (records("restored"), records("rejected", "bad_signature"), records("restored_breaker_only")) == (1, 1, 1)
    assert registry.get_sample_value("brownout_state_restore_seconds_count") == 1
    await after.poll_once(timeout=0.0)
    assert records("restored") == 1  # exported once, not per poll
    await after.stop()
