"""What a team already runs, end to end on the real broker: an app using OTel's own OpenAI
instrumentation (opentelemetry-instrumentation-openai-v2, the real openai SDK against
FakeLLMServer) exports OTLP to a real OpenTelemetry Collector (built by scripts/otelcol with the
official builder: otlp receiver, batch, contrib kafka exporter v0.165), which writes unkeyed
``otlp_proto`` records to a 6-partition events topic. Two ``brownout collect`` processes in one
group read it. The spans name no region and the records no key: the collectors give the spans
their default region, re-key the records, and each breaker opens exactly once, for the right
key, announced by the one collector that owns it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from _state_support import CollectProcess, key_labels, read_topic, sample, wait_for
from support import create_collector_topics, free_port

from brownout import codec
from brownout import semconv as sc
from brownout.breakers import ControlRecord
from brownout.collector.rekey import HEADER_REKEYED
from brownout.endpoints import RegionMap
from brownout.model import Key
from brownout.transport import KafkaTransport
from brownout.transport.base import TopicSpec, default_topics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# on partitions 1 and 4 of 6: aiokafka's round-robin assignor gives them to different members, so
# each collector owns one key and judges events that the other one re-keyed
FAILING = Key("openai", "eastus", "gpt-4.1-mini")  # every other call answers 503
HEALTHY = Key("openai", "eastus", "gpt-4o")
_DECISION = re.compile(r" breaker (\S+) (\S+) (\w+) at=([0-9.]+) ")


@pytest.fixture(scope="session")
def otelcol() -> str:
    """The Collector binary: ``$OTELCOL``, else the one ``scripts/otelcol`` built and cached."""
    if os.environ.get("OTELCOL"):
        return os.environ["OTELCOL"]
    done = subprocess.run(["bash", str(ROOT / "scripts" / "otelcol"), "--cached"], capture_output=True, text=True)
    if done.returncode == 0 and done.stdout.strip():
        return done.stdout.strip().splitlines()[-1]
    message = "the OpenTelemetry Collector is not built: run scripts/otelcol (minutes, then cached), or set OTELCOL"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class OtelCollector:
    """The Collector with deploy/otelcol/otelcol.yaml, its endpoints and topic from the environment."""

    def __init__(self, binary: str, bootstrap: str, topic: str, log: Path, *overrides: str) -> None:
        self.grpc, self.http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        self.log_path = log
        self._log = open(log, "w")
        env = dict(os.environ, KAFKA_BROKERS=bootstrap, BROWNOUT_EVENTS_TOPIC=topic, OTLP_GRPC_ENDPOINT=self.grpc,
                   OTLP_HTTP_ENDPOINT=self.http)
        # round robin over the partitions (the default sticky partitioner only spreads over time):
        # every partition, and so both collectors, gets records that mix the keys
        self.proc = subprocess.Popen(
            [binary, f"--config={ROOT / 'deploy' / 'otelcol' / 'otelcol.yaml'}",
             "--config=yaml:exporters::kafka::record_partitioner: {round_robin: {}}",
             "--config=yaml:processors::batch::timeout: 200ms", *(f"--config=yaml:{o}" for o in overrides)],
            stdout=self._log, stderr=subprocess.STDOUT, env=env)

    async def ready(self) -> None:
        await wait_for(lambda: "Everything is ready" in self.log() or self.proc.poll() is not None, 60,
                       "the OpenTelemetry Collector to start")
        assert self.proc.poll() is None, self.log()[-3000:]

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def metric(p: CollectProcess, name: str, **labels: str) -> float:
    return sample(p.metrics(), name, **labels) or 0.0


async def test_otel_instrumented_app_through_an_otel_collector_opens_each_breaker_once_on_its_owner(
        kafka_bootstrap, topic_name, tmp_path, otelcol):
    topics = await create_collector_topics(kafka_bootstrap, topic_name, 6)
    # the default rules: a key that is its model's only deployment opens too (routers decide where to go)
    env = {"BROWNOUT_DEFAULT_REGION": "eastus"}
    group = f"otel-{uuid.uuid4().hex[:8]}"
    collector = OtelCollector(otelcol, kafka_bootstrap, topics["events"], tmp_path / "otelcol.log")
    procs: list[CollectProcess] = []
    try:
        await collector.ready()
        procs = [CollectProcess(kafka_bootstrap, topics, group, tmp_path / f"{n}.log", env) for n in "ab"]
        for p in procs:
            await wait_for(lambda p=p: "assigned: restored" in p.log(), 60, "a collector's partitions")
        await asyncio.sleep(3)  # the second join's rebalance settles

        app = await asyncio.to_thread(
            subprocess.run, [sys.executable, str(Path(__file__).with_name("otel_openai_app.py")), collector.grpc, "12"],
            capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert app.returncode == 0, app.stderr[-3000:]
        counts = json.loads(app.stdout.strip().splitlines()[-1])
        calls = sum(counts.values())
        assert counts.get("gpt-4.1-mini 503", 0) >= 20, counts

        await wait_for(lambda: sum(metric(p, "brownout_events_total", outcome="accepted") for p in procs) >= calls,
                       60, "every span judged")
        await wait_for(lambda: any(metric(p, "brownout_breaker_state", **key_labels(FAILING)) == 2 for p in procs),
                       30, "the failing key's breaker to open")
        await asyncio.sleep(5)  # room for a second open or a second owner, if there were one
        owners = [p for p in procs if sample(p.metrics(), "brownout_breaker_state", **key_labels(FAILING)) is not None]
        accepted = [metric(p, "brownout_events_total", outcome="accepted") for p in procs]
        rekeyed = [metric(p, "brownout_rekeyed_events_total") for p in procs]
        invalid = [metric(p, "brownout_events_total", outcome="invalid") for p in procs]
    finally:
        for p in procs:
            p.stop()
        collector.stop()
    logs = [p.log() for p in procs]
    for p, text in zip(procs, logs):
        assert p.proc.returncode == 0, text[-3000:]

    # the failing key's breaker opened once, on one collector; the healthy one never did
    opens = [(key, rule) for text in logs for rule, key, state, _ in _DECISION.findall(text) if state == "open"]
    assert opens == [(str(FAILING), "error_breaker")], opens
    assert len(owners) == 1
    # one announcer: every open record of the key (transition and heartbeats) is the same record
    control = [ControlRecord.from_bytes(r.value) for r in await read_topic(kafka_bootstrap, topics["control"])]
    assert {r.key for r in control} == {FAILING}
    assert len({(r.seq, r.since, r.observed) for r in control if r.state == "open"}) == 1, control
    # no dead letters: the spans got the default region (OTel's instrumentation sets none)
    assert invalid == [0.0, 0.0] and await read_topic(kafka_bootstrap, topics["dead_letter"]) == []
    # every span judged once, after being re-keyed by whichever collector read its record
    assert sum(accepted) == calls and sum(rekeyed) == calls, (accepted, rekeyed, calls)
    assert all(r > 0 for r in rekeyed) and all(a > 0 for a in accepted), (rekeyed, accepted)  # both worked
    events = await read_topic(kafka_bootstrap, topics["events"])
    assert any(r.key is None and r.header(HEADER_REKEYED) is None for r in events)  # what the exporter wrote
    assert {r.key for r in events if r.header(HEADER_REKEYED)} == {str(FAILING).encode(), str(HEALTHY).encode()}

    print(f"otel collector: {calls} calls {counts}; accepted {accepted}, re-keyed {rekeyed}; "
          f"{len(events)} records on the events topic; {len(control)} control records")


async def test_the_collectors_otlp_json_encoding_over_its_http_receiver_decodes_without_a_region(
        kafka_bootstrap, topic_name, tmp_path, otelcol):
    """``encoding: otlp_json`` (pdata's JSON: hex ids, string nanoseconds), sent in as OTLP/HTTP JSON."""
    topic = topic_name("events")
    await KafkaTransport(kafka_bootstrap).create_topics(default_topics(topic, topic_name("c"), topic_name("s"),
                                                                       topic_name("d"), partitions=2))
    collector = OtelCollector(otelcol, kafka_bootstrap, topic, tmp_path / "otelcol.log",
                              "exporters::kafka::traces::encoding: otlp_json")
    start = time.time_ns()
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
             "server.address": "myres.openai.azure.com", "error.type": "<class 'openai.RateLimitError'>"}
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": uuid.uuid4().hex, "spanId": uuid.uuid4().hex[:16], "name": "chat gpt-4o", "kind": 3,
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 750_000_000),
        "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]}]}]}]}).encode()
    try:
        await collector.ready()
        req = urllib.request.Request(f"http://{collector.http}/v1/traces", body,
                                     {"content-type": "application/json"})
        assert (await asyncio.to_thread(urllib.request.urlopen, req, timeout=10)).status == 200
        records = await wait_for(lambda: asyncio.run(read_topic(kafka_bootstrap, topic)), 30, "the exported record")
    finally:
        collector.stop()
    [rec] = records
    assert rec.key is None and rec.value[:1] == b"{"
    ct = rec.header(sc.HEADER_CONTENT_TYPE)
    [ev] = codec.decode(rec.value, ct.decode() if ct else None, RegionMap({"myres": "swedencentral"}))
    assert ev.key == Key("azure.ai.openai", "swedencentral", "gpt-4o")
    assert ev.error_type == "RateLimitError" and ev.error_class == "capacity"
    assert ev.duration == pytest.approx(0.75)


