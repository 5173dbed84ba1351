"""The status page: one row per provider/region/model, what your own traffic says about it.

Served by the collector next to ``/metrics`` (:class:`StatusPage` is the ``pages`` handler of
:class:`~brownout.exporters.prometheus.MetricsServer`):

- ``/status``: every key's state (``open``, ``degraded``, ``warming``, ``healthy``), requests/s,
  error rate, TTFT p50 against its baseline, TTFT p95, tokens/s, breaker, firing alerts and a
  chart of the last hours (TTFT against the baseline band, errors, open-breaker minutes); then
  the firing alerts and a timeline of alert and breaker transitions.
- ``/status/key/<provider>/<region>/<model>``: one key's charts with its transitions marked.
- ``/status.json``: the rows, for scripts.

Plain HTML and inline SVG: nothing from a CDN, no JavaScript, a ``meta refresh`` every
``refresh`` seconds, and a layout that turns rows into cards on a phone.

>>> from types import SimpleNamespace as S
>>> from brownout.exporters.prometheus import StatusBoard
>>> from brownout.model import Key
>>> board = StatusBoard()
>>> k = Key("openai", "eastus", "gpt-4o")
>>> board.update({k: S(time=600.0, requests=1200, error_rate=0.3, ttft_p50=0.9, ttft_p50_baseline=0.3,
...                   warming=False, firing=("error_rate",))}, {k: "open"})
>>> page = StatusPage(board)
>>> code, body, ctype = page.handle("/status")
>>> code, ctype, b'data-state="open"' in body, b"20.0/s" in body
(200, 'text/html; charset=utf-8', True, True)
>>> page.handle("/metrics") is None
True
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from html import escape
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from brownout.exporters.prometheus import _finite as _num
from brownout.model import Decision, Key
from brownout.status import svg
from brownout.status.history import HistoryRecorder
from brownout.status.urls import KEY_PREFIX, STATUS_PATH, key_path, parse_key_path

__all__ = ["STATES", "StatusPage", "decision_table", "key_charts", "key_state", "rule_setting", "utc"]

#: Row states, worst first (the page's sort order).
STATES = ("open", "degraded", "warming", "healthy")
_STATE_ORDER = {s: i for i, s in enumerate(STATES)}
Response = tuple[int, bytes, str]
_SPARK_FIELDS = ("ttft_p50", "ttft_p50_baseline", "error_rate", "breaker")
log = logging.getLogger(__name__)


def key_state(status: Any, breaker: str | None) -> str:
    """``open`` (breaker open or half-open), ``degraded`` (an alert firing), ``warming`` (no
    baseline yet), else ``healthy``.

    >>> from types import SimpleNamespace as S
    >>> key_state(S(firing=(), warming=False), "half_open"), key_state(S(firing=("itl",), warming=True), None)
    ('open', 'degraded')
    """
    if breaker in ("open", "half_open"):
        return "open"
    if status is not None and bool(getattr(status, "firing", None)):
        return "degraded"
    if status is None or getattr(status, "warming", True):
        return "warming"
    return "healthy"


def rule_setting(rules: Any, key: Key, rule: str, name: str, default: float) -> float:
    """A rule's setting for ``key`` from a :class:`~brownout.rules.RuleSet` (``default`` without one)."""
    if rules is None:
        return default
    try:
        value = getattr(rules.for_key(key)[rule], name)
    except (AttributeError, KeyError, TypeError):
        return default
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


