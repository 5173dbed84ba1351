"""Incident reports: one self-contained HTML file (and PNG charts) per incident, from the events.

The per-minute series are recomputed from the events themselves (volume, errors by
``error.type``, TTFT p50/p95, median output tokens/s, p95 latency); baselines and decisions come
from running :class:`~brownout.pipeline.Pipeline` over the same events in event time, as
``brownout replay`` does. An incident is a key's span from its first firing alert or open
breaker until every alert resolved and the breaker closed again (spans less than
``merge_gap`` apart are one incident). Each report draws TTFT p50/p95 against the baseline
band (the baseline up to where ``ttft_drift`` fires), the error rate split by code, tokens/s
against its band, and request volume, with alert and breaker transitions marked on the same
time axis, and a table of what fired when.

>>> from brownout.model import Event, Key
>>> k = Key("openai", "eastus", "gpt-4o")
>>> evs = [Event(k, 60.0 * m + s, 0.5, ttft=0.2 + m / 100, error_type="503" if m == 3 and s < 30 else None)
...        for m in range(5) for s in range(0, 60, 2)]
>>> s = minute_series(evs)[k]
>>> [int(x) for x in s.requests], [round(float(x), 2) for x in s.error_share()["503"]]
([30, 30, 30, 30, 30], [0.0, 0.0, 0.0, 0.5, 0.0])
>>> round(float(s.ttft_p50[0]), 2), int(s.minute[0])
(0.2, 0)
"""

from __future__ import annotations

import collections
import logging
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from brownout import semconv as sc
from brownout.model import Decision, Event, Key
from brownout.status.history import FIELDS, HistoryRecorder
from brownout.status.page import CSS, decision_table, key_charts, utc

__all__ = ["Incident", "Judged", "KeyMinutes", "Written", "find_incidents", "judge", "minute_series", "parse_time",
           "render_report", "write_reports"]

log = logging.getLogger(__name__)
MINUTE = 60.0


@dataclass
class KeyMinutes:
    """One key's per-minute readings over ``minute`` (unix minutes, contiguous; NaN where no data)."""

    minute: np.ndarray
    requests: np.ndarray
    errors: dict[str, np.ndarray]  # error.type -> requests that failed with it (cancelled calls excluded)
    ttft_p50: np.ndarray
    ttft_p95: np.ndarray
    latency_p95: np.ndarray
    tokens_per_s: np.ndarray
    stalls: np.ndarray

    def error_share(self) -> dict[str, np.ndarray]:
        """Each code's share of the minute's requests, biggest codes first."""
        n = np.where(self.requests > 0, self.requests, np.nan)
        order = sorted(self.errors, key=lambda c: -float(self.errors[c].sum()))
        return {code: np.nan_to_num(self.errors[code] / n) for code in order}


class _Acc:
    __slots__ = ("n", "codes", "ttft", "duration", "tps", "stalls")

    def __init__(self) -> None:
        self.n = 0
        self.codes: collections.Counter[str] = collections.Counter()
        self.ttft: list[float] = []
        self.duration: list[float] = []
        self.tps: list[float] = []
        self.stalls = 0


