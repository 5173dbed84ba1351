"""Collector throughput: events/s through decode + windows + detectors, against the decode-only floor.

Measures, on one core, for each wire encoding (OTLP protobuf and the flat JSON form):

- ``decode``: ``brownout.codec.decode`` over ready batches (the floor: what consuming costs anyway);
- ``decode+engine``: the same plus ``Engine.observe`` per event and ``Engine.advance`` once per
  second of event time (the collector's loop, without Kafka);
- ``engine``: observe + advance alone over decoded events, and its share of ``decode``.

Optionally ``--kafka HOST:PORT`` also times the same loop consuming from a real broker. And the
memory per key once 10,000 keys have full windows (tracemalloc; ``--keys`` to change).
Goal (issue 4): >= 100k events/s on one core, detection <= a quarter of decoding.

Usage: ``python bench/collector_throughput.py [--json] [--events N] [--keys K] [--kafka HOST:PORT]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
import tracemalloc
from typing import Any

import numpy as np

from brownout import codec
from brownout.detectors import Engine
from brownout.model import Event, Key

BATCH = 200  # events per record, as the hooks' background exporter batches them


def make_events(n: int, keys: int, seconds: float, seed: int = 0) -> list[Event]:
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.uniform(1_767_225_600.0, 1_767_225_600.0 + seconds, n))
    ks = [Key("openai", f"region-{i % 7}", f"model-{i}") for i in range(keys)]
    pick = rng.integers(0, keys, n)
    ttft = rng.lognormal(np.log(0.4), 0.3, n)
    itl = rng.lognormal(np.log(0.02), 0.2, n)
    out_tok = rng.integers(20, 800, n)
    err = rng.random(n) < 0.01
    events = []
    for i in range(n):
        if err[i]:
            events.append(Event(ks[pick[i]], float(starts[i]), 0.2, error_type="503", status_code=503))
            continue
        dur = float(ttft[i] + itl[i] * (out_tok[i] - 1))
        events.append(Event(ks[pick[i]], float(starts[i]), round(dur, 6), stream=True, ttft=round(float(ttft[i]), 6),
                            input_tokens=500, output_tokens=int(out_tok[i]), itl_p50=round(float(itl[i]), 6),
                            itl_p95=round(float(itl[i]) * 1.3, 6), finish_reasons=("stop",), deadline=30.0))
    return events


def batches(events: list[Event], encoding: str) -> list[tuple[bytes, str]]:
    out = []
    for i in range(0, len(events), BATCH):
        chunk = events[i:i + BATCH]
        if encoding == "otlp_proto":
            out.append((codec.encode_otlp_proto(chunk), "application/x-protobuf"))
        else:
            out.append((codec.encode_flat(chunk), "application/json"))
    return out


def run_decode(records: list[tuple[bytes, str]]) -> int:
    n = 0
    for payload, ctype in records:
        for item in codec.decode(payload, ctype):
            if isinstance(item, Event):
                n += 1
    return n


def run_decode_engine(records: list[tuple[bytes, str]]) -> int:
    engine = Engine()
    n = 0
    now = last = 0.0
    for payload, ctype in records:
        for item in codec.decode(payload, ctype):
            if isinstance(item, Event):
                engine.observe(item)
                n += 1
                if item.start > now:
                    now = item.start
        if now - last >= 1.0:
            engine.advance(now)
            last = now
    engine.advance(now)
    return n


def run_engine(events: list[Event], engine: Engine | None = None) -> int:
    engine = engine or Engine()
    now = last = 0.0
    for i, e in enumerate(events):
        engine.observe(e)
        if e.start > now:
            now = e.start
        if i % BATCH == BATCH - 1 and now - last >= 1.0:
            engine.advance(now)
            last = now
    engine.advance(now)  # steady state: no drain of the windows at the end
    return len(events)


def run_observe(events: list[Event]) -> int:
    engine = Engine()
    for e in events:
        engine.observe(e)
    return len(events)


def timed(fn: Any, *args: Any, repeat: int = 5) -> float:
    """Best of ``repeat`` in CPU seconds of this process (other jobs on a shared machine add
    wall time, not CPU time)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t = time.process_time()
        fn(*args)
        best = min(best, time.process_time() - t)
    return best


def memory_per_key(keys: int, per_key: int = 40, seconds: float = 360.0) -> dict[str, float]:
    events = make_events(keys * per_key, keys, seconds, seed=1)
    gc.collect()
    tracemalloc.start()
    engine = Engine()
    before = tracemalloc.get_traced_memory()[0]
    now = 0.0
    for i, e in enumerate(events):
        engine.observe(e)
        now = max(now, e.start)
        if i % 5000 == 0:
            engine.advance(now)
    engine.advance(now)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return {"keys": keys, "bytes_per_key": round(used / keys), "events_per_key": per_key}


