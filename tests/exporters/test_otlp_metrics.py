"""OTLP export of the per-key figures: in memory, and over OTLP/HTTP to a loopback receiver."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from brownout.exporters.otlp import OTLP_GAUGES, OtlpKeyMetrics
from brownout.exporters.prometheus import StatusBoard
from brownout.model import Key

KEYS = [Key("openai", "eastus", "gpt-4o"), Key("anthropic", "us-east-1", "claude"), Key("openai", "westus", "gpt-4o")]


def status(i: int) -> SimpleNamespace:
    return SimpleNamespace(requests=10 * i, error_rate=0.01 * i, capacity_error_rate=0.0, ttft_p50=0.1 * (i + 1),
                           ttft_p50_baseline=0.3, latency_p95=2.0, latency_p95_baseline=None, tokens_per_s=50.0,
                           tokens_per_s_baseline=60.0, itl_p95=0.02, goodput=0.99, warming=False,
                           ttft_p95=0.2 * (i + 1), ttft_p95_baseline=0.6 if i else None, stalls=i,
                           firing=("ttft_drift",) if i == 0 else ())


def points(reader: InMemoryMetricReader) -> dict[str, dict[tuple, float]]:
    out: dict[str, dict[tuple, float]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for dp in m.data.data_points:
                    attrs = dict(dp.attributes)
                    key = (attrs["gen_ai.provider.name"], attrs["cloud.region"], attrs["gen_ai.request.model"],
                           attrs.get("brownout.rule"))
                    out.setdefault(m.name, {})[key] = dp.value
    return out


def test_in_memory_export_has_every_figure_per_key_with_otel_attributes() -> None:
    board = StatusBoard()
    board.update({k: status(i) for i, k in enumerate(KEYS)}, {KEYS[1]: "open"})
    reader = InMemoryMetricReader()
    otlp = OtlpKeyMetrics(board, reader=reader)
    try:
        got = points(reader)
    finally:
        otlp.shutdown()
    for i, k in enumerate(KEYS):
        ident = (k.provider, k.region, k.model, None)
        for name, attr, _, _ in OTLP_GAUGES:
            expected = getattr(status(i), attr)
            if expected is None:
                assert ident not in got.get(name, {}), name
            else:
                assert got[name][ident] == pytest.approx(expected), name
    assert got["brownout.breaker.state"][(KEYS[1].provider, KEYS[1].region, KEYS[1].model, None)] == 2.0
    assert got["brownout.alerts.firing"] == {(KEYS[0].provider, KEYS[0].region, KEYS[0].model, "ttft_drift"): 1.0}


def test_max_keys_bounds_the_export() -> None:
    board = StatusBoard()
    board.update({k: status(i) for i, k in enumerate(KEYS)})
    reader = InMemoryMetricReader()
    otlp = OtlpKeyMetrics(board, reader=reader, max_keys=2)
    try:
        got = points(reader)
    finally:
        otlp.shutdown()
    assert len(got["brownout.key.ttft.p50"]) == 2


def test_pushes_over_otlp_http_to_a_receiver() -> None:
    requests: list[ExportMetricsServiceRequest] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            if self.path == "/v1/metrics" and self.headers["content-type"] == "application/x-protobuf":
                msg = ExportMetricsServiceRequest()
                msg.ParseFromString(body)
                requests.append(msg)
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    board = StatusBoard()
    board.update({KEYS[0]: status(0)})
    otlp = OtlpKeyMetrics(board, endpoint=f"http://127.0.0.1:{server.server_address[1]}/v1/metrics",
                          interval=3600.0)
    try:
        otlp.provider.force_flush()
    finally:
        otlp.shutdown()
        server.shutdown()
        server.server_close()
    assert requests, "no OTLP export reached the receiver"
    metrics = {m.name: m for rm in requests[0].resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    ttft = metrics["brownout.key.ttft.p50"]
    assert ttft.unit == "s"
    point = ttft.gauge.data_points[0]
    attrs = {a.key: a.value.string_value for a in point.attributes}
    assert attrs == {"gen_ai.provider.name": "openai", "cloud.region": "eastus", "gen_ai.request.model": "gpt-4o"}
    assert point.as_double == pytest.approx(0.1)
    service = {a.key: a.value.string_value for a in requests[0].resource_metrics[0].resource.attributes}
    assert service["service.name"] == "brownout-collector"


def test_every_prometheus_key_figure_is_exported_over_otlp_too() -> None:
    from brownout.exporters.prometheus import KEY_GAUGES

    assert {attr for _, attr, _ in KEY_GAUGES} == {attr for _, attr, _, _ in OTLP_GAUGES}
