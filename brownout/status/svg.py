"""Charts as inline SVG strings: no JavaScript, no CDN, the same drawing on the page and in reports.

:func:`chart` draws time series on one time axis: lines, a shaded band (the baseline up to where
its rule fires), stacked areas (errors by code), bars (volume), horizontal thresholds, and
vertical marks for alert and breaker transitions. :func:`sparkline` is the status page's
per-row miniature, kept cheap (a thousand of them per page).

Every series has a fixed colour from :data:`COLORS`, so a screenshot can be checked for them.

>>> import numpy as np
>>> t = np.arange(0, 3600, 60.0)
>>> svg = chart(t, [Band("baseline", np.full(60, 0.4), np.full(60, 0.48)), Line("TTFT p50", np.linspace(0.4, 1.2, 60))],
...             marks=[Mark(1800.0, "open", COLORS["open"])], title="TTFT", unit="s")
>>> svg.startswith("<svg") and 'data-series="TTFT p50"' in svg and COLORS["open"] in svg
True
"""

from __future__ import annotations

import functools
import math
import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

import numpy as np

__all__ = ["COLORS", "Band", "Bars", "Line", "Mark", "Stack", "Threshold", "chart", "fmt_value", "sparkline",
           "sparklines"]

#: One colour per kind of series and mark (tests look for these pixels in screenshots).
COLORS: dict[str, str] = {
    "ttft_p50": "#1f6fd1",
    "ttft_p95": "#8a3ffc",
    "baseline": "#2e9e5b",
    "band": "#2e9e5b",
    "errors": "#d62728",
    "tokens": "#0f9fb0",
    "requests": "#6b7a8f",
    "firing": "#c2185b",
    "resolved": "#7cb342",
    "open": "#b00020",
    "half_open": "#e08a00",
    "closed": "#2e7d32",
    "pending": "#e0b000",
    "axis": "#8892a0",
    "grid": "#e3e7ed",
    "text": "#3c4654",
}
#: Colours of error codes in the stacked error chart (others cycle through the rest).
ERROR_COLORS: tuple[str, ...] = ("#d62728", "#ff7f0e", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f", "#9467bd")


@dataclass(frozen=True)
class Line:
    label: str
    values: np.ndarray
    color: str = COLORS["ttft_p50"]
    dash: str | None = None
    width: float = 1.8


@dataclass(frozen=True)
class Band:
    """A shaded range between ``low`` and ``high`` (the baseline and its firing threshold)."""

    label: str
    low: np.ndarray
    high: np.ndarray
    color: str = COLORS["band"]
    opacity: float = 0.22


@dataclass(frozen=True)
class Stack:
    """Stacked areas, one per label (errors by code), as shares or counts."""

    labels: Sequence[str]
    values: Sequence[np.ndarray]
    colors: Sequence[str] = ERROR_COLORS


@dataclass(frozen=True)
class Bars:
    label: str
    values: np.ndarray
    color: str = COLORS["requests"]


@dataclass(frozen=True)
class Threshold:
    label: str
    value: float
    color: str = COLORS["errors"]


@dataclass(frozen=True)
class Mark:
    """A vertical line at ``time`` (an alert or breaker transition) with a short label; ``dash``
    draws it dashed (alerts), solid otherwise (breakers)."""

    time: float
    label: str
    color: str
    detail: str = ""
    dash: bool = False


@dataclass
class _Frame:
    t0: float
    t1: float
    ymax: float
    left: float
    top: float
    w: float
    h: float
    fmt: Callable[[float], str] = field(default=lambda v: f"{v:g}")

    def x(self, t: np.ndarray) -> np.ndarray:
        return self.left + (t - self.t0) / (self.t1 - self.t0 or 1.0) * self.w

    def y(self, v: np.ndarray) -> np.ndarray:
        return self.top + self.h - np.clip(v / self.ymax, 0.0, 1.04) * self.h


def fmt_value(unit: str) -> Callable[[float], str]:
    """A tick formatter for a unit: ``s`` as ms or s, ``%`` as percent, else plain.

    >>> fmt_value("s")(0.25), fmt_value("s")(2.0), fmt_value("%")(0.05), fmt_value("tok/s")(40.0)
    ('250 ms', '2 s', '5%', '40')
    """
    if unit == "s":
        return lambda v: f"{v * 1000:.0f} ms" if v < 1 else f"{v:.3g} s"
    if unit == "%":
        return lambda v: f"{v * 100:.3g}%"
    return lambda v: f"{v:.3g}"


def chart(t: np.ndarray, layers: Sequence[Line | Band | Stack | Bars | Threshold], *, marks: Sequence[Mark] = (),
          spans: Sequence[tuple[float, float, str]] = (), title: str = "", unit: str = "", width: int = 760,
          height: int = 200, t0: float | None = None, t1: float | None = None, ymax: float | None = None,
          chart_id: str = "") -> str:
    """One chart: ``t`` (unix seconds, one per point) shared by every layer; NaN values are gaps.

    ``spans`` are (start, end, state) of the breaker, drawn as a strip along the top of the plot
    in the state's colour, so a short half-open stays visible where its marks overlap."""
    t = np.asarray(t, dtype=np.float64)
    t0 = float(t[0]) if t0 is None and len(t) else (t0 or 0.0)
    t1 = float(t[-1]) if t1 is None and len(t) else (t1 or t0 + 60.0)
    if t1 <= t0:
        t1 = t0 + 60.0
    fmt = fmt_value(unit)
    top_v = ymax if ymax is not None else _nice(_peak(layers))
    top = 44.0 if marks else 26.0  # a second legend line for the marks
    f = _Frame(t0, t1, top_v, 58.0, top, width - 58.0 - 12.0, height - top - 24.0, fmt)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" data-chart="{escape(chart_id or title)}" '
           f'data-plot="{f.left:.0f},{f.top:.0f},{f.w:.0f},{f.h:.0f}">',
           f'<title>{escape(title)}</title>']
    out.append(_axes(f))
    for layer in layers:
        out.append(_layer(f, t, layer))
    for start, end, state in sorted(spans, key=lambda sp: sp[2] == "half_open"):  # short half-opens on top
        if end >= t0 and start <= t1:
            xs = f.x(np.array([max(start, t0), min(end, t1)]))
            out.append(f'<rect class="span" data-span="{escape(state)}" x="{xs[0]:.1f}" y="{f.top:.1f}" '
                       f'width="{max(3.0, xs[1] - xs[0]):.1f}" height="5" fill="{COLORS.get(state, COLORS["open"])}"/>')
    for m in marks:
        if t0 <= m.time <= t1:
            x = float(f.x(np.array([m.time]))[0])
            tip = escape(f"{_hhmm(m.time)} {m.label} {m.detail}".strip())
            style = ' stroke-dasharray="4 3" stroke-width="1.6"' if m.dash else ' stroke-width="2.2"'
            out.append(f'<g class="mark" data-mark="{escape(m.label)}"><title>{tip}</title>'
                       f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{f.top - 4:.1f}" y2="{f.top + f.h:.1f}" '
                       f'stroke="{m.color}"{style}/>'
                       f'<rect x="{x - 3:.1f}" y="{f.top - 9:.1f}" width="6" height="6" fill="{m.color}"/></g>')
    out.append(_legend(f, layers, title, marks))
    out.append("</svg>")
    return "".join(out)


