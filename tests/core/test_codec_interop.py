"""What other senders really put on the events topic: any content type (or none) on OTLP protobuf,
OTLP JSON and flat JSON; spans that name no region; OTel's openai-v2 instrumentation's spans."""

import base64
import json
import subprocess
import sys

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from brownout import codec
from brownout import semconv as sc
from brownout.endpoints import RegionMap
from brownout.model import Event, InvalidEvent, Key

K = Key("openai", "eastus", "gpt-4o")
EVS = [Event(K, 1_700_000_000.5, 1.25, ttft=0.3, output_tokens=40), Event(K, 1_700_000_001.0, 0.2, error_type="429")]
PROTO = codec.encode_otlp_proto(EVS)
OTLP_JSON = codec.encode_otlp_json(EVS)
FLAT = codec.encode_flat(EVS)


def keys_and_errors(items):
    assert all(isinstance(i, Event) for i in items), items
    return [(i.key, i.error_type) for i in items]


WANT = [(K, None), (K, "429")]


@pytest.mark.parametrize("ctype", [
    "application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf", "application/octet-stream",
    "Application/X-Protobuf; proto=opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest",
    None, "", "text/plain", "application/json"])
def test_otlp_protobuf_decodes_under_any_header_exporters_send(ctype):
    assert keys_and_errors(codec.decode(PROTO, ctype)) == WANT


@pytest.mark.parametrize("ctype", [
    "application/json", "application/json; charset=utf-8", sc.CONTENT_OTLP_JSON, "application/x-ndjson",
    "text/json", None, "text/plain", "application/x-protobuf"])
def test_otlp_json_is_sniffed_whatever_the_header_says(ctype):
    assert keys_and_errors(codec.decode(OTLP_JSON, ctype)) == WANT


@pytest.mark.parametrize("ctype", ["application/json", "application/x-ndjson", "application/jsonl", None, "text/plain"])
def test_flat_json_lines_under_json_like_or_missing_headers(ctype):
    assert keys_and_errors(codec.decode(FLAT, ctype)) == WANT


def test_otlp_json_pretty_printed_or_one_object_per_line_or_key_not_first():
    doc = json.loads(OTLP_JSON)
    pretty = json.dumps(doc, indent=2).encode()
    lines = json.dumps(doc).encode() + b"\n" + json.dumps(doc).encode()
    reordered = json.dumps({"schemaUrl": "", **doc}).encode()
    assert keys_and_errors(codec.decode(pretty, "application/json")) == WANT
    assert keys_and_errors(codec.decode(lines, "application/x-ndjson")) == WANT + WANT
    assert keys_and_errors(codec.decode(reordered, "application/json")) == WANT


def test_the_collector_otlp_json_shape_with_hex_ids_and_string_nanos():
    """The OTel Collector's ``otlp_json`` (pdata's marshaler): hex ids, nanoseconds as strings, kind as a number."""
    span = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "chat gpt-4o",
            "kind": 3, "startTimeUnixNano": "1700000000500000000", "endTimeUnixNano": "1700000001750000000",
            "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                           {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                           {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                           {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "40"}}],
            "status": {}}
    payload = json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "chat-app"}}]},
        "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai_v2"}, "spans": [span]}]}]},
        separators=(",", ":")).encode()
    [ev] = codec.decode(payload, None, RegionMap(default="eastus"))
    assert ev.key == K and ev.output_tokens == 40 and ev.duration == pytest.approx(1.25)


@pytest.mark.parametrize("payload,ctype,reason", [
    (b"provider=openai", "text/plain", "unknown_content_type"),
    (b"\xff\xfe\x00", "application/x-protobuf", "malformed_protobuf"),
    (b"[1, 2", "application/json", "malformed_json"),
    (b'{"resourceSpans": [', None, "malformed_json"),
])
def test_what_is_neither_is_named_for_the_header_it_came_with(payload, ctype, reason):
    [err] = codec.decode(payload, ctype)
    assert isinstance(err, InvalidEvent) and err.reason == reason


