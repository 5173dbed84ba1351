"""``brownout demo``: the whole pipeline in one process on the in-memory transport.

Seven provider-region-model keys send traffic calibrated on real measurements; at 09:12
on a Tuesday one region of one provider browns out (a third of its requests fail with
503/429 and its time to first token triples) while its sibling region stays healthy.
The collector consumes OTLP events from the in-memory events topic, raises the alerts,
opens that key's breaker on the control topic, and a router's ``BreakerBoard`` following
that topic moves traffic away; after the incident, half-open probes close the breaker.
Time is compressed (``--speed``) so the story takes well under a minute.
"""

from __future__ import annotations

import asyncio
import collections
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from brownout import codec
from brownout import semconv as sc
from brownout.collector.service import Collector
from brownout.model import Decision, Event, Key
from brownout.pipeline import Pipeline
from brownout.sim import Incident, Simulator, Traffic
from brownout.transport import MemoryTransport, default_topics

#: Tuesday 2026-11-24 09:00:00 UTC: the demo's incident starts at 09:12.
DEMO_EPOCH = 1_795_510_800.0

INCIDENT_KEY = Key("fireworks", "us-east-1", "llama-2-70b")
DEMO_TRAFFIC = (
    Traffic(Key("fireworks", "us-east-1", "llama-2-70b"), "fireworks-70b", rate=6.0),
    Traffic(Key("fireworks", "us-west-2", "llama-2-70b"), "fireworks-70b", rate=6.0),
    Traffic(Key("together", "us-east-1", "llama-2-70b"), "together-70b", rate=5.0),
    Traffic(Key("groq", "us-east-1", "llama-2-70b"), "groq-70b", rate=5.0),
    Traffic(Key("aws.bedrock", "us-west-2", "llama-2-70b"), "bedrock-70b", rate=4.0),
    Traffic(Key("anyscale", "us-west-2", "llama-2-13b"), "anyscale-13b", rate=5.0),
    Traffic(Key("together", "us-east-1", "llama-2-7b"), "together-7b", rate=4.0),
)


@dataclass
class Timeline:
    """Seconds after :data:`DEMO_EPOCH`."""

    warmup: float = 600.0
    incident_start: float = 720.0
    incident_end: float = 960.0
    end: float = 1380.0
    step: float = 1.0


@dataclass
class DemoResult:
    decisions: list[Decision] = field(default_factory=list)
    events: int = 0
    dead_letters: int = 0
    routed: collections.Counter[str] = field(default_factory=collections.Counter)
    recorded: list[Event] = field(default_factory=list)  # every event sent, for the incident report

    def first(self, kind: str, state: str, key: Key = INCIDENT_KEY, after: float = 0.0) -> Decision | None:
        for d in self.decisions:
            if d.kind == kind and d.state == state and d.key == key and d.time >= after:
                return d
        return None

    def check(self, tl: Timeline) -> list[str]:
        """What the demo promises; an empty list means every promise held."""
        t0 = DEMO_EPOCH + tl.incident_start
        problems = []
        alert = self.first("alert", "firing", after=t0)
        opened = self.first("breaker", "open", after=t0)
        closed = self.first("breaker", "closed", after=opened.time) if opened else None
        if alert is None:
            problems.append(f"no alert fired for {INCIDENT_KEY}")
        if opened is None:
            problems.append(f"the breaker of {INCIDENT_KEY} never opened")
        elif closed is None:
            problems.append(f"the breaker of {INCIDENT_KEY} never closed after the incident")
        others = [d for d in self.decisions if d.key != INCIDENT_KEY and d.state in ("firing", "open")]
        if others:
            problems.append("false alarms on healthy keys: " + ", ".join(f"{d.rule} {d.key}" for d in others))
        return problems