def _peak(layers: Sequence[object]) -> float:
    peak = 0.0
    for layer in layers:
        arrays: list[np.ndarray] = []
        if isinstance(layer, Line):
            arrays = [layer.values]
        elif isinstance(layer, Band):
            arrays = [layer.high]
        elif isinstance(layer, Bars):
            arrays = [layer.values]
        elif isinstance(layer, Stack) and layer.values:
            arrays = [np.nansum(np.vstack(layer.values), axis=0)]
        elif isinstance(layer, Threshold):
            peak = max(peak, layer.value)
        for a in arrays:
            a = np.asarray(a, dtype=np.float64)
            if a.size and np.isfinite(a).any():
                peak = max(peak, float(np.nanmax(a)))
    return peak


def _nice(v: float) -> float:
    """The next "nice" axis top at or above ``v`` (1, 2, 2.5, 5 x 10^k)."""
    if not v > 0 or not math.isfinite(v):
        return 1.0
    exp = math.floor(math.log10(v))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        top = m * 10.0 ** exp
        if top >= v * 1.05:
            return top
    return 10.0 ** (exp + 1)


def _axes(f: _Frame) -> str:
    parts = ['<g class="axes" font-family="sans-serif" font-size="10" fill="' + COLORS["text"] + '">']
    for i in range(5):
        v = f.ymax * i / 4
        y = f.top + f.h - f.h * i / 4
        parts.append(f'<line x1="{f.left:.0f}" x2="{f.left + f.w:.0f}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="{COLORS["grid"]}"/>')
        parts.append(f'<text x="{f.left - 4:.0f}" y="{y + 3:.1f}" text-anchor="end">{escape(f.fmt(v))}</text>')
    step = _time_step(f.t1 - f.t0)
    first = math.ceil(f.t0 / step) * step
    tick = first
    while tick <= f.t1:
        x = float(f.x(np.array([tick]))[0])
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{f.top + f.h:.0f}" y2="{f.top + f.h + 4:.0f}" '
                     f'stroke="{COLORS["axis"]}"/>')
        parts.append(f'<text x="{x:.1f}" y="{f.top + f.h + 15:.0f}" text-anchor="middle">{_hhmm(tick)}</text>')
        tick += step
    parts.append(f'<line x1="{f.left:.0f}" x2="{f.left + f.w:.0f}" y1="{f.top + f.h:.0f}" y2="{f.top + f.h:.0f}" '
                 f'stroke="{COLORS["axis"]}"/></g>')
    return "".join(parts)


