"""The hooks' exporter: a bounded queue on the hot path, a daemon thread that batches, encodes
OTLP protobuf and publishes one Kafka record per key (and, optionally, real OTel spans).

The caller's side is one ``len()`` check and one ``deque.append``: it never blocks and never
raises. Everything that can be slow or fail (encoding, Kafka, an OTel SDK) runs on the thread;
when it cannot keep up the queue fills, new events are dropped, and the drops are counted.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from time import perf_counter
from typing import Any, Iterable

from brownout import semconv as sc
from brownout.hooks import _observation
from brownout.hooks._observation import Observation, itl_stats
from brownout.hooks._stalls import AUTO, StallWatch
from brownout.model import Event, InvalidEvent, Key

log = logging.getLogger("brownout.hooks")

_HEADERS = ((sc.HEADER_CONTENT_TYPE, sc.CONTENT_OTLP_PROTO.encode()),)
_YIELD_EVERY = 32  # events handled between two GIL hand-backs (~1 ms of work)
_SPANS_PER_RECORD = 64  # bounds a record's size and the time one encoding holds the GIL


def event_of(obs: Observation, offset: float) -> Event:
    """The Event of a finished observation; ``offset`` turns perf_counter() into unix time.

    Raises :class:`~brownout.model.InvalidEvent` naming what is wrong.

    >>> from brownout.hooks import observe
    >>> obs = observe(provider="openai", region="eastus", model="gpt-4o", stream=True)
    >>> obs.t0, obs.chunk_times, obs.t1 = 1.0, [1.5, 1.6, 1.8], 2.0
    >>> ev = event_of(obs, 1000.0)
    >>> ev.start, ev.duration, ev.ttft, ev.itl_p50, ev.itl_max
    (1001.0, 1.0, 0.5, 0.1, 0.2)
    """
    ts = obs.chunk_times or ()
    ttft = None
    if obs.ttft_at is not None:
        ttft = max(0.0, obs.ttft_at - obs.t0)
    elif ts:
        ttft = max(0.0, ts[0] - obs.t0)
    itl = itl_stats(ts) if len(ts) > 1 else None
    reasons = obs.finish_reasons
    duration = round(max(0.0, obs.t1 - obs.t0), 9)
    return Event(
        Key(obs.provider, obs.region, obs.model), start=round(obs.t0 + offset, 6),
        duration=duration, operation=obs.operation,
        response_model=obs.response_model, stream=obs.stream,
        ttft=None if ttft is None else round(ttft, 9),
        input_tokens=obs.input_tokens, output_tokens=obs.output_tokens,
        finish_reasons=tuple(str(r) for r in reasons) if reasons else (),
        error_type=obs.error_type, status_code=obs.status_code,
        server_address=obs.server_address, server_port=obs.server_port,
        itl_p50=itl[0] if itl else None, itl_p95=itl[1] if itl else None,
        itl_max=itl[2] if itl else None, deadline=obs.deadline,
        # No first token and the caller gave up (or timed out): it was at least this late.
        ttft_at_least=duration if ttft is None and obs.error_type in _NO_FIRST_TOKEN else None,
    ).validate()


_NO_FIRST_TOKEN = frozenset({sc.CANCELLED, "timeout"})


def stall_event_of(obs: Observation, now: float, offset: float) -> Event:
    """The in-flight report of a streamed call still waiting for its first token at ``now``
    (perf_counter seconds): ``brownout.stall``, ``brownout.ttft.at_least`` = time waited.

    >>> from brownout.hooks import observe
    >>> obs = observe(provider="openai", region="eastus", model="gpt-4o", stream=True)
    >>> obs.t0 = 1.0
    >>> ev = stall_event_of(obs, 4.5, 1000.0)
    >>> ev.start, ev.duration, ev.stall, ev.ttft_at_least, ev.ttft, ev.error_type
    (1001.0, 3.5, True, 3.5, None, None)
    """
    waited = round(max(0.0, now - obs.t0), 9)
    return Event(Key(obs.provider, obs.region, obs.model), start=round(obs.t0 + offset, 6), duration=waited,
                 operation=obs.operation, stream=obs.stream, server_address=obs.server_address,
                 server_port=obs.server_port, deadline=obs.deadline, stall=True,
                 ttft_at_least=waited).validate()


def observation_of(done: tuple[Any, ...]) -> Observation:
    """The Observation of a :data:`~brownout.hooks._observation.Done` tuple (the fast path)."""
    target, model, stream, t0, t1, result, reader = done
    obs = Observation(target.provider, target.region, model if isinstance(model, str) and model else "unknown",
                      target.operation, stream, target.deadline, target.server_address, target.server_port)
    obs.t0, obs.t1, obs.done = t0, t1, True
    try:
        reader.response(obs, result)
    except Exception:
        log.debug("brownout: could not read a response", exc_info=True)
    return obs


class EventExporter:
    """Bounded queue plus background thread publishing OTLP protobuf to the events topic.

    Parameters: ``transport`` (a :class:`~brownout.transport.Transport`; None publishes nothing),
    ``topic``, ``tracer_provider`` (an OTel TracerProvider that also gets every event as a
    CLIENT span with explicit start and end times), ``max_queue`` (events held before dropping),
    ``batch_size``, ``interval`` (seconds between background flushes and stall scans),
    ``send_timeout``, ``stall_after`` and ``stall_threshold`` (see :class:`~brownout.hooks._stalls.StallWatch`).

    >>> from brownout.transport import MemoryTransport
    >>> t = MemoryTransport()
    >>> ex = EventExporter(t)
    >>> obs = Observation("openai", "eastus", "gpt-4o").start(); obs.t1 = obs.t0 + 0.5
    >>> ex.submit(obs); ex.flush(5.0)
    True
    >>> [(r.key, r.header("content-type")) for r in t.records("brownout.events")]
    [(b'openai/eastus/gpt-4o', b'application/x-protobuf')]
    >>> ex.stats()["sent"]; ex.shutdown()
    1
    """

    def __init__(self, transport: Any = None, topic: str = sc.TOPIC_EVENTS, *,
                 tracer_provider: Any = None, max_queue: int = 10_000, batch_size: int = 512,
                 interval: float = 0.2, send_timeout: float = 10.0,
                 service_name: str = "brownout-hooks", stall_after: float | str | None = AUTO,
                 stall_threshold: Any = None) -> None:
        if max_queue < 1 or batch_size < 1:
            raise ValueError(f"max_queue and batch_size must be >= 1, got {max_queue}, {batch_size}")
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        self.transport = transport
        self.topic = topic
        self.tracer_provider = tracer_provider
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.interval = interval
        self.send_timeout = send_timeout
        self.service_name = service_name
        self.stalls = StallWatch(stall_after, stall_threshold)
        self._q: deque[Any] = deque()
        self._counts = {"sent": 0, "dropped": 0, "errors": 0, "invalid": 0, "discarded": 0, "records": 0,
                        "stalls": 0}
        self._dropped = 0  # bumped on the hot path, kept apart from the thread's counters
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kick: asyncio.Event | None = None
        self._lock = threading.Lock()
        self._waiters: list[threading.Event] = []
        self._stopping = False
        self._stopped = threading.Event()
        self._ready = threading.Event()
        self._warned_discard = False

    # --- caller side ----------------------------------------------------------------------
    def submit(self, obs: Any) -> None:
        """Queue a finished Observation (or Done tuple); drops (and counts) when the queue is full."""
        q = self._q
        if len(q) >= self.max_queue:
            self._dropped += 1
            return
        q.append(obs)
        if self._thread is None:
            self._start()

    def stats(self) -> dict[str, int]:
        """Counters: ``sent`` events published, ``dropped`` (queue full), ``errors`` (lost to a
        failing transport or tracer), ``invalid`` (failed validation), ``discarded`` (no
        destination configured), ``records`` published, ``stalls`` (in-flight stall reports
        made; each is also an event), ``queued`` now."""
        out = dict(self._counts)
        out["dropped"] += self._dropped
        out["queued"] = len(self._q)
        return out

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Publish everything queued so far; True when done within ``timeout`` seconds."""
        if self._thread is None:
            if not self._q:
                return True
            self._start()
        if self._stopped.is_set():
            return not self._q
        done = threading.Event()
        with self._lock:
            self._waiters.append(done)
        self._ready.wait(timeout)
        self._wakeup()
        return done.wait(timeout)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush, then stop the thread and the producer. Safe to call twice."""
        if self._thread is None or self._stopped.is_set():
            self._stopped.set()
            return
        self.flush(timeout)
        self._stopping = True
        self._wakeup()
        self._thread.join(timeout)

    # --- background thread ------------------------------------------------------------------
    def start(self) -> None:
        """Start the background thread now (else it starts with the first event)."""
        self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, args=(self._ready,),
                                            name="brownout-hooks-exporter", daemon=True)
            self._thread.start()

    def _wakeup(self) -> None:
        loop, kick = self._loop, self._kick
        if loop is not None and kick is not None:
            try:
                loop.call_soon_threadsafe(kick.set)
            except RuntimeError:  # loop already closed
                pass

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(loop, ready))
        except BaseException:
            log.exception("brownout hooks exporter stopped")
        finally:
            self._loop = None
            loop.close()
            self._stopped.set()
            self._release_waiters()

    async def _main(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        self._loop, self._kick = loop, asyncio.Event()
        ready.set()
        producer = None
        backoff_until = 0.0
        failures = 0
        while True:
            try:
                await asyncio.wait_for(self._kick.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
            self._kick.clear()
            with self._lock:
                waiters, self._waiters = self._waiters, []
            stalled = self._stalled()
            while self._q or stalled:
                batch = self._take()
                events = stalled + self._events(batch)
                stalled = []
                if not events:
                    continue
                if self.tracer_provider is not None:
                    self._to_tracer(events)
                if self.transport is None:
                    if self.tracer_provider is None:
                        self._discard(len(events))
                    continue
                if producer is None and time.monotonic() >= backoff_until:
                    producer = await self._start_producer()
                    if producer is None:
                        failures += 1
                        backoff_until = time.monotonic() + min(30.0, 0.5 * 2 ** failures)
                if producer is None:
                    self._counts["errors"] += len(events)
                    continue
                if await self._publish(producer, events):
                    failures = 0
                else:
                    failures += 1
            for w in waiters:
                w.set()
            if self._stopping:
                break
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), self.send_timeout)
            except BaseException:
                log.warning("brownout: producer did not stop cleanly", exc_info=True)

    def _stalled(self) -> list[Event]:
        """Stall reports of the streamed calls waiting past their threshold (only the installed
        exporter scans: the calls in flight are the process's, not one exporter's)."""
        sink = _observation._sink[0]
        waiting = _observation.waiting
        if not waiting or getattr(sink, "__self__", None) is not self:
            return []
        now = perf_counter()
        offset = time.time() - now
        out = []
        try:
            stalled = self.stalls.scan(waiting, now)
        except Exception:
            log.warning("brownout: could not scan the calls in flight for stalls", exc_info=True)
            return []
        for obs in stalled:
            try:
                out.append(stall_event_of(obs, now, offset))
            except Exception as exc:
                self._counts["invalid"] += 1
                log.warning("brownout: dropping an invalid stall report: %s", exc)
        self._counts["stalls"] += len(out)
        return out

    def _take(self) -> list[Any]:
        q, out = self._q, []
        for _ in range(min(self.batch_size, len(q))):
            out.append(q.popleft())
        return out

    def _events(self, batch: Iterable[Any]) -> list[Event]:
        offset = time.time() - perf_counter()
        out = []
        for i, item in enumerate(batch):
            if i and not i % _YIELD_EVERY:
                time.sleep(0)  # hand the GIL back: the app's threads must not wait on our encoding
            try:
                obs = observation_of(item) if type(item) is tuple else item
                ev = event_of(obs, offset)
                out.append(ev)
                if ev.ttft is not None and ev.error_type is None and ev.stream:
                    self.stalls.learn(ev.key, ev.ttft)
            except InvalidEvent as exc:
                self._counts["invalid"] += 1
                log.warning("brownout: dropping an invalid event from the hooks: %s", exc)
            except Exception:
                self._counts["invalid"] += 1
                log.warning("brownout: could not build an event", exc_info=True)
        return out

    def _discard(self, n: int) -> None:
        self._counts["discarded"] += n
        if not self._warned_discard:
            self._warned_discard = True
            log.warning("brownout: hooks are not configured; events are discarded. Call "
                        "brownout.hooks.configure(bootstrap_servers=...) or set BROWNOUT_KAFKA_BOOTSTRAP_SERVERS")

    async def _start_producer(self) -> Any:
        producer = None
        try:
            producer = self.transport.producer()
            await asyncio.wait_for(producer.start(), self.send_timeout)
            return producer
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            if producer is not None:
                try:
                    await asyncio.wait_for(producer.stop(), self.send_timeout)
                except BaseException:
                    log.debug("brownout: producer did not stop", exc_info=True)
            log.warning("brownout: cannot start the events producer (%s); events are dropped and counted", exc)
            return None

    async def _publish(self, producer: Any, events: list[Event]) -> bool:
        from brownout.codec import encode_otlp_proto

        by_key: dict[Key, list[Event]] = {}
        for ev in events:
            by_key.setdefault(ev.key, []).append(ev)
        sent = 0
        try:
            for key, evs in by_key.items():
                rkey = str(key).encode()
                for i in range(0, len(evs), _SPANS_PER_RECORD):
                    part = evs[i:i + _SPANS_PER_RECORD]
                    value = encode_otlp_proto(part, service_name=self.service_name)
                    await asyncio.wait_for(producer.send(self.topic, value, key=rkey, headers=_HEADERS),
                                           self.send_timeout)
                    sent += len(part)
                    self._counts["records"] += 1
                    # on purpose: hand the GIL back to the app's threads between records
                    time.sleep(0)  # noqa: ASYNC251
            await asyncio.wait_for(producer.flush(), self.send_timeout)
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            self._counts["sent"] += sent
            self._counts["errors"] += len(events) - sent
            log.warning("brownout: publishing %d events failed (%s); dropped and counted", len(events), exc)
            return False
        self._counts["sent"] += sent
        return True

    def _to_tracer(self, events: list[Event]) -> None:
        try:
            from opentelemetry.trace import SpanKind, Status, StatusCode

            from brownout.codec import span_attributes

            tracer = self.tracer_provider.get_tracer("brownout.hooks")
            for ev in events:
                start_ns = int(ev.start * 1e9)
                span = tracer.start_span(f"{ev.operation} {ev.key.model}", kind=SpanKind.CLIENT,
                                         start_time=start_ns, attributes=span_attributes(ev))
                if ev.error_type:
                    span.set_status(Status(StatusCode.ERROR, ev.error_type))
                span.end(end_time=start_ns + int(ev.duration * 1e9))
            if self.transport is None:
                self._counts["sent"] += len(events)
        except Exception:
            self._counts["errors"] += len(events)
            log.warning("brownout: could not hand events to the tracer provider", exc_info=True)

    def _release_waiters(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for w in waiters:
            w.set()
