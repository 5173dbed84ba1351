"""The scrape-time collector, the collector's own metrics, the HTTP server, promtool and a real Prometheus."""

from __future__ import annotations

import math
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from exporters_support import need_binary
from prometheus_client import CollectorRegistry

from brownout.exporters.prometheus import (
    BREAKER_STATE_VALUES,
    KEY_GAUGES,
    CollectorMetrics,
    KeyStatusCollector,
    MetricsServer,
    StatusBoard,
)
from brownout.model import Decision, Key

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "brownout-rules.yaml"


@dataclass(frozen=True)
class Status:
    """Shaped like brownout.detectors.KeyStatus."""

    requests: int = 100
    error_rate: float | None = 0.01
    capacity_error_rate: float | None = 0.005
    ttft_p50: float | None = 0.4
    ttft_p50_baseline: float | None = 0.35
    ttft_p95: float | None = 0.9
    ttft_p95_baseline: float | None = 0.7
    stalls: int = 2
    latency_p95: float | None = 3.0
    latency_p95_baseline: float | None = 2.5
    tokens_per_s: float | None = 55.0
    tokens_per_s_baseline: float | None = 60.0
    itl_p95: float | None = 0.03
    goodput: float | None = 0.99
    warming: bool = False
    firing: tuple[str, ...] = ()


def keys(n: int) -> list[Key]:
    return [Key("openai", f"region{i:02d}", "gpt-4o") for i in range(n)]


def scrape(board: StatusBoard, **kw: int) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(KeyStatusCollector(board, **kw))
    return reg


def labels(k: Key) -> dict[str, str]:
    return k.as_dict()


def test_every_reading_is_exported_per_key() -> None:
    board = StatusBoard()
    statuses = {k: Status(requests=10 * (i + 1), ttft_p50=0.1 * (i + 1), firing=("ttft_drift",) if i else ())
                for i, k in enumerate(keys(3))}
    board.update(statuses, {keys(3)[1]: "half_open"})
    reg = scrape(board)
    for k, st in statuses.items():
        for name, attr, _ in KEY_GAUGES:
            assert reg.get_sample_value(name, labels(k)) == pytest.approx(getattr(st, attr)), name
        assert reg.get_sample_value("brownout_key_warming", labels(k)) == 0.0
    assert reg.get_sample_value("brownout_breaker_state", labels(keys(3)[0])) == BREAKER_STATE_VALUES["closed"]
    assert reg.get_sample_value("brownout_breaker_state", labels(keys(3)[1])) == BREAKER_STATE_VALUES["half_open"]
    assert reg.get_sample_value("brownout_alerts_firing", {"rule": "ttft_drift", **labels(keys(3)[1])}) == 1.0
    assert reg.get_sample_value("brownout_alerts_firing", {"rule": "ttft_drift", **labels(keys(3)[0])}) is None


def test_unknown_readings_are_left_out_not_zero() -> None:
    board = StatusBoard()
    k = keys(1)[0]
    board.update({k: Status(ttft_p50_baseline=None, latency_p95=math.nan, warming=True)})
    reg = scrape(board)
    assert reg.get_sample_value("brownout_key_ttft_p50_baseline_seconds", labels(k)) is None
    assert reg.get_sample_value("brownout_key_latency_per_token_p95_seconds", labels(k)) is None
    assert reg.get_sample_value("brownout_key_ttft_p50_seconds", labels(k)) == 0.4
    assert reg.get_sample_value("brownout_key_warming", labels(k)) == 1.0


def test_key_cardinality_is_bounded_keeping_hot_and_busy_keys() -> None:
    ks = keys(10)
    status = {k: Status(requests=i) for i, k in enumerate(ks)}
    status[ks[0]] = Status(requests=0, firing=("error_rate",))
    board = StatusBoard()
    board.update(status, {ks[1]: "open"})
    reg = scrape(board, max_keys=4)
    exported = {k for k in ks if reg.get_sample_value("brownout_breaker_state", labels(k)) is not None}
    assert exported == {ks[0], ks[1], ks[9], ks[8]}
    assert reg.get_sample_value("brownout_metrics_keys_dropped") == 6
    assert reg.get_sample_value("brownout_metrics_keys") == 10


def test_breaker_only_keys_are_exported() -> None:
    board = StatusBoard()
    k = keys(1)[0]
    board.update({}, {k: "open"})
    assert scrape(board).get_sample_value("brownout_breaker_state", labels(k)) == 2.0


def test_a_failing_source_does_not_fail_the_scrape() -> None:
    class Broken:
        def key_status(self):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

        def breaker_states(self):  # type: ignore[no-untyped-def]
            return {}

    reg = CollectorRegistry()
    reg.register(KeyStatusCollector(Broken()))
    assert reg.get_sample_value("brownout_status_up") == 0.0


