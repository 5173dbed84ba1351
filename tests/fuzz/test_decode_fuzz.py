"""Property-based fuzzing of everything that reads untrusted bytes: codec.decode (OTLP
protobuf, OTLP JSON, flat JSON), Event.from_flat / from_attributes and replay.read_events.

Whatever comes in, nothing raises, and what comes out is None, an InvalidEvent with a known
reason, or an Event whose fields are finite, non-negative and bounded (see _fuzz_support).
"""

from __future__ import annotations

import io
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from _fuzz_support import check_event, check_item
from brownout import codec
from brownout import semconv as sc
from brownout.model import Event, InvalidEvent, Key
from brownout.replay import ReplayStats, read_events

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONTENT_TYPES = (None, codec.CONTENT_OTLP_PROTO, codec.CONTENT_OTLP_JSON, codec.CONTENT_FLAT_JSON,
                 "text/plain", "")

ATTRIBUTE_NAMES = [
    sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_PROVIDER_NAME, sc.CLOUD_REGION, sc.GEN_AI_REQUEST_MODEL,
    sc.GEN_AI_RESPONSE_MODEL, sc.GEN_AI_REQUEST_STREAM, sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_OUTPUT_TOKENS, sc.GEN_AI_RESPONSE_FINISH_REASONS,
    sc.ERROR_TYPE, sc.HTTP_RESPONSE_STATUS_CODE, sc.SERVER_ADDRESS, sc.SERVER_PORT, sc.BROWNOUT_ITL_P50,
    sc.BROWNOUT_ITL_P95, sc.BROWNOUT_ITL_MAX, sc.BROWNOUT_DEADLINE, "start", "duration", *sc.LEGACY_ATTRIBUTES,
]

# --- value strategies ----------------------------------------------------------------------------
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 1e-320, 5e-324, 1e12, 86400.0, 86400.0000001, 604800.0, -1.0, 1.7e308])
ints = st.integers() | st.sampled_from([0, -1, 10**12, 2**63, -(2**63), 10**400, 100_000_001])
texts = st.text(max_size=20) | st.sampled_from(["", "openai", "eastus", "gpt-4o", "429", "true", "chat",
                                                "nan", "inf", "1e400", "\ud800", "a/b", "x" * 300])
#: The values that broke decoders before, drawn often: random draws rarely reach 10**400 or a lone surrogate.
EDGES = st.sampled_from([None, True, 10**400, -(10**400), 2**64, math.nan, math.inf, -math.inf, 5e-324, -1, -1.0,
                         86400.5, 604800.0, 10**12, "\ud800", "a/b", "x" * 300, "", [], [["stop"]], {"a": 1}])
scalars = st.one_of(EDGES, EDGES, st.none(), st.booleans(), floats, ints, texts)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(texts, inner, max_size=4), max_leaves=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.integers() | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4), max_leaves=12)


def _valid_attrs() -> dict:
    return {sc.GEN_AI_PROVIDER_NAME: "openai", sc.CLOUD_REGION: "eastus", sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
            sc.GEN_AI_OPERATION_NAME: "chat"}


attr_dicts = st.builds(
    lambda base, extra, drop: {k: v for k, v in {**base, **extra}.items() if k not in drop},
    st.just(_valid_attrs()),
    st.dictionaries(st.sampled_from(ATTRIBUTE_NAMES) | texts, values, max_size=8),
    st.sets(st.sampled_from(list(_valid_attrs())), max_size=2))


def _valid_events() -> list[Event]:
    key = Key("openai", "eastus", "gpt-4o")
    return [Event(key, 1_700_000_000.0 + i, 1.5, ttft=0.3, input_tokens=100, output_tokens=50,
                  finish_reasons=("stop",), stream=True, error_type="429" if i % 2 else None,
                  status_code=429 if i % 2 else None, server_address="api.openai.com", server_port=443,
                  itl_p50=0.02, itl_p95=0.05, itl_max=0.2, deadline=10.0) for i in range(3)]


VALID_PROTO = codec.encode_otlp_proto(_valid_events())
VALID_OTLP_JSON = codec.encode_otlp_json(_valid_events())
VALID_FLAT = codec.encode_flat(_valid_events())


