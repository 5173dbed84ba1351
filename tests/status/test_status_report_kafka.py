"""``brownout report`` over a time range of the real events topic: offsets by timestamp, only the
range (and its lead-in) is read, and the incident inside it is reported; the ones outside are not."""

from __future__ import annotations

import asyncio
import collections
import math
import random
import time
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

from brownout import codec
from brownout import semconv as sc
from brownout.cli import main
from brownout.model import Event, Key
from brownout.status.source import read_topic_range
from brownout.transport import KafkaSettings, KafkaTransport, TopicSpec

EAST, WEST = Key("openai", "eastus", "gpt-4o"), Key("openai", "westus", "gpt-4o")


def minutes_of_traffic(start: float, minutes: int, burst: tuple[int, int] | None, seed: int) -> list[Event]:
    rng = random.Random(seed)
    out = []
    for i in range(minutes * 60 * 2):
        t = start + i / 2
        for key in (EAST, WEST):
            bad = burst is not None and key == EAST and burst[0] * 60 <= t - start < burst[1] * 60
            if bad and rng.random() < 0.5:
                out.append(Event(key, t, 0.2, error_type="503"))
            else:
                ttft = rng.lognormvariate(math.log(0.4), 0.2)
                out.append(Event(key, t, ttft + 1.0, ttft=ttft, output_tokens=80, stream=True))
    return out


async def produce(bootstrap: str, topic: str, events: list[Event]) -> int:
    """One OTLP record per key and second, stamped a second after its last event ends (as the hooks'
    background exporter would)."""
    from aiokafka import AIOKafkaProducer

    batches: dict[tuple[Key, int], list[Event]] = collections.defaultdict(list)
    for e in events:
        batches[(e.key, int(e.start))].append(e)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    try:
        futures = []
        for (key, _), evs in sorted(batches.items(), key=lambda kv: kv[0][1]):
            stamp = int((max(e.end for e in evs) + 1.0) * 1000)
            futures.append(await producer.send(
                topic, codec.encode_otlp_proto(evs), key=str(key).encode(), timestamp_ms=stamp,
                headers=[(sc.HEADER_CONTENT_TYPE, sc.CONTENT_OTLP_PROTO.encode())]))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(batches)


@pytest.mark.integration
def test_report_reads_only_its_range_of_the_events_topic(kafka_bootstrap: str, topic_name: Callable[[str], str],
                                                         tmp_path: Path) -> None:
    topic = topic_name("events")
    base = math.floor(time.time() / 60) * 60 - 3 * 3600
    before = minutes_of_traffic(base - 3600, 15, burst=(8, 12), seed=1)   # an older incident, outside
    inside = minutes_of_traffic(base, 30, burst=(20, 25), seed=2)          # lead-in, then the incident
    after = minutes_of_traffic(base + 5400, 15, burst=(8, 12), seed=3)    # a later one, outside
    asyncio.run(KafkaTransport(kafka_bootstrap).create_topics([TopicSpec(topic, partitions=3)]))
    asyncio.run(produce(kafka_bootstrap, topic, after + before + inside))  # offsets out of time order too

    events, counts = asyncio.run(read_topic_range(KafkaSettings(kafka_bootstrap), topic, base, base + 1800))
    assert len(events) == len(inside) and counts["invalid"] == 0
    assert min(e.start for e in events) >= base and max(e.start for e in events) <= base + 1800
    assert counts["records"] < 2 * 3600  # the other hour and a half of records were never read

    out = tmp_path / "report"
    r = CliRunner().invoke(main, ["report", "--bootstrap-servers", kafka_bootstrap, "--events-topic", topic,
                                  "--from", str(base + 900), "--to", str(base + 1800), "--lead-in", "900",
                                  "--out", str(out), "--no-png"])
    assert r.exit_code == 0, r.output
    assert f"{len(inside)} events in range" in r.output and "1 incident(s)" in r.output
    pages = list(out.glob("incident-*.html"))
    assert len(pages) == 1 and "openai-eastus-gpt-4o" in pages[0].name
    start = time.strftime("%Y%m%dT%H%M", time.gmtime(base + 20 * 60))
    assert pages[0].name.startswith(f"incident-{start}")  # the burst inside the range, found within its minute


@pytest.mark.integration
def test_a_missing_topic_is_named(kafka_bootstrap: str, topic_name: Callable[[str], str]) -> None:
    topic = topic_name("nothing-here")
    with pytest.raises(ValueError, match="does not exist"):
        asyncio.run(read_topic_range(KafkaSettings(kafka_bootstrap), topic, 0.0, 60.0))
