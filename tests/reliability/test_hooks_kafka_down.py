"""Hooks with Kafka down, unreachable or slow: the app's calls are unaffected, every event is
accounted for (sent, lost to the transport, or dropped on a full queue) in ``hooks.stats()``,
and delivery resumes when the broker comes back.

Prints the time an app call spends in the hooks with Kafka refused / black-holed next to the
time with no Kafka configured and with no hooks at all. The only timed assertion is a generous
bound (an app call never waits on the network: under two seconds, the exporter's send
timeout being ten).
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import threading
import time
from typing import Callable, Iterator

import pytest
from support import kafka_broker_module

import brownout.hooks as hooks
from brownout import codec
from brownout.model import Event
from brownout.transport import KafkaTransport, TopicSpec

CALLS = 20_000
NEVER_WAITS = 2.0  # seconds: generous on a loaded machine; a call blocked on Kafka would wait the 10 s send timeout


def app_call(i: int) -> None:
    """One instrumented 'LLM call' as an app makes it: five streamed chunks and usage."""
    with hooks.observe(provider="openai", region="eastus", model="gpt-4o", stream=True) as call:
        for _ in range(5):
            call.chunk()
        call.usage(input_tokens=20, output_tokens=5 + i % 3)


def bare_call(i: int) -> None:
    """The same loop without hooks (the floor)."""
    chunks = []
    for _ in range(5):
        chunks.append(time.perf_counter())
    _ = (20, 5 + i % 3)


def time_calls(fn: Callable[[int], None], n: int = CALLS) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


def summary(xs: list[float]) -> str:
    xs = sorted(xs)
    return (f"median {statistics.median(xs) * 1e6:6.2f} us, p99 {xs[int(0.99 * len(xs))] * 1e6:7.2f} us, "
            f"max {xs[-1] * 1e3:6.2f} ms")


def accounted(stats: dict[str, int]) -> int:
    return stats["sent"] + stats["errors"] + stats["dropped"] + stats["invalid"] + stats["queued"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BlackHole:
    """A 'slow broker': a port that completes TCP handshakes and then never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        self.sock.settimeout(0.1)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.conns.append(conn)  # read nothing, answer nothing

    def close(self) -> None:
        self._stop.set()
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture(autouse=True)
def _hooks_reset(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("BROWNOUT_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    yield
    hooks.configure()


def test_unreachable_or_slow_kafka_costs_the_app_nothing_and_every_event_is_counted():
    floor = time_calls(bare_call)
    hooks.configure(max_queue=50_000)  # no destination: the hooks' own cost, events discarded
    time_calls(app_call, 2000)  # warm up
    unconfigured = time_calls(app_call)
    assert hooks.flush(10)
    assert hooks.stats()["discarded"] == CALLS + 2000

    hooks.configure(bootstrap_servers=f"127.0.0.1:{closed_port()}", max_queue=50_000)
    refused = time_calls(app_call)
    assert hooks.flush(30), "the exporter should give up on a refused port at once, not hang"
    refused_stats = hooks.stats()

    hole = BlackHole()
    try:
        hooks.configure(bootstrap_servers=f"127.0.0.1:{hole.port}", max_queue=2_000)
        slow = time_calls(app_call)
        slow_stats = hooks.stats()
    finally:
        hooks.configure()
        hole.close()

    print(f"\nper app call (5 chunks + usage), {CALLS} calls each:"
          f"\n  no hooks           {summary(floor)}"
          f"\n  hooks, no Kafka    {summary(unconfigured)}"
          f"\n  hooks, Kafka port refused     {summary(refused)}"
          f"\n  hooks, Kafka black-holed      {summary(slow)}"
          f"\n  added vs no Kafka (median): refused {(statistics.median(refused) - statistics.median(unconfigured)) * 1e6:+.2f} us, "
          f"black hole {(statistics.median(slow) - statistics.median(unconfigured)) * 1e6:+.2f} us"
          f"\n  refused: {refused_stats}\n  black hole: {slow_stats}")
    assert max(refused) < NEVER_WAITS and max(slow) < NEVER_WAITS
    # Refused: every event is lost to the transport and counted; none claimed as sent.
    assert refused_stats["sent"] == 0 and refused_stats["queued"] == 0
    assert refused_stats["errors"] + refused_stats["dropped"] == CALLS
    # Black hole: the producer hangs on connect, the bounded queue fills, the rest are dropped.
    assert slow_stats["sent"] == 0
    assert slow_stats["dropped"] >= CALLS - 2_000 - 512  # at most a queue and a batch in flight
    assert accounted(slow_stats) <= CALLS


async def _count_events(bootstrap: str, topic: str) -> int:
    c = KafkaTransport(bootstrap).consumer([topic], from_beginning=True)
    await c.start()
    try:
        n, quiet = 0, 0
        while quiet < 3:
            batch = await c.getmany(timeout=1.0)
            quiet = 0 if batch else quiet + 1
            for r in batch:
                n += sum(isinstance(e, Event) for e in codec.decode(r.value))
        return n
    finally:
        await c.stop()


@pytest.mark.integration
def test_delivery_resumes_when_the_broker_comes_back():
    kb = kafka_broker_module()
    broker = kb.KafkaBroker().start()
    try:
        topic = "hooks.events"
        asyncio.run(KafkaTransport(broker.bootstrap_servers).create_topics([TopicSpec(topic, 1)]))
        broker.halt()
        hooks.configure(bootstrap_servers=broker.bootstrap_servers, topic=topic)
        down_calls = time_calls(app_call, 300)
        time.sleep(2.0)  # a few failed producer starts: the exporter is now backing off
        down = hooks.stats()
        assert down["sent"] == 0 and down["errors"] + down["dropped"] + down["queued"] == 300

        broker.resume()
        back_at = time.monotonic()
        emitted_after = 0
        resumed_in = None
        deadline = back_at + 60
        while time.monotonic() < deadline:
            app_call(emitted_after)
            emitted_after += 1
            time.sleep(0.01)
            if hooks.stats()["sent"] > 0:
                resumed_in = time.monotonic() - back_at
                break
        assert resumed_in is not None, f"no event delivered within 60 s of the broker's return: {hooks.stats()}"
        # From now on nothing is lost.
        assert hooks.flush(30)
        before = hooks.stats()
        for i in range(500):
            app_call(i)
        assert hooks.flush(30)
        after = hooks.stats()
        assert after["sent"] - before["sent"] == 500 and after["errors"] == before["errors"], after
        on_topic = asyncio.run(_count_events(broker.bootstrap_servers, topic))
        print(f"\nbroker down: {len(down_calls)} calls, {summary(down_calls)}; first delivery "
              f"{resumed_in:.1f} s after the broker was back; stats {after}; events on the topic {on_topic}")
        assert max(down_calls) < NEVER_WAITS
        assert on_topic == after["sent"]  # count reconciliation: what the hooks call sent is on the topic
        assert accounted(after) == 300 + emitted_after + 500
    finally:
        hooks.configure()
        broker.stop()
