"""The whole path on the real broker: hooks -> events topic -> `brownout collect` (its own
process) -> control topic -> a BreakerBoard started afterwards; every event accounted for."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from support import ServiceUnavailable, create_collector_topics, free_port, ready, scrape, wait_for

import brownout.hooks as hooks
from brownout import semconv as sc
from brownout.breakers import AsyncBreakerBoard, ControlRecord
from brownout.model import Key
from brownout.transport import KafkaTransport

pytestmark = pytest.mark.integration

DEGRADED = Key("openai", "eastus", "gpt-4o")
SIBLING = Key("openai", "westus", "gpt-4o")
OTHER = Key("anthropic", "us-east-1", "claude-sonnet-4")


def call(key: Key, fail: bool) -> None:
    try:
        with hooks.observe(provider=key.provider, region=key.region, model=key.model, stream=True) as obs:
            if fail:
                raise ServiceUnavailable("503 from the stand-in provider")
            for _ in range(5):
                obs.chunk()
            obs.usage(input_tokens=20, output_tokens=5)
    except ServiceUnavailable:
        pass


async def read_control(kafka_bootstrap: str, topic: str) -> list[ControlRecord]:
    t = KafkaTransport(kafka_bootstrap)
    c = t.consumer([topic], from_beginning=True)
    await c.start()
    try:
        out = []
        for _ in range(5):
            out += [ControlRecord.from_bytes(r.value) for r in await c.getmany(timeout=1.0) if r.value]
        return out
    finally:
        await c.stop()


def test_hooks_collector_control_topic_and_board(kafka_bootstrap, topic_name, tmp_path):
    topics = asyncio.run(create_collector_topics(kafka_bootstrap, topic_name, 3))
    port = free_port()
    env = dict(os.environ, BROWNOUT_TOPICS_STATE=topics["state"], BROWNOUT_TOPICS_DEAD_LETTER=topics["dead_letter"],
               BROWNOUT_LOG_LEVEL="INFO")
    log = open(tmp_path / "collector.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "brownout.cli", "collect", "--bootstrap-servers", kafka_bootstrap,
         "--events-topic", topics["events"], "--control-topic", topics["control"],
         "--group-id", topic_name("group"), "--metrics-port", str(port), "--no-create-topics"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: ready(port), 60, "the collector's /readyz")
        hooks.configure(bootstrap_servers=kafka_bootstrap, topic=topics["events"])
        emitted = 0
        # 30 s of traffic, 4 requests/s per key; after 5 s the degraded key fails 60 % of its calls.
        t_start = time.monotonic()
        i = 0
        while time.monotonic() - t_start < 30:
            for key in (DEGRADED, SIBLING, OTHER):
                call(key, fail=key == DEGRADED and time.monotonic() - t_start > 5 and i % 5 < 3)
                emitted += 1
            i += 1
            time.sleep(0.25)
        assert hooks.flush(30), "the hooks could not deliver their events"
        stats = hooks.stats()
        assert stats["dropped"] == 0 and stats["errors"] == 0 and stats["sent"] == emitted, stats
        # a garbage record on the events topic: dead-lettered, never a crash
        asyncio.run(_send_garbage(kafka_bootstrap, topics["events"]))

        def opened():
            recs = asyncio.run(read_control(kafka_bootstrap, topics["control"]))
            return [r for r in recs if r.state == "open"]
        opens = wait_for(opened, 60, f"an open record for {DEGRADED} on the control topic", interval=2)
        assert {r.key for r in opens} == {DEGRADED}

        metrics = wait_for(lambda: (m := scrape(port)).get('brownout_events_total{outcome="accepted"}', 0)
                           >= emitted and m, 60, "every event to be counted")
        assert metrics['brownout_events_total{outcome="accepted"}'] == emitted  # count reconciliation
        assert metrics['brownout_decode_errors_total{reason="malformed_protobuf"}'] == 1
        assert metrics['brownout_breaker_state{model="gpt-4o",provider="openai",region="eastus"}'] == 2

        # a router started after the fact rebuilds the board from the compacted topic
        async def board_view():
            board = AsyncBreakerBoard(KafkaTransport(kafka_bootstrap), topics["control"], registry=None)
            await board.start()
            try:
                return board.state(DEGRADED), board.state(SIBLING), board.state(OTHER)
            finally:
                await board.stop()
        degraded_state, sibling_state, other_state = asyncio.run(board_view())
        assert degraded_state in ("open", "half_open") and sibling_state == "closed" and other_state == "closed"
        dead = asyncio.run(_read_all(kafka_bootstrap, topics["dead_letter"]))
        assert [r.header(sc.HEADER_REASON) for r in dead] == [b"malformed_protobuf"]
    finally:
        hooks.configure()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        log.close()
        print((tmp_path / "collector.log").read_text()[-3000:])
    assert code == 0


async def _send_garbage(bootstrap: str, topic: str) -> None:
    p = KafkaTransport(bootstrap).producer()
    await p.start()
    await p.send(topic, b"\x0a\xff\xff not otlp", key=b"x/y/z",
                 headers=((sc.HEADER_CONTENT_TYPE, sc.CONTENT_OTLP_PROTO.encode()),))
    await p.stop()


async def _read_all(bootstrap: str, topic: str):
    c = KafkaTransport(bootstrap).consumer([topic], from_beginning=True)
    await c.start()
    try:
        out = []
        for _ in range(3):
            out += await c.getmany(timeout=1.0)
        return out
    finally:
        await c.stop()
