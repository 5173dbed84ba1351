"""Bad input on the real broker: every kind goes to the dead-letter topic with its reason and
its original bytes, is counted in ``brownout_decode_errors_total{reason}``, and the collector
(``brownout collect``, its own process) goes on consuming the valid events behind it."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from support import create_collector_topics, free_port, ready, scrape, wait_for

from brownout import codec
from brownout import semconv as sc
from brownout.model import Event, Key
from brownout.transport import KafkaTransport

pytestmark = pytest.mark.integration

KEY = Key("openai", "eastus", "gpt-4o")
PROTO = sc.CONTENT_OTLP_PROTO
OTLP_JSON = sc.CONTENT_OTLP_JSON
FLAT = sc.CONTENT_FLAT_JSON
DAY = 86_400.0


def _event(t: float, **kw) -> Event:
    base = Event(KEY, t, 1.2, ttft=0.3, input_tokens=200, output_tokens=40, stream=True, finish_reasons=("stop",))
    return base._replace(**kw)


def _flat(t: float, **fields) -> bytes:
    obj = {**_event(t).to_flat(), **fields}
    return json.dumps(obj).encode()  # NaN and Infinity as Python writes them: what a careless producer sends


def _otlp_json_with(t: float, attr: str, value: dict) -> bytes:
    doc = json.loads(codec.encode_otlp_json([_event(t)]))
    attrs = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]
    attrs[:] = [a for a in attrs if a["key"] != attr] + [{"key": attr, "value": value}]
    return json.dumps(doc).encode()


def _to_proto(doc: dict) -> bytes:
    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    return ParseDict(doc, trace_service_pb2.ExportTraceServiceRequest()).SerializeToString()


def _without(t: float, attr: str) -> bytes:
    """An OTLP protobuf span lacking one required attribute."""
    doc = json.loads(codec.encode_otlp_json([_event(t)]))
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"] = [a for a in span["attributes"] if a["key"] != attr]
    return _to_proto(doc)


def _reversed_span(t: float) -> bytes:
    """A span that ends before it starts (a negative duration on the wire)."""
    doc = json.loads(codec.encode_otlp_json([_event(t)]))
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["startTimeUnixNano"], span["endTimeUnixNano"] = span["endTimeUnixNano"], span["startTimeUnixNano"]
    return _to_proto(doc)


def bad_records(now: float) -> list[tuple[str, bytes | None, str | None, str]]:
    """(case, value, content type, expected reason); the case name is the record key."""
    t = now - 30.0
    proto = lambda **kw: codec.encode_otlp_proto([_event(t, **kw)])  # noqa: E731
    return [
        ("protobuf-garbage", b"\x0a\xff\xff\x7f not otlp", PROTO, "malformed_protobuf"),
        ("protobuf-truncated", codec.encode_otlp_proto([_event(t)])[:-7], PROTO, "malformed_protobuf"),
        ("no-content-type", b"\x00\x01\x02garbage", None, "malformed_protobuf"),
        ("json-garbage", b'{"start": 1, "duration":', FLAT, "malformed_json"),
        ("otlp-json-garbage", b'{"resourceSpans": [{"scopeSpans": [', OTLP_JSON, "malformed_json"),
        ("otlp-json-wrong-structure", b'{"resourceSpans": "not a list of spans"}', OTLP_JSON, "malformed_json"),
        ("otlp-json-string-ttft", _otlp_json_with(t, sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, {"stringValue": "fast"}),
         OTLP_JSON, "bad_value"),
        ("otlp-json-string-tokens", _otlp_json_with(t, sc.GEN_AI_USAGE_OUTPUT_TOKENS, {"stringValue": "many"}),
         OTLP_JSON, "bad_value"),
        ("otlp-json-list-model", _otlp_json_with(t, sc.GEN_AI_REQUEST_MODEL, {"arrayValue": {"values": []}}),
         OTLP_JSON, "missing_attribute"),
        ("unknown-content-type", b"provider=openai", "text/plain", "unknown_content_type"),
        ("missing-provider", _without(t, sc.GEN_AI_PROVIDER_NAME), PROTO, "missing_attribute"),
        ("missing-region", _without(t, sc.CLOUD_REGION), PROTO, "missing_attribute"),
        ("missing-model", _without(t, sc.GEN_AI_REQUEST_MODEL), PROTO, "missing_attribute"),
        ("flat-missing-region", json.dumps({k: v for k, v in _event(t).to_flat().items()
                                            if k != sc.CLOUD_REGION}).encode(), FLAT, "missing_attribute"),
        ("negative-duration-span", _reversed_span(t), PROTO, "bad_timestamp"),
        ("negative-duration", _flat(t, duration=-1.0), FLAT, "bad_duration"),
        ("nan-duration", _flat(t, duration=math.nan), FLAT, "bad_duration"),
        ("infinite-duration", _flat(t, duration=math.inf), FLAT, "bad_duration"),
        ("negative-ttft", proto(ttft=-0.5), PROTO, "bad_value"),
        ("nan-ttft", proto(ttft=math.nan), PROTO, "bad_value"),
        ("infinite-ttft", proto(ttft=math.inf), PROTO, "bad_value"),
        ("week-long-ttft", proto(ttft=7 * DAY), PROTO, "bad_value"),
        ("trillion-tokens", proto(output_tokens=10**12), PROTO, "bad_value"),
        ("nan-itl", _flat(t, **{sc.BROWNOUT_ITL_P95: math.nan}), FLAT, "bad_value"),
        ("far-future", codec.encode_otlp_proto([_event(now + DAY)]), PROTO, "bad_timestamp"),
        ("far-past", codec.encode_otlp_proto([_event(now - 30 * DAY)]), PROTO, "bad_timestamp"),
        ("epoch-zero", _flat(0.0), FLAT, "bad_timestamp"),
        ("negative-start", _flat(-5.0), FLAT, "bad_timestamp"),
        ("tombstone", None, None, "empty_value"),
    ]


async def _send(bootstrap: str, topic: str, records) -> None:
    p = KafkaTransport(bootstrap).producer()
    await p.start()
    try:
        for key, value, ctype in records:
            headers = ((sc.HEADER_CONTENT_TYPE, ctype.encode()),) if ctype else ()
            await p.send(topic, value, key=key, headers=headers)
        await p.flush()
    finally:
        await p.stop()


async def _read(bootstrap: str, topic: str, want: int, timeout: float = 20.0):
    c = KafkaTransport(bootstrap).consumer([topic], from_beginning=True)
    await c.start()
    try:
        out: list = []
        deadline = time.monotonic() + timeout
        while len(out) < want and time.monotonic() < deadline:
            out += await c.getmany(timeout=1.0)
        return out
    finally:
        await c.stop()


def test_bad_records_are_dead_lettered_counted_and_skipped(kafka_bootstrap, topic_name, tmp_path):
    topics = asyncio.run(create_collector_topics(kafka_bootstrap, topic_name, 1))
    port = free_port()
    # no default region: a span without one is bad input here (by default it would be judged in "global");
    # the bad records are keyed by case name, not provider/region/model: the collector that reads them
    # re-keys their valid spans and dead-letters the rest, the original bytes under the case's key
    env = dict(os.environ, BROWNOUT_TOPICS_STATE=topics["state"], BROWNOUT_TOPICS_DEAD_LETTER=topics["dead_letter"],
               BROWNOUT_DEFAULT_REGION="")
    log = open(tmp_path / "collector.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "brownout.cli", "collect", "--bootstrap-servers", kafka_bootstrap,
         "--events-topic", topics["events"], "--control-topic", topics["control"],
         "--group-id", topic_name("group"), "--metrics-port", str(port), "--no-create-topics"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: ready(port), 60, "the collector's /readyz")
        now = time.time()
        before = [_event(now - 60 + i * 0.5) for i in range(20)]
        after = [_event(now - 20 + i * 0.5) for i in range(20)]
        bad = bad_records(now)
        # one record mixing three good spans with a bad one: the good ones count, the record is kept
        mixed = codec.encode_otlp_proto([_event(now - 25), _event(now - 24, ttft=-1.0), _event(now - 23),
                                         _event(now - 22)])
        kafka_key = str(KEY).encode()
        records = [(kafka_key, codec.encode_otlp_proto(before), PROTO)]
        records += [(case.encode(), value, ctype) for case, value, ctype, _ in bad]
        records += [(b"mixed", mixed, PROTO), (kafka_key, codec.encode_otlp_proto(after[:10]), PROTO),
                    (kafka_key, codec.encode_flat(after[10:]), FLAT)]
        asyncio.run(_send(kafka_bootstrap, topics["events"], records))

        accepted = len(before) + len(after) + 3
        metrics = wait_for(lambda: (m := scrape(port)).get('brownout_events_total{outcome="accepted"}', 0)
                           >= accepted and m, 45, "the valid events behind the bad ones to be consumed")
        assert metrics['brownout_events_total{outcome="accepted"}'] == accepted
        expected = Counter(reason for *_, reason in bad) + Counter({"bad_value": 1})
        counted = {reason: metrics.get(f'brownout_decode_errors_total{{reason="{reason}"}}', 0.0)
                   for reason in expected}
        assert counted == {reason: float(n) for reason, n in expected.items()}
        assert metrics['brownout_events_total{outcome="invalid"}'] == sum(expected.values())

        dead = asyncio.run(_read(kafka_bootstrap, topics["dead_letter"], len(bad) + 1))
        by_key = {r.key: r for r in dead}
        assert len(dead) == len(by_key) == len(bad) + 1
        for case, value, ctype, reason in bad:
            rec = by_key[case.encode()]
            assert (case, rec.header(sc.HEADER_REASON)) == (case, reason.encode())
            assert rec.value == value, case  # the original bytes, untouched
            assert rec.header(sc.HEADER_CONTENT_TYPE) == (ctype.encode() if ctype else None)
            assert rec.header(sc.HEADER_SOURCE).startswith(f"{topics['events']}/0/".encode())
        assert by_key[b"mixed"].header(sc.HEADER_REASON) == b"bad_value"
        assert by_key[b"mixed"].value == mixed
        assert proc.poll() is None, "the collector exited"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        log.close()
        print((tmp_path / "collector.log").read_text()[-3000:])
    assert code == 0
