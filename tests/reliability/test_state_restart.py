"""Kill -9 a `brownout collect` process mid-stream and start it again, on the real broker: the
baselines come back from the state topic within seconds, and neither a breaker transition nor an
alert trigger is announced twice."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid

import pytest
from support import create_collector_topics
from _state_support import (
    CollectProcess,
    EventWriter,
    key_labels,
    read_topic,
    sample,
    wait_for,
)

from brownout.model import Event, Key

pytestmark = pytest.mark.integration

STEADY = Key("openai", "eastus", "gpt-4o")
FAILING = Key("openai", "westus", "gpt-4o")


def healthy(key: Key, start: float, n: int, per_s: float) -> list[Event]:
    return [Event(key, start + i / per_s, 0.8 + 0.05 * (i % 5), ttft=0.3 + 0.01 * (i % 7), output_tokens=200)
            for i in range(n)]


def failing(start: float, n: int, per_s: float) -> list[Event]:
    """Half of the calls are 503s."""
    return [Event(FAILING, start + i / per_s, 0.1, error_type="503") if i % 2 else
            Event(FAILING, start + i / per_s, 0.8, ttft=0.3, output_tokens=200) for i in range(n)]


async def live(writer: EventWriter, stop: asyncio.Event) -> None:
    """Events as they complete, 4 per second per key, with times near now."""
    while not stop.is_set():
        now = time.time()
        await writer.send(healthy(STEADY, now - 0.9, 2, 4.0) + failing(now - 0.9, 2, 4.0))
        await asyncio.sleep(0.5)


async def test_a_killed_collector_restarts_with_its_baselines_and_announces_nothing_twice(
        kafka_bootstrap, topic_name, tmp_path):
    topics = await create_collector_topics(kafka_bootstrap, topic_name, 2)
    group = f"restart-{uuid.uuid4().hex[:8]}"
    env = {"BROWNOUT_STATE_INTERVAL": "2", "BROWNOUT_BATCH_SIZE": "100000"}
    writer = EventWriter(kafka_bootstrap, topics["events"])
    await writer.start()
    # 15 minutes of history up to now (read in the first batch: baselines warm at once); the
    # failing key's incident started 90 s ago, so its alert fires and its breaker opens at once.
    now = time.time()
    await writer.send(healthy(STEADY, now - 900, 1800, 2.0) + healthy(FAILING, now - 900, 1620, 2.0)
                      + failing(now - 90, 180, 2.0))
    stop = asyncio.Event()
    traffic = asyncio.create_task(live(writer, stop))
    first = CollectProcess(kafka_bootstrap, topics, group, tmp_path / "first.log", env)
    second = None
    try:
        await wait_for(lambda: sample(first.metrics(), "brownout_key_warming", **key_labels(STEADY)) == 0.0,
                       60, "the first collector's baseline")
        await wait_for(lambda: sample(first.metrics(), "brownout_alerts_firing", rule="error_rate",
                                      **key_labels(FAILING)) == 1.0, 60, "the error_rate alert to fire")
        fired_first = sample(first.metrics(), "brownout_decisions_total", kind="alert", state="firing")
        assert fired_first and fired_first >= 1
        await asyncio.sleep(3)  # a periodic snapshot after the firing (the transition's own one is earlier)
        first.kill()
        killed_at = time.time()
        await asyncio.sleep(2)  # traffic goes on while nobody consumes

        second = CollectProcess(kafka_bootstrap, topics, group, tmp_path / "second.log", env)
        await wait_for(lambda: sample(second.metrics(), "brownout_key_warming", **key_labels(STEADY)) == 0.0,
                       30, "the restarted collector's baseline", interval=0.1)
        back_in = time.monotonic() - second.started
        after_kill = time.time() - killed_at
        samples = second.metrics()
        assert sample(samples, "brownout_key_latency_per_token_p95_baseline_seconds", **key_labels(STEADY)) is not None
        assert sample(samples, "brownout_alerts_firing", rule="error_rate", **key_labels(FAILING)) == 1.0
        await asyncio.sleep(12)  # judge a while with the restored state
        samples = second.metrics()
        for state in ("pending", "firing"):
            assert not sample(samples, "brownout_decisions_total", kind="alert", state=state), \
                f"the restarted collector announced an alert {state} again"
    finally:
        stop.set()
        await traffic
        await writer.stop()
        first.stop()
        if second is not None:
            code = second.stop()
            print(second.log()[-3000:])
    assert code == 0
    restored = re.findall(r"restored (\d+) keys in ([0-9.]+) s", second.log())
    assert restored and int(restored[0][0]) == 2, second.log()[-2000:]
    print(f"restart: baselines back {back_in:.1f} s after the process started "
          f"(state loaded in {float(restored[0][1]):.2f} s), {after_kill:.1f} s after the kill")

    records = [r for r in await read_topic(kafka_bootstrap, topics["control"]) if r.value]
    by_seq: dict[tuple[str, int], set[str]] = {}
    for r in records:
        rec = json.loads(r.value)
        by_seq.setdefault((r.key.decode(), rec["seq"]), set()).add(rec["state"])
    assert by_seq and all(len(states) == 1 for states in by_seq.values()), by_seq
    failing_states = {json.loads(r.value)["state"] for r in records if r.key == str(FAILING).encode()}
    assert failing_states - {"closed"}, "the failing key's breaker never opened"
    # its one trip is its first transition (seq 1); a trip judged with its cooldown in one step
    # is published as the half-open that followed, whose reason is cooldown_elapsed
    trips = {json.loads(r.value)["seq"] for r in records if json.loads(r.value)["reason"] == "tripped"}
    assert trips <= {1}, "the same incident tripped the breaker twice"
