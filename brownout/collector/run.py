"""Wire a collector for production: Kafka transport, pipeline, metrics server, notifiers,
signals. ``brownout collect`` calls :func:`run_collector`."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
from typing import Any

from brownout.collector.health import PollProgress
from brownout.collector.service import Collector
from brownout.collector.settings import Settings
from brownout.pipeline import Pipeline
from brownout.transport.base import default_topics

log = logging.getLogger("brownout.collector")


async def run_collector(settings: Settings, rules: Any, *, create_topics: bool = True,
                        transport: Any = None, stop: asyncio.Event | None = None,
                        registry: Any = None, env: Any = None) -> Collector:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); returns the stopped collector."""
    from prometheus_client import REGISTRY

    from brownout.breakers.metrics import BreakerBookCollector
    from brownout.exporters.prometheus import CollectorMetrics, KeyStatusCollector, MetricsServer, StatusBoard
    from brownout.transport import KafkaTransport

    env = os.environ if env is None else env
    registry = REGISTRY if registry is None else registry
    if transport is None:
        kafka = settings.kafka_settings(env)
        transport = KafkaTransport(kafka)
        log.info("group %s: %s, session timeout %g s", settings.group_id,
                 f"static member {kafka.group_instance_id!r}" if kafka.group_instance_id else "dynamic member",
                 kafka.session_timeout_ms / 1000)
    t = settings.topics
    if create_topics:
        created = await transport.create_topics(topic_specs(settings))
        if created:
            log.info("created topics: %s", ", ".join(created))
    signer, verify_keys = signing(settings, env)
    pipeline = Pipeline(rules, signer=signer)
    state = state_keeper(settings, pipeline, signer, verify_keys)
    metrics = CollectorMetrics(registry)
    board = StatusBoard()
    registry.register(KeyStatusCollector(board, max_keys=settings.metrics.max_keys))
    registry.register(BreakerBookCollector(pipeline.book))
    history, page = _status_page(settings, board, rules)
    otlp = _otlp_metrics(settings, board)
    dispatcher = _dispatcher(settings, env, metrics)
    handlers: list[Any] = [metrics.decision]
    if dispatcher is not None:
        handlers.append(dispatcher.observe)
    collector = Collector(transport, pipeline, events_topic=t.events, control_topic=t.control,
                          dead_letter_topic=t.dead_letter, group_id=settings.group_id,
                          batch_size=settings.batch_size, on_decision=handlers, metrics=metrics,
                          status_board=board, state=state, history=history, keyed_topic=t.keyed,
                          regions=settings.region_map(),
                          progress=PollProgress(settings.health.max_poll_gap))
    log.info("spans without cloud.region: %s; records without a provider/region/model key are "
             "republished keyed to %s", _region_rule(settings), t.keyed or t.events)
    server = MetricsServer(registry, host=settings.metrics.host, port=settings.metrics.port,
                           ready=lambda: collector.ready, healthy=collector.progress.check,
                           pages=page.handle if page is not None else None)
    server.start()
    if page is not None:
        page.start()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        # breakers and detectors come back per key as partitions are assigned (state topic +
        # control topic), so a member announces only the keys it owns
        await collector.start()
        if dispatcher is not None:
            dispatcher.start()
        lag_task = asyncio.create_task(_watch_lag(collector, stop))
        try:
            await collector.run(stop)
        finally:
            lag_task.cancel()
            await collector.stop()
    finally:
        if dispatcher is not None:
            dispatcher.advance()
            dispatcher.stop()
        if page is not None:
            page.stop()
        if otlp is not None:
            otlp.shutdown()  # a last push, then stop
        server.stop()
    return collector


def topic_specs(settings: Settings) -> list[Any]:
    """The topics to create: DESIGN's four, and the keyed topic (like the events topic) when one is set."""
    t, k = settings.topics, settings.kafka
    specs = default_topics(t.events, t.control, t.state, t.dead_letter, partitions=k.partitions,
                           replication=k.replication_factor, retention_hours=k.retention_hours)
    if t.keyed and t.keyed != t.events:
        specs.insert(1, dataclasses.replace(specs[0], name=t.keyed))
    return specs


