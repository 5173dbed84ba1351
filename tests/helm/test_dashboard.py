"""The Grafana dashboard: well-formed, templated, shipped unchanged in the chart, on real metric names."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

import pytest
import yaml

from helm_support import CHART, ROOT, merged_values

DASHBOARD = ROOT / "dashboards" / "brownout.json"
RULES_SOURCE = ROOT / "deploy" / "prometheus" / "brownout-rules.yaml"
EXPORTER = ROOT / "brownout" / "exporters" / "prometheus.py"
MONITORING = CHART / "ci" / "monitoring-values.yaml"
METRIC = re.compile(r"\bbrownout_[a-z0-9_]+\b(?![:\w])")  # not recording-rule names (brownout_key:...)
KEYED = re.compile(r"\bbrownout_(key_|breaker_|alerts_)")
SERIES_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def test_the_chart_ships_the_repository_dashboard_unchanged() -> None:
    assert (CHART / "files" / "brownout.json").read_bytes() == DASHBOARD.read_bytes(), (
        "copy dashboards/brownout.json to helm/brownout/files/brownout.json")


def test_the_dashboard_is_templated_by_datasource_provider_region_and_model() -> None:
    d = dashboard()
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("provider", "region", "model"):
        assert variables[name]["type"] == "query" and variables[name]["multi"] and variables[name]["includeAll"]
    for panel in panels(d):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            if not KEYED.search(target["expr"]):
                continue  # collector-wide series carry no key labels
            for name in ("provider", "region", "model"):
                assert f'{name}=~"${name}"' in target["expr"], f"{panel['title']}: {target['expr']} ignores ${name}"


def test_the_dashboard_layout_has_unique_ids_and_no_overlap() -> None:
    d = dashboard()
    ids = [p["id"] for p in panels(d)]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in panels(d):
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"{p['title']} overlaps another panel"
        cells |= mine


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    exprs = {p["title"]: " ".join(t["expr"] for t in p.get("targets", [])) for p in panels(dashboard())}
    joined = " ".join(exprs.values())
    for metric in ("brownout_key_ttft_p50_seconds", "brownout_key_ttft_p50_baseline_seconds",
                   "brownout_key_latency_per_token_p95_seconds", "brownout_key_latency_per_token_p95_baseline_seconds",
                   "brownout_key_error_ratio", "brownout_key_output_tokens_per_second",
                   "brownout_breaker_state", "brownout_alerts_firing"):
        assert metric in joined, f"no panel shows {metric}"
    timelines = [p for p in panels(dashboard()) if p["type"] == "state-timeline"]
    breaker = next(p for p in timelines if "brownout_breaker_state" in p["targets"][0]["expr"])
    mapping = breaker["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert {v["text"] for v in mapping.values()} == {"closed", "half_open", "open"}


def exported_metrics() -> set[str]:
    """Metric names the Prometheus exporter defines (counters and histograms by their family name)."""
    if not EXPORTER.exists():
        pytest.skip("brownout/exporters/prometheus.py is not written yet: the dashboard uses the agreed names")
    return set(METRIC.findall(EXPORTER.read_text()))


def family(series: str) -> str:
    for suffix in SERIES_SUFFIXES:
        if series.endswith(suffix):
            return series[: -len(suffix)]
    return series


def test_dashboard_metrics_are_ones_the_exporter_defines() -> None:
    exported = exported_metrics()
    used = set(METRIC.findall(DASHBOARD.read_text()))
    unknown = sorted(m for m in used if m not in exported and family(m) not in exported)
    assert not unknown, f"the dashboard uses metrics the exporter does not define: {unknown}"


def test_prometheus_rules_use_metrics_the_exporter_defines() -> None:
    exported = exported_metrics()
    used = set(METRIC.findall((CHART / "files" / "prometheus-rules.yaml").read_text()))
    unknown = sorted(m for m in used if m not in exported and family(m) not in exported)
    assert not unknown, f"the Prometheus rules use metrics the exporter does not define: {unknown}"


def test_the_dashboard_config_map_is_labelled_for_the_grafana_sidecar(render: Any) -> None:
    rendered = render(MONITORING)
    cm = rendered.one("ConfigMap", "-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == merged_values(MONITORING)["grafanaDashboard"]["namespace"]
    assert json.loads(cm["data"]["brownout.json"]) == dashboard()
    assert not [d for d in render(None).of_kind("ConfigMap") if d["metadata"]["name"].endswith("-dashboard")]


def test_the_prometheus_rule_mirrors_the_repository_rules(render: Any) -> None:
    rule = render(MONITORING).one("PrometheusRule")
    shipped = yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    assert rule["spec"] == shipped
    if not RULES_SOURCE.exists():
        pytest.skip("deploy/prometheus/brownout-rules.yaml is not written yet: the chart ships its own rules")
    assert shipped == yaml.safe_load(RULES_SOURCE.read_text()), (
        "copy deploy/prometheus/brownout-rules.yaml to helm/brownout/files/prometheus-rules.yaml")


def test_every_per_key_metric_the_rules_alert_on_is_on_the_dashboard() -> None:
    in_rules = {m for m in METRIC.findall((CHART / "files" / "prometheus-rules.yaml").read_text()) if KEYED.match(m)}
    in_dashboard = set(METRIC.findall(DASHBOARD.read_text()))
    assert in_rules <= in_dashboard, f"rules alert on metrics the dashboard never shows: {sorted(in_rules - in_dashboard)}"


def test_dashboard_file_is_pretty_and_stable() -> None:
    text = DASHBOARD.read_text()
    assert text.endswith(("\n", "}"))
    assert json.dumps(json.loads(text), indent=2) == text.rstrip("\n")
