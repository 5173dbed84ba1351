"""AsyncBreakerBoard and BreakerBoard against MemoryTransport: rebuild, follow, expiry,
signatures, admission, metrics."""

import asyncio
import random
import socket
import threading

import pytest
from prometheus_client import CollectorRegistry

from brownout import semconv as sc
from brownout.breakers import (AsyncBreakerBoard, BreakerBoard, BreakerBook, BreakerConfig, ControlRecord,
                               Signer)
from brownout.model import Event, Finding, Key
from brownout.transport import MemoryTransport

TOPIC = sc.TOPIC_CONTROL
A = Key("openai", "eastus", "gpt-4o")
B = Key("azure.ai.openai", "swedencentral", "gpt-4o")


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def rec(key, state, seq=1, issued_at=1000.0, ttl=30.0, probe_fraction=0.1):
    return ControlRecord(key, state, since=issued_at, until=issued_at + 30 if state == "open" else None,
                         reason="tripped", rule="error_breaker", probe_fraction=probe_fraction, seq=seq,
                         issued_at=issued_at, expires_at=issued_at + ttl)


def put(t, record, signer=None, value=None):
    value = record.to_bytes() if value is None else value
    headers = signer.headers(value) if signer else ()
    t.append(TOPIC, value, record.kafka_key(), headers)