async def kafka_loop(bootstrap: str, records: list[tuple[bytes, str]], expected: int) -> dict[str, float]:
    """Produce the records to a fresh topic, then time consume + decode + engine from the beginning."""
    from brownout.transport.base import TopicSpec
    from brownout.transport.kafka import KafkaTransport

    topic = f"bench.throughput.{time.time_ns()}"
    transport = KafkaTransport(bootstrap)
    await transport.create_topics([TopicSpec(topic, partitions=1)])
    producer = transport.producer()
    await producer.start()
    try:
        for payload, ctype in records:
            await producer.send(topic, payload, key=b"bench", headers=[("content-type", ctype.encode())])
        await producer.flush()
    finally:
        await producer.stop()
    consumer = transport.consumer([topic], group_id=None, from_beginning=True)
    await consumer.start()
    engine = Engine()
    n, now, t = 0, 0.0, time.perf_counter()
    try:
        while n < expected and time.perf_counter() - t < 120:
            for rec in await consumer.getmany(timeout=1.0, max_records=1000):
                ctype = (rec.header("content-type") or b"").decode()
                for item in codec.decode(rec.value or b"", ctype):
                    if isinstance(item, Event):
                        engine.observe(item)
                        now = max(now, item.start)
                        n += 1
            engine.advance(now)
        return {"events_per_s": round(n / (time.perf_counter() - t)), "events": n}
    finally:
        await consumer.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--rate", type=float, default=10_000.0,
                    help="events per second of event time (the collector's load; steps cost per key)")
    ap.add_argument("--keys", type=int, default=10_000, help="keys for the memory measurement")
    ap.add_argument("--traffic-keys", type=int, default=500, help="keys in the throughput stream")
    ap.add_argument("--kafka", default=None, help="bootstrap servers of a real broker (optional)")
    args = ap.parse_args(argv)

    seconds = args.events / args.rate
    events = make_events(args.events, args.traffic_keys, seconds)
    report: dict[str, Any] = {"events": len(events), "keys": args.traffic_keys, "seconds": seconds}
    t_engine = timed(run_engine, events)
    t_observe = timed(run_observe, events)
    counter = Engine()
    run_engine(events, counter)
    key_steps = max(counter.key_steps, 1)
    report["key_steps"] = key_steps
    report["engine_events_per_s"] = round(len(events) / t_engine)
    report["observe_us_per_event"] = round(t_observe / len(events) * 1e6, 2)
    report["step_us_per_key"] = round((t_engine - t_observe) / key_steps * 1e6, 1)
    report["step_cpu_share_at_10k_keys"] = round(10_000 / 5.0 * report["step_us_per_key"] / 1e6, 3)
    for enc in ("otlp_proto", "flat_json"):
        recs = batches(events, enc)
        t_dec = timed(run_decode, recs)
        t_all = timed(run_decode_engine, recs)
        report[enc] = {
            "decode_events_per_s": round(len(events) / t_dec),
            "decode_engine_events_per_s": round(len(events) / t_all),
            "detection_share_of_decode": round((t_all - t_dec) / t_dec, 3),
            "engine_alone_share_of_decode": round(t_engine / t_dec, 3),
        }
        if args.kafka:
            report[enc]["kafka"] = asyncio.run(kafka_loop(args.kafka, recs, len(events)))
    report["memory"] = memory_per_key(args.keys)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{len(events)} events, {args.traffic_keys} keys over {seconds:g}s of event time "
          f"({args.rate:,.0f} events/s)")
    print(f"engine alone (observe + advance): {report['engine_events_per_s']:>10,} events/s; "
          f"observe {report['observe_us_per_event']} us/event; a step costs {report['step_us_per_key']} us "
          f"per active key ({report['step_cpu_share_at_10k_keys']:.0%} of a core at 10,000 keys)")
    for enc in ("otlp_proto", "flat_json"):
        r = report[enc]
        print(f"{enc:<10} decode {r['decode_events_per_s']:>10,}/s   decode+engine "
              f"{r['decode_engine_events_per_s']:>10,}/s   detection = {r['detection_share_of_decode']:.0%} "
              f"of decoding (engine alone {r['engine_alone_share_of_decode']:.0%})")
        if "kafka" in r:
            print(f"{'':<10} from Kafka: {r['kafka']['events_per_s']:,.0f} events/s")
    m = report["memory"]
    print(f"memory: {m['bytes_per_key']:,} bytes per key at {m['keys']:,} keys with full windows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
