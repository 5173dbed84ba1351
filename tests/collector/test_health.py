"""``/healthz`` reports the poll loop's progress: a loop whose poll blocks turns it 503 with the
reason, over HTTP, while ``/readyz`` stays as it is; the loop coming back turns it 200 again."""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
from collector_support import traffic
from prometheus_client import CollectorRegistry
from support import free_port, wait_for

from brownout import codec
from brownout.collector.health import PollProgress
from brownout.collector.run import run_collector
from brownout.collector.settings import load_settings
from brownout.rules import load_rules
from brownout.transport import MemoryTransport


class HangingTransport(MemoryTransport):
    """The in-memory broker, whose consumers' ``getmany`` blocks the event loop's thread (as a
    stuck synchronous call would) while ``hang`` is set, until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.hang = threading.Event()
        self.release = threading.Event()
        self.hung = threading.Event()

    def consumer(self, *args: Any, **kwargs: Any) -> Any:
        consumer = super().consumer(*args, **kwargs)
        getmany = consumer.getmany

        async def blocking_getmany(timeout: float = 1.0, max_records: int = 1000) -> Any:
            if self.hang.is_set():
                self.hung.set()
                self.release.wait(60)  # blocks the whole loop: nothing else in it runs
            return await getmany(timeout=timeout, max_records=max_records)

        consumer.getmany = blocking_getmany
        return consumer


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


class CollectorThread(threading.Thread):
    """``run_collector`` in its own thread and event loop (the test's thread stays free to probe)."""

    def __init__(self, settings: Any, transport: Any) -> None:
        super().__init__(daemon=True)
        self.settings, self.transport = settings, transport
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        async def main() -> None:
            self.stop_event = asyncio.Event()
            await run_collector(self.settings, load_rules(None), transport=self.transport, stop=self.stop_event,
                                registry=CollectorRegistry(), env={})

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:
            self.error = exc
        finally:
            self.loop.close()

    def stop(self) -> None:
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.join(30)
        assert not self.is_alive(), "the collector did not stop"
        assert self.error is None, repr(self.error)


@pytest.fixture
def collector():
    port = free_port()
    settings = load_settings(env={}, overrides={"metrics.port": port, "health.max_poll_gap": 1.5,
                                                "status.history_minutes": 0})
    settings.metrics.host = "127.0.0.1"
    transport = HangingTransport()
    thread = CollectorThread(settings, transport)
    thread.start()
    try:
        yield transport, port
    finally:
        transport.release.set()
        thread.stop()


def test_a_blocked_poll_turns_healthz_503_with_the_reason_and_back(collector):
    transport, port = collector
    wait_for(lambda: get(port, "/healthz")[1].startswith("ok: last poll completed"), 30, "a completed poll")
    assert get(port, "/healthz")[0] == 200

    for ev in traffic(1_700_000_000.0, 5):
        transport.append("brownout.events", codec.encode_flat([ev]), key=str(ev.key).encode())
    wait_for(lambda: "last batch 10 records" in get(port, "/healthz")[1], 30, "the batch to show on /healthz")

    transport.hang.set()
    assert transport.hung.wait(30), "the poll never blocked"
    status, body = wait_for(lambda: (r := get(port, "/healthz"))[0] == 503 and r, 30, "/healthz to answer 503")
    assert body.startswith("unhealthy: no poll completed for ")
    assert "(health.max_poll_gap is 1.5 s)" in body and "last batch 10 records" in body
    assert get(port, "/readyz")[0] == 200  # readiness is not about the loop: unchanged

    transport.hang.clear()
    transport.release.set()
    wait_for(lambda: get(port, "/healthz")[0] == 200, 30, "/healthz to recover")


def test_progress_counts_the_gap_from_start_until_the_first_poll():
    t = [10.0]
    p = PollProgress(max_gap=5.0, clock=lambda: t[0])
    t[0] = 14.0
    assert p.check() == (True, "ok: no poll completed since start 4.0 s ago")
    t[0] = 16.0
    ok, reason = p.check()
    assert not ok and reason == "no poll completed since start 6.0 s ago (health.max_poll_gap is 5 s)"
    p.restart()
    assert p.check()[0]
    p.polled(0)
    assert p.last_batch is None and p.check()[1] == "ok: last poll completed 0.0 s ago"


def test_assigned_records_the_first_assignment_only():
    t = [0.0]
    p = PollProgress(clock=lambda: t[0])
    t[0] = 1.25
    assert p.assigned() == 1.25
    t[0] = 9.0
    assert p.assigned() == 9.0 and p.assigned_after == 1.25


@pytest.mark.parametrize("gap", [0, -1])
def test_a_gap_that_is_not_positive_is_refused(gap):
    with pytest.raises(ValueError, match="health.max_poll_gap"):
        PollProgress(max_gap=gap)
