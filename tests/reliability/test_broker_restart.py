"""Broker restart mid-stream: the real Kafka is stopped and started again (same port, same log
dir) twice, once cleanly (SIGTERM) and once crashed (SIGKILL), while an app's hooks produce and
`brownout collect` (its own process) consumes and publishes breaker state.

Both recover without a restart of their own, and nothing the hooks call sent is lost or
counted twice: the events topic holds exactly what the hooks sent (idempotent producer), the
collector accepted every one of them (at least once), and control records keep coming after
each restart. Prints the recovery times. A collector started while Kafka is unreachable exits
non-zero for its supervisor to restart.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support import (
    ServiceUnavailable,
    create_collector_topics,
    free_port,
    kafka_broker_module,
    ready,
    scrape,
    wait_for,
)

import brownout.hooks as hooks
from brownout import codec
from brownout.breakers import ControlRecord
from brownout.model import Event, Key
from brownout.transport import KafkaTransport

pytestmark = pytest.mark.integration

DEGRADED = Key("openai", "eastus", "gpt-4o")
SIBLING = Key("openai", "westus", "gpt-4o")  # somewhere to go: the guard lets the breaker open
HEALTHY = Key("anthropic", "us-east-1", "claude-sonnet-4")
ACCEPTED = 'brownout_events_total{outcome="accepted"}'


class App:
    """An app making instrumented LLM calls in a thread: ~60 calls/s over three keys, one failing."""

    def __init__(self) -> None:
        self.calls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.slowest = 0.0

    def start(self) -> "App":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            for key in (DEGRADED, SIBLING, HEALTHY):
                t0 = time.perf_counter()
                try:
                    with hooks.observe(provider=key.provider, region=key.region, model=key.model,
                                       stream=True) as call:
                        if key == DEGRADED and i % 5 < 3:
                            raise ServiceUnavailable("503 from the stand-in provider")
                        for _ in range(5):
                            call.chunk()
                        call.usage(input_tokens=20, output_tokens=5)
                except ServiceUnavailable:
                    pass
                self.slowest = max(self.slowest, time.perf_counter() - t0)
                self.calls += 1
            i += 1
            self._stop.wait(0.05)


async def _read(bootstrap: str, topic: str) -> list[Any]:
    c = KafkaTransport(bootstrap).consumer([topic], from_beginning=True)
    await c.start()
    try:
        out, quiet = [], 0
        while quiet < 2:
            batch = await c.getmany(timeout=1.0)
            quiet = 0 if batch else quiet + 1
            out += batch
        return out
    finally:
        await c.stop()


def events_on(bootstrap: str, topic: str) -> int:
    return sum(isinstance(e, Event) for r in asyncio.run(_read(bootstrap, topic)) for e in codec.decode(r.value))


def control_records(bootstrap: str, topic: str) -> list[ControlRecord]:
    return [ControlRecord.from_bytes(r.value) for r in asyncio.run(_read(bootstrap, topic)) if r.value]


def test_hooks_and_collector_ride_through_two_broker_restarts(tmp_path, topic_name):
    kb = kafka_broker_module()
    broker = kb.KafkaBroker().start()
    bootstrap = broker.bootstrap_servers
    topics = asyncio.run(create_collector_topics(bootstrap, topic_name, 3))
    port = free_port()
    env = dict(os.environ, BROWNOUT_TOPICS_STATE=topics["state"], BROWNOUT_TOPICS_DEAD_LETTER=topics["dead_letter"])
    env.pop("BROWNOUT_KAFKA_BOOTSTRAP_SERVERS", None)
    log_path = tmp_path / "collector.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "brownout.cli", "collect", "--bootstrap-servers", bootstrap,
         "--events-topic", topics["events"], "--control-topic", topics["control"],
         "--group-id", topic_name("group"), "--metrics-port", str(port), "--no-create-topics"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    app = App()
    report = []

    def alive() -> None:
        assert proc.poll() is None, f"the collector exited ({proc.returncode}):\n{log_path.read_text()[-4000:]}"

    try:
        wait_for(lambda: ready(port), 60, "the collector's /readyz")
        hooks.configure(bootstrap_servers=bootstrap, topic=topics["events"])
        app.start()
        wait_for(lambda: scrape(port).get(ACCEPTED, 0) > 0, 30, "the collector to count events")
        wait_for(lambda: control_records(bootstrap, topics["control"]), 60,
                 "the collector's first control records before the restarts")

        for kill in (False, True):
            accepted_before = scrape(port).get(ACCEPTED, 0)
            sent_before = hooks.stats()["sent"]
            t0 = time.monotonic()
            broker.halt(kill=kill)
            halted_in = time.monotonic() - t0
            time.sleep(2.0)  # down for a while: the app keeps calling
            started_in = broker.resume()
            back = time.monotonic()
            wait_for(lambda sent_before=sent_before: hooks.stats()["sent"] > sent_before + 20, 60,
                     "the hooks to deliver again after the restart")
            hooks_back = time.monotonic() - back
            wait_for(lambda accepted_before=accepted_before: scrape(port).get(ACCEPTED, 0) > accepted_before + 20, 60,
                     "the collector to consume again after the restart")
            collector_back = time.monotonic() - back
            alive()
            report.append(f"{'SIGKILL' if kill else 'SIGTERM'}: broker stopped in {halted_in:.1f} s, down "
                          f"{halted_in + 2 + started_in:.1f} s (restart {started_in:.1f} s); hooks delivering "
                          f"{hooks_back:.1f} s and collector consuming {collector_back:.1f} s after it was back")
            # The collector's producer works again: fresh control records (heartbeats, transitions).
            wait_for(lambda back=back: any(r.issued_at > time.time() - (time.monotonic() - back) + 0.5
                                 for r in control_records(bootstrap, topics["control"])), 60,
                     "control records issued after the restart")

        app.stop()
        assert hooks.flush(30), f"the hooks could not deliver their queue: {hooks.stats()}"
        stats = hooks.stats()
        on_topic = events_on(bootstrap, topics["events"])
        accepted = wait_for(lambda: (n := scrape(port).get(ACCEPTED, 0)) >= stats["sent"] and n, 60,
                            "the collector to count every event the hooks sent")
        time.sleep(1.5)  # a late duplicate would show up now
        accepted = scrape(port).get(ACCEPTED, 0)
        alive()
        report.append(f"app calls {app.calls} (slowest {app.slowest * 1e3:.1f} ms); hooks {stats}; "
                      f"events on the topic {on_topic}; collector accepted {accepted:.0f}")
        print("\n" + "\n".join(report))
        assert stats["sent"] + stats["errors"] + stats["dropped"] == app.calls
        assert on_topic == stats["sent"], "the events topic must hold exactly what the hooks sent"
        assert accepted >= stats["sent"]  # at least once
        assert accepted == on_topic, "no event consumed twice across the restarts"
        assert stats["errors"] == 0 and stats["dropped"] == 0, "a short restart must not lose events"
    finally:
        app.stop()
        hooks.configure()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        log.close()
        print(log_path.read_text()[-3000:])
        broker.stop()
    assert code == 0


def _collect_against_a_closed_port(tmp_path: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROWNOUT_")}
    proc = subprocess.run([sys.executable, "-m", "brownout.cli", "collect", "--bootstrap-servers",
                           f"127.0.0.1:{free_port()}", "--metrics-port", str(free_port())],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    return proc.returncode, proc.stdout + proc.stderr


def test_collect_started_while_kafka_is_down_exits_for_its_supervisor_to_restart(tmp_path):
    code, output = _collect_against_a_closed_port(tmp_path)
    assert code != 0, output[-2000:]
    assert "Unable to bootstrap" in output


def test_collect_started_while_kafka_is_down_says_so_in_one_line(tmp_path):
    code, output = _collect_against_a_closed_port(tmp_path)
    assert "Traceback" not in output, output[-2000:]
