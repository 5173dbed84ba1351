"""Conversion between OTLP trace payloads (protobuf and JSON), Events and the flat JSON form.

The events topic carries OTLP ``ExportTraceServiceRequest`` messages, wire-compatible with
the OpenTelemetry Collector's Kafka exporter (``otlp_proto`` and ``otlp_json``), and also
accepts the flat JSON form (one object, or several separated by newlines). The content-type
header is a hint: the payload decides (JSON starts with ``{``), so a missing, generic
(``application/json``) or odd header still decodes; see :func:`payload_kind`.

Spans from other instrumentations often name no ``cloud.region``: given a
:class:`~brownout.endpoints.RegionMap`, :func:`decode` derives it from ``server.address`` or
uses the map's default.

>>> from brownout.model import Event, Key
>>> ev = Event(Key("openai", "eastus", "gpt-4o"), start=100.0, duration=2.0, ttft=0.4)
>>> [e.ttft for e in decode(encode_otlp_proto([ev]), CONTENT_OTLP_PROTO)]
[0.4]
>>> decode(b'{"start": 1, "duration": 1}', "application/json")[0].reason
'missing_attribute'
>>> payload_kind(encode_otlp_json([ev]), "application/x-protobuf"), payload_kind(b"\\x0a\\x00", None)
('json', 'protobuf')
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Sequence

import orjson

from brownout import semconv as sc
from brownout.endpoints import RegionMap, provider_for_host
from brownout.model import Event, InvalidEvent

CONTENT_OTLP_PROTO = sc.CONTENT_OTLP_PROTO
CONTENT_OTLP_JSON = sc.CONTENT_OTLP_JSON
CONTENT_FLAT_JSON = sc.CONTENT_FLAT_JSON

#: A decoded item: an Event, an InvalidEvent (bad span, to dead-letter), or None (skipped:
#: a span that is not GenAI inference).
Decoded = Event | InvalidEvent | None

_SPAN_KIND_CLIENT = 3
_NS = 1_000_000_000


#: Content types that exporters send for OTLP protobuf and for JSON (OTLP JSON or flat lines).
PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf",
                            "application/x-google-protobuf", "application/octet-stream"})
JSON_TYPES = frozenset({"application/json", CONTENT_OTLP_JSON, "application/x-ndjson", "application/ndjson",
                        "application/jsonl", "application/x-jsonlines", "application/jsonlines", "text/json",
                        "application/otlp+json", "application/x-json-stream"})


def sniff(payload: bytes) -> str:
    """Guess the content type of a payload without headers: JSON starts with ``{``."""
    head = payload[:64].lstrip()
    if head[:1] == b"{":
        return CONTENT_OTLP_JSON if head.lstrip(b"{ \n\r\t").startswith(b'"resourceSpans"') \
            else CONTENT_FLAT_JSON
    return CONTENT_OTLP_PROTO


def payload_kind(payload: bytes, content_type: str | None) -> str:
    """``"json"``, ``"protobuf"`` or ``"unknown"`` (try protobuf, then say the header was wrong).

    A payload whose first byte (after white space) is ``{`` is JSON whatever the header says (an
    OTLP protobuf request never starts with that byte). Otherwise a protobuf header, or none, means
    protobuf; any other header (a JSON one on a payload that is not JSON, ``text/plain``...) is
    ``unknown``. Parameters (``; charset=utf-8``) and case are ignored.
    """
    if payload[:64].lstrip()[:1] == b"{":
        return "json"
    if not content_type or content_type.split(";", 1)[0].strip().lower() in PROTOBUF_TYPES:
        return "protobuf"
    return "unknown"


def _is_json_type(content_type: str) -> bool:
    ctype = content_type.split(";", 1)[0].strip().lower()
    return ctype in JSON_TYPES or ctype.endswith(("+json", "/json"))


def decode(payload: bytes, content_type: str | None = None, regions: RegionMap | None = None) -> list[Decoded]:
    """Decode one record's value into events; never raises.

    A payload that cannot be parsed at all yields one ``InvalidEvent``: ``malformed_json`` or
    ``malformed_protobuf`` after what the header (or the payload) said it was,
    ``unknown_content_type`` under any other header. ``regions`` supplies the region of spans that
    name none (None: such spans are invalid, ``missing_attribute``).
    """
    if content_type == CONTENT_OTLP_PROTO and payload[:1] == b"\n":  # the hooks' records
        kind = "protobuf"
    else:
        kind = payload_kind(payload, content_type)
    try:
        if kind == "json":
            return _decode_json(payload, regions)
        try:
            return decode_otlp_proto(payload, regions)
        except InvalidEvent as exc:
            if kind == "protobuf":
                raise
            assert content_type is not None
            if _is_json_type(content_type):
                raise InvalidEvent("malformed_json", f"not JSON, nor OTLP protobuf: {payload[:40]!r}") from None
            raise InvalidEvent("unknown_content_type",
                               f"{content_type!r}: neither JSON nor OTLP protobuf ({exc.detail})"[:200]) from None
    except InvalidEvent as exc:
        return [exc]
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
        return [InvalidEvent("malformed_json" if kind == "json" else "malformed_protobuf",
                             f"{type(exc).__name__}: {exc}"[:200])]


def _decode_json(payload: bytes, regions: RegionMap | None) -> list[Decoded]:
    """OTLP JSON (one object, as the Collector's ``otlp_json`` writes it, or one per line) or flat
    JSON lines; a pretty-printed object over several lines is read whole."""
    if payload[:64].lstrip(b"{ \n\r\t").startswith(b'"resourceSpans"'):
        try:
            obj = loads(payload)
        except ValueError:
            pass  # several OTLP JSON objects, one per line: read line by line
        else:
            return decode_otlp_json(obj, regions)
    out: list[Decoded] = []
    lines = [line for line in payload.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        try:
            obj = loads(line)
        except (ValueError, RecursionError) as exc:
            if i == 0 and len(lines) > 1:
                try:
                    return decode_object(loads(payload), regions)
                except (ValueError, RecursionError):
                    pass
            out.append(InvalidEvent("malformed_json", f"{type(exc).__name__}: {exc}"[:200]))
            continue
        out.extend(decode_object(obj, regions))
    return out


def decode_object(obj: Any, regions: RegionMap | None) -> list[Decoded]:
    """One parsed JSON value: an OTLP JSON request (raises :class:`InvalidEvent` when malformed) or
    a flat event (its region filled from ``regions``; invalid ones come back as the error)."""
    if isinstance(obj, dict) and "resourceSpans" in obj:
        return decode_otlp_json(obj, regions)
    if regions is not None and isinstance(obj, dict):
        fill_region(obj, regions)
    try:
        return [Event.from_flat(obj)]
    except InvalidEvent as exc:
        return [exc]


def fill_region(attrs: dict[str, Any], regions: RegionMap) -> None:
    """Give attributes without ``cloud.region`` (nor the legacy ``aws.region``) the region of their
    ``server.address``, or the map's default; an ``openai`` provider on an Azure OpenAI host
    becomes ``azure.ai.openai``, as the hooks name it.

    >>> attrs = {"gen_ai.system": "openai", "server.address": "myres.openai.azure.com"}
    >>> fill_region(attrs, RegionMap({"myres": "swedencentral"})); attrs["cloud.region"], attrs["gen_ai.provider.name"]
    ('swedencentral', 'azure.ai.openai')
    """
    if sc.CLOUD_REGION in attrs or "aws.region" in attrs:
        return
    host = attrs.get(sc.SERVER_ADDRESS)
    region = regions(host)
    if region is not None:
        attrs[sc.CLOUD_REGION] = region
    if isinstance(host, str) and (attrs.get(sc.GEN_AI_PROVIDER_NAME) or attrs.get("gen_ai.system")) == "openai":
        provider = provider_for_host(host.lower(), "openai")
        if provider != "openai":
            attrs[sc.GEN_AI_PROVIDER_NAME] = provider


def loads(data: bytes | str) -> Any:
    """Parse JSON fast (orjson); what orjson refuses but Python reads (NaN, Infinity, integers
    beyond 64 bits, lone surrogates) is parsed again by :mod:`json`, so validation can name
    the bad value rather than calling the whole record malformed.

    >>> loads(b'{"duration": NaN}')
    {'duration': nan}
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


# --- OTLP protobuf ------------------------------------------------------------------------
def _pb() -> Any:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    return trace_service_pb2


def _any_value(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, which)


def _is_inference(attrs: dict[str, Any]) -> bool:
    return (sc.GEN_AI_PROVIDER_NAME in attrs or "gen_ai.system" in attrs
            or sc.GEN_AI_OPERATION_NAME in attrs)


def decode_otlp_proto(payload: bytes, regions: RegionMap | None = None) -> list[Decoded]:
    """Decode an ``ExportTraceServiceRequest``; raises InvalidEvent if unparseable."""
    from google.protobuf.message import DecodeError

    req = _pb().ExportTraceServiceRequest()
    try:
        req.ParseFromString(payload)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise InvalidEvent("malformed_protobuf", str(exc)[:200]) from None
    out: list[Decoded] = []
    for rs in req.resource_spans:
        rattrs = {kv.key: _any_value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for span in ss.spans:
                attrs = dict(rattrs)
                for kv in span.attributes:
                    attrs[kv.key] = _any_value(kv.value)
                out.append(_span_event(attrs, span.start_time_unix_nano, span.end_time_unix_nano, regions))
    if not out and payload:
        # A non-empty payload that parsed into nothing is almost always not OTLP at all.
        raise InvalidEvent("malformed_protobuf", "no spans in payload")
    return out


def _span_event(attrs: dict[str, Any], start_ns: int, end_ns: int, regions: RegionMap | None = None) -> Decoded:
    if not _is_inference(attrs):
        return None
    if regions is not None:
        fill_region(attrs, regions)
    op = attrs.get(sc.GEN_AI_OPERATION_NAME)
    if op is not None and not isinstance(op, str):
        return InvalidEvent("bad_value", f"{sc.GEN_AI_OPERATION_NAME}={op!r}"[:200])
    if op is not None and op not in sc.INFERENCE_OPERATIONS:
        return None
    if not start_ns or end_ns < start_ns:
        return InvalidEvent("bad_timestamp", f"start={start_ns} end={end_ns}")
    try:
        return Event.from_attributes(attrs, start_ns / _NS, (end_ns - start_ns) / _NS)
    except InvalidEvent as exc:
        return exc


def _add_attributes(repeated: Any, attrs: dict[str, Any]) -> None:
    # Filled in place: building KeyValue temporaries and extending copies them (2-3 x slower).
    for k, v in attrs.items():
        kv = repeated.add()
        kv.key = k
        av = kv.value
        if v.__class__ is bool:
            av.bool_value = v
        elif v.__class__ is int:
            av.int_value = v
        elif v.__class__ is float:
            av.double_value = v
        elif isinstance(v, (list, tuple)):
            values = av.array_value.values
            for x in v:
                values.add().string_value = str(x)
        else:
            av.string_value = str(v)


def span_attributes(ev: Event) -> dict[str, Any]:
    """The span attributes of an event (the flat form minus ``start`` and ``duration``)."""
    flat = ev.to_flat()
    del flat["start"], flat["duration"]
    return flat


def encode_otlp_proto(events: Iterable[Event], service_name: str = "brownout-hooks") -> bytes:
    """Encode events as one ``ExportTraceServiceRequest`` (one CLIENT span per event)."""
    from opentelemetry.proto.trace.v1 import trace_pb2

    pb = _pb()
    req = pb.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    _add_attributes(rs.resource.attributes, {"service.name": service_name})
    ss = rs.scope_spans.add()
    ss.scope.name = "brownout.hooks"
    for ev in events:
        span = ss.spans.add()
        ids = os.urandom(24)
        span.trace_id = ids[:16]
        span.span_id = ids[16:]
        span.name = f"{ev.operation} {ev.key.model}"
        span.kind = trace_pb2.Span.SPAN_KIND_CLIENT
        start_ns = int(ev.start * _NS)
        span.start_time_unix_nano = start_ns
        span.end_time_unix_nano = start_ns + int(ev.duration * _NS)
        _add_attributes(span.attributes, span_attributes(ev))
        if ev.error_type:
            span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
    data: bytes = req.SerializeToString()
    return data


# --- OTLP JSON ----------------------------------------------------------------------------
def _json_value(v: dict[str, Any]) -> Any:
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v:
        return [_json_value(x) for x in v["arrayValue"].get("values", [])]
    return None


def decode_otlp_json(obj: Any, regions: RegionMap | None = None) -> list[Decoded]:
    """Decode OTLP JSON (``{"resourceSpans": [...]}``) already parsed into Python objects."""
    if not isinstance(obj, dict) or "resourceSpans" not in obj:
        raise InvalidEvent("malformed_json", "expected an object with resourceSpans")
    out: list[Decoded] = []
    for rs in obj["resourceSpans"]:
        rattrs = {kv["key"]: _json_value(kv.get("value", {})) for kv in rs.get("resource", {}).get("attributes", [])}
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                attrs = dict(rattrs)
                for kv in span.get("attributes", []):
                    attrs[kv["key"]] = _json_value(kv.get("value", {}))
                out.append(_span_event(attrs, int(span.get("startTimeUnixNano", 0)),
                                       int(span.get("endTimeUnixNano", 0)), regions))
    return out


def encode_otlp_json(events: Sequence[Event]) -> bytes:
    """Encode events as OTLP JSON (the OTel Collector's ``otlp_json``)."""
    from google.protobuf.json_format import MessageToDict

    req = _pb().ExportTraceServiceRequest()
    req.ParseFromString(encode_otlp_proto(events))
    return json.dumps(MessageToDict(req)).encode()


def encode_flat(events: Iterable[Event]) -> bytes:
    """Encode events as flat JSON lines (validated events: every number is finite)."""
    dumps = orjson.dumps
    return b"\n".join(dumps(e.to_flat()) for e in events)


__all__ = ["decode", "sniff", "payload_kind", "fill_region", "decode_object", "decode_otlp_proto", "decode_otlp_json",
           "encode_otlp_proto", "encode_otlp_json", "encode_flat", "span_attributes", "Decoded"]