# --- spans that name no region ------------------------------------------------------------
@pytest.mark.parametrize("attrs,region,provider", [
    ({"server.address": "bedrock-runtime.us-west-2.amazonaws.com", "gen_ai.provider.name": "aws.bedrock"},
     "us-west-2", "aws.bedrock"),
    ({"server.address": "europe-west4-aiplatform.googleapis.com", "gen_ai.provider.name": "gcp.vertex_ai"},
     "europe-west4", "gcp.vertex_ai"),
    ({"server.address": "MyRes.openai.azure.com"}, "swedencentral", "azure.ai.openai"),  # mapped by resource name
    ({"server.address": "llm.internal"}, "westus", "openai"),  # mapped by host
    ({"server.address": "api.openai.com"}, "global", "openai"),  # the default
    ({}, "global", "openai"),  # no server.address at all (openai-v2 with openai 3.x)
    ({"server.address": "api.openai.com", "cloud.region": "eastus"}, "eastus", "openai"),  # its own region wins
    ({"server.address": "api.openai.com", "aws.region": "eu-west-1"}, "eu-west-1", "openai"),
])
def test_a_missing_region_comes_from_server_address_else_the_default(attrs, region, provider):
    regions = RegionMap({"myres": "swedencentral", "llm.internal": "westus"}, default="global")
    flat = {k: v for k, v in EVS[0].to_flat().items() if k != sc.CLOUD_REGION}
    flat.update(attrs)
    [ev] = codec.decode(json.dumps(flat).encode(), "application/json", regions)
    assert (ev.key.region, ev.key.provider) == (region, provider)


def test_resource_region_wins_over_the_derived_one_and_no_map_keeps_the_old_rule():
    req = trace_service_pb2.ExportTraceServiceRequest.FromString(PROTO)
    rs = req.resource_spans[0]
    for span in rs.scope_spans[0].spans:
        attrs = [kv for kv in span.attributes if kv.key != sc.CLOUD_REGION]
        del span.attributes[:]
        span.attributes.extend(attrs)
    bare = req.SerializeToString()
    assert {e.reason for e in codec.decode(bare, sc.CONTENT_OTLP_PROTO)} == {"missing_attribute"}
    strict = RegionMap(default=None)
    assert {e.reason for e in codec.decode(bare, sc.CONTENT_OTLP_PROTO, strict)} == {"missing_attribute"}
    assert {e.key.region for e in codec.decode(bare, sc.CONTENT_OTLP_PROTO, RegionMap(default="global"))} == {"global"}
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = sc.CLOUD_REGION, "eu-west-1"
    with_resource = req.SerializeToString()
    assert {e.key.region for e in codec.decode(with_resource, sc.CONTENT_OTLP_PROTO, RegionMap())} == {"eu-west-1"}


@pytest.mark.parametrize("raw,name,cls", [
    ("<class 'openai.InternalServerError'>", "InternalServerError", "capacity"),
    ("<class 'openai.RateLimitError'>", "RateLimitError", "capacity"),
    ("<class 'openai.BadRequestError'>", "BadRequestError", "client"),
    ("<class 'KeyError'>", "KeyError", "other"),
    ("InternalServerError", "InternalServerError", "capacity"),
])
def test_error_type_written_as_a_class_repr_is_read_as_the_class_name(raw, name, cls):
    flat = dict(EVS[0].to_flat(), **{sc.ERROR_TYPE: raw})
    [ev] = codec.decode(json.dumps(flat).encode())
    assert (ev.error_type, ev.error_class) == (name, cls)


# --- the real openai-v2 instrumentation ------------------------------------------------------
_OPENAI_V2 = """
import base64, sys
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
OpenAIInstrumentor().instrument(tracer_provider=provider)
import openai
from brownout.hooks.testing import FakeLLMServer, Plan
with FakeLLMServer() as s:
    c = openai.OpenAI(base_url=s.url + "/v1", api_key="test", max_retries=0)
    msgs = [{"role": "user", "content": "hi"}]
    c.chat.completions.create(model="gpt-4o", messages=msgs)
    for _ in c.chat.completions.create(model="gpt-4o", messages=msgs, stream=True):
        pass
    for status in (503, 429, 400):
        s.plan(Plan(status=status))
        try:
            c.chat.completions.create(model="gpt-4o", messages=msgs)
        except openai.APIStatusError:
            pass
sys.stdout.write(base64.b64encode(encode_spans(exporter.get_finished_spans()).SerializeToString()).decode())
"""


def test_spans_of_otels_openai_v2_instrumentation_decode_to_events():
    """The real instrumentation and SDK in a subprocess (it patches openai globally): what it sends, mapped."""
    out = subprocess.run([sys.executable, "-c", _OPENAI_V2], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    events = codec.decode(base64.b64decode(out.stdout), sc.CONTENT_OTLP_PROTO, RegionMap(default="eastus"))
    assert all(isinstance(e, Event) for e in events), events
    assert {e.key for e in events} == {Key("openai", "eastus", "gpt-4o")}
    assert [e.error_class for e in events] == [None, None, "capacity", "capacity", "client"]
    plain, streamed = events[0], events[1]
    assert plain.output_tokens == 3 and plain.input_tokens == 11 and plain.response_model == "gpt-4o-2025-01-01"
    assert plain.finish_reasons == ("stop",)
    # what it does not send: no time to first token, no stream flag (ttft_drift and itl cannot judge these keys)
    assert all(e.ttft is None and e.stream is None and e.itl_p95 is None for e in events)
    assert streamed.duration > 0