def otlp_json_gauges(records: list) -> dict[tuple[str, str], float]:
    """The latest value of each brownout gauge per key in OTLP JSON metrics records:
    ``{(metric name, "provider/region/model"): value}``; the resource's service.name under ("service", "")."""
    out: dict[tuple[str, str], float] = {}
    for rec in records:
        for rm in json.loads(rec.value)["resourceMetrics"]:
            for a in rm["resource"]["attributes"]:
                if a["key"] == "service.name":
                    out[("service", a["value"]["stringValue"])] = 1.0
            for sm in rm["scopeMetrics"]:
                for m in sm["metrics"]:
                    for dp in m.get("gauge", {}).get("dataPoints", []):
                        attrs = {a["key"]: a["value"]["stringValue"] for a in dp.get("attributes", [])}
                        key = "/".join(attrs.get(k, "") for k in (sc.GEN_AI_PROVIDER_NAME, sc.CLOUD_REGION,
                                                                   sc.GEN_AI_REQUEST_MODEL))
                        out[(m["name"], key)] = float(dp.get("asDouble", dp.get("asInt", 0)))
    return out


async def test_collect_pushes_its_per_key_metrics_over_otlp_to_a_real_collector(
        kafka_bootstrap, topic_name, tmp_path, otelcol):
    """``metrics.otlp_endpoint``: `brownout collect` pushes the per-key figures over OTLP/HTTP to the
    OpenTelemetry Collector, whose Kafka exporter writes them (OTLP JSON) where the test reads them:
    the values are the ones `/metrics` shows."""
    from _state_support import EventWriter

    from brownout.model import Event

    metrics_topic = topic_name("otlp-metrics")
    topics = await create_collector_topics(kafka_bootstrap, topic_name, 2, (TopicSpec(metrics_topic),))
    collector = OtelCollector(
        otelcol, kafka_bootstrap, topics["events"], tmp_path / "otelcol.log",
        f"exporters::kafka::metrics: {{topic: {metrics_topic}, encoding: otlp_json}}",
        "service::pipelines::metrics: {receivers: [otlp], processors: [batch], exporters: [kafka]}")
    proc = None
    try:
        await collector.ready()
        env = {"BROWNOUT_METRICS_OTLP_ENDPOINT": f"http://{collector.http}/v1/metrics",
               "BROWNOUT_METRICS_OTLP_INTERVAL": "1"}
        proc = CollectProcess(kafka_bootstrap, topics, f"otlp-{uuid.uuid4().hex[:8]}", tmp_path / "collect.log", env)
        await wait_for(lambda: "assigned: restored" in proc.log(), 60, "the collector's partitions")
        writer = EventWriter(kafka_bootstrap, topics["events"])
        await writer.start()
        now = time.time()
        # 40 calls over the last 20 s, every first token after 0.3 s: the minute's readings hold still
        await writer.send([Event(HEALTHY, now - 20 + i / 2, 0.8, ttft=0.3, output_tokens=100) for i in range(40)])
        await writer.stop()
        key = str(HEALTHY)

        def both() -> tuple[dict, list] | None:
            """The OTLP readings and a /metrics scrape once both show the same request count and a TTFT."""
            got = otlp_json_gauges(asyncio.run(read_topic(kafka_bootstrap, metrics_topic)))
            prom = proc.metrics()
            requests = got.get(("brownout.key.requests", key))
            same = requests and requests == sample(prom, "brownout_key_requests", **key_labels(HEALTHY))
            ttft = ("brownout.key.ttft.p50", key) in got and sample(prom, "brownout_key_ttft_p50_seconds",
                                                                     **key_labels(HEALTHY)) is not None
            return (got, prom) if same and ttft else None

        got, prom = await wait_for(both, 90, "the key's readings over OTLP, as on /metrics")
    finally:
        if proc is not None:
            proc.stop()
        collector.stop()
    assert proc.proc.returncode == 0, proc.log()[-3000:]
    assert ("service", "brownout-collector") in got
    assert got[("brownout.key.ttft.p50", key)] == pytest.approx(0.3)
    assert got[("brownout.key.ttft.p50", key)] == sample(prom, "brownout_key_ttft_p50_seconds", **key_labels(HEALTHY))
    assert got[("brownout.breaker.state", key)] == 0.0  # closed
    assert {name for name, k in got if k == key} >= {"brownout.key.ttft.p50", "brownout.key.requests",
                                                     "brownout.key.error.ratio", "brownout.breaker.state"}
    print(f"otlp metrics through a real Collector: {len({n for n, _ in got})} metric names, e.g. "
          f"ttft p50 {got[('brownout.key.ttft.p50', key)]} s, requests {got[('brownout.key.requests', key)]:.0f}")
