"""Sustained load through a real Kafka broker: events/s, collector CPU and memory, consumer lag,
and decision latency (a hard error burst to its breaker's control record).

Three processes, as in production: a producer (``brownout.sim`` traffic, OTLP protobuf records
keyed ``provider/region/model``, one record per key per 100 ms tick, each event sent once its
request has ended), ``brownout collect`` (its own process, read through ``/proc/<pid>`` and its
``/metrics``), and this script, which follows the control topic. A broker is started with
``scripts/kafka_broker.py`` unless ``--bootstrap-servers`` is given.

Every ``--burst-every`` seconds one key (a different one each time) fails ``--burst-errors`` of its
requests with 503 for ``--burst-length`` seconds. Decision latency is measured from the burst's
start (event time of its first failing request) to the ``open`` control record's ``issued_at``
and to its arrival at a consumer of the control topic.

Usage: ``python bench/load.py [--duration S] [--rate R] [--json] [--bootstrap-servers HOST:PORT]``
Not part of the test suite: the default run takes ten minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import importlib.util
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TICK = 0.1  # seconds between producer batches
PROFILES = (("openai", "gpt-4o", "fireworks-70b"), ("anthropic", "claude-sonnet-4", "together-70b"),
            ("aws.bedrock", "llama-3-70b", "bedrock-70b"))
REGIONS = ("eastus", "westus", "swedencentral", "westeurope", "japaneast", "australiaeast")


@dataclass(frozen=True)
class Burst:
    key: str  # provider/region/model
    start: float  # unix seconds
    end: float


# --- the collector's footprint, from /proc ------------------------------------------------------------
class ProcFootprint:
    """CPU seconds and memory of one process, read from ``/proc/<pid>`` (Linux).

    >>> fp = ProcFootprint(os.getpid())
    >>> fp.cpu_seconds() > 0 and fp.rss_bytes() > 0
    True
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._tick = os.sysconf("SC_CLK_TCK")

    def cpu_seconds(self) -> float:
        """User plus system time so far."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
        return (int(fields[11]) + int(fields[12])) / self._tick  # utime, stime (fields 14, 15)

    def _status(self, name: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def rss_bytes(self) -> int:
        return self._status("VmRSS")

    def peak_rss_bytes(self) -> int:
        """The high-water mark of the resident set (``VmHWM``)."""
        return self._status("VmHWM")


# --- the producer process -------------------------------------------------------------------------------
def _keys() -> list[tuple[str, str, str, str]]:
    return [(provider, region, model, profile) for provider, model, profile in PROFILES for region in REGIONS]


def _flat_shape() -> Any:
    """A rate multiplier that undoes the simulator's per-minute burstiness (Azure trace: 0.1x to 1.5x)."""
    from brownout.sim import calibration

    minute = calibration()["workloads"]["conv"]["rate_per_minute_shape"]
    return lambda t: 1.0 / max(0.05, minute[int(t // 60) % len(minute)])


def produce(bootstrap: str, topic: str, rate: float, t_stop: float, bursts: list[Burst], burst_errors: float,
            seed: int, sent: Any, out: Any, bursty: bool = False) -> None:
    """Producer process: simulated traffic at ``rate`` events/s until ``t_stop`` (unix seconds)."""
    try:
        out.put(asyncio.run(_produce(bootstrap, topic, rate, t_stop, bursts, burst_errors, seed, sent, bursty)))
    except BaseException as exc:  # the parent reports it; a silent producer would read as a slow collector
        out.put({"error": f"{type(exc).__name__}: {exc}"})


async def _produce(bootstrap: str, topic: str, rate: float, t_stop: float, bursts: list[Burst],
                   burst_errors: float, seed: int, sent: Any, bursty: bool) -> dict[str, Any]:
    from brownout import codec
    from brownout import semconv as sc
    from brownout.model import Key
    from brownout.sim import Incident, Simulator, Traffic
    from brownout.transport import KafkaTransport

    keys = _keys()
    shape = None if bursty else _flat_shape()
    traffic = [Traffic(Key(p, r, m), profile, rate=rate / len(keys), shape=shape) for p, r, m, profile in keys]
    incidents = [Incident(Key.parse(b.key), b.start, b.end, error_rate=burst_errors, error_types=("503",))
                 for b in bursts]
    sim = Simulator(traffic, incidents, seed=seed)
    producer = KafkaTransport(bootstrap).producer()
    await producer.start()
    headers = ((sc.HEADER_CONTENT_TYPE, sc.CONTENT_OTLP_PROTO.encode()),)
    pending: list[tuple[float, int, Any]] = []
    n = records = size = 0
    seq = 0
    late_max = 0.0
    busy = 0.0
    t_gen = t_start = time.time()
    try:
        while True:
            tick_at = time.time()
            if tick_at >= t_stop:
                break
            for ev in sim.events(t_gen, tick_at):
                heapq.heappush(pending, (ev.end, seq, ev))
                seq += 1
            t_gen = tick_at
            by_key: dict[Any, list] = defaultdict(list)
            while pending and pending[0][0] <= tick_at:
                end, _, ev = heapq.heappop(pending)
                late_max = max(late_max, tick_at - end)
                by_key[ev.key].append(ev)
            for key, evs in by_key.items():
                payload = codec.encode_otlp_proto(evs)
                records += 1
                n += len(evs)
                size += len(payload)
                with sent.get_lock():  # counted before it can be consumed, so sent >= accepted in samples
                    sent.value = n
                await producer.send(topic, payload, key=str(key).encode(), headers=headers)
            spent = time.time() - tick_at
            busy += spent
            await asyncio.sleep(max(0.0, TICK - spent))
        await producer.flush()
    finally:
        await producer.stop()
    elapsed = max(1e-9, time.time() - t_start)
    return {"events": n, "records": records, "bytes": size, "not_ended_at_stop": len(pending),
            "max_send_delay_s": round(late_max, 3), "busy_fraction": round(busy / elapsed, 3)}


# --- the control topic ---------------------------------------------------------------------------------
class ControlWatcher(threading.Thread):
    """Follows the control topic in a thread; ``arrivals`` holds (arrival unix time, ControlRecord)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True, name="control-watcher")
        self.bootstrap, self.topic = bootstrap, topic
        self.arrivals: list[tuple[float, Any]] = []
        self.error: str | None = None
        self._halt = threading.Event()
        self.started = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self._follow())
        except Exception as exc:  # reported with the results
            self.error = f"{type(exc).__name__}: {exc}"
            self.started.set()

    async def _follow(self) -> None:
        from brownout.breakers import ControlRecord
        from brownout.transport import KafkaTransport

        consumer = KafkaTransport(self.bootstrap).consumer([self.topic], from_beginning=True)
        await consumer.start()
        self.started.set()
        try:
            while not self._halt.is_set():
                for rec in await consumer.getmany(timeout=0.2):
                    if rec.value:
                        self.arrivals.append((time.time(), ControlRecord.from_bytes(rec.value)))
        finally:
            await consumer.stop()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def decision_latencies(bursts: list[Burst], arrivals: list[tuple[float, Any]]) -> list[dict[str, Any]]:
    """For each burst, the first ``open`` record for its key at or after its start."""
    out = []
    for b in bursts:
        hit = next(((at, r) for at, r in arrivals
                    if str(r.key) == b.key and r.state == "open" and r.issued_at >= b.start), None)
        row: dict[str, Any] = {"key": b.key, "burst_start": round(b.start, 3), "opened": hit is not None}
        if hit is not None:
            at, rec = hit
            row.update(rule=rec.rule, to_issued_at_s=round(rec.issued_at - b.start, 3),
                       to_arrival_s=round(at - b.start, 3))
        out.append(row)
    return out


# --- helpers ---------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[str, float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                continue
    return out


def _lag(metrics: dict[str, float]) -> float:
    return sum(v for k, v in metrics.items() if k.startswith("brownout_consumer_lag{"))


def _ready(port: int) -> bool:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200
    except OSError:
        return False


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), None for no values.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.5
    """
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _broker_module() -> Any:
    spec = importlib.util.spec_from_file_location("brownout_kafka_broker", ROOT / "scripts" / "kafka_broker.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _say(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


# --- the run ---------------------------------------------------------------------------------------------
def run(duration: float, rate: float, bootstrap: str | None = None, *, partitions: int = 6,
        warmup: float = 20.0, burst_every: float = 30.0, burst_length: float = 20.0, burst_errors: float = 0.8,
        drain: float = 60.0, seed: int = 0, bursty: bool = False, quiet: bool = False) -> dict[str, Any]:
    from brownout.transport import KafkaTransport
    from brownout.transport.base import default_topics

    broker = None
    if bootstrap is None:
        broker = _broker_module().KafkaBroker()
        broker.start()
        bootstrap = broker.bootstrap_servers
        _say(quiet, f"broker {bootstrap} started in {broker.started_in:.1f} s")
    run_id = uuid.uuid4().hex[:8]
    topics = {name: f"bench.load.{run_id}.{name}" for name in ("events", "control", "state", "dead_letter")}
    workdir = Path(tempfile.mkdtemp(prefix="brownout-load-"))
    collector = None
    watcher = None
    producer = None
    try:
        asyncio.run(KafkaTransport(bootstrap).create_topics(default_topics(**topics, partitions=partitions)))
        port = _free_port()
        env = dict(os.environ, BROWNOUT_TOPICS_STATE=topics["state"],
                   BROWNOUT_TOPICS_DEAD_LETTER=topics["dead_letter"], BROWNOUT_LOG_LEVEL="WARNING")
        log = open(workdir / "collector.log", "w")
        collector = subprocess.Popen(
            [sys.executable, "-m", "brownout.cli", "collect", "--bootstrap-servers", bootstrap,
             "--events-topic", topics["events"], "--control-topic", topics["control"],
             "--group-id", f"bench.load.{run_id}", "--metrics-port", str(port), "--no-create-topics"],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 90
        while not _ready(port):
            if collector.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the collector did not become ready; log {workdir / 'collector.log'}:\n"
                                   + (workdir / "collector.log").read_text()[-3000:])
            time.sleep(0.3)
        watcher = ControlWatcher(bootstrap, topics["control"])
        watcher.start()
        watcher.started.wait(30)

        t0 = time.time() + 1.0
        t_stop = t0 + duration
        keys = [f"{p}/{r}/{m}" for p, r, m, _ in _keys()]
        # a different key each time, walking across models first so no model loses half its regions
        order = [keys[(i % len(PROFILES)) * len(REGIONS) + (i // len(PROFILES)) % len(REGIONS)]
                 for i in range(len(keys))]
        bursts = []
        t = t0 + warmup
        while t + burst_length <= t_stop - 5:
            bursts.append(Burst(order[len(bursts) % len(order)], t, t + burst_length))
            t += burst_every
        ctx = mp.get_context("spawn")
        sent = ctx.Value("q", 0)
        results = ctx.Queue()
        producer = ctx.Process(target=produce, name="load-producer",
                               args=(bootstrap, topics["events"], rate, t_stop, bursts, burst_errors, seed,
                                     sent, results, bursty))
        fp = ProcFootprint(collector.pid)
        broker_fp = ProcFootprint(broker.proc.pid) if broker is not None and broker.proc is not None else None
        broker_cpu0 = broker_fp.cpu_seconds() if broker_fp else 0.0
        cpu0, wall0 = fp.cpu_seconds(), time.monotonic()
        producer.start()
        _say(quiet, f"producing {rate:,.0f} events/s for {duration:.0f} s over {len(keys)} keys, "
                    f"{len(bursts)} bursts; collector pid {collector.pid}, metrics :{port}")
        samples = []
        next_sample = time.monotonic()
        while producer.is_alive() or time.time() < t_stop:
            now_m = time.monotonic()
            if now_m >= next_sample:
                m = scrape(port)
                accepted = m.get('brownout_events_total{outcome="accepted"}', 0.0)
                samples.append({"t": round(time.time() - t0, 1), "sent": sent.value, "accepted": accepted,
                                "lag_records": _lag(m), "cpu_s": fp.cpu_seconds(), "rss": fp.rss_bytes()})
                s = samples[-1]
                _say(quiet, f"  t={s['t']:6.1f}s sent={s['sent']:>9,} accepted={accepted:>11,.0f} "
                            f"lag={s['lag_records']:>6.0f} records rss={s['rss'] / 2**20:6.1f} MiB")
                next_sample += 5.0
            producer.join(0.2)
            if collector.poll() is not None:
                raise RuntimeError(f"the collector exited with {collector.returncode}; log "
                                   f"{workdir / 'collector.log'}")
        prod = results.get(timeout=30)
        if "error" in prod:
            raise RuntimeError(f"the producer failed: {prod['error']}")
        cpu_steady, wall_steady = fp.cpu_seconds() - cpu0, time.monotonic() - wall0
        broker_cores = (broker_fp.cpu_seconds() - broker_cpu0) / wall_steady if broker_fp else None
        # drain: wait for the collector to account for every event sent
        drain_from = time.monotonic()
        m = scrape(port)
        while m.get('brownout_events_total{outcome="accepted"}', 0.0) < prod["events"] \
                and time.monotonic() - drain_from < drain:
            time.sleep(0.5)
            m = scrape(port)
        drained_in = time.monotonic() - drain_from
        time.sleep(2.0)  # the last control records
        accepted = m.get('brownout_events_total{outcome="accepted"}', 0.0)
        peak_rss = fp.peak_rss_bytes()
        watcher.stop()
        latencies = decision_latencies(bursts, watcher.arrivals)
        issued = [r["to_issued_at_s"] for r in latencies if r["opened"]]
        arrived = [r["to_arrival_s"] for r in latencies if r["opened"]]
        lag_samples = [s["lag_records"] for s in samples if s["t"] > 10]
        steady = [s for s in samples if s["t"] >= min(30.0, duration / 4)]
        rate_steady = None
        if len(steady) >= 2:
            rate_steady = (steady[-1]["accepted"] - steady[0]["accepted"]) / (steady[-1]["t"] - steady[0]["t"])
        events_per_record = prod["events"] / prod["records"] if prod["records"] else None
        result = {
            "config": {"duration_s": duration, "rate": rate, "keys": len(keys), "partitions": partitions,
                       "bursts": len(bursts), "burst_length_s": burst_length, "burst_errors": burst_errors,
                       "tick_s": TICK, "bursty": bursty, "bootstrap": bootstrap, "own_broker": broker is not None,
                       "cpus": os.cpu_count()},
            "producer": prod,
            "events": {"sent": prod["events"], "accepted": int(accepted), "all_accounted": accepted == prod["events"],
                       "drained_in_s": round(drained_in, 1),
                       "sent_per_s": round(prod["events"] / duration, 1),
                       "mib_sent": round(prod["bytes"] / 2**20, 1),
                       "accepted_per_s_steady": None if rate_steady is None else round(rate_steady, 1),
                       "events_per_record": None if events_per_record is None else round(events_per_record, 2),
                       "decode_errors": int(sum(v for k, v in m.items() if k.startswith("brownout_decode_errors")))},
            "collector": {"cpu_seconds": round(cpu_steady, 2), "cpu_cores": round(cpu_steady / wall_steady, 3),
                          "cpu_us_per_event": round(cpu_steady / max(1, prod["events"]) * 1e6, 1),
                          "peak_rss_mib": round(peak_rss / 2**20, 1),
                          "final_rss_mib": round(samples[-1]["rss"] / 2**20, 1) if samples else None},
            "broker": None if broker_fp is None else {
                "cpu_cores": round(broker_cores, 3), "peak_rss_mib": round(broker_fp.peak_rss_bytes() / 2**20, 1)},
            "consumer_lag_records": {"max": max(lag_samples, default=None),
                                     "p50": percentile(lag_samples, 50), "gauge_at_end": _lag(m),
                                     "samples": len(lag_samples)},
            "decision_latency_s": {"bursts": len(bursts), "opened": len(issued),
                                   "to_issued_at_p50": percentile(issued, 50), "to_issued_at_p99": percentile(issued, 99),
                                   "to_arrival_p50": percentile(arrived, 50), "to_arrival_p99": percentile(arrived, 99),
                                   "per_burst": latencies},
            "control_records": len(watcher.arrivals),
            "control_watcher_error": watcher.error,
            "collector_log": str(workdir / "collector.log"),
        }
        return result
    finally:
        if watcher is not None and watcher.is_alive():
            watcher.stop()
        if producer is not None and producer.is_alive():
            producer.terminate()
            producer.join(10)
        if collector is not None and collector.poll() is None:
            collector.send_signal(signal.SIGTERM)
            try:
                collector.wait(30)
            except subprocess.TimeoutExpired:
                collector.kill()
        if broker is not None:
            broker.stop()


def _print(r: dict[str, Any]) -> None:
    c, e, col, lag, d = r["config"], r["events"], r["collector"], r["consumer_lag_records"], r["decision_latency_s"]
    fmt = lambda x, spec=".2f": "-" if x is None else format(x, spec)  # noqa: E731
    print(f"load: {c['duration_s']:.0f} s at {c['rate']:,.0f} events/s target, {c['keys']} keys, "
          f"{c['partitions']} partitions, {c['cpus']} CPUs ({'own broker' if c['own_broker'] else c['bootstrap']})")
    print(f"  events:    sent {e['sent']:,} ({e['sent_per_s']:,.0f}/s), accepted {e['accepted']:,} "
          f"(steady {fmt(e['accepted_per_s_steady'], ',.0f')}/s), all accounted: {e['all_accounted']} "
          f"(drained in {e['drained_in_s']} s), {e['events_per_record']} events/record, {e['mib_sent']} MiB")
    print(f"  collector: {col['cpu_cores']:.1%} of a core ({col['cpu_us_per_event']} us CPU per event), "
          f"peak RSS {col['peak_rss_mib']} MiB, final RSS {col['final_rss_mib']} MiB")
    print(f"  lag:       max {fmt(lag['max'], '.0f')} records, p50 {fmt(lag['p50'], '.0f')} over {lag['samples']} "
          f"scrapes 5 s apart (brownout_consumer_lag, refreshed by the collector every 10 s)")
    print(f"  decisions: {d['opened']}/{d['bursts']} bursts opened a breaker; burst start -> issued_at "
          f"p50 {fmt(d['to_issued_at_p50'])} s p99 {fmt(d['to_issued_at_p99'])} s; -> arrival "
          f"p50 {fmt(d['to_arrival_p50'])} s p99 {fmt(d['to_arrival_p99'])} s")
    for b in d["per_burst"]:
        print(f"    {b['key']:<36} " + (f"{b['rule']} after {b['to_issued_at_s']} s (arrived {b['to_arrival_s']} s)"
                                        if b["opened"] else "NOT OPENED"))
    if r["broker"]:
        print(f"  broker:    {r['broker']['cpu_cores']:.1%} of a core, peak RSS {r['broker']['peak_rss_mib']} MiB")
    print(f"  producer:  {r['producer']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    ap.add_argument("--rate", type=float, default=2000.0, help="events per second, all keys (default 2000)")
    ap.add_argument("--bootstrap-servers", help="use this broker instead of starting one")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--burst-every", type=float, default=30.0)
    ap.add_argument("--burst-length", type=float, default=20.0)
    ap.add_argument("--burst-errors", type=float, default=0.8, help="share of a burst key's requests that fail")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bursty", action="store_true",
                    help="keep the Azure trace's per-minute rate swings (0.1x to 1.5x) instead of a flat rate")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = ap.parse_args(argv)
    if args.duration < 30:
        ap.error("--duration must be at least 30 s (warm-up and one burst)")
    if args.rate <= 0:
        ap.error("--rate must be positive")
    if not 0 < args.burst_errors <= 1:
        ap.error("--burst-errors must be in (0, 1]")
    result = run(args.duration, args.rate, args.bootstrap_servers, partitions=args.partitions,
                 burst_every=args.burst_every, burst_length=args.burst_length, burst_errors=args.burst_errors,
                 seed=args.seed, bursty=args.bursty, quiet=args.json)
    if args.json:
        print(json.dumps(result))
    else:
        _print(result)
    ok = result["events"]["all_accounted"] and result["decision_latency_s"]["opened"] == len(
        result["decision_latency_s"]["per_burst"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