def _time_step(span: float) -> float:
    for step in (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400):
        if span / step <= 8:
            return float(step)
    return 86400.0 * math.ceil(span / 86400 / 8)


def _hhmm(t: float) -> str:
    return time.strftime("%H:%M", time.gmtime(t))


def _layer(f: _Frame, t: np.ndarray, layer: object) -> str:
    x = f.x(t)
    if isinstance(layer, Line):
        d = _path(x, f.y(np.asarray(layer.values, dtype=np.float64)))
        dash = f' stroke-dasharray="{layer.dash}"' if layer.dash else ""
        return (f'<path data-series="{escape(layer.label)}" d="{d}" fill="none" stroke="{layer.color}" '
                f'stroke-width="{layer.width}" stroke-linejoin="round"{dash}/>')
    if isinstance(layer, Band):
        return (f'<path data-series="{escape(layer.label)}" d="{_area(x, f.y(layer.low), f.y(layer.high))}" '
                f'fill="{layer.color}" fill-opacity="{layer.opacity}" stroke="none"/>')
    if isinstance(layer, Bars):
        v = np.asarray(layer.values, dtype=np.float64)
        bw = max(1.0, f.w / max(len(t), 1) * 0.8)
        ys = f.y(v)
        rects = "".join(f'<rect x="{xi - bw / 2:.1f}" y="{yi:.1f}" width="{bw:.1f}" height="{f.top + f.h - yi:.1f}"/>'
                        for xi, yi, ok in zip(x.tolist(), ys.tolist(), np.isfinite(v).tolist()) if ok)
        return f'<g data-series="{escape(layer.label)}" fill="{layer.color}">{rects}</g>'
    if isinstance(layer, Stack):
        base = np.zeros(len(t))
        parts = []
        for i, (label, vals) in enumerate(zip(layer.labels, layer.values)):
            v = np.nan_to_num(np.asarray(vals, dtype=np.float64))
            color = layer.colors[i % len(layer.colors)]
            parts.append(f'<path data-series="{escape(label)}" d="{_area(x, f.y(base), f.y(base + v))}" '
                         f'fill="{color}" fill-opacity="0.85" stroke="none"/>')
            base = base + v
        return "".join(parts)
    if isinstance(layer, Threshold):
        y = float(f.y(np.array([layer.value]))[0])
        return (f'<g data-series="{escape(layer.label)}"><line x1="{f.left:.0f}" x2="{f.left + f.w:.0f}" '
                f'y1="{y:.1f}" y2="{y:.1f}" stroke="{layer.color}" stroke-dasharray="5 4" stroke-width="1"/>'
                f'<text x="{f.left + f.w - 2:.0f}" y="{y - 3:.1f}" text-anchor="end" font-family="sans-serif" '
                f'font-size="9" fill="{layer.color}">{escape(layer.label)}</text></g>')
    raise TypeError(f"unknown chart layer {type(layer).__name__}")


