"""OTLP protobuf and JSON, and the flat form: decoding never raises, bad input is named."""

import json

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from brownout import codec
from brownout import semconv as sc
from brownout.model import Event, InvalidEvent, Key

K = Key("anthropic", "us-east-1", "claude-sonnet-4")
EV = Event(K, 1_700_000_000.25, 1.5, stream=True, ttft=0.42, input_tokens=10, output_tokens=99,
           finish_reasons=("end_turn",), itl_p50=0.01, itl_p95=0.03, itl_max=0.1, deadline=3.0)


def test_otlp_proto_round_trip_keeps_every_attribute():
    [back] = codec.decode(codec.encode_otlp_proto([EV]), sc.CONTENT_OTLP_PROTO)
    assert back.key == K and back.ttft == 0.42 and back.finish_reasons == ("end_turn",)
    assert abs(back.start - EV.start) < 1e-6 and abs(back.duration - EV.duration) < 1e-6
    assert back.to_flat().keys() == EV.to_flat().keys()


def test_otlp_span_is_a_client_span_named_after_operation_and_model():
    req = trace_service_pb2.ExportTraceServiceRequest.FromString(codec.encode_otlp_proto([EV]))
    span = req.resource_spans[0].scope_spans[0].spans[0]
    assert span.name == "chat claude-sonnet-4" and span.kind == 3
    assert len(span.trace_id) == 16 and len(span.span_id) == 8


def test_otlp_json_round_trip_and_sniffing():
    payload = codec.encode_otlp_json([EV, EV])
    assert codec.sniff(payload) == sc.CONTENT_OTLP_JSON
    assert [e.ttft for e in codec.decode(payload)] == [0.42, 0.42]


def test_flat_json_lines():
    payload = codec.encode_flat([EV, EV])
    assert codec.sniff(payload) == sc.CONTENT_FLAT_JSON
    assert codec.decode(payload) == [EV, EV]


def test_resource_attributes_supply_the_region():
    req = trace_service_pb2.ExportTraceServiceRequest.FromString(codec.encode_otlp_proto([EV]))
    rs = req.resource_spans[0]
    span = rs.scope_spans[0].spans[0]
    attrs = [kv for kv in span.attributes if kv.key != sc.CLOUD_REGION]
    del span.attributes[:]
    span.attributes.extend(attrs)
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = sc.CLOUD_REGION, "eu-west-1"
    [back] = codec.decode(req.SerializeToString(), sc.CONTENT_OTLP_PROTO)
    assert back.key.region == "eu-west-1"


def test_non_genai_spans_are_skipped_not_errors():
    req = trace_service_pb2.ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()
    span.name, span.start_time_unix_nano, span.end_time_unix_nano = "GET /", 1, 2
    kv = span.attributes.add()
    kv.key, kv.value.string_value = "http.request.method", "GET"
    assert codec.decode(req.SerializeToString(), sc.CONTENT_OTLP_PROTO) == [None]


def test_garbage_is_one_named_error_never_an_exception():
    for payload, ctype, reason in [(b"\xff\xfe garbage", sc.CONTENT_OTLP_PROTO, "malformed_protobuf"),
                                   (b"{not json", sc.CONTENT_OTLP_JSON, "malformed_json"),
                                   (b'{"resourceSpans": 3}', sc.CONTENT_OTLP_JSON, "malformed_json"),
                                   (b"x", "text/plain", "unknown_content_type")]:
        [err] = codec.decode(payload, ctype)
        assert isinstance(err, InvalidEvent) and err.reason == reason, payload


def test_span_without_provider_is_invalid_with_the_attribute_named():
    bad = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "startTimeUnixNano": "1000000000", "endTimeUnixNano": "2000000000",
        "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}]}]}]}]}).encode()
    [err] = codec.decode(bad)
    assert err.reason == "missing_attribute" and sc.GEN_AI_PROVIDER_NAME in str(err)


def test_span_ending_before_it_starts_is_invalid():
    bad = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "startTimeUnixNano": "2000000000", "endTimeUnixNano": "1000000000",
        "attributes": [{"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}}]}]}]}]}).encode()
    [err] = codec.decode(bad)
    assert err.reason == "bad_timestamp"