def _region_rule(settings: Settings) -> str:
    rule = f"region from server.address ({len(settings.regions)} mapped hosts), else "
    return rule + (repr(settings.default_region) if settings.default_region else "dead-lettered")


async def _watch_lag(collector: Collector, stop: asyncio.Event, every: float = 10.0) -> None:
    while not stop.is_set():
        try:
            await collector.measure_lag()
        except Exception as exc:  # lag is a reading; never let it stop the collector
            log.debug("consumer lag unavailable: %s", exc)
        await asyncio.sleep(every)


def _otlp_metrics(settings: Settings, board: Any) -> Any:
    """The per-key figures pushed over OTLP/HTTP too, when ``metrics.otlp_endpoint`` is set."""
    m = settings.metrics
    if not m.otlp_endpoint:
        return None
    from brownout.exporters.otlp import OtlpKeyMetrics

    log.info("pushing per-key metrics over OTLP to %s every %g s", m.otlp_endpoint, m.otlp_interval)
    return OtlpKeyMetrics(board, endpoint=m.otlp_endpoint, interval=m.otlp_interval, max_keys=m.max_keys)


def _status_page(settings: Settings, board: Any, rules: Any) -> tuple[Any, Any]:
    """The history recorder and the /status pages (both None when status.history_minutes is 0)."""
    if not settings.status.history_minutes:
        return None, None
    from brownout.status import HistoryRecorder, StatusPage

    history = HistoryRecorder(settings.status.history_minutes, max_keys=settings.metrics.max_keys)
    return history, StatusPage(board, history, rules=rules, refresh=settings.status.refresh)


def _dispatcher(settings: Settings, env: Any, metrics: Any) -> Any:
    from brownout.exporters.dispatcher import AlertDispatcher
    from brownout.exporters.integrations import build_notifiers
    from brownout.exporters.outbox import Outbox

    n = settings.notify
    notifiers = build_notifiers(
        slack_webhook_url=settings.secret(env, "SLACK_WEBHOOK_URL", n.slack_webhook_url_file),
        pagerduty_routing_key=settings.secret(env, "PAGERDUTY_ROUTING_KEY", n.pagerduty_routing_key_file),
        alertmanager_url=n.alertmanager_url, webhook_url=n.webhook_url)
    if not notifiers:
        log.info("no notifier configured: alerts are logged and exported as metrics only")
        return None
    outbox = Outbox(os.path.join(n.outbox_dir, "outbox.db")) if n.outbox_dir else None
    log.info("notifying: %s%s", ", ".join(x.name for x in notifiers),
             f" (outbox {n.outbox_dir})" if outbox else " (no outbox: set notify.outbox_dir)")
    return AlertDispatcher(notifiers, outbox=outbox, runbook_url=n.runbook_url, metrics=metrics,
                           public_url=n.public_url)


def state_keeper(settings: Settings, pipeline: Pipeline, signer: Any, verify_keys: dict[str, bytes]) -> Any:
    """Per-key state on the state topic; signed, and only signed records loaded, with a signing key."""
    from brownout.collector.state import SnapshotCodec, StateKeeper

    codec = SnapshotCodec(signer=signer, verify_keys=verify_keys)
    return StateKeeper(pipeline, settings.topics.state, codec, interval=settings.state.interval,
                       max_per_poll=settings.state.max_per_poll, control_verify_keys=verify_keys)


def signing(settings: Settings, env: Any = None) -> tuple[Any, dict[str, bytes]]:
    """The :class:`~brownout.breakers.record.Signer` of control records and snapshots (None
    without a key) and the key ring their signatures are checked against when read back: the
    signing key and the previous ones, by id."""
    from brownout.breakers.record import Signer

    key, key_id, keys = settings.signing_keys(env)
    if key is None:
        return None, {}
    if len(keys) > 1:
        log.info("signing with key %s; also accepting %s when reading back", key_id,
                 ", ".join(k for k in keys if k != key_id))
    return Signer(key, key_id), keys