def _legend(f: _Frame, layers: Sequence[object], title: str, marks: Sequence[Mark] = ()) -> str:
    parts = [f'<g class="legend" font-family="sans-serif" font-size="11" fill="{COLORS["text"]}">'
             f'<text x="{f.left:.0f}" y="14" font-weight="bold">{escape(title)}</text>']
    x = f.left + 8 + 7 * len(title)
    for layer in layers:
        entries: list[tuple[str, str]] = []
        if isinstance(layer, (Line, Bars)):
            entries = [(layer.label, layer.color)]
        elif isinstance(layer, Band):
            entries = [(layer.label, layer.color)]
        elif isinstance(layer, Stack):
            entries = [(lab, layer.colors[i % len(layer.colors)]) for i, lab in enumerate(layer.labels)]
        for label, color in entries:
            parts.append(f'<rect x="{x:.0f}" y="6" width="10" height="10" fill="{color}"/>'
                         f'<text x="{x + 13:.0f}" y="15">{escape(label)}</text>')
            x += 22 + 6.2 * len(label)
    seen: dict[str, str] = {}
    for m in marks:
        if f.t0 <= m.time <= f.t1:
            seen.setdefault(m.label, m.color)
    x = f.left + 8 + 7 * len(title)
    for label, color in seen.items():
        text = label.replace("_", "-")
        parts.append(f'<line x1="{x + 5:.0f}" x2="{x + 5:.0f}" y1="21" y2="33" stroke="{color}" stroke-width="2.5"/>'
                     f'<text x="{x + 13:.0f}" y="31">{escape(text)}</text>')
        x += 22 + 6.2 * len(text)
    parts.append("</g>")
    return "".join(parts)


def _path(x: np.ndarray, y: np.ndarray, decimals: int = 1) -> str:
    """An SVG path through the finite points; a NaN starts a new segment."""
    return "".join("M" + _pairs(x[i:j], y[i:j], decimals) for i, j in _spans_of(np.isfinite(y)))


def _area(x: np.ndarray, y_low: np.ndarray, y_high: np.ndarray, decimals: int = 1) -> str:
    """Closed polygons between two curves over each run where both are finite."""
    out = []
    for i, j in _spans_of(np.isfinite(y_low) & np.isfinite(y_high)):
        xs, hi, lo = x[i:j], y_high[i:j], y_low[i:j]
        if j - i == 1:  # a lone point: give it some width so it shows
            xs, hi, lo = np.array([xs[0] - 1, xs[0] + 1]), np.repeat(hi, 2), np.repeat(lo, 2)
        out.append("M" + _pairs(np.concatenate([xs, xs[::-1]]), np.concatenate([hi, lo[::-1]]), decimals) + "Z")
    return "".join(out)