async def eventually(cond, timeout=5.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


@pytest.fixture
def registry():
    return CollectorRegistry()


@pytest.fixture
def clock():
    return Clock()


async def started(t, registry, clock, **kw):
    board = AsyncBreakerBoard(t, clock=clock, registry=registry, poll_timeout=0.05, **kw)
    await board.start(timeout=5.0)
    return board


def metric(registry, name, **labels):
    return registry.get_sample_value(name, labels) or 0.0


async def test_rebuilds_from_the_topic_keeping_the_newest_record(registry, clock):
    t = MemoryTransport()
    put(t, rec(A, "open", seq=1))
    put(t, rec(B, "open", seq=4))
    put(t, rec(A, "half_open", seq=2))
    put(t, rec(B, "closed", seq=3))  # older seq than B's open: stale
    t.append(TOPIC, b"{not json", b"x/y/z")
    board = await started(t, registry, clock)
    try:
        assert board.ready
        assert board.state(A) == "half_open" and board.state(B) == "open"
        assert board.state(Key("x", "y", "z")) == "closed"
        assert metric(registry, "brownout_router_records_total", result="accepted") == 3
        assert metric(registry, "brownout_router_records_total", result="stale") == 1
        assert metric(registry, "brownout_router_records_total", result="invalid") == 1
    finally:
        await board.stop()


async def test_follows_changes_after_start_and_tombstones(registry, clock):
    t = MemoryTransport()
    board = await started(t, registry, clock)
    try:
        assert board.state(A) == "closed"  # empty topic: everything closed
        put(t, rec(A, "open", seq=1))
        await eventually(lambda: board.state(A) == "open")
        put(t, rec(A, "closed", seq=2))
        await eventually(lambda: board.state(A) == "closed")
        put(t, rec(A, "open", seq=3))
        await eventually(lambda: board.state(A) == "open")
        t.append(TOPIC, None, str(A).encode())
        await eventually(lambda: A not in board.records())
    finally:
        await board.stop()


async def test_expired_records_fail_open_and_are_counted_once(registry, clock):
    t = MemoryTransport()
    put(t, rec(A, "open", issued_at=1000.0, ttl=30.0))
    board = await started(t, registry, clock)
    try:
        assert not board.allow(A)
        clock.now = 1030.0  # the collector stopped: no heartbeat came
        assert board.state(A) == "closed" and board.allow(A) and board.healthy([A, B]) == [A, B]
        assert metric(registry, "brownout_router_fail_open_total", reason="expired") == 1
        assert metric(registry, "brownout_router_breaker_state", provider=A.provider, region=A.region,
                      model=A.model) == 0
        put(t, rec(A, "open", issued_at=1030.0))  # heartbeat again: open again
        await eventually(lambda: board.state(A) == "open")
        assert metric(registry, "brownout_router_breaker_state", provider=A.provider, region=A.region,
                      model=A.model) == 2
    finally:
        await board.stop()


async def test_silent_topic_fails_open(registry, clock):
    t = MemoryTransport()
    put(t, rec(A, "open", ttl=3600.0))
    board = await started(t, registry, clock, silence_timeout=60.0)
    try:
        assert board.state(A) == "open"
        clock.now += 61.0
        assert board.state(A) == "closed"
        assert metric(registry, "brownout_router_fail_open_total", reason="silence") == 1
    finally:
        await board.stop()


async def test_unsigned_and_forged_records_are_refused(registry, clock):
    t = MemoryTransport()
    good, forger = Signer(b"collector-key"), Signer(b"guess")
    put(t, rec(A, "open", seq=1), signer=good)
    put(t, rec(A, "closed", seq=2))  # unsigned
    put(t, rec(A, "closed", seq=3), signer=forger)
    signed = rec(B, "open").to_bytes()
    put(t, rec(B, "open"), value=signed.replace(b'"open"', b'"half_open"'),
        signer=None)  # tampered, no header
    t.append(TOPIC, signed.replace(b'"open"', b'"half_open"'), str(B).encode(), good.headers(signed))
    board = await started(t, registry, clock, verify_keys=[b"old-key", b"collector-key"])
    try:
        assert board.state(A) == "open" and board.state(B) == "closed"
        assert metric(registry, "brownout_router_records_total", result="refused") == 4
        assert metric(registry, "brownout_router_records_total", result="accepted") == 1
    finally:
        await board.stop()


async def test_half_open_admits_about_probe_fraction(registry, clock):
    t = MemoryTransport()
    put(t, rec(A, "half_open", probe_fraction=0.1))
    board = await started(t, registry, clock, rng=random.Random(3))
    try:
        n = 4000
        admitted = sum(board.allow(A) for _ in range(n))
        assert 0.07 * n < admitted < 0.13 * n
    finally:
        await board.stop()


async def test_healthy_is_never_empty(registry, clock):
    t = MemoryTransport()
    C = Key("openai", "westus", "gpt-4o")
    put(t, rec(A, "open"))
    put(t, rec(B, "half_open", probe_fraction=1e-9))
    board = await started(t, registry, clock)
    try:
        assert board.healthy([A, B, C]) == [C]
        assert board.healthy([A, B]) == [B]  # nothing admitted: the half-open one
        assert board.healthy([A]) == [A]  # all open: unfiltered
        assert board.healthy([]) == []
    finally:
        await board.stop()


async def test_stop_unregisters_so_a_new_board_can_register(registry, clock):
    t = MemoryTransport()
    first = await started(t, registry, clock)
    await first.stop()
    second = await started(t, registry, clock)
    await second.stop()


async def test_book_publishes_signed_records_the_board_follows(registry, clock):
    t = MemoryTransport()
    signer = Signer(b"k")
    book = BreakerBook(BreakerConfig(jitter=0.0), signer=signer)
    for k in (A, B):
        book.observe(Event(k, 990.0, 1.0))
    producer = t.producer()
    board = await started(t, registry, clock, verify_keys={signer.key_id: b"k"})
    try:
        book.on_finding(Finding(1000.0, "error_breaker", A, "trip", 0.5, 0.01, action="breaker"))
        book.advance(1000.0)
        assert await book.publish(producer, 1000.0) == 1
        await eventually(lambda: board.state(A) == "open")
        assert board.healthy([A, B]) == [B]
        assert metric(registry, "brownout_router_records_total", result="refused") == 0
    finally:
        await board.stop()


def test_sync_board_on_its_own_thread(registry, clock):
    t = MemoryTransport()
    put(t, rec(A, "open", seq=1))
    with BreakerBoard(t, clock=clock, registry=registry, poll_timeout=0.05) as board:
        assert board.ready and board.state(A) == "open"
        put(t, rec(A, "closed", seq=2))
        done = threading.Event()
        for _ in range(1000):
            if board.state(A) == "closed":
                done.set()
                break
            done.wait(0.005)
        assert done.is_set()
        assert board.healthy([A, B]) == [A, B]
    assert not board.ready


async def test_zero_poll_timeout_does_not_starve_the_loop(registry, clock):
    t = MemoryTransport()
    board = AsyncBreakerBoard(t, clock=clock, registry=registry, poll_timeout=0.0)
    await board.start(timeout=5.0)
    try:
        put(t, rec(A, "open"))
        await eventually(lambda: board.state(A) == "open")
    finally:
        await board.stop()


async def test_unreachable_control_plane_fails_open_or_raises_when_strict(registry):
    from brownout.transport import KafkaTransport

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    board = AsyncBreakerBoard(KafkaTransport(dead), registry=registry)
    await board.start(timeout=0.5)
    try:
        assert not board.ready
        assert board.state(A) == "closed" and board.healthy([A, B]) == [A, B]
    finally:
        await board.stop()
    strict = AsyncBreakerBoard(KafkaTransport(dead), registry=registry)
    with pytest.raises(TimeoutError, match="not read within"):
        await strict.start(timeout=0.5, strict=True)
    assert not strict.ready
