"""Deterministic replay: events from a file in, one JSON decision per line out.

The input is flat JSON lines ordered by ``start`` (DESIGN's replay contract) or OTLP JSON
(one ``{"resourceSpans": ...}`` object per line, as the OTel Collector's file exporter
writes). Event time is the clock: as events are read the pipeline advances to the newest
``start`` (once per second of event time), and at the end of the file to the last event's end plus the longest window,
so incidents near the end still resolve. The same file and rules print the same lines.

>>> import io, json
>>> def line(t, region, error=None):
...     return json.dumps({"start": t, "duration": 0.1, "gen_ai.provider.name": "openai", "cloud.region": region,
...                        "gen_ai.request.model": "gpt-4o", "error.type": error})
>>> lines = [line(1000.0 + i / 2, region, "503" if region == "eastus" and i >= 1200 else None)
...          for i in range(1400) for region in ("eastus", "westus")]
>>> out = io.StringIO()
>>> stats = replay(io.StringIO(chr(10).join(lines)), out)
>>> [(d["kind"], d["state"]) for d in map(json.loads, out.getvalue().splitlines())][:4]
[('alert', 'firing'), ('breaker', 'open'), ('breaker', 'half_open'), ('breaker', 'open')]
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import IO, Any, Iterable, Iterator

import orjson

from brownout import codec
from brownout.endpoints import RegionMap
from brownout.model import Event, InvalidEvent
from brownout.semconv import CLOUD_REGION
from brownout.pipeline import Pipeline

log = logging.getLogger("brownout.replay")

#: Events starting more than this after the real time now are invalid (bad timestamps).
MAX_FUTURE = 86_400.0
#: After the last event, advance this far past its end so open windows are judged.
DRAIN_SECONDS = 3600.0


@dataclass
class ReplayStats:
    events: int = 0
    invalid: int = 0
    skipped: int = 0
    out_of_order: int = 0
    decisions: int = 0


def read_events(stream: IO[str] | IO[bytes], stats: ReplayStats,
                regions: RegionMap | None = None) -> Iterator[Event]:
    """Events from flat JSON or OTLP JSON lines (text or bytes); invalid lines are logged and
    counted. ``regions`` names the region of an event that has none (as the collector does)."""
    regions = regions if regions is not None else RegionMap()
    from_flat = Event.from_flat
    lines: Iterable[Any] = stream  # str or bytes lines; codec.loads takes both
    for lineno, line in enumerate(lines, 1):
        try:
            obj = orjson.loads(line)  # surrounding whitespace is JSON's own
        except orjson.JSONDecodeError:
            if not line.strip():
                continue
            try:  # what orjson refuses but Python reads (NaN, huge integers): validation names it
                obj = codec.loads(line)
            except (ValueError, RecursionError) as exc:
                stats.invalid += 1
                log.warning("line %d: not JSON: %s", lineno, exc)
                continue
        try:
            if obj.__class__ is dict and CLOUD_REGION in obj:  # the common case
                yield from_flat(obj)
                continue
            items: list[Any] = codec.decode_object(obj, regions)
        except InvalidEvent as exc:
            items = [exc]
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
            items = [InvalidEvent("malformed_json", f"{type(exc).__name__}: {exc}"[:200])]
        for item in items:
            if item is None:
                stats.skipped += 1
            elif isinstance(item, InvalidEvent):
                stats.invalid += 1
                log.warning("line %d: %s", lineno, item)
            else:
                yield item


def replay(stream: IO[str] | IO[bytes], out: IO[str], rules: Any = None, *, seed: int = 0,
           drain: float = DRAIN_SECONDS, regions: RegionMap | None = None) -> ReplayStats:
    """Run the pipeline over ``stream`` and write decisions to ``out`` as JSON lines."""
    pipeline = Pipeline(rules, seed=seed)
    stats = ReplayStats()
    clock = float("-inf")
    last_end = float("-inf")
    judged = float("-inf")

    def emit(now: float, final: bool = False) -> None:
        for d in pipeline.advance(now, final=final):
            out.write(json.dumps(d.to_json(), separators=(", ", ": ")) + "\n")
            stats.decisions += 1

    future = time.time() + MAX_FUTURE
    observe = pipeline.observe
    for ev in read_events(stream, stats, regions):
        start = ev.start
        if start > future:  # one line from the future would drag the clock past every other event
            stats.invalid += 1
            log.warning("skipping an event that starts in the future (start=%s)", start)
            continue
        if start < clock:
            stats.out_of_order += 1
        else:
            clock = start
        stats.events += 1
        observe(ev)
        end = start + ev.duration
        if end > last_end:
            last_end = end
        if clock - judged >= 1.0:  # decisions are made per step; judging every event is waste
            emit(clock)
            judged = clock
    if stats.events:
        emit(last_end + drain, final=True)
    return stats