def _spans_of(ok: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True."""
    if ok.all():
        return [(0, len(ok))] if len(ok) else []
    edges = np.diff(np.concatenate(([0], ok.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _pairs(x: np.ndarray, y: np.ndarray, decimals: int) -> str:
    """``x0 y0 x1 y1 ...``: after ``M``, SVG reads further pairs as line-tos."""
    xy = np.empty(2 * len(x))
    xy[0::2] = x
    xy[1::2] = y
    if decimals == 0:
        return " ".join(map(str, np.rint(xy).astype(np.int64).tolist()))
    return " ".join(map(repr, np.round(xy, decimals).tolist()))


def sparkline(ttft: np.ndarray, band_low: np.ndarray, band_high: np.ndarray, errors: np.ndarray,
              breaker: np.ndarray, *, width: int = 240, height: int = 40, points: int = 48) -> str:
    """The status page's row chart over the given minutes, folded into at most ``points`` columns
    (the worst minute of each): TTFT p50 (blue) against its band (green) on the upper part, the
    error rate (red) on the lower part, minutes with the breaker open shaded."""
    return sparklines(*(np.asarray(a, dtype=np.float64)[None, :] for a in (ttft, band_low, band_high, errors,
                                                                            breaker)),
                      width=width, height=height, points=points)[0]


def sparklines(ttft: np.ndarray, band_low: np.ndarray, band_high: np.ndarray, errors: np.ndarray,
               breaker: np.ndarray, *, width: int = 240, height: int = 40, points: int = 48) -> list[str]:
    """:func:`sparkline` for many keys at once: each argument has one row per key (a page of a
    thousand rows costs a few array operations, then string look-ups)."""
    rows = np.stack([ttft, band_high, errors, breaker, band_low], axis=1).astype(np.float64)
    count, _, minutes = rows.shape
    k = max(1, math.ceil(minutes / points))
    pad = (-minutes) % k
    if pad:
        rows = np.concatenate([np.full((count, 5, pad), np.nan), rows], axis=2)
    cube = rows.reshape(count, 5, -1, k)
    worst = np.fmax.reduce(cube[:, :4], axis=3)  # NaN-skipping; an all-NaN column stays NaN
    ttft, band_high, errors, breaker = (worst[:, i] for i in range(4))
    band_low = np.fmin.reduce(cube[:, 4], axis=2)
    n = ttft.shape[1]
    pairs = _pair_table(n, width, height)
    peak = np.fmax.reduce(np.concatenate([ttft, band_high], axis=1), axis=1)
    top = np.where(peak > 0, peak * 1.1, 1.0)  # NaN > 0 is False
    h1 = int(height * 0.68)
    scale = ((h1 - 2) / top)[:, None]

    def ys(v: np.ndarray) -> tuple[list[list[int]], list[list[bool]], list[bool]]:
        y = h1 + 1 - np.minimum(v * scale, h1 - 2)  # pixel rows of the upper part; NaN stays NaN
        ok = np.isfinite(y)
        return np.rint(np.where(ok, y, 0.0)).astype(np.int64).tolist(), ok.tolist(), ok.all(axis=1).tolist()

    (t_y, t_ok, t_all), (lo_y, lo_ok, lo_all), (hi_y, hi_ok, hi_all) = ys(ttft), ys(band_low), ys(band_high)
    epeak = np.fmax.reduce(errors, axis=1)
    e_on = (epeak > 0).tolist()
    e_y = np.rint(height - np.minimum(np.nan_to_num(errors) / np.fmax(0.1, epeak)[:, None], 1.0)
                  * (height - h1 - 2)).astype(np.int64).tolist()
    opened = np.nan_to_num(breaker) >= 1
    o_any = opened.any(axis=1).tolist()
    o_flags = opened.tolist()
    dx = width / max(n, 1)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="spark" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" preserveAspectRatio="none">')
    out = []
    for r in range(count):
        parts = [head]
        if o_any[r]:
            parts.append(f'<path d="{_flag_runs(o_flags[r], dx, height)}" fill="{COLORS["open"]}" '
                         f'fill-opacity="0.15"/>')
        spans = [(0, n)] if lo_all[r] and hi_all[r] else _list_spans([a and b for a, b in zip(lo_ok[r], hi_ok[r])])
        band = "".join(_spark_area(pairs, lo_y[r], hi_y[r], i, j) for i, j in spans)
        if band:
            parts.append(f'<path d="{band}" fill="{COLORS["band"]}" fill-opacity="0.3"/>')
        spans = [(0, n)] if t_all[r] else _list_spans(t_ok[r])
        line = "".join("M" + _spark_pairs(pairs[i:j], t_y[r][i:j]) for i, j in spans)
        if line:
            parts.append(f'<path d="{line}" fill="none" stroke="{COLORS["ttft_p50"]}" stroke-width="1.5"/>')
        if e_on[r]:
            parts.append(f'<path d="M0 {height}L{_spark_pairs(pairs, e_y[r])} {width} {height}Z" '
                         f'fill="{COLORS["errors"]}" fill-opacity="0.8"/>')
        parts.append("</svg>")
        out.append("".join(parts))
    return out


def _list_spans(flags: list[bool]) -> list[tuple[int, int]]:
    """(start, end) of each run of True in a list."""
    out = []
    start = None
    for i, f in enumerate(flags):
        if f and start is None:
            start = i
        elif not f and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(flags)))
    return out


def _flag_runs(flags: list[bool], w: float, height: float) -> str:
    return "".join(f"M{i * w:.1f} 0H{j * w:.1f}V{height}H{i * w:.1f}Z" for i, j in _list_spans(flags))


@functools.lru_cache(maxsize=16)
def _pair_table(n: int, width: int, height: int) -> list[list[str]]:
    """``"x y"`` for column ``i`` (its centre) and every pixel row ``y``: a row chart only looks strings up."""
    dx = width / max(n, 1)
    return [[f"{round(i * dx + dx / 2)} {y}" for y in range(height + 1)] for i in range(n)]


def _spark_pairs(columns: list[list[str]], y: list[int]) -> str:
    """``"x y"`` of each column's pixel row ``y``, looked up (map and getitem run in C)."""
    return " ".join(map(operator.getitem, columns, y))


def _spark_area(pairs: list[list[str]], y_low: list[int], y_high: list[int], i: int, j: int) -> str:
    if j - i == 1:  # a lone column: a short bar
        return f"M{pairs[i][y_high[i]]}L{pairs[i][y_low[i]]}"
    return ("M" + _spark_pairs(pairs[i:j], y_high[i:j]) + " "
            + _spark_pairs(pairs[i:j][::-1], y_low[i:j][::-1]) + "Z")