class View:
    """A per-key table redrawn in place on a terminal; plain lines otherwise."""

    COLS = ("key", "req/s", "errors", "TTFT p50", "baseline", "p95/token", "tok/s", "breaker", "alerts")

    def __init__(self, out: TextIO, live: bool) -> None:
        self.out = out
        self.live = live
        self._height = 0
        self.log: collections.deque[str] = collections.deque()

    def note(self, line: str) -> None:
        if self.live:
            self.log.append(line)
        else:
            print(line, file=self.out, flush=True)

    def table(self, status: dict[Key, Any], breakers: dict[Key, str], keys: list[Key]) -> list[str]:
        rows = [self.COLS]
        for k in keys:
            s = status.get(k)

            def g(name: str, s: Any = s) -> Any:
                return getattr(s, name, None)  # None for a key with no status yet

            rate = g("requests")
            rows.append((
                str(k), "-" if rate is None else f"{rate / 60:.1f}", _pct(g("error_rate")),
                _ms(g("ttft_p50")), "warming" if g("ttft_p50_baseline") is None else _ms(g("ttft_p50_baseline")),
                _ms(g("latency_p95")), "-" if g("tokens_per_s") is None else f"{g('tokens_per_s'):.0f}",
                breakers.get(k, "closed"), ",".join(g("firing") or ()) or "-",
            ))
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.COLS))]
        return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]

    def frame(self, header: str, lines: list[str]) -> None:
        if not self.live:
            return
        buf = []
        if self._height:
            buf.append(f"\x1b[{self._height}F\x1b[J")
        while self.log:
            buf.append(self.log.popleft() + "\n")
        width = shutil.get_terminal_size((120, 20)).columns
        body = [header] + lines
        buf.extend(line[:width] + "\n" for line in body)
        self._height = len(body)
        self.out.write("".join(buf))
        self.out.flush()


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{1000 * x:.0f}ms"


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(t))


def describe(d: Decision) -> str:
    what = f"{d.kind:7s} {d.rule:16s} {str(d.key):36s} -> {d.state}"
    if d.observed is not None:
        what += f"  observed={d.observed:.3g}"
    if d.baseline is not None:
        what += f" baseline={d.baseline:.3g}"
    if d.reason:
        what += f" ({d.reason})"
    return f"{_clock(d.time)}  {what}"


async def run_demo(speed: float = 25.0, seed: int = 7, out: TextIO = sys.stdout, live: bool | None = None,
                   timeline: Timeline | None = None, rules: Any = None, *, board: Any = None,
                   history: Any = None) -> DemoResult:
    """Run the demo; returns what was decided. ``speed`` is simulated seconds per second.

    ``board`` (a :class:`~brownout.exporters.prometheus.StatusBoard`) and ``history`` (a
    :class:`~brownout.status.HistoryRecorder`) are fed as the collector feeds them, for a status page.
    """
    tl = timeline or Timeline()
    live = out.isatty() if live is None else live
    view = View(out, live)
    transport = MemoryTransport()
    await transport.create_topics(default_topics(partitions=1))
    incident = Incident(INCIDENT_KEY, DEMO_EPOCH + tl.incident_start, DEMO_EPOCH + tl.incident_end,
                        error_rate=0.35, error_types=("503", "429"), ttft_factor=3.0, name="brownout")
    sim = Simulator(DEMO_TRAFFIC, [incident], seed=seed)
    now = [DEMO_EPOCH]
    result = DemoResult()

    def on_decision(d: Decision) -> None:
        result.decisions.append(d)
        if d.state != "pending":
            view.note(describe(d))

    collector = Collector(transport, Pipeline(rules, seed=seed), clock=lambda: now[0],
                          on_decision=[on_decision], batch_size=10_000, status_board=board, status_interval=0.0,
                          history=history)
    from brownout.breakers import AsyncBreakerBoard

    router = AsyncBreakerBoard(transport, topic=sc.TOPIC_CONTROL, clock=lambda: now[0], registry=None,
                               poll_timeout=0.0)
    producer = transport.producer()
    await producer.start()
    await collector.start()
    await router.start()
    keys = [t.key for t in DEMO_TRAFFIC]
    print(f"brownout demo: {len(keys)} keys, traffic calibrated on llmperf + Azure traces; "
          f"incident on {INCIDENT_KEY} at {_clock(incident.start)}-{_clock(incident.end)} UTC; speed {speed:g}x",
          file=out, flush=True)
    print(f"warming baselines on {tl.warmup / 60:.0f} simulated minutes of healthy traffic...", file=out, flush=True)
    t = DEMO_EPOCH
    end = DEMO_EPOCH + tl.end
    wall0 = time.monotonic()
    live_from = DEMO_EPOCH + tl.warmup
    while t < end:
        nxt = t + tl.step
        events = sim.events(t, nxt)
        by_key: dict[Key, list[Event]] = collections.defaultdict(list)
        for e in events:
            by_key[e.key].append(e)
            if e.key == INCIDENT_KEY and incident.start <= e.start < incident.end:
                # what a router following the board does with a request for the degraded key
                result.routed["kept" if router.allow(e.key) else "moved"] += 1
        for k, evs in by_key.items():
            await producer.send(sc.TOPIC_EVENTS, codec.encode_otlp_proto(evs), key=str(k).encode(),
                                headers=((sc.HEADER_CONTENT_TYPE, sc.CONTENT_OTLP_PROTO.encode()),))
        result.events += len(events)
        result.recorded.extend(events)
        now[0] = nxt
        await collector.poll_once(timeout=0.0)
        await asyncio.sleep(0)  # let the board's follower read the control topic
        t = nxt
        if t >= live_from:
            sim_elapsed = t - live_from
            behind = sim_elapsed / speed - (time.monotonic() - wall0)
            if behind > 0:
                await asyncio.sleep(behind)
            done = (t - DEMO_EPOCH) / tl.end
            header = (f"{_clock(t)} UTC  [{'#' * int(30 * done):30s}] {100 * done:3.0f}%  "
                      f"events {result.events:,}  dead letters {collector.counts['dead_letters']}")
            view.frame(header, view.table(collector.pipeline.status(), collector.pipeline.breaker_states(), keys))
        else:
            wall0 = time.monotonic()
    await router.stop()
    await collector.stop()
    result.dead_letters = collector.counts["dead_letters"]
    status = collector.pipeline.status()
    if not live:
        for line in view.table(status, collector.pipeline.breaker_states(), keys):
            print(line, file=out)
    return result


