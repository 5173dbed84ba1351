"""What every decoded item must look like, whatever the input: the fuzz suite's oracle."""

from __future__ import annotations

import json
import math

from brownout.model import MAX_NAME, MAX_SECONDS, MAX_TOKENS, Event, InvalidEvent, Key

#: Every reason a decoder may give; a new one must be added here on purpose (it is a metric label).
REASONS = frozenset({"malformed_protobuf", "malformed_json", "unknown_content_type", "not_an_object",
                     "missing_attribute", "bad_value", "bad_timestamp", "bad_duration", "empty_value"})


def check_item(item: object) -> None:
    """Assert ``item`` is None, an InvalidEvent with a known reason, or a fully valid Event."""
    if item is None:
        return
    if isinstance(item, InvalidEvent):
        assert item.reason in REASONS, item.reason
        assert isinstance(item.detail, str)
        return
    assert isinstance(item, Event), type(item)
    check_event(item)


def check_event(ev: Event) -> None:
    for part in (ev.key.provider, ev.key.region, ev.key.model):
        assert isinstance(part, str) and part
        part.encode()  # every writer of the key (Kafka record keys, labels) needs UTF-8
        assert len(part) <= MAX_NAME
    assert Key.parse(str(ev.key)) == ev.key  # the control topic's record key names one key only
    assert isinstance(ev.start, float) and math.isfinite(ev.start) and ev.start >= 0
    assert isinstance(ev.duration, float) and math.isfinite(ev.duration) and 0 <= ev.duration <= MAX_SECONDS
    for name in ("ttft", "itl_p50", "itl_p95", "itl_max", "deadline"):
        v = getattr(ev, name)
        assert v is None or (isinstance(v, float) and math.isfinite(v) and 0 <= v <= MAX_SECONDS), (name, v)
    for name in ("input_tokens", "output_tokens"):
        v = getattr(ev, name)
        assert v is None or (type(v) is int and 0 <= v <= MAX_TOKENS), (name, v)
    assert ev.status_code is None or (type(ev.status_code) is int and 0 <= ev.status_code <= 999)
    assert ev.server_port is None or (type(ev.server_port) is int and 0 <= ev.server_port <= 65535)
    assert ev.stream is None or isinstance(ev.stream, bool)
    assert all(isinstance(r, str) for r in ev.finish_reasons)
    assert isinstance(ev.operation, str)
    assert ev.validate() is ev
    tps = ev.output_tokens_per_second
    assert tps is None or (math.isfinite(tps) and tps > 0)
    # The flat form is strict JSON and reads back as the same event.
    flat = json.dumps(ev.to_flat(), allow_nan=False)
    assert Event.from_flat(json.loads(flat)) == ev