def minute_series(events: Iterable[Event]) -> dict[Key, KeyMinutes]:
    """Per key and minute of completion: requests, errors by code, TTFT p50/p95, p95 latency,
    median tokens/s. Stall reports (in-flight, followed by the call's own event) count only as
    stalls; cancelled calls count as requests, never as errors."""
    acc: dict[Key, dict[int, _Acc]] = collections.defaultdict(dict)
    for ev in events:
        m = int(ev.end // MINUTE)
        a = acc[ev.key].get(m)
        if a is None:
            a = acc[ev.key][m] = _Acc()
        if ev.stall:
            a.stalls += 1
            continue
        a.n += 1
        err = ev.error_type
        if err:
            if sc.error_class(err) != "cancelled":
                a.codes[err] += 1
            continue
        a.duration.append(ev.duration)
        if ev.ttft is not None:
            a.ttft.append(ev.ttft)
        tps = ev.output_tokens_per_second
        if tps is not None:
            a.tps.append(tps)
    out = {}
    for key, minutes in acc.items():
        lo, hi = min(minutes), max(minutes)
        span = np.arange(lo, hi + 1, dtype=np.int64)
        size = len(span)
        codes = sorted({c for a in minutes.values() for c in a.codes})
        ttft_p50, ttft_p95, latency_p95, tokens_per_s = (np.full(size, np.nan) for _ in range(4))
        km = KeyMinutes(span, np.zeros(size), {c: np.zeros(size) for c in codes},
                        ttft_p50, ttft_p95, latency_p95, tokens_per_s, np.zeros(size))
        for m, a in minutes.items():
            i = m - lo
            km.requests[i] = a.n
            km.stalls[i] = a.stalls
            for c, n in a.codes.items():
                km.errors[c][i] = n
            if a.ttft:
                km.ttft_p50[i], km.ttft_p95[i] = np.quantile(a.ttft, [0.5, 0.95])
            if a.duration:
                km.latency_p95[i] = np.quantile(a.duration, 0.95)
            if a.tps:
                km.tokens_per_s[i] = np.median(a.tps)
        out[key] = km
    return out


@dataclass
class Judged:
    """What the pipeline made of the events: decisions, and each key's per-minute baselines."""

    decisions: list[Decision]
    history: HistoryRecorder
    rules: Any
    first: float
    last: float


def judge(events: Sequence[Event], rules: Any = None, *, seed: int = 0, tail: float = 1800.0) -> Judged:
    """Run :class:`~brownout.pipeline.Pipeline` over ``events`` (sorted here by start) in event
    time, judging once per second of event time as replay does, then ``tail`` seconds past the
    last event so open incidents resolve; baselines are read once per minute."""
    from brownout.pipeline import Pipeline

    evs = sorted(events, key=lambda e: e.start)
    if not evs:
        raise ValueError("no events to report on")
    pipeline = Pipeline(rules, seed=seed)
    first, last_end = evs[0].start, max(e.end for e in evs)
    minutes = int((last_end + tail - first) // MINUTE) + 3
    history = HistoryRecorder(minutes=max(minutes, 2), max_keys=max(1, len({e.key for e in evs})),
                              max_decisions=1_000_000)
    decisions: list[Decision] = []

    def step(now: float) -> None:
        ds = pipeline.advance(now)
        decisions.extend(ds)
        history.tick(now, ds, pipeline)

    judged = float("-inf")
    for ev in evs:
        pipeline.observe(ev)
        if ev.start - judged >= 1.0:
            step(ev.start)
            judged = ev.start
    t = judged
    while t < last_end + tail:
        t = min(t + MINUTE / 4, last_end + tail)
        step(t)
    return Judged(decisions, history, pipeline.rules, first, last_end)


@dataclass
class Incident:
    """A key's trouble: from its first firing alert or open breaker until all cleared."""

    key: Key
    start: float
    end: float | None = None  # None: still active when the events ended
    decisions: list[Decision] = field(default_factory=list)

    @property
    def slug(self) -> str:
        when = time.strftime("%Y%m%dT%H%M", time.gmtime(self.start))
        return re.sub(r"[^A-Za-z0-9._-]+", "_", f"incident-{when}-{self.key.provider}-{self.key.region}-"
                                                  f"{self.key.model}")[:160]


def find_incidents(decisions: Iterable[Decision], *, merge_gap: float = 900.0) -> list[Incident]:
    """Incidents per key, oldest first (alerts that only went ``pending`` make none).

    >>> k = Key("a", "b", "c")
    >>> ds = [Decision(100.0, "alert", "error_rate", k, "firing"),
    ...       Decision(110.0, "breaker", "error_breaker", k, "open"),
    ...       Decision(200.0, "breaker", "error_breaker", k, "closed"),
    ...       Decision(260.0, "alert", "error_rate", k, "resolved")]
    >>> [(i.start, i.end, len(i.decisions)) for i in find_incidents(ds)]
    [(100.0, 260.0, 4)]
    """
    by_key: dict[Key, list[Decision]] = collections.defaultdict(list)
    for d in decisions:
        by_key[d.key].append(d)
    out: list[Incident] = []
    for key, ds in by_key.items():
        firing: set[str] = set()
        breaker = "closed"
        current: Incident | None = None
        done: list[Incident] = []
        for d in sorted(ds, key=lambda d: d.time):
            if d.kind == "alert":
                if d.state == "firing":
                    firing.add(d.rule)
                elif d.state == "resolved":
                    firing.discard(d.rule)
            elif d.kind == "breaker":
                breaker = d.state
            active = bool(firing) or breaker != "closed"
            if current is None and active:
                if done and done[-1].end is not None and d.time - done[-1].end <= merge_gap:
                    current = done.pop()
                    current.end = None
                else:
                    current = Incident(key, d.time)
            if current is not None:
                current.decisions.append(d)
                if not active:
                    current.end = d.time
                    done.append(current)
                    current = None
        if current is not None:
            done.append(current)
        out.extend(done)
    out.sort(key=lambda i: (i.start, i.key))
    return out


# --- rendering ------------------------------------------------------------------------------
def _aligned(km: KeyMinutes, history: HistoryRecorder, key: Key, m0: int, m1: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The key's series on minutes [m0, m1]: measured from the events, baselines from the pipeline."""
    minutes = np.arange(m0, m1 + 1, dtype=np.int64)
    idx = minutes - int(km.minute[0])
    inside = (idx >= 0) & (idx < len(km.minute))
    safe = np.clip(idx, 0, len(km.minute) - 1)

    def take(a: np.ndarray, fill: float = np.nan) -> np.ndarray:
        return np.where(inside, a[safe], fill)

    base = history.series(key, m1)
    bidx = minutes - int(base["minute"][0])
    bok = (bidx >= 0) & (bidx < len(base["minute"]))
    bsafe = np.clip(bidx, 0, len(base["minute"]) - 1)
    s: dict[str, Any] = {name: np.where(bok, base[name][bsafe], np.nan) for name in FIELDS}
    s.update(requests=take(km.requests, 0.0), ttft_p50=take(km.ttft_p50), ttft_p95=take(km.ttft_p95),
             latency_p95=take(km.latency_p95), tokens_per_s=take(km.tokens_per_s))
    n = np.where(s["requests"] > 0, s["requests"], np.nan)
    errors = {code: np.nan_to_num(take(v, 0.0) / n) for code, v in km.errors.items() if take(v, 0.0).sum() > 0}
    errors = dict(sorted(errors.items(), key=lambda kv: -float(kv[1].sum())))
    s["error_rate"] = np.nansum(np.vstack(list(errors.values())), axis=0) if errors else np.zeros(len(minutes))
    t = (minutes.astype(np.float64) + 1) * MINUTE  # a minute's reading is drawn at its end
    return t, {"series": s, "errors": errors}


def render_report(incident: Incident, km: KeyMinutes, judged: Judged, *, lead: float = 1800.0,
                  tail: float = 900.0, source: str = "", others: Sequence[tuple[Incident, str]] = ()) -> str:
    """The HTML of one incident's report (inline CSS and SVG: one file that opens anywhere)."""
    key = incident.key
    end = incident.end if incident.end is not None else judged.last
    m0 = max(int((incident.start - lead) // MINUTE), int(km.minute[0]))
    m1 = min(int((end + tail) // MINUTE), int(km.minute[-1]))
    m1 = max(m1, m0 + 1)
    t, parts = _aligned(km, judged.history, key, m0, m1)
    s, errors = parts["series"], parts["errors"]
    t0, t1 = (m0 + 1) * MINUTE, (m1 + 1) * MINUTE
    shown = [d for d in judged.decisions if d.key == key and t0 - MINUTE <= d.time <= t1]
    charts = key_charts(key, t, s, shown, judged.rules, errors=errors or None, width=900)
    names = ("ttft", "errors", "tokens", "requests")
    duration = f"{(end - incident.start) / 60:.0f} min" + ("" if incident.end is not None else ", still active")
    summary = _summary_rows(incident, s, errors, shown, t)
    html = [f'<header><h1>Incident on {escape(str(key))}</h1>'
            f'<p class="summary">{utc(incident.start)} &ndash; {utc(end)} UTC ({duration}). '
            f'Generated by <code>brownout report</code>{" from " + escape(source) if source else ""} '
            f'at {utc(time.time())} UTC.</p></header>',
            '<table class="facts"><tbody>' + "".join(f"<tr><th>{escape(a)}</th><td>{b}</td></tr>" for a, b in summary)
            + "</tbody></table>"]
    for name, chart in zip(names, charts):
        html.append(f'<figure id="{name}">{chart}</figure>')
    html.append('<p class="muted">Shaded green: the baseline up to where its alert fires (TTFT: the p50 '
                'baseline to ttft_drift&#39;s fire ratio; tokens/s: throughput&#39;s fire ratio up to the '
                'baseline). The strip along the top of each chart: breaker open (dark red) and half-open (amber). '
                'Vertical marks: alert firing (magenta, dashed) and resolved (light green, dashed), breaker '
                'open (dark red), half-open (amber) and closed (dark green). Values are per minute of completion.</p>')
    html.append("<h2>What fired when</h2>")
    html.append(decision_table(sorted((d for d in shown if d.state != "pending"), key=lambda d: d.time), link=False))
    if others:
        html.append("<h2>Other incidents in these events</h2><ul>" + "".join(
            f'<li><a href="{escape(href)}">{escape(str(o.key))}</a> from {utc(o.start)} UTC</li>'
            for o, href in others) + "</ul>")
    title = f"Incident on {key} at {utc(incident.start)} UTC"
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
            f'<style>{CSS}table.facts{{width:auto}}table.facts th{{padding-right:16px}}</style></head>'
            f'<body>{"".join(html)}</body></html>')


def _summary_rows(incident: Incident, s: dict[str, Any], errors: dict[str, np.ndarray],
                  decisions: list[Decision], t: np.ndarray) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for label, kind, state in (("first alert firing", "alert", "firing"), ("breaker opened", "breaker", "open"),
                               ("breaker half-open", "breaker", "half_open"), ("breaker closed", "breaker", "closed"),
                               ("last alert resolved", "alert", "resolved")):
        hits = [d for d in decisions if d.kind == kind and d.state == state and d.time >= incident.start]
        d = hits[-1] if state in ("resolved", "closed") and hits else (hits[0] if hits else None)
        rows.append((label, "-" if d is None else f"{utc(d.time)} UTC ({escape(d.rule)}, "
                     f"{(d.time - incident.start) / 60:+.1f} min)"))
    during = (t >= incident.start) & (t <= (incident.end or t[-1]) + MINUTE)
    if during.any():
        ttft, base = s["ttft_p50"][during], s["ttft_p50_baseline"][during]
        if np.isfinite(ttft).any():
            i = int(np.nanargmax(ttft))
            b = base[i]
            against = f" against a baseline of {b * 1000:.0f} ms (&times;{ttft[i] / b:.1f})" \
                if np.isfinite(b) and b else ""
            rows.append(("peak TTFT p50", f"{ttft[i] * 1000:.0f} ms{against}"))
        err = s["error_rate"][during]
        if np.isfinite(err).any() and np.nanmax(err) > 0:
            i = int(np.nanargmax(err))
            codes = ", ".join(f"{escape(c)} {v[during][i]:.0%}" for c, v in errors.items() if v[during][i] > 0)
            rows.append(("peak error rate", f"{err[i]:.0%} ({codes})"))
        tps, tbase = s["tokens_per_s"][during], s["tokens_per_s_baseline"][during]
        if np.isfinite(tps).any():
            i = int(np.nanargmin(tps))
            rows.append(("lowest tokens/s", f"{tps[i]:.0f}" + (f" against a baseline of {tbase[i]:.0f}"
                                                              if np.isfinite(tbase[i]) else "")))
        rows.append(("requests during the incident", f"{int(np.nansum(s['requests'][during])):,}"))
    return rows


@dataclass
class Written:
    incident: Incident
    html: Path
    pngs: list[Path] = field(default_factory=list)


def write_reports(events: Sequence[Event], out_dir: str | Path, rules: Any = None, *, seed: int = 0,
                  since: float | None = None, until: float | None = None, png: bool | None = None,
                  source: str = "") -> list[Written]:
    """Judge ``events``, find incidents (starting in [since, until] when given) and write one HTML
    report per incident, an ``index.html``, and, when ``png`` (None: when Chromium is installed),
    one PNG per chart. Returns what was written."""
    from brownout.status.chromium import find_chromium

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    judged = judge(events, rules, seed=seed)
    series = minute_series(events)
    incidents = [i for i in find_incidents(judged.decisions)
                 if (since is None or (i.end or judged.last) >= since) and (until is None or i.start <= until)]
    written = []
    files = {id(i): f"{i.slug}.html" for i in incidents}
    for inc in incidents:
        others = [(o, files[id(o)]) for o in incidents if o is not inc]
        html = render_report(inc, series[inc.key], judged, source=source, others=others)
        path = out / files[id(inc)]
        path.write_text(html, encoding="utf-8")
        written.append(Written(inc, path))
    (out / "index.html").write_text(_index(written, judged, source), encoding="utf-8")
    if png is None:
        png = find_chromium() is not None
    if png and written:
        _pngs(written)
    return written


def _index(written: list[Written], judged: Judged, source: str) -> str:
    items = "".join(f'<li><a href="{escape(w.html.name)}">{escape(str(w.incident.key))}</a>: '
                    f'{utc(w.incident.start)} &ndash; {utc(w.incident.end or judged.last)} UTC</li>'
                    for w in written) or "<li>No incident: no alert fired and no breaker opened.</li>"
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>brownout incidents</title><style>{CSS}</style>'
            f'</head><body><h1>Incidents</h1><p class="muted">{utc(judged.first)} &ndash; {utc(judged.last)} UTC'
            f'{", " + escape(source) if source else ""}</p><ul>{items}</ul></body></html>')


def _pngs(written: list[Written]) -> None:
    from brownout.status.chromium import HeadlessChromium

    with HeadlessChromium() as browser:
        for w in written:
            browser.goto(w.html.resolve().as_uri(), width=960, height=900)
            ids = browser.evaluate("Array.from(document.querySelectorAll('figure')).map(f => f.id)") or []
            for fid in ids:
                rects = browser.rects(f"figure#{fid} svg.chart")
                if not rects:
                    continue
                path = w.html.with_name(f"{w.html.stem}-{fid}.png")
                path.write_bytes(browser.screenshot(rects[0], scale=2.0))
                w.pngs.append(path)


def parse_time(text: str, now: float | None = None) -> float:
    """Unix seconds from ``1795510800``, ISO 8601 (``2026-11-24T09:00:00Z``), ``now`` or ``now-2h``.

    >>> parse_time("2026-11-24T09:00:00Z"), parse_time("now-90m", now=10_000.0), parse_time("1795510800.5")
    (1795510800.0, 4600.0, 1795510800.5)
    """
    from datetime import UTC, datetime

    text = text.strip()
    m = re.fullmatch(r"now(?:\s*-\s*(\d+(?:\.\d+)?)\s*([smhd]))?", text)
    if m:
        base = time.time() if now is None else now
        if m.group(1) is None:
            return base
        return base - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(value):
            return value
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use unix seconds, ISO 8601 such as 2026-11-24T09:00:00Z, "
                         f"or now-2h)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
