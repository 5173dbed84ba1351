"""A million hostile inputs through ``codec.decode`` and ``replay.read_events``: zero crashes.

Cheap generators (``random``, not hypothesis, so a million cases take a minute or two):

- ``bytes``: random bytes with a random content type (or none, so the decoder sniffs);
- ``mutated``: valid OTLP protobuf, OTLP JSON and flat JSON with bit flips, byte overwrites,
  cuts, insertions and truncations;
- ``flat``: flat JSON objects built from the event attributes with hostile values (NaN, Infinity,
  huge integers, negative numbers, wrong types, nested lists, lone surrogates, missing keys);
- ``proto``: OTLP protobuf spans with hostile typed attributes and random timestamps;
- ``replay``: text lines (any of the above, decoded to text) through the replay reader, 64 a file.

A crash is an exception out of a decoder, or an item that is not None, an InvalidEvent, or an
Event whose fields are finite, non-negative and bounded. Exits 1 on any crash, with examples.

Usage: ``python bench/fuzz.py [--cases N] [--seed S] [--json]``

>>> r = run(2000, seed=1)
>>> r["crashes"], r["cases"]
(0, 2000)
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import random
import sys
import time
from collections import Counter
from typing import Any, Callable

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from brownout import codec
from brownout import semconv as sc
from brownout.model import MAX_NAME, MAX_SECONDS, MAX_TOKENS, Event, InvalidEvent, Key
from brownout.replay import ReplayStats, read_events

CONTENT_TYPES = (None, codec.CONTENT_OTLP_PROTO, codec.CONTENT_OTLP_JSON, codec.CONTENT_FLAT_JSON, "text/plain")
NAMES = (sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_PROVIDER_NAME, sc.CLOUD_REGION, sc.GEN_AI_REQUEST_MODEL,
         sc.GEN_AI_RESPONSE_MODEL, sc.GEN_AI_REQUEST_STREAM, sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
         sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_OUTPUT_TOKENS, sc.GEN_AI_RESPONSE_FINISH_REASONS,
         sc.ERROR_TYPE, sc.HTTP_RESPONSE_STATUS_CODE, sc.SERVER_ADDRESS, sc.SERVER_PORT, sc.BROWNOUT_ITL_P50,
         sc.BROWNOUT_ITL_P95, sc.BROWNOUT_ITL_MAX, sc.BROWNOUT_DEADLINE, *sc.LEGACY_ATTRIBUTES)
HOSTILE = (None, True, False, 0, -1, 1, 2**63, -(2**63), 10**12, 10**30, 10**400, 0.0, -0.0, -1.0, 5e-324, 1e-320,
           86400.0, 86400.5, 604800.0, 1e12, 1.7e308, math.nan, math.inf, -math.inf, "", "x", "nan", "inf",
           "-1", "1e400", "true", "429", "503", "chat", "\ud800", "a/b", "é" * 3, "x" * 300, [], [1, "a"], [[[]]],
           {"a": 1}, [math.nan], ["stop", None])
KEY = Key("openai", "eastus", "gpt-4o")
REASONS = frozenset({"malformed_protobuf", "malformed_json", "unknown_content_type", "not_an_object",
                     "missing_attribute", "bad_value", "bad_timestamp", "bad_duration", "empty_value"})


def _valid_events() -> list[Event]:
    return [Event(KEY, 1_767_225_600.0 + i, 1.5, ttft=0.3, input_tokens=100, output_tokens=50, stream=True,
                  finish_reasons=("stop",), error_type="503" if i == 1 else None, server_port=443,
                  itl_p50=0.02, itl_p95=0.05, itl_max=0.2, deadline=10.0) for i in range(3)]


def _fixed_ids(payload: bytes) -> bytes:
    """The same payload with fixed trace and span ids, so a seed reproduces a run."""
    req = trace_service_pb2.ExportTraceServiceRequest.FromString(payload)
    for i, span in enumerate(req.resource_spans[0].scope_spans[0].spans):
        span.trace_id, span.span_id = bytes([i + 1]) * 16, bytes([i + 1]) * 8
    return req.SerializeToString()


SEEDS = {codec.CONTENT_OTLP_PROTO: _fixed_ids(codec.encode_otlp_proto(_valid_events())),
         codec.CONTENT_OTLP_JSON: codec.encode_otlp_json(_valid_events()),
         codec.CONTENT_FLAT_JSON: codec.encode_flat(_valid_events())}


class Crash(AssertionError):
    """A decoder raised, or returned something it must not."""


def check(item: Any) -> None:
    """Raise :class:`Crash` unless ``item`` is None, an InvalidEvent or a valid, bounded Event."""
    if item is None:
        return
    if isinstance(item, InvalidEvent):
        if item.reason not in REASONS:
            raise Crash(f"unknown reason {item.reason!r}")
        return
    if not isinstance(item, Event):
        raise Crash(f"decoded a {type(item).__name__}")
    ev = item
    for part in (ev.key.provider, ev.key.region, ev.key.model):
        if not isinstance(part, str) or not part:
            raise Crash(f"bad key {ev.key!r}")
        part.encode()
        if len(part) > MAX_NAME:
            raise Crash(f"a {len(part)}-character name")
    if Key.parse(str(ev.key)) != ev.key:
        raise Crash(f"{ev.key!r} does not survive its record key {str(ev.key)!r}")
    if not (math.isfinite(ev.start) and ev.start >= 0 and math.isfinite(ev.duration)
            and 0 <= ev.duration <= MAX_SECONDS):
        raise Crash(f"bad start/duration {ev.start!r} {ev.duration!r}")
    for v in (ev.ttft, ev.itl_p50, ev.itl_p95, ev.itl_max, ev.deadline):
        if v is not None and not (type(v) is float and math.isfinite(v) and 0 <= v <= MAX_SECONDS):
            raise Crash(f"bad seconds value {v!r}")
    for v in (ev.input_tokens, ev.output_tokens):
        if v is not None and not (type(v) is int and 0 <= v <= MAX_TOKENS):
            raise Crash(f"bad token count {v!r}")
    tps = ev.output_tokens_per_second
    if tps is not None and not math.isfinite(tps):
        raise Crash(f"infinite tokens/s {ev!r}")
    json.dumps(ev.to_flat(), allow_nan=False)


# --- generators: each returns (payload bytes, content type) -----------------------------------------
def gen_bytes(rnd: random.Random) -> tuple[bytes, str | None]:
    return rnd.randbytes(rnd.randrange(0, 200)), rnd.choice(CONTENT_TYPES)


def mutate(rnd: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rnd.randrange(1, 7)):
        if not buf:
            break
        i = rnd.randrange(len(buf))
        op = rnd.randrange(5)
        if op == 0:
            buf[i] ^= 1 << rnd.randrange(8)
        elif op == 1:
            buf[i] = rnd.choice((0x00, 0xFF, 0x7F, 0x80, 0x0A, 0x22, 0x7B, 0x5B, 0x2D, 0x30))
        elif op == 2:
            del buf[i:i + rnd.randrange(1, 17)]
        elif op == 3:
            buf[i:i] = rnd.randbytes(rnd.randrange(1, 9))
        else:
            del buf[i:]
    return bytes(buf)


def gen_mutated(rnd: random.Random) -> tuple[bytes, str | None]:
    ctype = rnd.choice(tuple(SEEDS))
    return mutate(rnd, SEEDS[ctype]), ctype if rnd.random() < 0.8 else None


def _hostile_attrs(rnd: random.Random) -> dict[str, Any]:
    attrs: dict[str, Any] = {sc.GEN_AI_PROVIDER_NAME: "openai", sc.CLOUD_REGION: "eastus",
                             sc.GEN_AI_REQUEST_MODEL: "gpt-4o"}
    for _ in range(rnd.randrange(1, 6)):
        attrs[rnd.choice(NAMES)] = rnd.choice(HOSTILE)
    if rnd.random() < 0.3:
        attrs.pop(rnd.choice(list(attrs)), None)
    return attrs


def gen_flat(rnd: random.Random) -> tuple[bytes, str | None]:
    obj = _hostile_attrs(rnd)
    obj["start"] = rnd.choice((1_767_225_600.0, rnd.uniform(-1e12, 1e12), *HOSTILE))
    obj["duration"] = rnd.choice((1.0, rnd.uniform(-10, 1e6), *HOSTILE))
    text = json.dumps(obj).encode("utf-8", "surrogatepass")
    return text, rnd.choice((codec.CONTENT_FLAT_JSON, None))


def _any_value(v: Any) -> common_pb2.AnyValue:
    av = common_pb2.AnyValue()
    if isinstance(v, bool):
        av.bool_value = v
    elif isinstance(v, int):
        if -(2**63) <= v < 2**63:
            av.int_value = v
        else:
            av.string_value = str(v)
    elif isinstance(v, float):
        av.double_value = v
    elif isinstance(v, str):
        av.string_value = v.encode("utf-8", "replace").decode()
    elif isinstance(v, list):
        av.array_value.values.extend(_any_value(x) for x in v)
    elif isinstance(v, dict):
        av.kvlist_value.values.extend(common_pb2.KeyValue(key=k, value=_any_value(x)) for k, x in v.items())
    return av


def gen_proto(rnd: random.Random) -> tuple[bytes, str | None]:
    req = trace_service_pb2.ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add()
    for _ in range(rnd.randrange(1, 4)):
        span = spans.spans.add()
        start = rnd.choice((1_767_225_600 * 10**9, 0, 1, 2**64 - 1, rnd.randrange(2**64)))
        span.start_time_unix_nano = start
        span.end_time_unix_nano = rnd.choice((min(start + 10**9, 2**64 - 1), start, max(0, start - 1), rnd.randrange(2**64)))
        for k, v in _hostile_attrs(rnd).items():
            span.attributes.append(common_pb2.KeyValue(key=k, value=_any_value(v)))
    return req.SerializeToString(), codec.CONTENT_OTLP_PROTO


GENERATORS: dict[str, Callable[[random.Random], tuple[bytes, str | None]]] = {
    "bytes": gen_bytes, "mutated": gen_mutated, "flat": gen_flat, "proto": gen_proto}
#: Share of cases per generator; the rest of each 100 go to the replay reader.
WEIGHTS = {"bytes": 20, "mutated": 30, "flat": 15, "proto": 10, "replay": 25}
LINES_PER_FILE = 64


def _line(rnd: random.Random) -> str:
    name = rnd.choice(("bytes", "mutated", "flat"))
    payload, _ = GENERATORS[name](rnd)
    return payload.decode("utf-8", "replace").replace("\n", " ").replace("\r", " ")


def run(cases: int, seed: int = 0, max_examples: int = 5, progress: bool = False) -> dict[str, Any]:
    """Run ``cases`` generated cases; returns counts, rates and the first crash examples."""
    rnd = random.Random(seed)
    logging.getLogger("brownout.replay").setLevel(logging.ERROR)  # it warns once per bad line, by design
    plan = [name for name, w in WEIGHTS.items() for _ in range(w)]
    done: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    examples: list[dict[str, str]] = []
    crashes = 0
    t0 = time.perf_counter()
    pending_lines: list[str] = []

    def crashed(kind: str, payload: Any, exc: BaseException) -> None:
        nonlocal crashes
        crashes += 1
        if len(examples) < max_examples:
            examples.append({"generator": kind, "payload": repr(payload)[:300],
                             "error": f"{type(exc).__name__}: {exc}"[:300]})

    def flush_replay() -> None:
        text = "\n".join(pending_lines)
        try:
            stats = ReplayStats()
            for ev in read_events(io.StringIO(text), stats):
                check(ev)
                outcomes["replay:event"] += 1
            outcomes["replay:invalid"] += stats.invalid
            outcomes["replay:skipped"] += stats.skipped
        except Exception as exc:  # noqa: BLE001 - every exception is a finding
            crashed("replay", text, exc)
        pending_lines.clear()

    for i in range(cases):
        kind = plan[i % len(plan)] if i % 1000 else rnd.choice(plan)
        done[kind] += 1
        if kind == "replay":
            pending_lines.append(_line(rnd))
            if len(pending_lines) >= LINES_PER_FILE:
                flush_replay()
            continue
        payload, ctype = GENERATORS[kind](rnd)
        try:
            items = codec.decode(payload, ctype)
            if not isinstance(items, list):
                raise Crash(f"decode returned {type(items).__name__}")
            for item in items:
                check(item)
                outcomes["event" if isinstance(item, Event) else "skipped" if item is None
                         else f"invalid:{item.reason}"] += 1
        except Exception as exc:  # noqa: BLE001 - every exception is a finding
            crashed(kind, (payload, ctype), exc)
        if progress and i and i % 100_000 == 0:
            print(f"  {i:,} cases, {crashes} crashes, {i / (time.perf_counter() - t0):,.0f} cases/s",
                  file=sys.stderr)
    if pending_lines:
        flush_replay()
    elapsed = time.perf_counter() - t0
    return {"cases": cases, "seed": seed, "seconds": round(elapsed, 2),
            "cases_per_second": round(cases / elapsed) if elapsed else None, "crashes": crashes,
            "by_generator": dict(done), "outcomes": dict(outcomes.most_common()), "examples": examples}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = ap.parse_args(argv)
    if args.cases < 1:
        ap.error("--cases must be at least 1")
    result = run(args.cases, args.seed, progress=not args.json)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['cases']:,} cases in {result['seconds']} s: {result['cases_per_second']:,} cases/s, "
              f"{result['crashes']} crashes")
        print("  by generator: " + ", ".join(f"{k} {v:,}" for k, v in result["by_generator"].items()))
        print("  outcomes:     " + ", ".join(f"{k} {v:,}" for k, v in result["outcomes"].items()))
        for ex in result["examples"]:
            print(f"  CRASH [{ex['generator']}] {ex['error']}\n      payload: {ex['payload']}")
    return 1 if result["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
