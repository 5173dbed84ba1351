"""The status page and an incident report in a real headless Chromium (Debian's package): the
charts rendered (their series' colours are in the screenshot, inside each chart's box), the page
fits a phone, and the demo's report shows the incident, the baseline band and the breaker's
open, half-open and closed marks.

The data is the demo's: its collector feeds a status board and a history as ``brownout collect``
does, and the demo's own ``write_report`` runs on the events it sent. Screenshots go to a
temporary directory, or to ``$BROWNOUT_SCREENSHOTS`` (``scripts/screenshots``: ``docs/screenshots``).
"""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from status_support import decode_png, hex_rgb, need_chromium, over_white

from brownout.demo import INCIDENT_KEY, Timeline, run_demo, write_report
from brownout.exporters.prometheus import MetricsServer, StatusBoard
from brownout.rules import load_rules
from brownout.status import HistoryRecorder, StatusPage, key_path
from brownout.status.chromium import HeadlessChromium
from brownout.status.svg import COLORS

BLUE = hex_rgb(COLORS["ttft_p50"])
RED_AREA = over_white(COLORS["errors"], 0.8)
BAND_SPARK = over_white(COLORS["band"], 0.3)
BAND_CHART = over_white(COLORS["band"], 0.22)
OPEN_SHADE = over_white(COLORS["open"], 0.15)