class StatusPage:
    """Renders the status pages from live readings and the recorded history.

    Parameters
    ----------
    source
        Anything with ``key_status()`` and ``breaker_states()`` (a :class:`StatusBoard`).
    history
        The per-minute history; without it rows have no chart and the timeline is empty.
    rules
        The rule set, for each key's firing ratio (the top of its baseline band).
    refresh
        Seconds between the page's own reloads.
    """

    def __init__(self, source: Any, history: HistoryRecorder | None = None, *, rules: Any = None,
                 refresh: int = 15, title: str = "brownout status", clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.history = history
        self.rules = rules
        self.refresh = refresh
        self.title = title
        self.clock = clock
        self._sparks: dict[Key, tuple[tuple[int, int], str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- background redraw -------------------------------------------------------------
    def warm(self) -> int:
        """Draw every row chart whose key has new rows (a request then only joins strings);
        returns how many were drawn."""
        if self.history is None:
            return 0
        end = self.history.last_minute
        if end is None:
            return 0
        keys = self.history.keys()
        stale = [k for k in keys if (self._sparks.get(k) or (None,))[0] != (self.history.key_version(k), end)]
        self._sparks_for(stale, end)
        return len(stale)

    def start(self, interval: float = 5.0) -> None:
        """Run :meth:`warm` every ``interval`` seconds in a daemon thread: new rows arrive once a
        minute, so only the first request in the moment after that draws anything."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.warm()
                except Exception:  # a view must never take the collector down
                    log.exception("status page: redrawing charts failed")

        self._thread = threading.Thread(target=loop, name="brownout-status-page", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    # --- HTTP --------------------------------------------------------------------------
    def handle(self, path: str) -> Response | None:
        """The response for ``path``, or None when it is not a status page path."""
        path = urlsplit(path).path
        if path in ("/", ""):
            return 200, _page(self.title, f'<p><a href="{STATUS_PATH}">Status page</a> &middot; '
                              '<a href="/metrics">/metrics</a> &middot; <a href="/healthz">/healthz</a> &middot; '
                              '<a href="/readyz">/readyz</a></p>', 0).encode(), "text/html; charset=utf-8"
        if path in (STATUS_PATH, STATUS_PATH + "/"):
            return 200, self.render_index().encode(), "text/html; charset=utf-8"
        if path == STATUS_PATH + ".json":
            return 200, json.dumps(self.rows_json(), separators=(",", ":")).encode(), "application/json"
        if path.startswith(KEY_PREFIX):
            key = parse_key_path(path)
            body = self.render_key(key) if key is not None else None
            if body is None:
                return 404, _page("not found", f"<p>No key at {escape(path)}. "
                                  f'<a href="{STATUS_PATH}">All keys</a></p>', 0).encode(), "text/html; charset=utf-8"
            return 200, body.encode(), "text/html; charset=utf-8"
        return None

    # --- rows --------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """One dict per key, worst state first, then busiest."""
        status = dict(self.source.key_status())
        breakers = dict(self.source.breaker_states())
        out = []
        for key in set(status) | set(breakers):
            st = status.get(key)

            def g(name: str, st: Any = st) -> float | None:
                return _num(getattr(st, name, None))  # None for a key with no status yet
            requests = g("requests")
            out.append({
                "key": key, "state": key_state(st, breakers.get(key)), "breaker": breakers.get(key, "closed"),
                "requests_per_s": None if requests is None else requests / 60.0,
                "error_rate": g("error_rate"), "capacity_error_rate": g("capacity_error_rate"),
                "ttft_p50": g("ttft_p50"), "ttft_p50_baseline": g("ttft_p50_baseline"),
                "ttft_p95": g("ttft_p95"), "ttft_p95_baseline": g("ttft_p95_baseline"),
                "tokens_per_s": g("tokens_per_s"), "tokens_per_s_baseline": g("tokens_per_s_baseline"),
                "latency_p95": g("latency_p95"), "warming": bool(getattr(st, "warming", True)) if st else True,
                "firing": tuple(getattr(st, "firing", ()) or ()) if st is not None else (),
                "time": g("time"),
            })
        out.sort(key=lambda r: (_STATE_ORDER[r["state"]], -(r["requests_per_s"] or 0.0), r["key"]))
        return out

    def rows_json(self) -> dict[str, Any]:
        rows = []
        for r in self.rows():
            rows.append({**r, "key": r["key"].as_dict(), "firing": list(r["firing"]), "url": key_path(r["key"])})
        return {"time": self.clock(), "keys": rows}

    # --- pages -------------------------------------------------------------------------
    def render_index(self) -> str:
        rows = self.rows()
        counts = dict.fromkeys(STATES, 0)
        for r in rows:
            counts[r["state"]] += 1
        end = self.history.last_minute if self.history is not None else None
        parts = [f'<header><h1>{escape(self.title)}</h1><p class="summary">'
                 + " ".join(f'<span class="pill {s}">{counts[s]} {s}</span>' for s in STATES)
                 + f' <span class="muted">{len(rows)} keys, updated {utc(self.clock())}; '
                 f'charts: last {self._hours()} (TTFT p50 <i class="sw ttft"></i> vs baseline band '
                 f'<i class="sw band"></i>, errors <i class="sw err"></i>, breaker open <i class="sw open"></i>)'
                 f'</span></p></header>']
        parts.append('<table class="keys"><thead><tr><th>state</th><th>provider / region / model</th>'
                     '<th>req/s</th><th>errors</th><th>TTFT p50 (baseline)</th><th>TTFT p95</th><th>tok/s</th>'
                     '<th>breaker</th><th>alerts</th><th>last hours</th></tr></thead><tbody>')
        sparks = self._sparks_for([r["key"] for r in rows], end) \
            if self.history is not None and end is not None else {}
        for r in rows:
            parts.append(self._row_html(r, sparks.get(r["key"], "")))
        parts.append("</tbody></table>")
        if not rows:
            parts.append('<p class="muted">No events yet: keys appear after their first evaluated step.</p>')
        firing = [r for r in rows if r["firing"]]
        parts.append("<h2>Firing</h2>")
        if firing:
            parts.append("<ul class=\"firing\">" + "".join(
                f'<li><a href="{key_path(r["key"])}">{escape(str(r["key"]))}</a>: '
                f'{escape(", ".join(r["firing"]))}</li>' for r in firing) + "</ul>")
        else:
            parts.append('<p class="muted">Nothing firing.</p>')
        parts.append("<h2>Timeline</h2>")
        parts.append(self._timeline_html(None))
        return _page(self.title, "".join(parts), self.refresh)

    def render_key(self, key: Key) -> str | None:
        """The key's own page, or None when nothing is known of it."""
        rows = {r["key"]: r for r in self.rows()}
        known = key in rows or (self.history is not None and key in self.history.keys())
        if not known:
            return None
        r = rows.get(key)
        parts = [f'<header><p><a href="{STATUS_PATH}">&larr; all keys</a></p><h1>{escape(str(key))}</h1>']
        if r is not None:
            parts.append(f'<p class="summary"><span class="pill {r["state"]}">{r["state"]}</span> '
                         f'breaker {escape(r["breaker"])}; {_rate(r["requests_per_s"])} req/s, '
                         f'errors {_pct(r["error_rate"])}, TTFT p50 {_ms(r["ttft_p50"])} '
                         f'(baseline {_ms(r["ttft_p50_baseline"])}), p95 {_ms(r["ttft_p95"])}, '
                         f'{_tok(r["tokens_per_s"])} tok/s'
                         + (f'; firing: {escape(", ".join(r["firing"]))}' if r["firing"] else "") + "</p>")
        parts.append("</header>")
        if self.history is not None:
            parts.append(self._key_charts(key))
        parts.append("<h2>Transitions</h2>")
        parts.append(self._decision_table(self.history.decisions(key) if self.history else []))
        return _page(f"{key} - {self.title}", "".join(parts), self.refresh)

    # --- pieces ------------------------------------------------------------------------
    def _hours(self) -> str:
        if self.history is None:
            return "-"
        m = self.history.minutes
        return f"{m / 60:g} h" if m >= 60 else f"{m} min"

    def _row_html(self, r: dict[str, Any], spark: str) -> str:
        key = r["key"]
        base = r["ttft_p50_baseline"]
        ratio = ""
        if base and r["ttft_p50"] is not None:
            x = r["ttft_p50"] / base
            hot = " hot" if x >= rule_setting(self.rules, key, "ttft_drift", "fire_ratio", 1.2) else ""
            ratio = f' <span class="ratio{hot}">&times;{x:.2g}</span>'
        tok_base = r["tokens_per_s_baseline"]
        return (f'<tr data-state="{r["state"]}" data-key="{escape(str(key))}">'
                f'<td data-label="state"><span class="pill {r["state"]}">{r["state"]}</span></td>'
                f'<td data-label="key" class="key"><a href="{key_path(key)}">{escape(key.provider)}'
                f'<span class="muted">/</span>{escape(key.region)}<span class="muted">/</span>'
                f'{escape(key.model)}</a></td>'
                f'<td data-label="req/s">{_rate(r["requests_per_s"])}/s</td>'
                f'<td data-label="errors">{_pct(r["error_rate"])}</td>'
                f'<td data-label="TTFT p50">{_ms(r["ttft_p50"])} <span class="muted">'
                f'({_ms(base) if base is not None else "warming"})</span>{ratio}</td>'
                f'<td data-label="TTFT p95">{_ms(r["ttft_p95"])}</td>'
                f'<td data-label="tok/s">{_tok(r["tokens_per_s"])}'
                + (f' <span class="muted">({_tok(tok_base)})</span>' if tok_base is not None else "") + "</td>"
                f'<td data-label="breaker" class="br-{escape(r["breaker"])}">{escape(r["breaker"])}</td>'
                f'<td data-label="alerts" class="alerts">{escape(", ".join(r["firing"])) or "-"}</td>'
                f'<td data-label="last hours" class="spark">{spark}</td></tr>')

    def _sparks_for(self, keys: list[Key], end: int) -> dict[Key, str]:
        """Row charts of ``keys`` ending at minute ``end``: cached ones as they are, the rest drawn
        together (one batch of array operations)."""
        assert self.history is not None
        out: dict[Key, str] = {}
        todo: list[tuple[Key, tuple[int, int]]] = []
        for key in keys:
            stamp = (self.history.key_version(key), end)
            hit = self._sparks.get(key)
            if hit is not None and hit[0] == stamp:
                out[key] = hit[1]
            else:
                todo.append((key, stamp))
        if todo:
            m = np.stack([self.history.matrix(k, end, _SPARK_FIELDS) for k, _ in todo])
            fire = np.array([rule_setting(self.rules, k, "ttft_drift", "fire_ratio", 1.2) for k, _ in todo])
            drawn = svg.sparklines(m[:, 0], m[:, 1], m[:, 1] * fire[:, None], m[:, 2], m[:, 3])
            with self._lock:
                if len(self._sparks) + len(todo) > 2 * max(self.history.max_keys, 1):
                    self._sparks.clear()
                for (key, stamp), text in zip(todo, drawn):
                    self._sparks[key] = (stamp, text)
                    out[key] = text
        return out

    def _key_charts(self, key: Key) -> str:
        assert self.history is not None
        s = self.history.series(key)
        t = (s["minute"].astype(np.float64) + 1) * 60.0
        return "".join(f'<figure>{c}</figure>'
                       for c in key_charts(key, t, s, self.history.decisions(key), self.rules, errors=None))

    def _timeline_html(self, key: Key | None) -> str:
        if self.history is None:
            return '<p class="muted">No history recorder.</p>'
        decisions = [d for d in self.history.decisions(key) if d.state != "pending"]
        if not decisions:
            return '<p class="muted">No alert or breaker transitions yet.</p>'
        end_minute = self.history.last_minute
        t1 = (end_minute + 1) * 60.0 if end_minute is not None else max(d.time for d in decisions)
        t0 = t1 - self.history.minutes * 60.0
        return (timeline_svg([d for d in decisions if d.time >= t0], t0, t1)
                + self._decision_table(list(reversed(decisions))[:50]))

    @staticmethod
    def _decision_table(decisions: list[Decision]) -> str:
        return decision_table(decisions)


# --- shared with reports ------------------------------------------------------------------
_MARK_LABEL = {("alert", "firing"): "firing", ("alert", "resolved"): "resolved", ("breaker", "open"): "open",
               ("breaker", "half_open"): "half_open", ("breaker", "closed"): "closed"}


def decision_marks(decisions: list[Decision]) -> list[svg.Mark]:
    """Chart marks for alert firing/resolved and breaker open/half_open/closed transitions."""
    marks = []
    for d in decisions:
        label = _MARK_LABEL.get((d.kind, d.state))
        if label is not None:
            marks.append(svg.Mark(d.time, label, svg.COLORS[label], d.rule, dash=d.kind == "alert"))
    return marks


def key_charts(key: Key, t: np.ndarray, s: Mapping[str, np.ndarray], decisions: list[Decision], rules: Any,
               *, errors: Mapping[str, np.ndarray] | None, width: int = 760) -> list[str]:
    """TTFT, errors, tokens/s and volume for one key on one time axis (page and report alike).

    ``s`` holds per-point arrays named as :data:`~brownout.status.history.FIELDS`; ``errors`` maps
    an error code to its per-point share of requests (the report has them; the page draws the
    error and capacity-error rates instead).
    """
    fire = rule_setting(rules, key, "ttft_drift", "fire_ratio", 1.2)
    err_fire = rule_setting(rules, key, "error_rate", "fire_rate", 0.05)
    brk_rate = rule_setting(rules, key, "error_breaker", "rate", 0.25)
    tp_fire = rule_setting(rules, key, "throughput", "fire_ratio", 0.5)
    ttft_layers: list[Any] = [
        svg.Band("baseline band (p50 baseline to alert)", s["ttft_p50_baseline"], s["ttft_p50_baseline"] * fire),
        svg.Line("p50 baseline", s["ttft_p50_baseline"], svg.COLORS["baseline"], dash="4 3", width=1.2),
        svg.Line("p95 baseline", s["ttft_p95_baseline"], svg.COLORS["ttft_p95"], dash="2 3", width=1.0),
        svg.Line("TTFT p95", s["ttft_p95"], svg.COLORS["ttft_p95"], width=1.4),
        svg.Line("TTFT p50", s["ttft_p50"], svg.COLORS["ttft_p50"], width=2.2),
    ]
    if errors:
        err_layer: Any = svg.Stack(list(errors), list(errors.values()))
    else:
        other = np.clip(s["error_rate"] - np.nan_to_num(s["capacity_error_rate"]), 0, None)
        err_layer = svg.Stack(["capacity errors", "other errors"], [s["capacity_error_rate"], other],
                              colors=(svg.COLORS["errors"], "#7f7f7f"))
    err_layers: list[Any] = [err_layer, svg.Threshold(f"alert {err_fire:.0%}", err_fire, svg.COLORS["firing"]),
                  svg.Threshold(f"breaker {brk_rate:.0%}", brk_rate, svg.COLORS["open"])]
    tok_layers: list[Any] = [svg.Band("baseline band (alert to baseline)", s["tokens_per_s_baseline"] * tp_fire,
                           s["tokens_per_s_baseline"]),
                  svg.Line("tokens/s baseline", s["tokens_per_s_baseline"], svg.COLORS["baseline"], dash="4 3",
                           width=1.2),
                  svg.Line("output tokens/s (median)", s["tokens_per_s"], svg.COLORS["tokens"], width=2.0)]
    vol = svg.Bars("requests/s", s["requests"] / 60.0)
    slug = str(key)
    marks = decision_marks(decisions)
    end = float(t[-1]) if len(t) else 0.0
    spans = [(a, b, state) for a, b, state in _spans(decisions, end) if state in ("open", "half_open")]
    common: dict[str, Any] = {"marks": marks, "spans": spans, "width": width}
    return [
        svg.chart(t, ttft_layers, title="TTFT", unit="s", chart_id=f"ttft {slug}", **common),
        svg.chart(t, err_layers, title="Errors", unit="%", chart_id=f"errors {slug}",
                  ymax=svg._nice(max(brk_rate, _max(err_layer))), **common),
        svg.chart(t, tok_layers, title="Tokens/s", unit="tok/s", chart_id=f"tokens {slug}", **common),
        svg.chart(t, [vol], title="Requests/s", unit="", height=170, chart_id=f"requests {slug}", **common),
    ]


def _max(stack: Any) -> float:
    total = np.nansum(np.vstack([np.nan_to_num(np.asarray(v, dtype=np.float64)) for v in stack.values]), axis=0) \
        if stack.values else np.zeros(1)
    return float(np.max(total)) if total.size else 0.0


def timeline_svg(decisions: list[Decision], t0: float, t1: float, width: int = 760) -> str:
    """One lane per key with its alert firing spans and breaker open / half-open spans, on [t0, t1]."""
    keys = sorted({d.key for d in decisions})[:30]
    lane = 22
    left, right = 8.0, 8.0
    height = 30 + lane * len(keys)
    w = width - left - right

    def x(t: float) -> float:
        return left + (min(max(t, t0), t1) - t0) / (t1 - t0 or 1.0) * w

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" font-family="sans-serif" font-size="10">']
    step = svg._time_step(t1 - t0)
    tick = math.ceil(t0 / step) * step
    while tick <= t1:
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="14" y2="{height}" '
                     f'stroke="{svg.COLORS["grid"]}"/>'
                     f'<text x="{x(tick):.1f}" y="10" text-anchor="middle" fill="{svg.COLORS["text"]}">'
                     f'{svg._hhmm(tick)}</text>')
        tick += step
    for i, key in enumerate(keys):
        y = 18 + i * lane
        parts.append(f'<text x="{left}" y="{y + 16}" fill="{svg.COLORS["text"]}">{escape(str(key))}</text>')
        for start, end, label in _spans([d for d in decisions if d.key == key], t1):
            color = svg.COLORS.get(label, svg.COLORS["firing"])
            h, dy = (6, 0) if label in ("open", "half_open") else (4, 7)
            parts.append(f'<rect x="{x(start):.1f}" y="{y + dy:.1f}" width="{max(2.0, x(end) - x(start)):.1f}" '
                         f'height="{h}" fill="{color}">'
                         f'<title>{escape(f"{key} {label} {svg._hhmm(start)}-{svg._hhmm(end)}")}'
                         f'</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def _spans(decisions: list[Decision], t_end: float) -> list[tuple[float, float, str]]:
    """(start, end, label) of breaker open/half_open spans and alert firing spans."""
    out = []
    breaker: tuple[float, str] | None = None
    firing: dict[str, float] = {}
    for d in sorted(decisions, key=lambda d: d.time):
        if d.kind == "breaker":
            if breaker is not None:
                out.append((breaker[0], d.time, breaker[1]))
            breaker = (d.time, d.state) if d.state in ("open", "half_open") else None
        elif d.state == "firing":
            firing.setdefault(d.rule, d.time)
        elif d.state == "resolved" and d.rule in firing:
            out.append((firing.pop(d.rule), d.time, "firing"))
    if breaker is not None:
        out.append((breaker[0], t_end, breaker[1]))
    out.extend((start, t_end, "firing") for start in firing.values())
    return out


def decision_table(decisions: list[Decision], *, link: bool = True) -> str:
    """What fired when: time, key, kind, rule, state, observed, baseline, reason (``link``: keys
    link to their status pages, which a standalone report cannot)."""
    if not decisions:
        return '<p class="muted">None.</p>'
    rows = []
    for d in decisions:
        label = _MARK_LABEL.get((d.kind, d.state), d.state)
        name = f'<a href="{key_path(d.key)}">{escape(str(d.key))}</a>' if link else escape(str(d.key))
        rows.append(f'<tr><td data-label="time">{utc(d.time)}</td><td data-label="key" class="key">{name}</td>'
                    f'<td data-label="kind">{escape(d.kind)}</td><td data-label="rule">{escape(d.rule)}</td>'
                    f'<td data-label="state"><span class="pill {escape(label)}">{escape(d.state)}</span></td>'
                    f'<td data-label="observed">{_fmt(d.rule, d.observed)}</td>'
                    f'<td data-label="baseline">{_fmt(d.rule, d.baseline)}</td>'
                    f'<td data-label="reason">{escape(d.reason or "")}</td></tr>')
    return ('<table class="decisions"><thead><tr><th>time (UTC)</th><th>key</th><th>kind</th><th>rule</th>'
            '<th>state</th><th>observed</th><th>baseline</th><th>reason</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def _fmt(rule: str, x: float | None) -> str:
    from brownout.exporters.alerts import format_value

    return escape(format_value(rule, x))


CSS = """
:root{--fg:#1d2430;--muted:#6b7480;--line:#e3e7ed;--bg:#fff}
*{box-sizing:border-box}body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg);margin:0;padding:12px 16px}h1{font-size:20px;margin:4px 0}h2{font-size:16px;margin:20px 0 6px}
a{color:#1f5fbf;text-decoration:none}a:hover{text-decoration:underline}.muted{color:var(--muted)}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 6px;border-bottom:1px solid var(--line);
vertical-align:middle;white-space:nowrap}th{font-size:12px;color:var(--muted);font-weight:600}
td.key{white-space:normal;word-break:break-all}.pill{display:inline-block;padding:1px 7px;border-radius:9px;
font-size:12px;font-weight:600;background:#eef1f5}.pill.open{background:#b00020;color:#fff}
.pill.degraded{background:#e08a00;color:#fff}.pill.warming{background:#dfe6f0;color:#3c4654}
.pill.healthy{background:#2e7d32;color:#fff}.pill.firing{background:#d62728;color:#fff}
.pill.resolved,.pill.closed{background:#2ca02c;color:#fff}.pill.half_open{background:#e08a00;color:#fff}
.ratio{color:var(--muted)}.ratio.hot{color:#b00020;font-weight:600}td.alerts{white-space:normal;min-width:8em}
td.spark{min-width:244px}.br-open{color:#b00020;font-weight:600}.br-half_open{color:#e08a00}
td.spark svg{display:block}figure{margin:8px 0}svg.chart,svg.timeline{max-width:100%;height:auto}
.sw{display:inline-block;width:10px;height:10px;vertical-align:middle}.sw.ttft{background:#1f6fd1}
.sw.band{background:#2e9e5b;opacity:.5}.sw.err{background:#d62728}.sw.open{background:#b00020;opacity:.3}
ul.firing{padding-left:18px}
@media (max-width:760px){body{padding:8px}table thead{display:none}table tr{display:grid;
grid-template-columns:1fr 1fr;gap:2px 10px;padding:8px 0;border-bottom:1px solid var(--line)}
table td{border:0;padding:1px 0;white-space:normal}table td::before{content:attr(data-label) ": ";
color:var(--muted);font-size:12px}table td.key,table td.spark{grid-column:1/-1}
td.spark::before,td.key::before{content:""}td.spark svg{width:100%}td.spark{min-width:0}}
"""


def _page(title: str, body: str, refresh: int) -> str:
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">{meta}'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{body}</body></html>")


def utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def _ms(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.0f} ms" if x < 10 else f"{x:.1f} s"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def _tok(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"