@st.composite
def mutated(draw, original: bytes) -> bytes:
    """A valid payload with a few bit flips, byte overwrites, cuts and insertions."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "truncate"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[i] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x0A, 0x22, 0x7B, 0x5B]))
        elif op == "cut":
            del data[i:i + draw(st.integers(1, 16))]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[i:]
    return bytes(data)


def _any_value(v: object) -> common_pb2.AnyValue:
    av = common_pb2.AnyValue()
    if v is None:
        return av
    if isinstance(v, bool):
        av.bool_value = v
    elif isinstance(v, int):
        if -(2**63) <= v < 2**63:
            av.int_value = v
        else:
            av.string_value = str(v)[:50]
    elif isinstance(v, float):
        av.double_value = v
    elif isinstance(v, str):
        av.string_value = v.encode("utf-8", "replace").decode()
    elif isinstance(v, bytes):
        av.bytes_value = v
    elif isinstance(v, list):
        av.array_value.values.extend(_any_value(x) for x in v)
    elif isinstance(v, dict):
        av.kvlist_value.values.extend(common_pb2.KeyValue(key=str(k).encode("utf-8", "replace").decode(),
                                                           value=_any_value(x)) for k, x in v.items())
    return av


def _proto_span(attrs: dict, start_ns: int, end_ns: int) -> bytes:
    req = trace_service_pb2.ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()
    span.start_time_unix_nano = start_ns
    span.end_time_unix_nano = end_ns
    for k, v in attrs.items():
        span.attributes.append(common_pb2.KeyValue(key=str(k).encode("utf-8", "replace").decode(),
                                                   value=_any_value(v)))
    return req.SerializeToString()


def _otlp_json_value(v: object) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [_otlp_json_value(x) for x in v]}}
    return {"stringValue": v}


def _decode_all(payload: bytes, ctype: str | None) -> list:
    out = codec.decode(payload, ctype)
    assert isinstance(out, list)
    for item in out:
        check_item(item)
    return out


# --- codec.decode ----------------------------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=512), st.sampled_from(CONTENT_TYPES))
def test_random_bytes_never_raise(payload, ctype):
    _decode_all(payload, ctype)


@FUZZ
@given(mutated(VALID_PROTO))
def test_mutated_otlp_protobuf(payload):
    _decode_all(payload, codec.CONTENT_OTLP_PROTO)


@FUZZ
@given(mutated(VALID_OTLP_JSON), st.sampled_from([None, codec.CONTENT_OTLP_JSON]))
def test_mutated_otlp_json(payload, ctype):
    _decode_all(payload, ctype)


@FUZZ
@given(mutated(VALID_FLAT))
def test_mutated_flat_json(payload):
    _decode_all(payload, codec.CONTENT_FLAT_JSON)


@FUZZ
@given(json_values, st.sampled_from([None, codec.CONTENT_OTLP_JSON, codec.CONTENT_FLAT_JSON]))
def test_random_json_values(value, ctype):
    _decode_all(json.dumps(value).encode(), ctype)


@FUZZ
@given(json_values)
def test_otlp_json_skeleton_with_random_parts(value):
    """Valid OTLP JSON structure with one random value dropped in at each level."""
    for doc in ({"resourceSpans": value}, {"resourceSpans": [{"scopeSpans": value}]},
                {"resourceSpans": [{"scopeSpans": [{"spans": value}]}]},
                {"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": value, "startTimeUnixNano": value}]}]}]},
                {"resourceSpans": [{"resource": {"attributes": [{"key": "cloud.region", "value": value}]}}]}):
        _decode_all(json.dumps(doc).encode(), codec.CONTENT_OTLP_JSON)


@FUZZ
@given(attr_dicts, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_protobuf_spans_with_random_attributes(attrs, start_ns, end_ns):
    _decode_all(_proto_span(attrs, start_ns, end_ns), codec.CONTENT_OTLP_PROTO)


@FUZZ
@given(attr_dicts, values, values)
def test_otlp_json_spans_with_random_attributes(attrs, start, end):
    span = {"startTimeUnixNano": start, "endTimeUnixNano": end,
            "attributes": [{"key": k, "value": _otlp_json_value(v)} for k, v in attrs.items()]}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    payload = json.dumps(doc).encode("utf-8", "surrogatepass")
    _decode_all(payload, codec.CONTENT_OTLP_JSON)


# --- Event.from_flat / from_attributes ---------------------------------------------------------------
@FUZZ
@given(attr_dicts, values, values)
def test_from_attributes_event_or_invalid(attrs, start, duration):
    try:
        ev = Event.from_attributes(attrs, start, duration)
    except InvalidEvent as exc:
        check_item(exc)
    else:
        check_event(ev)


@FUZZ
@given(st.sampled_from(ATTRIBUTE_NAMES), values, values | st.just(1_767_225_600.0), values | st.just(1.0))
def test_one_hostile_value_in_a_valid_event(name, value, start, duration):
    """A valid event with one value replaced: the likeliest bad input, so fuzzed on its own."""
    attrs = {**_valid_attrs(), name: value}
    try:
        ev = Event.from_attributes(attrs, start, duration)
    except InvalidEvent as exc:
        check_item(exc)
    else:
        check_event(ev)
    flat = json.dumps({**attrs, "start": start, "duration": duration}).encode("utf-8", "surrogatepass")
    _decode_all(flat, codec.CONTENT_FLAT_JSON)
    list(read_events(io.StringIO(flat.decode("utf-8", "surrogatepass")), ReplayStats()))
    _decode_all(_proto_span(attrs, 1_767_225_600 * 10**9, 1_767_225_601 * 10**9), codec.CONTENT_OTLP_PROTO)


@FUZZ
@given(values | attr_dicts)
def test_from_flat_event_or_invalid(obj):
    try:
        ev = Event.from_flat(obj)
    except InvalidEvent as exc:
        check_item(exc)
    else:
        check_event(ev)


@FUZZ
@given(attr_dicts, floats, floats)
def test_flat_json_lines_through_decode(attrs, start, duration):
    line = json.dumps({**attrs, "start": start, "duration": duration}).encode("utf-8", "surrogatepass")
    _decode_all(line + b"\n" + VALID_FLAT, codec.CONTENT_FLAT_JSON)


# --- replay.read_events -----------------------------------------------------------------------------
lines = (st.text(max_size=80)
         | json_values.map(json.dumps)
         | attr_dicts.map(lambda d: json.dumps({**d, "start": 1000.0, "duration": 1.0}))
         | mutated(VALID_FLAT.splitlines()[0]).map(lambda b: b.decode("utf-8", "replace"))
         | mutated(VALID_OTLP_JSON).map(lambda b: b.decode("utf-8", "replace"))
         | st.sampled_from(["[" * 100_000, '{"a":' * 50_000, '{"start": 1' + "0" * 400 + "}"]))


@FUZZ
@given(st.lists(lines, max_size=8))
def test_replay_reader_never_raises(text_lines):
    stats = ReplayStats()
    events = list(read_events(io.StringIO("\n".join(text_lines)), stats))
    for ev in events:
        check_event(ev)


# --- regressions found by this suite ----------------------------------------------------------------
REGRESSIONS = [
    # a 400-digit integer start: float() raised OverflowError through decode and replay
    (b'{"start": 1' + b"0" * 400 + b', "duration": 1, "gen_ai.provider.name": "a", "cloud.region": "b", '
     b'"gen_ai.request.model": "c"}', codec.CONTENT_FLAT_JSON, "bad_timestamp"),
    # OTLP JSON Infinity where an integer belongs: int() raised OverflowError
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano": Infinity}]}]}]}',
     codec.CONTENT_OTLP_JSON, "malformed_json"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"x","value":{"intValue":1e999}}]}]}]}]}',
     codec.CONTENT_OTLP_JSON, "malformed_json"),
    # a lone surrogate in the key would crash every encoder of the record key later
    (b'{"start": 1, "duration": 1, "gen_ai.provider.name": "\\ud800", "cloud.region": "b", '
     b'"gen_ai.request.model": "c"}', codec.CONTENT_FLAT_JSON, "bad_value"),
    # a list as the operation name made `op in frozenset` raise and lost the whole payload
    (_proto_span({**_valid_attrs(), sc.GEN_AI_OPERATION_NAME: ["chat"]}, 10**18, 10**18 + 1),
     codec.CONTENT_OTLP_PROTO, "bad_value"),
    (_proto_span({**_valid_attrs(), sc.HTTP_RESPONSE_STATUS_CODE: 10**15}, 10**18, 10**18 + 1),
     codec.CONTENT_OTLP_PROTO, "bad_value"),
    # "a/b" + "c" and "a" + "b/c" would share the record key "a/b/c/..." on the compacted control topic
    (_proto_span({**_valid_attrs(), sc.CLOUD_REGION: "east/us"}, 10**18, 10**18 + 1), codec.CONTENT_OTLP_PROTO,
     "bad_value"),
    (_proto_span({**_valid_attrs(), sc.GEN_AI_REQUEST_MODEL: "m" * 10_000}, 10**18, 10**18 + 1),
     codec.CONTENT_OTLP_PROTO, "bad_value"),
]


def test_a_model_may_contain_a_slash():
    [ev] = _decode_all(_proto_span({**_valid_attrs(), sc.GEN_AI_REQUEST_MODEL: "meta-llama/Llama-3-70b"},
                                   10**18, 10**18 + 10**9), codec.CONTENT_OTLP_PROTO)
    assert ev.key.model == "meta-llama/Llama-3-70b"


@pytest.mark.parametrize("payload,ctype,reason", REGRESSIONS)
def test_regressions_are_invalid_with_a_reason(payload, ctype, reason):
    assert [getattr(x, "reason", None) for x in _decode_all(payload, ctype)] == [reason]


@pytest.mark.parametrize("line", ["[" * 100_000, '{"a":' * 50_000, '{"start": 1' + "0" * 400 + "}",
                                  '{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano": Infinity}]}]}]}'])
def test_replay_reader_counts_hostile_lines_as_invalid(line):
    stats = ReplayStats()
    assert list(read_events(io.StringIO(line + "\n" + VALID_FLAT.decode()), stats)) == _valid_events()
    assert stats.invalid == 1


def test_valid_payloads_decode_to_the_events():
    """The mutations start from payloads that decode cleanly, so the fuzzers explore near valid input."""
    for payload in (VALID_PROTO, VALID_OTLP_JSON, VALID_FLAT):
        assert codec.decode(payload) == _valid_events()


@pytest.mark.parametrize("duration", [5e-324, 1e-320])
def test_decode_speed_of_a_subnormal_duration_is_unknown_not_infinite(duration):
    ev = Event.from_flat({**_valid_attrs(), "start": 1.0, "duration": duration, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5})
    assert ev.output_tokens_per_second is None