def test_max_keys_is_validated() -> None:
    with pytest.raises(ValueError, match="max_keys"):
        KeyStatusCollector(StatusBoard(), max_keys=0)


def test_collector_metrics_count_what_they_are_told() -> None:
    reg = CollectorRegistry()
    m = CollectorMetrics(reg)
    for outcome in ("accepted", "accepted", "invalid"):
        m.event(outcome)
    m.decode_error("bad_value", 3)
    m.late(2)
    m.lag("brownout.events", 0, 42)
    m.delay(0.3)
    m.delay(math.inf)  # ignored, not a crash
    m.notification("pagerduty", "deferred")
    m.decision(Decision(0.0, "breaker", "error_breaker", keys(1)[0], "open"))
    get = reg.get_sample_value
    assert get("brownout_events_total", {"outcome": "accepted"}) == 2
    assert get("brownout_decode_errors_total", {"reason": "bad_value"}) == 3
    assert get("brownout_late_events_total") == 2
    assert get("brownout_consumer_lag", {"topic": "brownout.events", "partition": "0"}) == 42
    assert get("brownout_processing_delay_seconds_count") == 1
    assert get("brownout_notifications_total", {"integration": "pagerduty", "result": "deferred"}) == 1
    assert get("brownout_decisions_total", {"kind": "breaker", "state": "open"}) == 1


@pytest.fixture
def served() -> tuple[MetricsServer, StatusBoard, list[bool]]:
    reg = CollectorRegistry()
    board = StatusBoard()
    board.update({k: Status(firing=("ttft_drift",)) for k in keys(3)}, {keys(3)[0]: "open"})
    reg.register(KeyStatusCollector(board))
    m = CollectorMetrics(reg)
    m.event("accepted")
    m.notification("slack", "delivered")
    m.delay(0.2)
    m.lag("brownout.events", 0, 5)
    ready = [False]
    server = MetricsServer(reg, host="127.0.0.1", port=0, ready=lambda: ready[0])
    server.start()
    yield server, board, ready
    server.stop()


def get(server: MetricsServer, path: str, accept: str = "") -> tuple[int, str, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def test_server_paths(served) -> None:
    server, _, ready = served
    status, ctype, text = get(server, "/metrics")
    assert status == 200 and ctype.startswith("text/plain") and "brownout_key_ttft_p50_seconds" in text
    status, ctype, text = get(server, "/metrics", "application/openmetrics-text; version=1.0.0")
    assert status == 200 and ctype.startswith("application/openmetrics-text") and text.endswith("# EOF\n")
    assert get(server, "/healthz")[0] == 200
    assert get(server, "/readyz")[0] == 503
    ready[0] = True
    assert get(server, "/readyz")[0] == 200
    assert get(server, "/nope")[0] == 404


def test_a_raising_readiness_check_is_not_ready() -> None:
    def boom() -> bool:
        raise RuntimeError("no")

    server = MetricsServer(CollectorRegistry(), host="127.0.0.1", port=0, ready=boom)
    server.start()
    try:
        assert get(server, "/readyz")[0] == 503
    finally:
        server.stop()


def test_promtool_check_metrics_passes(served) -> None:
    promtool = need_binary("promtool")
    _, _, text = get(served[0], "/metrics")
    out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "" and out.stderr.strip() == "", out.stdout + out.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_real_prometheus_scrapes_metrics(served, tmp_path: Path) -> None:
    binary = need_binary("prometheus")
    server, _, _ = served
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files: ['{RULES}']\n"
        "scrape_configs:\n  - job_name: brownout\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{server.port}']\n")
    port = _free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen([binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        query = ('brownout_breaker_state{provider="openai",region="region00",model="gpt-4o"}')
        deadline = time.monotonic() + 45
        result: list = []
        while time.monotonic() < deadline and not result:
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited: {(tmp_path / 'prometheus.log').read_text()[-2000:]}")
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=2)
                if r.status_code == 200:
                    result = r.json()["data"]["result"]
            except httpx.TransportError:
                pass
            if not result:
                time.sleep(0.3)
        assert result, "prometheus never scraped the series"
        assert float(result[0]["value"][1]) == 2.0
        targets = httpx.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=2).json()
        health = [t["health"] for t in targets["data"]["activeTargets"]]
        assert health == ["up"], targets
        # The shipped rules run on the scraped series: the open breaker alerts.
        firing: list = []
        while time.monotonic() < deadline and not firing:
            alerts = httpx.get(f"http://127.0.0.1:{port}/api/v1/alerts", timeout=2).json()["data"]["alerts"]
            firing = [a for a in alerts if a["labels"]["alertname"] == "BrownoutBreakerOpen" and a["state"] == "firing"]
            if not firing:
                time.sleep(0.3)
        assert [a["labels"]["region"] for a in firing] == ["region00"]
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_a_taken_port_is_named() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        server = MetricsServer(CollectorRegistry(), host="127.0.0.1", port=port)
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            server.start()
