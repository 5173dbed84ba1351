"""deploy/prometheus: the alerting rules pass promtool's checks and unit tests, name only metrics
brownout serves, and the example Alertmanager config is valid."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml
from exporters_support import need_binary
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from brownout.exporters.prometheus import CollectorMetrics, KeyStatusCollector, StatusBoard
from brownout.model import Decision, Key

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = DEPLOY / "brownout-rules.yaml"


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=DEPLOY, check=False)


def test_promtool_check_rules() -> None:
    out = run(need_binary("promtool"), "check", "rules", str(RULES))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_promtool_test_rules() -> None:
    out = run(need_binary("promtool"), "test", "rules", str(DEPLOY / "brownout-rules.test.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_example_alertmanager_config_is_valid() -> None:
    out = run(need_binary("amtool"), "check-config", str(DEPLOY / "alertmanager.example.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr


def served_metric_names() -> set[str]:
    from types import SimpleNamespace

    reg = CollectorRegistry()
    board = StatusBoard()
    k = Key("p", "r", "m")
    everything = SimpleNamespace(requests=1, error_rate=0.1, capacity_error_rate=0.1, ttft_p50=1, ttft_p50_baseline=1,
                                 ttft_p95=1, ttft_p95_baseline=1, stalls=0,
                                 latency_p95=1, latency_p95_baseline=1, tokens_per_s=1, tokens_per_s_baseline=1,
                                 itl_p95=1, goodput=1, warming=False, firing=("x",))
    board.update({k: everything}, {k: "open"})
    reg.register(KeyStatusCollector(board))
    m = CollectorMetrics(reg)
    m.event("accepted")
    m.decode_error("x")
    m.late()
    m.lag("t", 0, 1)
    m.delay(1.0)
    m.notification("slack", "delivered")
    m.decision(Decision(0.0, "alert", "x", k, "firing"))
    from prometheus_client import generate_latest

    names = set()
    for fam in text_string_to_metric_families(generate_latest(reg).decode()):
        names.update(s.name for s in fam.samples)
    return names


def test_rules_name_only_metrics_brownout_serves() -> None:
    doc = yaml.safe_load(RULES.read_text())
    recorded = {r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r}
    used = set()
    for g in doc["groups"]:
        for r in g["rules"]:
            used.update(re.findall(r"\bbrownout_[a-z0-9_]+\b", r["expr"]))
    used -= {name for name in used if any(name in rec for rec in recorded)}
    missing = used - served_metric_names()
    assert not missing, f"rules use metrics brownout does not serve: {sorted(missing)}"
    assert "brownout_key_ttft_p50_seconds" in used  # the extraction found the per-key gauges