def write_report(result: DemoResult, out_dir: str, rules: Any = None, out: TextIO = sys.stdout,
                 png: bool | None = None, seed: int = 7) -> list[Any]:
    """The incident report of the demo's events (``brownout report`` on them), and where it went."""
    from brownout.status.report import write_reports

    written = write_reports(result.recorded, out_dir, rules, seed=seed, png=png, source="brownout demo")
    for w in written:
        pngs = f" (+ {len(w.pngs)} PNG charts)" if w.pngs else ""
        print(f"  incident report: {w.html.resolve()}{pngs}", file=out)
    if not written:
        print(f"  no incident to report; index at {(Path(out_dir) / 'index.html').resolve()}", file=out)
    return written


def summarize(result: DemoResult, tl: Timeline, out: TextIO = sys.stdout) -> int:
    """Print what happened and when; return the exit code."""
    t0 = DEMO_EPOCH + tl.incident_start
    print("", file=out)
    for label, kind, state, after in (("first alert firing", "alert", "firing", t0),
                                      ("breaker open", "breaker", "open", t0),
                                      ("breaker half-open", "breaker", "half_open", t0),
                                      ("breaker closed", "breaker", "closed", t0)):
        d = result.first(kind, state, after=after)
        when = "never" if d is None else f"{_clock(d.time)} UTC ({d.time - t0:+.0f} s after the incident began)"
        print(f"  {label:20s} {when}  {d.rule if d else ''}", file=out)
    total = sum(result.routed.values())
    if total:
        print(f"  a router following the control topic moved {result.routed['moved']:,} of the {total:,} requests "
              f"({100 * result.routed['moved'] / total:.0f} %) sent to {INCIDENT_KEY} during the incident "
              f"to its healthy siblings", file=out)
    problems = result.check(tl)
    for p in problems:
        print(f"  PROBLEM: {p}", file=out)
    print(f"  {result.events:,} events judged; {result.dead_letters} dead letters", file=out)
    return 1 if problems else 0
