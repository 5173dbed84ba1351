"""Prometheus metrics: per-key readings collected at scrape time, the collector's own health, and
a small HTTP server for ``/metrics``, ``/healthz`` and ``/readyz``.

The per-key figures come from a :class:`StatusSource` (``key_status()`` and ``breaker_states()``)
read when Prometheus scrapes. :class:`StatusBoard` is a ready source: the collector's loop calls
``board.update(engine.status(), book.states())`` after each step and the scrape thread reads the
last snapshot, so nothing is shared mid-update. At most ``max_keys`` keys are exported (firing and
tripped keys first, then the busiest); the rest are dropped and counted.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> from types import SimpleNamespace
>>> from brownout.model import Key
>>> board = StatusBoard()
>>> board.update({Key("openai", "eastus", "gpt-4o"): SimpleNamespace(ttft_p50=0.4, firing=("ttft_drift",))},
...              {Key("openai", "eastus", "gpt-4o"): "open"})
>>> reg = CollectorRegistry()
>>> reg.register(KeyStatusCollector(board))
>>> text = generate_latest(reg).decode()
>>> 'brownout_key_ttft_p50_seconds{model="gpt-4o",provider="openai",region="eastus"} 0.4' in text
True
>>> 'brownout_breaker_state{model="gpt-4o",provider="openai",region="eastus"} 2.0' in text
True
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from brownout.model import Decision, Key

__all__ = [
    "BREAKER_STATE_VALUES",
    "KEY_GAUGES",
    "CollectorMetrics",
    "KeyStatusCollector",
    "MetricsServer",
    "StatusBoard",
    "StatusSource",
    "select_keys",
]

log = logging.getLogger(__name__)
#: What a probe callable returns: healthy or not, or ``(healthy, reason)``.
Probe = bool | tuple[bool, str]
KEY_LABELS = ("provider", "region", "model")
#: ``brownout_breaker_state`` values (numeric, so ``changes()`` and ``max()`` work in PromQL).
BREAKER_STATE_VALUES: Mapping[str, float] = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
#: (metric name, KeyStatus attribute, help) for the per-key gauges.
KEY_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("brownout_key_ttft_p50_seconds", "ttft_p50", "Median time to first token over the last minute."),
    ("brownout_key_ttft_p50_baseline_seconds", "ttft_p50_baseline", "Baseline of the median time to first token."),
    ("brownout_key_ttft_p95_seconds", "ttft_p95", "p95 time to first token over the last minute."),
    ("brownout_key_ttft_p95_baseline_seconds", "ttft_p95_baseline", "Baseline of the p95 time to first token."),
    ("brownout_key_latency_per_token_p95_seconds", "latency_p95",
     "p95 of request duration per output token over the last minute."),
    ("brownout_key_latency_per_token_p95_baseline_seconds", "latency_p95_baseline",
     "Baseline of the p95 request duration per output token."),
    ("brownout_key_error_ratio", "error_rate", "Share of requests that failed over the last minute."),
    ("brownout_key_capacity_error_ratio", "capacity_error_rate",
     "Share of requests that failed for lack of capacity (429, 5xx, 529, timeouts) over the last minute."),
    ("brownout_key_output_tokens_per_second", "tokens_per_s", "Median output tokens per second of decode."),
    ("brownout_key_output_tokens_per_second_baseline", "tokens_per_s_baseline",
     "Baseline of the median output tokens per second."),
    ("brownout_key_itl_p95_seconds", "itl_p95", "p95 inter-token latency."),
    ("brownout_key_goodput_ratio", "goodput", "Share of requests done within their deadline."),
    ("brownout_key_requests", "requests", "Requests completed over the last minute."),
    ("brownout_key_stall_reports", "stalls", "Calls reported still waiting for a first token over the last minute."),
)


class StatusSource(Protocol):
    """What the scrape reads: per-key readings (objects with the ``KEY_GAUGES`` attributes, any of
    which may be missing or None, plus ``warming`` and ``firing``) and breaker states."""

    def key_status(self) -> Mapping[Key, Any]: ...

    def breaker_states(self) -> Mapping[Key, str]: ...


class StatusBoard:
    """The last published snapshot of key status and breaker states (thread-safe by swap).

    >>> b = StatusBoard(); b.update({}, {}); b.key_status(), b.breaker_states()
    ({}, {})
    """

    def __init__(self) -> None:
        self._status: Mapping[Key, Any] = {}
        self._breakers: Mapping[Key, str] = {}

    def update(self, status: Mapping[Key, Any], breakers: Mapping[Key, str] | None = None) -> None:
        self._status = dict(status)
        if breakers is not None:
            self._breakers = dict(breakers)

    def key_status(self) -> Mapping[Key, Any]:
        return self._status

    def breaker_states(self) -> Mapping[Key, str]:
        return self._breakers


class KeyStatusCollector(Collector):
    """A prometheus-client custom collector that reads a :class:`StatusSource` at scrape time.

    Parameters
    ----------
    source: where the readings come from.
    max_keys: the most keys exported per scrape (label cardinality bound); the rest are dropped
        and counted in ``brownout_metrics_keys_dropped``.
    """

    def __init__(self, source: StatusSource, *, max_keys: int = 1000) -> None:
        if max_keys < 1:
            raise ValueError(f"metrics.max_keys must be >= 1, got {max_keys}")
        self.source = source
        self.max_keys = max_keys

    def describe(self) -> Iterable[Metric]:
        return []  # read at scrape time only; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("brownout_status_up", "1 if the per-key status could be read at this scrape.")
        try:
            status = dict(self.source.key_status())
            breakers = dict(self.source.breaker_states())
        except Exception:
            log.exception("metrics: reading key status failed")
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        kept, dropped = select_keys(status, breakers, self.max_keys)
        yield _single("brownout_metrics_keys", "Keys known to the collector.", len(kept) + dropped)
        yield _single("brownout_metrics_keys_dropped",
                      "Keys not exported at this scrape because of the max_keys bound.", dropped)

        families = {attr: GaugeMetricFamily(name, help_, labels=KEY_LABELS) for name, attr, help_ in KEY_GAUGES}
        warming = GaugeMetricFamily("brownout_key_warming", "1 while the key's baseline is still warming.",
                                    labels=KEY_LABELS)
        firing = GaugeMetricFamily("brownout_alerts_firing", "1 for each rule firing on the key.",
                                   labels=("rule", *KEY_LABELS))
        breaker = GaugeMetricFamily("brownout_breaker_state",
                                    "Circuit breaker state: 0 closed, 1 half_open, 2 open.", labels=KEY_LABELS)
        for key in kept:
            labels = [key.provider, key.region, key.model]
            st = status.get(key)
            if st is not None:
                for attr, fam in families.items():
                    v = _finite(getattr(st, attr, None))
                    if v is not None:
                        fam.add_metric(labels, v)
                w = getattr(st, "warming", None)
                if w is not None:
                    warming.add_metric(labels, 1.0 if w else 0.0)
                for rule in sorted(set(getattr(st, "firing", ()) or ())):
                    firing.add_metric([rule, *labels], 1.0)
            state = breakers.get(key)
            if state is not None and state in BREAKER_STATE_VALUES:
                breaker.add_metric(labels, BREAKER_STATE_VALUES[state])
            elif st is not None and state is None:
                breaker.add_metric(labels, 0.0)
        yield from families.values()
        yield warming
        yield firing
        yield breaker


def select_keys(status: Mapping[Key, Any], breakers: Mapping[Key, str], max_keys: int) -> tuple[list[Key], int]:
    """The keys to export (firing or tripped first, then the busiest, then by name) and how many are left out.

    >>> from types import SimpleNamespace as S
    >>> a, b, c = Key("p", "a", "m"), Key("p", "b", "m"), Key("p", "c", "m")
    >>> select_keys({a: S(requests=1), b: S(requests=9), c: S(requests=0)}, {c: "open"}, 2)
    ([Key(provider='p', region='c', model='m'), Key(provider='p', region='b', model='m')], 1)
    """
    keys = sorted(set(status) | set(breakers), key=lambda k: _priority(k, status.get(k), breakers.get(k)))
    return keys[:max_keys], max(0, len(keys) - max_keys)


def _priority(key: Key, st: Any, breaker: str | None) -> tuple[int, float, Key]:
    hot = bool(breaker and breaker != "closed") or bool(getattr(st, "firing", ()) if st is not None else ())
    requests = _finite(getattr(st, "requests", None)) or 0.0
    return (0 if hot else 1, -requests, key)


def _finite(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _single(name: str, help_: str, value: float) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, help_)
    g.add_metric([], float(value))
    return g


class CollectorMetrics:
    """The collector's own health, on an injectable registry.

    >>> from prometheus_client import CollectorRegistry
    >>> reg = CollectorRegistry()
    >>> m = CollectorMetrics(reg)
    >>> m.event("accepted"); m.decode_error("bad_value"); m.notification("slack", "delivered")
    >>> reg.get_sample_value("brownout_events_total", {"outcome": "accepted"})
    1.0
    """

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        kw: dict[str, Any] = {"registry": registry}
        self.events = Counter("brownout_events", "Events consumed, by outcome (accepted, invalid, skipped, late).",
                              ["outcome"], **kw)
        self.decode_errors = Counter("brownout_decode_errors", "Records or spans that could not be decoded, by reason.",
                                     ["reason"], **kw)
        self.late_events = Counter("brownout_late_events", "Events that arrived past the allowed lateness.", **kw)
        self.consumer_lag = Gauge("brownout_consumer_lag", "Records between the committed offset and the end of the "
                                  "partition.", ["topic", "partition"], **kw)
        self.processing_delay = Histogram(
            "brownout_processing_delay_seconds", "Wall time from an event's end to its processing.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300), **kw)
        self.notifications = Counter("brownout_notifications", "Notifications by integration and result "
                                     "(delivered, failed, deferred, dropped).", ["integration", "result"], **kw)
        self.decisions = Counter("brownout_decisions", "Decisions taken, by kind and state.", ["kind", "state"], **kw)
        self.rekeyed_records = Counter("brownout_rekeyed_records", "Records without a provider/region/model key "
                                       "(e.g. from an OpenTelemetry Collector) whose events were republished keyed.", **kw)
        self.rekeyed_events = Counter("brownout_rekeyed_events", "Events republished keyed by provider/region/model, "
                                      "to be judged by the collector that owns the key.", **kw)
        self.state_records = Counter(
            "brownout_state_records", "Per-key state snapshots by outcome: saved, restored, restored_partly "
            "(after a rule change), restored_breaker_only, rejected (the key started fresh; reason says why).",
            ["outcome", "reason"], **kw)
        self.state_errors = Counter("brownout_state_errors", "Reads (load) or writes (save) of the state topic that "
                                    "failed: the keys started fresh, or were not saved.", ["operation"], **kw)
        self.state_restore = Histogram(
            "brownout_state_restore_seconds", "Time to restore the keys of newly assigned partitions (read the "
            "state and control topics, install).", buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), **kw)

    def event(self, outcome: str, n: int = 1) -> None:
        self.events.labels(outcome).inc(n)

    def decode_error(self, reason: str, n: int = 1) -> None:
        self.decode_errors.labels(reason).inc(n)

    def late(self, n: int = 1) -> None:
        self.late_events.inc(n)

    def lag(self, topic: str, partition: int, records: int) -> None:
        self.consumer_lag.labels(topic, str(partition)).set(records)

    def delay(self, seconds: float) -> None:
        if math.isfinite(seconds):
            self.processing_delay.observe(max(0.0, seconds))

    def notification(self, integration: str, result: str) -> None:
        self.notifications.labels(integration, result).inc()

    def decision(self, decision: Decision) -> None:
        self.decisions.labels(decision.kind, decision.state).inc()

    def state_record(self, outcome: str, n: int = 1) -> None:
        """Count snapshots by ``StateKeeper.counts`` name (``rejected:<reason>`` splits in two labels)."""
        kind, _, reason = outcome.partition(":")
        self.state_records.labels(kind, reason).inc(n)

    def state_error(self, operation: str, n: int = 1) -> None:
        self.state_errors.labels(operation).inc(n)

    def restored(self, seconds: float) -> None:
        if math.isfinite(seconds):
            self.state_restore.observe(max(0.0, seconds))

    def rekeyed(self, unit: str, n: int = 1) -> None:
        """Count re-keyed ``records`` (unkeyed records read) or ``events`` (events republished)."""
        (self.rekeyed_records if unit == "records" else self.rekeyed_events).inc(n)


class MetricsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` over HTTP, in a daemon thread (stdlib only).

    ``port=0`` picks a free port (read it back from :attr:`port`). ``ready`` and ``healthy`` are
    called per request; a false or raising callable answers 503. Either may return
    ``(ok, reason)`` instead of a bool: the reason is the body (the collector's ``healthy`` is
    :meth:`PollProgress.check <brownout.collector.health.PollProgress.check>`). ``pages`` serves every other
    path it knows (the status page: :class:`brownout.status.StatusPage`'s ``handle``), returning
    ``(status, body, content type)`` or None for a 404.

    >>> from prometheus_client import CollectorRegistry
    >>> s = MetricsServer(CollectorRegistry(), host="127.0.0.1", port=0, ready=lambda: False)
    >>> s.start(); import urllib.request, urllib.error
    >>> urllib.request.urlopen(f"http://127.0.0.1:{s.port}/healthz").status
    200
    >>> try: urllib.request.urlopen(f"http://127.0.0.1:{s.port}/readyz")
    ... except urllib.error.HTTPError as e: print(e.code)
    503
    >>> s.stop()
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY, *, host: str = "0.0.0.0", port: int = 9464,
                 ready: Callable[[], Probe] = lambda: True, healthy: Callable[[], Probe] = lambda: True,
                 pages: Callable[[str], tuple[int, bytes, str] | None] | None = None) -> None:
        self.registry = registry
        self.pages = pages
        self.host = host
        self.port = port
        self.ready = ready
        self.healthy = healthy
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._server is not None:
            return
        try:
            self._server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        except OSError as exc:
            raise OSError(exc.errno, f"metrics server cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="brownout-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None
        self._thread = None


def _probe(check: Callable[[], Probe], good: str, bad: str) -> tuple[int, bytes]:
    """The status and body of a probe: 200 or 503, and the reason when the check gives one."""
    try:
        result = check()
    except Exception as exc:
        log.exception("probe raised")
        return 503, f"{bad}: the check raised {type(exc).__name__}\n".encode()
    if isinstance(result, tuple):
        ok, reason = bool(result[0]), str(result[1])
        return (200 if ok else 503), (reason if ok else f"{bad}: {reason}").encode() + b"\n"
    return (200, f"{good}\n".encode()) if result else (503, f"{bad}\n".encode())


def _handler(server: MetricsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                try:
                    body = encoder(server.registry)
                except Exception:
                    log.exception("metrics: collection failed")
                    self._send(500, b"collection failed\n")
                    return
                self._send(200, body, content_type)
            elif path == "/healthz":
                self._send(*_probe(server.healthy, "ok", "unhealthy"))
            elif path == "/readyz":
                self._send(*_probe(server.ready, "ready", "not ready"))
            else:
                page = None
                if server.pages is not None:
                    try:
                        page = server.pages(self.path)
                    except Exception:
                        log.exception("status page failed for %s", path)
                        self._send(500, b"status page failed\n")
                        return
                if page is None:
                    self._send(404, b"not found: try /metrics, /healthz, /readyz, /status\n")
                else:
                    self._send(*page)

        do_HEAD = do_GET

    return Handler
