"""The status page over real HTTP (the collector's metrics server on loopback): rows, states,
key pages, JSON, nothing from elsewhere, caching, and failures that stay contained."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from brownout.exporters.prometheus import KeyStatusCollector, MetricsServer, StatusBoard
from brownout.model import Decision, Key
from brownout.rules import load_rules
from brownout.status import HistoryRecorder, StatusPage, key_path
from brownout.status.history import FIELDS

T0 = 1_795_510_800.0
OPEN = Key("openai", "eastus", "gpt-4o")
DEGRADED = Key("anthropic", "us-east-1", "claude-3-5-sonnet")
WARMING = Key("groq", "us-east-1", "llama-3-70b")
HEALTHY = Key("azure.ai.openai", "swedencentral", "gpt-4o/2024-08-06")  # a model with a slash


def st(t: float, requests: int, ttft: float, base: float | None, firing: tuple[str, ...] = (),
       err: float = 0.0) -> SimpleNamespace:
    v = {name: None for name in FIELDS if name != "breaker"}
    v.update(time=t, requests=requests, ttft_p50=ttft, ttft_p50_baseline=base, ttft_p95=ttft * 2,
             error_rate=err, capacity_error_rate=err, tokens_per_s=50.0, tokens_per_s_baseline=None if base is None
             else 55.0, warming=base is None, firing=firing)
    return SimpleNamespace(**v)


@pytest.fixture
def setup() -> Iterator[tuple[str, StatusPage, HistoryRecorder, StatusBoard]]:
    board = StatusBoard()
    history = HistoryRecorder(minutes=60)
    for m in range(60):
        t = T0 + 60 * m + 55
        bad = m >= 50
        status = {OPEN: st(t, 1200, 1.5 if bad else 0.5, 0.5, ("error_rate",) if bad else (), 0.3 if bad else 0.01),
                  DEGRADED: st(t, 600, 0.9, 0.6, ("ttft_drift",)), WARMING: st(t, 60, 0.2, None),
                  HEALTHY: st(t, 2400, 0.4, 0.41)}
        breakers = {OPEN: "open"} if bad else {}
        history.record(status, breakers)
        board.update(status, breakers)
    history.decision(Decision(T0 + 60 * 50 + 10, "alert", "error_rate", OPEN, "firing", 0.3, None, "critical"))
    history.decision(Decision(T0 + 60 * 50 + 20, "breaker", "error_breaker", OPEN, "open", 0.45, None, None, "tripped"))
    page = StatusPage(board, history, rules=load_rules(), refresh=7)
    registry = CollectorRegistry()
    registry.register(KeyStatusCollector(board))
    server = MetricsServer(registry, host="127.0.0.1", port=0, pages=page.handle)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}", page, history, board
    finally:
        server.stop()


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers["Content-Type"], e.read().decode()


def test_one_row_per_key_worst_first_with_its_state(setup) -> None:
    base, *_ = setup
    code, ctype, html = get(base + "/status")
    assert code == 200 and ctype.startswith("text/html")
    rows = re.findall(r'<tr data-state="(\w+)" data-key="([^"]+)"', html)
    assert rows == [("open", str(OPEN)), ("degraded", str(DEGRADED)), ("warming", str(WARMING)),
                    ("healthy", str(HEALTHY))]
    open_row = html[html.index(f'data-key="{OPEN}"'):html.index(f'data-key="{DEGRADED}"')]
    assert "20.0/s" in open_row and "30.0%" in open_row and "1500 ms" in open_row and "(500 ms)" in open_row
    assert "&times;3" in open_row and 'class="ratio hot"' in open_row  # 3 x baseline, past ttft_drift's 1.2
    assert "<svg" in open_row and 'data-label="breaker" class="br-open">open' in open_row
    assert "1 open" in html and "1 degraded" in html and "1 warming" in html and "1 healthy" in html
    assert "error_rate" in html[html.index("<h2>Firing</h2>"):]
    assert "tripped" in html[html.index("<h2>Timeline</h2>"):]  # the transition table


def test_the_page_is_self_contained_refreshes_itself_and_fits_a_phone(setup) -> None:
    base, *_ = setup
    _, _, html = get(base + "/status")
    assert '<meta http-equiv="refresh" content="7">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "@media (max-width:760px)" in html
    assert "<script" not in html and "src=" not in html and "@import" not in html
    external = [u for u in re.findall(r'(?:href|xlink:href)="([^"]+)"', html) if not u.startswith("/")]
    assert external == []
    assert "http://www.w3.org/2000/svg" in html  # the SVG namespace is a name, not a fetch


def test_key_page_json_and_not_found(setup) -> None:
    base, page, history, _ = setup
    code, _, html = get(base + key_path(HEALTHY))
    assert code == 200 and "azure.ai.openai/swedencentral/gpt-4o/2024-08-06" in html
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 4
    code, _, html = get(base + key_path(OPEN))
    assert 'data-mark="open"' in html and 'data-mark="firing"' in html  # transitions on the charts
    code, _, body = get(base + "/status/key/nobody/nowhere/nothing")
    assert code == 404 and "All keys" in body
    code, ctype, body = get(base + "/status.json")
    data = json.loads(body)
    assert code == 200 and ctype == "application/json"
    assert [(r["key"]["provider"], r["state"], r["url"]) for r in data["keys"]][:2] == [
        ("openai", "open", "/status/key/openai/eastus/gpt-4o"), ("anthropic", "degraded", key_path(DEGRADED))]
    assert data["keys"][0]["requests_per_s"] == 20.0 and data["keys"][0]["firing"] == ["error_rate"]


def test_metrics_and_probes_still_answer_beside_it(setup) -> None:
    base, *_ = setup
    code, _, text = get(base + "/metrics")
    assert code == 200 and 'brownout_breaker_state{model="gpt-4o",provider="openai",region="eastus"} 2.0' in text
    assert get(base + "/healthz")[0] == 200
    code, _, body = get(base + "/")
    assert code == 200 and 'href="/status"' in body
    assert get(base + "/nothing")[0] == 404


def test_a_failing_page_answers_500_and_the_server_lives_on(setup) -> None:
    base, page, _, board = setup

    class Broken:
        def key_status(self) -> dict:
            raise RuntimeError("boom")

        def breaker_states(self) -> dict:
            return {}

    page.source = Broken()
    assert get(base + "/status")[0] == 500
    page.source = board
    assert get(base + "/status")[0] == 200


def test_row_charts_are_cached_until_their_key_has_new_rows(setup) -> None:
    _, page, history, board = setup
    page.render_index()
    before = dict(page._sparks)
    page.render_index()
    assert all(page._sparks[k][1] is before[k][1] for k in before)  # reused, not redrawn
    t = T0 + 60 * 60 + 55
    history.record({HEALTHY: st(t, 2400, 0.4, 0.41)}, {})
    assert page.warm() == 4  # one key has a new row, and the page's end minute moved for all
    history.record({HEALTHY: st(t + 1, 2400, 0.45, 0.41)}, {})
    assert page.warm() == 1


def test_sparkline_shows_the_open_minutes_and_the_errors() -> None:
    from brownout.status import svg

    n = 240
    ttft = np.full(n, 0.5)
    ttft[200:] = 1.5
    err = np.zeros(n)
    err[200:] = 0.3
    brk = np.zeros(n)
    brk[205:230] = 2.0
    out = svg.sparkline(ttft, np.full(n, 0.5), np.full(n, 0.6), err, brk)
    assert out.count("<path") == 4  # open shading, band, TTFT line, errors
    shade = re.search(r'<path d="M([\d.]+) 0H([\d.]+)V40', out)
    assert shade is not None
    # 240 minutes in 48 columns of 5: minutes 205..229 are columns 41..45, 5 px each
    assert (float(shade.group(1)), float(shade.group(2))) == (205.0, 230.0)


def test_sparkline_leaves_minutes_without_readings_empty() -> None:
    from brownout.status import svg

    n = 240
    ttft = np.full(n, np.nan)
    ttft[180:] = 0.5  # only the last hour has readings
    out = svg.sparkline(ttft, ttft * 0.9, ttft * 1.1, np.zeros(n), np.zeros(n))
    line = re.search(r'<path d="M([^"]+)" fill="none"', out)
    assert line is not None
    xs = [int(v) for v in line.group(1).split()[0::2]]
    assert min(xs) >= 180 and len(xs) == 12  # 60 minutes in columns of 5, starting where readings do
