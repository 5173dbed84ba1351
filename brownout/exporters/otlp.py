"""Optional OTLP metrics export of the same per-key figures as ``/metrics``.

Observable gauges read a :class:`~brownout.exporters.prometheus.StatusSource` each time the
reader collects, with the key as OTel attributes (``gen_ai.provider.name``, ``cloud.region``,
``gen_ai.request.model``). By default an OTLP/HTTP exporter pushes every ``interval`` seconds to
``endpoint`` (or ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``); pass ``reader`` to use another one, such
as the SDK's ``InMemoryMetricReader`` in tests. ``brownout collect`` starts one when
``metrics.otlp_endpoint`` is set.

>>> from types import SimpleNamespace
>>> from opentelemetry.sdk.metrics.export import InMemoryMetricReader
>>> from brownout.exporters.prometheus import StatusBoard
>>> from brownout.model import Key
>>> board = StatusBoard(); board.update({Key("openai", "eastus", "gpt-4o"): SimpleNamespace(ttft_p50=0.4)})
>>> reader = InMemoryMetricReader()
>>> otlp = OtlpKeyMetrics(board, reader=reader)
>>> data = reader.get_metrics_data()
>>> [m.data.data_points[0].value for rm in data.resource_metrics for sm in rm.scope_metrics
...  for m in sm.metrics if m.name == "brownout.key.ttft.p50"]
[0.4]
>>> otlp.shutdown()
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from brownout import semconv as sc
from brownout.exporters.prometheus import BREAKER_STATE_VALUES, StatusSource, select_keys
from brownout.model import Key

__all__ = ["OTLP_GAUGES", "OtlpKeyMetrics"]

#: (OTel instrument name, KeyStatus attribute, unit, description)
OTLP_GAUGES: tuple[tuple[str, str, str, str], ...] = (
    ("brownout.key.ttft.p50", "ttft_p50", "s", "Median time to first token over the last minute."),
    ("brownout.key.ttft.p50.baseline", "ttft_p50_baseline", "s", "Baseline of the median time to first token."),
    ("brownout.key.ttft.p95", "ttft_p95", "s", "p95 time to first token over the last minute."),
    ("brownout.key.ttft.p95.baseline", "ttft_p95_baseline", "s", "Baseline of the p95 time to first token."),
    ("brownout.key.latency_per_token.p95", "latency_p95", "s",
     "p95 of request duration per output token over the last minute."),
    ("brownout.key.latency_per_token.p95.baseline", "latency_p95_baseline", "s",
     "Baseline of the p95 request duration per output token."),
    ("brownout.key.error.ratio", "error_rate", "1", "Share of requests that failed over the last minute."),
    ("brownout.key.capacity_error.ratio", "capacity_error_rate", "1", "Share failing for lack of capacity."),
    ("brownout.key.output_tokens.rate", "tokens_per_s", "{token}/s", "Median output tokens per second."),
    ("brownout.key.output_tokens.rate.baseline", "tokens_per_s_baseline", "{token}/s",
     "Baseline of the median output tokens per second."),
    ("brownout.key.itl.p95", "itl_p95", "s", "p95 inter-token latency."),
    ("brownout.key.goodput.ratio", "goodput", "1", "Share of requests done within their deadline."),
    ("brownout.key.requests", "requests", "{request}", "Requests completed over the last minute."),
    ("brownout.key.stall_reports", "stalls", "{report}",
     "Calls reported still waiting for a first token over the last minute."),
)


class OtlpKeyMetrics:
    """Per-key gauges pushed over OTLP; :meth:`shutdown` flushes and stops.

    Parameters
    ----------
    source: the per-key readings and breaker states (see ``StatusSource``).
    reader: a metric reader; default: periodic OTLP/HTTP export every ``interval`` seconds.
    endpoint: OTLP/HTTP metrics endpoint (``http://host:4318/v1/metrics``) for the default reader.
    max_keys: the most keys exported per collection (same bound as ``/metrics``).
    """

    def __init__(self, source: StatusSource, *, reader: MetricReader | None = None, endpoint: str | None = None,
                 interval: float = 15.0, max_keys: int = 1000,
                 resource: Mapping[str, str] | None = None) -> None:
        if max_keys < 1:
            raise ValueError(f"otlp.max_keys must be >= 1, got {max_keys}")
        if reader is None:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint),
                                                   export_interval_millis=interval * 1000)
        self.source = source
        self.max_keys = max_keys
        self.provider = MeterProvider(
            metric_readers=[reader],
            resource=Resource.create({"service.name": "brownout-collector", **(resource or {})}))
        meter = self.provider.get_meter("brownout.exporters.otlp")
        for name, attr, unit, description in OTLP_GAUGES:
            meter.create_observable_gauge(name, callbacks=[self._reading(attr)], unit=unit, description=description)
        meter.create_observable_gauge("brownout.breaker.state", callbacks=[self._breakers], unit="1",
                                      description="Circuit breaker state: 0 closed, 1 half_open, 2 open.")
        meter.create_observable_gauge("brownout.alerts.firing", callbacks=[self._firing], unit="{alert}",
                                      description="Rules firing on the key.")

    def shutdown(self) -> None:
        self.provider.shutdown()

    def _snapshot(self) -> tuple[list[Key], Mapping[Key, Any], Mapping[Key, str]]:
        status = dict(self.source.key_status())
        breakers = dict(self.source.breaker_states())
        kept, _ = select_keys(status, breakers, self.max_keys)
        return kept, status, breakers

    def _reading(self, attr: str) -> Any:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            keys, status, _ = self._snapshot()
            for key in keys:
                v = getattr(status.get(key), attr, None)
                if v is not None and not isinstance(v, bool) and math.isfinite(float(v)):
                    yield Observation(float(v), _attributes(key))

        return callback

    def _breakers(self, options: CallbackOptions) -> Iterable[Observation]:
        keys, _, breakers = self._snapshot()
        for key in keys:
            state = breakers.get(key, "closed")
            if state in BREAKER_STATE_VALUES:
                yield Observation(BREAKER_STATE_VALUES[state], _attributes(key))

    def _firing(self, options: CallbackOptions) -> Iterable[Observation]:
        keys, status, _ = self._snapshot()
        for key in keys:
            for rule in sorted(set(getattr(status.get(key), "firing", ()) or ())):
                yield Observation(1.0, {**_attributes(key), "brownout.rule": rule})


def _attributes(key: Key) -> dict[str, str]:
    return {sc.GEN_AI_PROVIDER_NAME: key.provider, sc.CLOUD_REGION: key.region, sc.GEN_AI_REQUEST_MODEL: key.model}
