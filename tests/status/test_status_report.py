"""Incident reports: per-minute series against a numpy oracle, the same decisions as replay,
incident spans, the files written, and the command."""

from __future__ import annotations

import io
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from brownout.cli import main
from brownout.model import Decision, Event, Key
from brownout.replay import replay
from brownout.status.report import find_incidents, judge, minute_series, parse_time, write_reports

T0 = 1_795_510_800.0
EAST, WEST = Key("openai", "eastus", "gpt-4o"), Key("openai", "westus", "gpt-4o")


def traffic(minutes: int = 30, burst: tuple[int, int] = (15, 20), seed: int = 3) -> list[Event]:
    """Two regions at 4 requests/s; eastus fails a third of its calls with 503/429 and triples its
    TTFT during ``burst`` (minutes)."""
    rng = random.Random(seed)
    out = []
    for i in range(minutes * 60 * 4):
        t = T0 + i / 4
        for key in (EAST, WEST):
            bad = key == EAST and burst[0] * 60 <= t - T0 < burst[1] * 60
            if bad and rng.random() < 0.35:
                out.append(Event(key, t, 0.2, error_type=rng.choice(("503", "429"))))
            else:
                ttft = rng.lognormvariate(np.log(0.4 * (3 if bad else 1)), 0.2)
                out.append(Event(key, t, ttft + 2.0, ttft=ttft, output_tokens=100, stream=True))
    return out


def test_minute_series_matches_numpy_per_minute() -> None:
    rng = random.Random(9)
    evs = []
    for _ in range(3000):
        start = T0 + rng.random() * 600
        kind = rng.random()
        if kind < 0.1:
            evs.append(Event(EAST, start, 1.0, error_type=rng.choice(("503", "429", "timeout"))))
        elif kind < 0.15:
            evs.append(Event(EAST, start, 2.0, error_type="cancelled", ttft_at_least=1.5))
        elif kind < 0.2:
            evs.append(Event(EAST, start, 3.0, stall=True, ttft_at_least=3.0))
        else:
            ttft = rng.random()
            evs.append(Event(EAST, start, ttft + rng.random() * 5, ttft=ttft, output_tokens=rng.randint(2, 300)))
    s = minute_series(evs)[EAST]
    for i, m in enumerate(s.minute.tolist()):
        mine = [e for e in evs if int(e.end // 60) == m]
        done = [e for e in mine if not e.stall]
        ok = [e for e in done if e.error_type is None]
        assert s.requests[i] == len(done)
        assert s.stalls[i] == sum(1 for e in mine if e.stall)
        for code in ("503", "429", "timeout"):
            assert s.errors[code][i] == sum(1 for e in done if e.error_type == code)
        assert "cancelled" not in s.errors  # the caller's choice, never the provider's error
        if ok:
            q50, q95 = np.quantile([e.ttft for e in ok], [0.5, 0.95])
            assert (s.ttft_p50[i], s.ttft_p95[i]) == pytest.approx((q50, q95))
            assert s.tokens_per_s[i] == pytest.approx(np.median([e.output_tokens_per_second for e in ok]))
            assert s.latency_p95[i] == pytest.approx(np.quantile([e.duration for e in ok], 0.95))


def test_judge_decides_what_replay_decides() -> None:
    evs = traffic()
    lines = io.StringIO("\n".join(json.dumps(e.to_flat()) for e in evs))
    out = io.StringIO()
    replay(lines, out)
    want = [json.loads(x) for x in out.getvalue().splitlines()]
    got = [d.to_json() for d in judge(evs).decisions]
    key = ("time", "kind", "rule", "state")
    assert [tuple(d[k] for k in key) + (d["key"]["region"],) for d in got] == \
        [tuple(d[k] for k in key) + (d["key"]["region"],) for d in want]
    assert any(d["state"] == "open" for d in want)


def test_incidents_span_firing_to_all_clear_and_merge_close_ones() -> None:
    def d(t: float, kind: str, state: str, rule: str = "error_rate", key: Key = EAST) -> Decision:
        return Decision(T0 + t, kind, rule if kind == "alert" else "error_breaker", key, state)

    ds = [d(0, "alert", "pending"), d(30, "alert", "firing"), d(35, "breaker", "open"),
          d(90, "breaker", "half_open"), d(100, "breaker", "closed"), d(200, "alert", "resolved"),
          d(500, "alert", "firing"), d(560, "alert", "resolved"),          # 300 s later: the same incident
          d(5000, "alert", "pending"), d(5030, "alert", "resolved"),      # never fired: no incident
          d(9000, "alert", "firing", key=WEST)]                            # still firing at the end
    inc = find_incidents(ds)
    assert [(i.key, i.start - T0, None if i.end is None else i.end - T0) for i in inc] == [
        (EAST, 30.0, 560.0), (WEST, 9000.0, None)]
    assert [x.state for x in inc[0].decisions][:5] == ["firing", "open", "half_open", "closed", "resolved"]
    assert len(find_incidents(ds, merge_gap=60)) == 3


def test_reports_are_written_per_incident_with_charts_marks_and_a_table(tmp_path: Path) -> None:
    written = write_reports(traffic(), tmp_path, png=False, source="test traffic")
    assert [w.incident.key for w in written] == [EAST]
    html = written[0].html.read_text()
    assert written[0].html.name.startswith("incident-20261124T0915-openai-eastus-gpt-4o")
    assert html.count('class="chart"') == 4
    for series in ("TTFT p50", "TTFT p95", "baseline band (p50 baseline to alert)", "503", "429",
                   "output tokens/s (median)", "requests/s"):
        assert f'data-series="{series}"' in html, series
    for mark in ("firing", "open", "half_open", "closed", "resolved"):
        assert f'data-mark="{mark}"' in html, mark
    band = re.search(r'data-series="baseline band \(p50 baseline to alert\)" d="([^"]*)"', html)
    assert band is not None and band.group(1).startswith("M")  # the band is drawn, not empty
    table = html[html.index("What fired when"):]
    assert "error_breaker" in table and "tripped" in table and "<script" not in html and "src=" not in html
    index = (tmp_path / "index.html").read_text()
    assert f'href="{written[0].html.name}"' in index


def test_the_report_command_writes_from_a_replay_file(tmp_path: Path) -> None:
    src = tmp_path / "events.jsonl"
    src.write_text("\n".join(json.dumps(e.to_flat()) for e in traffic()) + "\nnot json\n")
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["report", str(src), "--out", str(out), "--no-png"])
    assert r.exit_code == 0, r.output
    assert "skipped 1 invalid line" in r.output and "1 incident(s)" in r.output
    assert len(list(out.glob("incident-*.html"))) == 1
    r = CliRunner().invoke(main, ["report", str(src), "--out", str(out), "--no-png",
                                  "--from", "2026-11-24T10:00:00Z"])
    assert r.exit_code == 0 and "0 incident(s)" in r.output  # nothing starts after the range begins
    r = CliRunner().invoke(main, ["report", "--out", str(out)])
    assert r.exit_code != 0 and "give a FILE, or --from" in r.output


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "now-3w", ""])
def test_bad_times_are_named(bad: str) -> None:
    with pytest.raises(ValueError, match="not a time"):
        parse_time(bad)