@pytest.fixture(scope="module")
def shots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("BROWNOUT_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def serve_demo(timeline: Timeline) -> Iterator[dict[str, Any]]:
    """The demo, run as fast as it goes, its collector feeding a status page."""
    need_chromium()
    rules = load_rules()
    board, history = StatusBoard(), HistoryRecorder(minutes=60)
    page = StatusPage(board, history, rules=rules, refresh=0)
    server = MetricsServer(CollectorRegistry(), host="127.0.0.1", port=0, pages=page.handle)
    server.start()
    try:
        result = asyncio.run(run_demo(speed=1e9, out=io.StringIO(), live=False, timeline=timeline, rules=rules,
                                      board=board, history=history))
        yield {"base": f"http://127.0.0.1:{server.port}", "result": result, "rules": rules}
    finally:
        server.stop()


@pytest.fixture(scope="module")
def demo() -> Iterator[dict[str, Any]]:
    """The whole demo: the incident is over, the breaker closed."""
    yield from serve_demo(Timeline())


@pytest.fixture(scope="module")
def demo_mid_incident() -> Iterator[dict[str, Any]]:
    """The demo stopped two minutes into its incident (09:14)."""
    yield from serve_demo(Timeline(end=840.0))


@pytest.fixture(scope="module")
def browser() -> Iterator[HeadlessChromium]:
    need_chromium()
    with HeadlessChromium() as b:
        yield b


def shot(browser: HeadlessChromium, box: dict[str, float]) -> Any:
    return decode_png(browser.screenshot(box))


def test_status_page_rows_and_their_charts_render(demo: dict[str, Any], browser: HeadlessChromium,
                                                   shots_dir: Path) -> None:
    browser.goto(demo["base"] + "/status", width=1280, height=900)
    (shots_dir / "status-page.png").write_bytes(browser.screenshot(full_page=True))
    keys = browser.evaluate("Array.from(document.querySelectorAll('tr[data-key]')).map(r => r.dataset.key)")
    states = browser.evaluate("Array.from(document.querySelectorAll('tr[data-key]')).map(r => r.dataset.state)")
    assert len(keys) == 7 and set(states) == {"healthy"}  # the incident is over: every key healthy again
    boxes = browser.rects("td.spark svg")
    assert len(boxes) == 7
    for key, box in zip(keys, boxes):
        assert box["width"] >= 200 and box["height"] >= 36, (key, box)
        img = shot(browser, box)
        assert img.count(BLUE, tol=60) > 50, f"no TTFT line in {key}'s chart"
        # the demo's 23 minutes fill the right part of the hour drawn: nothing on the left half
        assert img.count(BLUE, box=(0, 0, img.width // 2, img.height), tol=60) == 0, key
        assert img.count(BAND_SPARK, tol=14) > 5, f"no baseline band in {key}'s chart"
    incident = shot(browser, boxes[keys.index(str(INCIDENT_KEY))])
    upper = (0, 0, incident.width, incident.height // 2)  # above the error area: only the open shading
    assert incident.count(RED_AREA, tol=30) > 20  # the 503/429 burst
    assert incident.count(OPEN_SHADE, box=upper, tol=10) > 20  # minutes with the breaker open
    quiet = shot(browser, boxes[keys.index("groq/us-east-1/llama-2-70b")])
    assert quiet.count(OPEN_SHADE, box=upper, tol=10) == 0
    timeline = browser.rects("svg.timeline")
    assert len(timeline) == 1
    assert shot(browser, timeline[0]).count(hex_rgb(COLORS["open"]), tol=20) > 10


def test_during_the_incident_its_key_comes_first_and_open(demo_mid_incident: dict[str, Any],
                                                           browser: HeadlessChromium, shots_dir: Path) -> None:
    browser.goto(demo_mid_incident["base"] + "/status", width=1280, height=900)
    (shots_dir / "status-page-incident.png").write_bytes(browser.screenshot(full_page=True))
    first = browser.evaluate("[document.querySelector('tr[data-key]').dataset.key, "
                             "document.querySelector('tr[data-key]').dataset.state]")
    assert first == [str(INCIDENT_KEY), "open"]
    pill = browser.rects("tr[data-key] .pill.open")[0]
    assert shot(browser, pill).count(hex_rgb(COLORS["open"]), tol=10) > 100
    firing = browser.evaluate("document.querySelector('ul.firing').textContent")
    assert "error_rate" in firing and str(INCIDENT_KEY) in firing


def test_status_page_reads_on_a_phone(demo_mid_incident: dict[str, Any], browser: HeadlessChromium,
                                      shots_dir: Path) -> None:
    browser.goto(demo_mid_incident["base"] + "/status", width=390, height=844, mobile=True, scale=2)
    (shots_dir / "status-page-phone.png").write_bytes(browser.screenshot())
    assert browser.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    assert browser.evaluate("getComputedStyle(document.querySelector('table.keys thead')).display") == "none"
    rows = browser.rects("tr[data-key]")
    assert rows and all(r["width"] <= 390 for r in rows)
    charts = browser.rects("td.spark svg")
    assert all(c["width"] >= 300 for c in charts)  # a card's chart takes the card's width
    assert shot(browser, charts[0]).count(BLUE, tol=60) > 50


def test_key_page_charts_mark_the_breaker(demo: dict[str, Any], browser: HeadlessChromium, shots_dir: Path) -> None:
    browser.goto(demo["base"] + key_path(INCIDENT_KEY), width=1000, height=900)
    (shots_dir / "status-key-page.png").write_bytes(browser.screenshot(full_page=True))
    charts = browser.rects("svg.chart")
    assert len(charts) == 4
    ttft = shot(browser, charts[0])
    assert ttft.count(BLUE, tol=30) > 200
    for mark in ("open", "closed"):
        assert ttft.count(hex_rgb(COLORS[mark]), tol=20) > 30, mark
    # half-open lasts seconds and its marks sit under the next open or closed one: the strip shows it
    assert browser.evaluate("document.querySelectorAll('svg.chart rect[data-span=half_open]').length") >= 4
    assert ttft.count(hex_rgb(COLORS["half_open"]), tol=20) > 30
    assert shot(browser, charts[1]).count(hex_rgb(COLORS["errors"]), tol=60) > 100


def test_the_demo_report_shows_the_incident_band_and_breaker_marks(demo: dict[str, Any], browser: HeadlessChromium,
                                                                    shots_dir: Path) -> None:
    out = shots_dir / "report"
    said = io.StringIO()
    written = write_report(demo["result"], str(out), demo["rules"], said, png=True)  # what `brownout demo` ends with
    assert [w.incident.key for w in written] == [INCIDENT_KEY]
    assert f"incident report: {written[0].html.resolve()} (+ 4 PNG charts)" in said.getvalue()
    w = written[0]
    assert sorted(p.name.rsplit("-", 1)[1] for p in w.pngs) == ["errors.png", "requests.png", "tokens.png", "ttft.png"]
    browser.goto(w.html.resolve().as_uri(), width=960, height=900)
    (shots_dir / "report.png").write_bytes(browser.screenshot(full_page=True))
    charts = dict(zip(["ttft", "errors", "tokens", "requests"], browser.rects("svg.chart")))
    ttft = shot(browser, charts["ttft"])
    assert ttft.count(BLUE, tol=30) > 300
    assert ttft.count(BAND_CHART, tol=12) > 100, "no baseline band"
    for mark in ("open", "half_open", "closed", "firing"):
        assert ttft.count(hex_rgb(COLORS[mark]), tol=20) > 30, mark
    errors = shot(browser, charts["errors"])
    assert errors.count(over_white("#d62728", 0.85), tol=25) > 200  # 503
    assert errors.count(over_white("#ff7f0e", 0.85), tol=25) > 200  # 429
    assert shot(browser, charts["tokens"]).count(hex_rgb(COLORS["tokens"]), tol=30) > 200
    assert shot(browser, charts["requests"]).count(hex_rgb(COLORS["requests"]), tol=10) > 500
    # the PNG files hold the same pictures (drawn at twice the scale)
    png = decode_png((w.html.parent / f"{w.html.stem}-ttft.png").read_bytes())
    assert png.width == 2 * int(charts["ttft"]["width"])
    assert png.count(BLUE, tol=30) > 4 * 300 and png.count(hex_rgb(COLORS["open"]), tol=20) > 4 * 30
