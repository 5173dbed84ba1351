"""Instrumentation hooks: one event per LLM call, to the events topic, at a few microseconds.

Two lines per app::

    import brownout.hooks
    brownout.hooks.configure(bootstrap_servers="kafka:9092")   # or transport=MemoryTransport()
    brownout.hooks.instrument_openai()      # or instrument_anthropic(), instrument_genai(),
                                            # instrument_bedrock(), BrownoutLogger

Any other client, by hand (also ``async with`` and ``@observe(...)``):

>>> from brownout.transport import MemoryTransport
>>> t = MemoryTransport()
>>> _ = configure(transport=t)
>>> with observe(provider="openai", region="eastus", model="gpt-4o", stream=True) as call:
...     call.chunk(); call.chunk()
...     call.usage(input_tokens=10, output_tokens=2)
>>> flush()
True
>>> from brownout.codec import decode
>>> [(e.key.model, e.output_tokens) for r in t.records("brownout.events") for e in decode(r.value)]
[('gpt-4o', 2)]
>>> _ = configure()  # back to the default (discard unless BROWNOUT_KAFKA_BOOTSTRAP_SERVERS is set)

``import brownout.hooks`` loads neither numpy nor aiokafka; the SDK integrations import
their SDK only when you instrument it.
"""

from __future__ import annotations

import atexit
import os
from typing import Any, Callable, Mapping

from brownout import semconv as sc
from brownout.hooks import _observation
from brownout.hooks._exporter import EventExporter, event_of
from brownout.hooks._observation import Observation, error_type_of, observe
from brownout.hooks._targets import Target, settings
from brownout.model import Key

__all__ = [
    "BrownoutLogger", "EventExporter", "Observation", "Target", "configure", "error_type_of", "event_of",
    "exporter", "flush", "instrument_anthropic", "instrument_bedrock", "instrument_genai", "instrument_openai",
    "observe", "shutdown", "stats", "uninstrument_anthropic", "uninstrument_bedrock", "uninstrument_genai",
    "uninstrument_openai",
]

_current: list[EventExporter] = []


def _install(ex: EventExporter) -> EventExporter:
    old = _current[0] if _current else None
    _current[:] = [ex]
    _observation._sink[0] = ex.submit
    if old is not None and old is not ex:
        old.shutdown(timeout=2.0)
    if ex.transport is not None or ex.tracer_provider is not None:
        ex.start()  # now, not at the first event: a first call may stall before any event is queued
    return ex


def configure(bootstrap_servers: str | None = None, topic: str = sc.TOPIC_EVENTS, transport: Any = None, *,
              tracer_provider: Any = None, region: str | None = None,
              regions: Mapping[str, str] | None = None, kafka: Any = None, max_queue: int = 10_000,
              batch_size: int = 512, interval: float = 0.2,
              service_name: str = "brownout-hooks", stall_after: float | str | None = "auto",
              stall_threshold: Callable[[Key], float | None] | None = None) -> EventExporter:
    """Say where events go, and how to name regions; returns the new :class:`EventExporter`.

    - ``bootstrap_servers`` or ``kafka`` (a :class:`~brownout.transport.KafkaSettings`): publish to
      Kafka; ``transport``: any transport (``MemoryTransport`` for tests and the demo).
      With none of them, ``BROWNOUT_KAFKA_BOOTSTRAP_SERVERS`` is used when set.
    - ``tracer_provider``: also (or only) hand every event to this OTel TracerProvider as a span,
      so events can travel through an OTel Collector.
    - ``region``: the region of every call, unless an integration is given one; ``regions``: base
      URL host, or Azure resource name, -> region (``{"myres": "swedencentral"}``).
    - ``stall_after``: a streamed call still waiting for its first token past its key's
      threshold is reported once, in flight, as an event with ``brownout.stall`` (its normal
      event follows). ``"auto"`` (default): 8 x the p95 of the key's recent first-token times,
      at least 3 s, once 20 are known; seconds: one threshold for every key; None or 0: off.
    - ``stall_threshold``: ``callable(key) -> seconds | None``, asked first (a router can hand in
      the collector's baselines); None falls back to ``stall_after``. It runs on the exporter's
      thread, once per key with a streamed call in flight per scan: keep it quick and thread-safe.

    The previous exporter is flushed and stopped.
    """
    if transport is None and (bootstrap_servers or kafka):
        from brownout.transport.kafka import KafkaSettings, KafkaTransport

        if kafka is None:
            assert bootstrap_servers  # one of the two is set, by the test above
            kafka = KafkaSettings(bootstrap_servers)
        transport = KafkaTransport(kafka)
    elif transport is None and tracer_provider is None and os.environ.get("BROWNOUT_KAFKA_BOOTSTRAP_SERVERS"):
        from brownout.transport.kafka import KafkaTransport

        transport = KafkaTransport(os.environ["BROWNOUT_KAFKA_BOOTSTRAP_SERVERS"])
    settings.set(region=region, regions=regions)
    return _install(EventExporter(transport, topic, tracer_provider=tracer_provider, max_queue=max_queue,
                                  batch_size=batch_size, interval=interval, service_name=service_name,
                                  stall_after=stall_after, stall_threshold=stall_threshold))


def exporter() -> EventExporter:
    """The exporter in use."""
    return _current[0]


def stats() -> dict[str, int]:
    """The exporter's counters: sent, dropped, errors, invalid, discarded, records, stalls, queued."""
    return _current[0].stats()


def flush(timeout: float | None = 5.0) -> bool:
    """Publish what is queued; True when done within ``timeout`` seconds."""
    return _current[0].flush(timeout)


def shutdown(timeout: float = 5.0) -> None:
    """Flush and stop the exporter (also run at interpreter exit)."""
    _current[0].shutdown(timeout)


def _atexit() -> None:
    if _current:
        _current[0].shutdown(timeout=2.0)


def _after_fork() -> None:
    # A forked child has the parent's queue but not its thread: start afresh.
    old = _current[0]
    _observation.waiting.clear()  # the parent's calls in flight are not ours
    _install_no_shutdown(EventExporter(old.transport, old.topic, tracer_provider=old.tracer_provider,
                                       max_queue=old.max_queue, batch_size=old.batch_size,
                                       interval=old.interval, service_name=old.service_name,
                                       stall_after=old.stalls.after, stall_threshold=old.stalls.threshold))


def _install_no_shutdown(ex: EventExporter) -> None:
    _current[:] = [ex]
    _observation._sink[0] = ex.submit


_install(EventExporter(None))
if os.environ.get("BROWNOUT_KAFKA_BOOTSTRAP_SERVERS"):
    configure()
atexit.register(_atexit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def __getattr__(name: str) -> Any:  # the SDK integrations load on first use
    if name in ("instrument_openai", "uninstrument_openai"):
        from brownout.hooks import openai as _m
    elif name in ("instrument_anthropic", "uninstrument_anthropic"):
        from brownout.hooks import anthropic as _m  # type: ignore[no-redef]
    elif name in ("instrument_genai", "uninstrument_genai"):
        from brownout.hooks import genai as _m  # type: ignore[no-redef]
    elif name in ("instrument_bedrock", "uninstrument_bedrock"):
        from brownout.hooks import bedrock as _m  # type: ignore[no-redef]
    elif name == "BrownoutLogger":
        from brownout.hooks import litellm as _m  # type: ignore[no-redef]
    else:
        raise AttributeError(f"module 'brownout.hooks' has no attribute {name!r}")
    return getattr(_m, name)
