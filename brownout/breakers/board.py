"""The router client: follows ``brownout.control`` and answers "where may this call go?".

:class:`AsyncBreakerBoard` rebuilds the board from the compacted topic at start (from the
beginning up to the end offsets taken then), then follows it in a background task.
:class:`BreakerBoard` is the same board run on its own event-loop thread, for sync routers.
Both fail open: a record past its ``expires_at`` (or a control topic silent for
``silence_timeout``) reads as closed, and is counted.

Routing: :meth:`~AsyncBreakerBoard.pick` walks an ordered fallback chain (tiers of equivalent
keys: the preferred model on the preferred provider, the same model elsewhere, a smaller model
anywhere) and, when every candidate is refused, returns the least degraded one. The records'
readings give each key a first-token timeout and a hedge delay from data
(:meth:`~AsyncBreakerBoard.first_token_timeout`, :meth:`~AsyncBreakerBoard.hedge_delay`, and
:meth:`~AsyncBreakerBoard.stall_threshold` for the hooks' in-flight stall reports);
:class:`HedgeBudget` caps the share of calls that are hedged.

>>> import asyncio
>>> from prometheus_client import CollectorRegistry
>>> from brownout.transport import MemoryTransport
>>> from brownout.breakers.record import ControlRecord
>>> key = Key("openai", "eastus", "gpt-4o")
>>> t = MemoryTransport()
>>> rec = ControlRecord(key, "open", since=0.0, until=30.0, seq=1, issued_at=0.0, expires_at=30.0)
>>> _ = t.append("brownout.control", rec.to_bytes(), rec.kafka_key())
>>> async def main():
...     board = AsyncBreakerBoard(t, clock=lambda: 10.0, registry=CollectorRegistry())
...     await board.start()
...     try:
...         return board.state(key), board.allow(key), board.healthy([key])
...     finally:
...         await board.stop()
>>> asyncio.run(main())
('open', False, [Key(provider='openai', region='eastus', model='gpt-4o')])
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily

from brownout import semconv as sc
from brownout.breakers.record import ControlRecord, Readings, verify
from brownout.model import Key
from brownout.transport.base import Consumer, Record, Transport, caught_up

__all__ = ["AsyncBreakerBoard", "BreakerBoard", "HedgeBudget", "STATE_VALUES"]

log = logging.getLogger(__name__)

#: ``brownout_router_breaker_state`` gauge values.
STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}
#: What :meth:`AsyncBreakerBoard.apply` says about a record (the ``result`` label).
RESULTS = ("accepted", "stale", "invalid", "refused", "deleted")

OnRecord = Callable[[ControlRecord | None, str, Record], None]
#: An ordered fallback chain: each item a key, or a tier of equivalent keys (the router spreads
#: calls over a tier's admitted keys).
Chain = Sequence[Key | Iterable[Key]]
#: ``degradation()`` ranks of the effective states: a half-open key is tried before an open one.
_RANK = {"closed": 0, "half_open": 1, "open": 2}


class AsyncBreakerBoard:
    """Breaker states for routers, read from the control topic.

    Parameters
    ----------
    transport
        Where the control topic lives (``MemoryTransport``, ``KafkaTransport``).
    topic
        The control topic.
    verify_keys
        Signing keys (a list, or key id -> key). When given, unsigned or forged records are
        refused and counted.
    clock
        Wall-clock seconds, compared with each record's ``expires_at``.
    rng
        Decides which calls a half-open key admits (``random()`` < ``probe_fraction``).
    registry
        Where the ``brownout_router_*`` metrics are registered (unregistered at :meth:`stop`).
    silence_timeout
        If set, the whole board fails open when no record arrived for this many seconds.
    panic_share
        When more than this share of a tier (of three keys or more) is open, its nearly-as-good
        open keys take calls too (see :meth:`candidates`); 1.0 turns it off.
    on_record
        Called as ``on_record(record_or_None, result, raw)`` for every record read.
    """

    def __init__(self, transport: Transport, topic: str = sc.TOPIC_CONTROL,
                 verify_keys: Mapping[str, bytes] | Sequence[bytes] | None = None, *,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None,
                 registry: CollectorRegistry | None = REGISTRY, silence_timeout: float | None = None,
                 poll_timeout: float = 0.5, on_record: OnRecord | None = None, panic_share: float = 0.5) -> None:
        if not 0.0 < panic_share <= 1.0:
            raise ValueError(f"panic_share must be in (0, 1], got {panic_share}")
        self.panic_share = panic_share
        self.transport = transport
        self.topic = topic
        self.verify_keys = verify_keys if verify_keys else None
        self.clock = clock
        self.rng = rng or random.Random()
        self.silence_timeout = silence_timeout
        self.poll_timeout = poll_timeout
        self.on_record = on_record
        self._board: dict[Key, ControlRecord] = {}
        self._expired_counted: set[tuple[Key, int, float]] = set()
        self._silent_counted = False
        self._last_record_at: float | None = None
        self._consumer: Consumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.ready = False
        self._registry = registry
        self._records_total = Counter("brownout_router_records_total",
                                      "Control records read by this router, by result.",
                                      ["result"], registry=None)
        self._fail_open_total = Counter("brownout_router_fail_open_total",
                                        "Times this router treated a breaker as closed because its "
                                        "record expired or the control topic went silent.",
                                        ["reason"], registry=None)
        self._state_collector = _StateCollector(self)
        for result in RESULTS:
            self._records_total.labels(result)
        for reason in ("expired", "silence"):
            self._fail_open_total.labels(reason)

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self, timeout: float | None = 30.0, *, strict: bool = False) -> None:
        """Rebuild the board from the topic, then follow it in a background task.

        Waits up to ``timeout`` seconds for the rebuild. If the control topic cannot be read by
        then, the board keeps trying in the background and reads as all closed meanwhile (a
        router must start even when the control plane is down), or, with ``strict``, stops and
        raises TimeoutError (a collector restoring its breakers needs the whole topic).
        """
        if self._task is not None:
            return
        self._register()
        rebuilt = asyncio.Event()
        self._task = asyncio.create_task(self._run(rebuilt), name="brownout-breaker-board")
        try:
            await asyncio.wait_for(asyncio.shield(rebuilt.wait()), timeout)
        except asyncio.TimeoutError:
            if strict:
                await self.stop()
                raise TimeoutError(f"control topic {self.topic} not read within {timeout} s") from None
            log.warning("control topic %s not read within %s s; failing open until it is", self.topic, timeout)

    async def stop(self) -> None:
        """Stop following; the board keeps its last records (and they expire as usual)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await _quietly(consumer.stop())
        self._unregister()
        self.ready = False

    async def __aenter__(self) -> "AsyncBreakerBoard":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _run(self, rebuilt: asyncio.Event) -> None:
        backoff = 0.1
        while True:
            consumer = self.transport.consumer([self.topic], group_id=None, from_beginning=True)
            self._consumer = consumer
            try:
                await consumer.start()
                await self._rebuild(consumer)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker is unreachable: fail open, and retry
                log.warning("control topic %s: rebuild failed (%s); retrying in %.1f s", self.topic, exc, backoff)
                self._consumer = None
                await _quietly(consumer.stop())
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        self.ready = True
        rebuilt.set()
        await self._follow(consumer)

    async def _rebuild(self, consumer: Consumer) -> None:
        targets = await consumer.end_offsets()
        while not await caught_up(consumer, targets):
            for raw in await consumer.getmany(timeout=self.poll_timeout):
                self.apply(raw)
            if self.poll_timeout <= 0:
                await asyncio.sleep(0)

    async def _follow(self, consumer: Consumer) -> None:
        backoff = 0.1
        while True:
            try:
                batch = await consumer.getmany(timeout=self.poll_timeout)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker went away: records expire, routers fail open
                log.warning("control topic read failed: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for raw in batch:
                self.apply(raw)
            if not batch:
                # a zero poll timeout returns at once: yield, or this task starves the loop
                await asyncio.sleep(0.01 if self.poll_timeout <= 0 else 0)

    # --- input ---------------------------------------------------------------------------
    def apply(self, raw: Record) -> str:
        """Take one record from the topic into the board; return the result label."""
        result, rec = self._judge(raw)
        self._records_total.labels(result).inc()
        if self.on_record is not None:
            try:
                self.on_record(rec, result, raw)
            except Exception:  # a display callback must not stop the board
                log.exception("on_record callback failed")
        return result

    def _judge(self, raw: Record) -> tuple[str, ControlRecord | None]:
        if self.verify_keys is not None and not verify(raw.value, raw.headers, self.verify_keys):
            return "refused", None
        if raw.value is None:
            try:
                key = Key.parse((raw.key or b"").decode())
            except (ValueError, UnicodeDecodeError):
                return "invalid", None
            self._board.pop(key, None)
            return "deleted", None
        try:
            rec = ControlRecord.from_bytes(raw.value)
        except ValueError:
            return "invalid", None
        now = self.clock()
        cur = self._board.get(rec.key)
        if cur is not None and (rec.seq, rec.issued_at) < (cur.seq, cur.issued_at) \
                and not cur.expired(now):
            return "stale", rec
        self._board[rec.key] = rec
        self._last_record_at = now
        self._silent_counted = False
        return "accepted", rec

    # --- reading -------------------------------------------------------------------------
    def state(self, key: Key) -> str:
        """``closed``, ``open`` or ``half_open``; closed for unknown keys and expired records."""
        rec = self._board.get(key)
        if rec is None or rec.state == "closed":
            return "closed"
        return self._effective(rec, self.clock())

    def allow(self, key: Key) -> bool:
        """May a call go to ``key`` now? Half-open keys admit ``probe_fraction`` of calls."""
        rec = self._board.get(key)
        if rec is None or rec.state == "closed":
            return True
        st = self._effective(rec, self.clock())
        if st == "half_open":
            return self.rng.random() < rec.probe_fraction
        return st == "closed"

    def admitted(self, keys: Iterable[Key]) -> list[Key]:
        """The keys a call may go to now, in order (half-open ones admit ``probe_fraction`` of
        calls); empty when every one is refused."""
        return [k for k in dict.fromkeys(keys) if self.allow(k)]

    def healthy(self, candidates: Iterable[Key]) -> list[Key]:
        """The candidates a call may go to now; never empty when ``candidates`` is not: when
        every one is refused, the least degraded ones (:meth:`least_degraded_set`)."""
        cands = list(dict.fromkeys(candidates))
        admitted = self.admitted(cands)
        if admitted or not cands:
            return admitted
        return self.least_degraded_set(cands)

    def candidates(self, chain: Chain) -> list[Key]:
        """Where a call may go, walking the fallback ``chain``: the admitted keys of the first
        tier that has any, else the least degraded keys of the whole chain. When most of a tier
        is open, its open keys nearly as good as the best (measured cost within 2 x) join the
        admitted ones: the few left would otherwise take the whole tier's load, slow down in turn
        and open too (a cascade; Envoy's panic threshold answers the same).

        >>> from brownout.transport import MemoryTransport
        >>> board = AsyncBreakerBoard(MemoryTransport(), registry=None)
        >>> east, west = Key("azure.ai.openai", "eastus", "gpt-4o"), Key("openai", "global", "gpt-4o")
        >>> board.candidates([[east, west], Key("openai", "global", "gpt-4o-mini")])
        [Key(provider='azure.ai.openai', region='eastus', model='gpt-4o'), Key(provider='openai', region='global', model='gpt-4o')]
        """
        tiers = _tiers(chain)
        for tier in tiers:
            admitted = self.admitted(tier)
            if admitted:
                if len(tier) > 2 and self.refused_share(tier) > self.panic_share:
                    # most of the tier is refused: the few left would take its whole load and slow
                    # down in turn (Envoy's panic threshold), so the nearly-as-good refused ones share it
                    return list(dict.fromkeys(admitted + self.least_degraded_set(tier, 2.0, by_state=False)))
                return admitted
        every = [k for tier in tiers for k in tier]
        if not every:
            return []
        best = self.least_degraded(every)
        tier = next(t for t in tiers if best in t)  # the preferred tier among equals
        return [k for k in self.least_degraded_set(every) if k in tier]

    def refused_share(self, keys: Iterable[Key]) -> float:
        """The share of ``keys`` whose breaker is open now (half-open ones still probe)."""
        ordered = list(dict.fromkeys(keys))
        now = self.clock()
        refused = 0
        for k in ordered:
            rec = self._board.get(k)
            if rec is not None and not rec.expired(now) and self._effective(rec, now) == "open":
                refused += 1
        return refused / len(ordered) if ordered else 0.0

    def pick(self, chain: Chain) -> Key:
        """One key for this call: a random admitted key of the first tier that has one, else the
        least degraded key of the chain (never refuses: nowhere to go is worse than a degraded
        provider). Raises ValueError for an empty chain."""
        cands = self.candidates(chain)
        if not cands:
            raise ValueError("pick: the fallback chain is empty")
        return cands[0] if len(cands) == 1 else self.rng.choice(cands)

    def least_degraded(self, keys: Iterable[Key]) -> Key:
        """The key with the lowest :meth:`degradation`; the earliest in ``keys`` on a tie."""
        ordered = list(dict.fromkeys(keys))
        if not ordered:
            raise ValueError("least_degraded: no keys")
        return min(enumerate(ordered), key=lambda p: (*self.degradation(p[1]), p[0]))[1]

    def least_degraded_set(self, keys: Iterable[Key], tolerance: float = 1.5, *, by_state: bool = True) -> list[Key]:
        """The least degraded key and those nearly as good: in its state (``by_state``; a half-open
        key before an open one) with a measured cost within ``tolerance`` x the best. When every
        candidate is refused, the load spreads over the best of them instead of piling onto one,
        which would slow it down in turn.

        >>> from brownout.transport import MemoryTransport
        >>> board = AsyncBreakerBoard(MemoryTransport(), registry=None)
        >>> a, b = Key("openai", "eastus", "gpt-4o"), Key("openai", "westus", "gpt-4o")
        >>> board.least_degraded_set([a, b]) == [a, b]      # nothing known: both equally good
        True
        """
        ordered = list(dict.fromkeys(keys))
        rank, cost = self.degradation(self.least_degraded(ordered))
        return [k for k in ordered if (d := self.degradation(k))[1] <= cost * tolerance
                and (d[0] == rank or not by_state)]

    def degradation(self, key: Key) -> tuple[int, float]:
        """How degraded ``key`` looks, lower is better: its state's rank (closed 0, half-open 1,
        open 2), then its cost: how slow its first tokens are against its own baseline (TTFT p50
        and p95 over their baselines, the larger) over the share of calls that succeed
        (1 - capacity-error rate), from the record's readings, else from the values that tripped
        it. 1.0 is a key at its baseline with no errors; unknown reads as 1.0."""
        rec = self._board.get(key)
        now = self.clock()
        if rec is None or rec.expired(now):
            return 0, 1.0
        state = self._effective(rec, now)
        return _RANK[state], _cost(rec)

    def readings(self, key: Key) -> Readings | None:
        """What the collector measured on ``key`` (its record's readings); None when unknown:
        no record, a record from an older collector, or an expired one."""
        rec = self._board.get(key)
        if rec is None or rec.readings is None or rec.expired(self.clock()):
            return None
        return rec.readings

    def _normal_ttft_p95(self, key: Key) -> float | None:
        r = self.readings(key)
        return None if r is None else r.normal_ttft_p95()

    def first_token_timeout(self, key: Key, default: float = 30.0, *, factor: float = 4.0,
                            floor: float = 1.0) -> float:
        """Seconds to wait for ``key``'s first token before giving up on the call (and trying
        the next candidate): ``factor`` x its TTFT p95 in normal times (its p95 baseline, else 2 x
        its p50 baseline, else its current p95 while the baselines warm:
        :meth:`~brownout.breakers.record.Readings.normal_ttft_p95`), at least ``floor``;
        ``default`` when nothing is known. Baselines, not current values: a key that slows down
        must not stretch its own timeout.

        >>> from brownout.transport import MemoryTransport
        >>> AsyncBreakerBoard(MemoryTransport(), registry=None).first_token_timeout(Key("a", "b", "c"), 20.0)
        20.0
        """
        base = self._normal_ttft_p95(key)
        return max(floor, factor * base) if base else default

    def stall_threshold(self, key: Key, *, factor: float = 8.0, floor: float = 3.0) -> float | None:
        """Seconds after which the hooks report a call to ``key`` still without a first token as
        a stall: ``factor`` x its normal TTFT p95 (see :meth:`first_token_timeout`), at least
        ``floor``: far past what queueing adds, since siblings that take a shed key's load must not
        look stalled (in ``bench/routing.py`` factors of 5 and below opened them too and cost 4 to
        10 points of goodput; 6 to 8 did not); None when unknown (the hooks then use their own
        estimate). Hand it to the hooks of a router process:
        ``brownout.hooks.configure(..., stall_threshold=board.stall_threshold)``."""
        base = self._normal_ttft_p95(key)
        return max(floor, factor * base) if base else None

    def hedge_delay(self, key: Key, default: float | None = None, *, floor: float = 0.05) -> float | None:
        """Seconds after which a call to ``key`` still without a first token gets a hedged copy
        on the next candidate: its TTFT p95 in normal times (about 5 % of calls hedge while it
        is healthy; see :meth:`first_token_timeout`), at least ``floor``; ``default`` (None: do
        not hedge) when nothing is known."""
        base = self._normal_ttft_p95(key)
        return max(floor, base) if base else default

    def records(self) -> dict[Key, ControlRecord]:
        """The latest accepted record of every key (expired ones included)."""
        return dict(self._board)

    def states(self) -> dict[Key, str]:
        """The effective state of every key on the board."""
        return {k: self.state(k) for k in list(self._board)}

    def _effective(self, rec: ControlRecord, now: float) -> str:
        if (self.silence_timeout is not None and self._last_record_at is not None
                and now - self._last_record_at > self.silence_timeout):
            if not self._silent_counted:
                self._silent_counted = True
                self._fail_open_total.labels("silence").inc()
            return "closed"
        if rec.expired(now):
            mark = (rec.key, rec.seq, rec.issued_at)
            if mark not in self._expired_counted:
                self._expired_counted.add(mark)
                self._fail_open_total.labels("expired").inc()
                if len(self._expired_counted) > 10_000:
                    self._expired_counted = {mark}
            return "closed"
        return rec.state

    # --- metrics -------------------------------------------------------------------------
    def _register(self) -> None:
        if self._registry is None:
            return
        for c in (self._records_total, self._fail_open_total, self._state_collector):
            self._registry.register(c)

    def _unregister(self) -> None:
        if self._registry is None:
            return
        for c in (self._records_total, self._fail_open_total, self._state_collector):
            try:
                self._registry.unregister(c)
            except KeyError:
                pass


async def _quietly(aw: Any) -> None:
    try:
        await aw
    except Exception as exc:  # stopping a client whose broker is gone
        log.debug("ignored while stopping: %s", exc)


def _tiers(chain: Chain) -> list[list[Key]]:
    return [[item] if isinstance(item, Key) else list(item) for item in chain]


def _cost(rec: ControlRecord) -> float:
    """Relative time to a useful first token: slowness against the key's own baseline over the
    share of calls that succeed (see :meth:`AsyncBreakerBoard.degradation`)."""
    slow, err = 1.0, 0.0
    r = rec.readings
    if r is not None:
        for now, base in ((r.ttft_p50, r.ttft_p50_baseline), (r.ttft_p95, r.ttft_p95_baseline)):
            if now is not None and base:
                slow = max(slow, now / base)
        err = r.capacity_error_rate or 0.0
    rule = rec.rule or ""
    if rec.state != "closed" and rec.observed is not None:
        if "error" in rule or "stall" in rule:  # a share of calls that failed, or got no first token in time
            err = max(err, rec.observed)
        elif rec.baseline:
            slow = max(slow, rec.observed / rec.baseline)
    return slow / max(1e-3, 1.0 - min(err, 1.0))


class HedgeBudget:
    """Caps hedged copies at a share of calls, as a retry budget does (Finagle, gRPC): each
    call deposits ``ratio`` of a token, each hedge spends one, and at most ``burst`` tokens are
    kept (it starts full, so a router that just started may hedge), so over any stretch hedges
    stay within ``ratio`` x calls + ``burst``. Thread-safe.

    >>> budget = HedgeBudget(ratio=0.1, burst=1.0)
    >>> hedged = 0
    >>> for _ in range(100):
    ...     budget.call()
    ...     hedged += budget.try_hedge()    # a router that would hedge every call
    >>> hedged
    10
    """

    def __init__(self, ratio: float = 0.1, burst: float = 10.0) -> None:
        if not 0 < ratio <= 1:
            raise ValueError(f"HedgeBudget.ratio: must be in (0, 1], got {ratio!r}")
        if not burst >= 1:
            raise ValueError(f"HedgeBudget.burst: must be >= 1, got {burst!r}")
        self.ratio, self.burst = ratio, burst
        self.tokens = burst
        self.calls = self.hedges = 0
        self._lock = threading.Lock()

    def call(self) -> None:
        """Count one call (hedges are not calls)."""
        with self._lock:
            self.calls += 1
            self.tokens = min(self.burst, self.tokens + self.ratio)

    def try_hedge(self) -> bool:
        """Spend a token on a hedged copy if one is left."""
        with self._lock:
            if self.tokens < 1.0 - 1e-9:
                return False
            self.tokens -= 1.0
            self.hedges += 1
            return True


class _StateCollector:
    """``brownout_router_breaker_state`` per key that ever tripped, computed at scrape time
    (expiry included). Keys whose records only carry readings (every key with traffic) are left
    out: thousands of always-closed series would say nothing."""

    def __init__(self, board: AsyncBreakerBoard) -> None:
        self._board = board

    def describe(self) -> list[GaugeMetricFamily]:
        return [self._family()]

    def collect(self) -> list[GaugeMetricFamily]:
        fam = self._family()
        tripped = {k for k, rec in self._board.records().items() if rec.seq > 0 or rec.state != "closed"}
        for key, state in sorted(self._board.states().items()):
            if key in tripped:
                fam.add_metric([key.provider, key.region, key.model], STATE_VALUES[state])
        return [fam]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily("brownout_router_breaker_state",
                                 "Breaker state per key as this router sees it: 0 closed, "
                                 "1 half_open, 2 open.", labels=["provider", "region", "model"])


class BreakerBoard:
    """The board for sync code: an :class:`AsyncBreakerBoard` on its own event-loop thread.

    Takes the same arguments; ``start()`` blocks until the board is rebuilt. Reading methods
    (``state``, ``allow``, ``pick``, ``candidates``, ``healthy``, ``readings``, ``hedge_delay``,
    ``first_token_timeout``, ...) are safe from any thread.
    Also a context manager.
    """

    def __init__(self, transport: Transport, topic: str = sc.TOPIC_CONTROL,
                 verify_keys: Mapping[str, bytes] | Sequence[bytes] | None = None,
                 **kwargs: Any) -> None:
        self._board = AsyncBreakerBoard(transport, topic, verify_keys, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def board(self) -> AsyncBreakerBoard:
        return self._board

    def start(self, timeout: float | None = 30.0, *, strict: bool = False) -> "BreakerBoard":
        """Start the loop thread and the board; see :meth:`AsyncBreakerBoard.start`."""
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="brownout-breaker-board", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        fut = asyncio.run_coroutine_threadsafe(self._board.start(timeout, strict=strict), loop)
        try:
            fut.result()
        except BaseException:
            self._shutdown_loop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._board.stop(), self._loop)
        try:
            fut.result(timeout)
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5.0)
        loop.close()

    def __enter__(self) -> "BreakerBoard":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def ready(self) -> bool:
        return self._board.ready

    def state(self, key: Key) -> str:
        return self._board.state(key)

    def allow(self, key: Key) -> bool:
        return self._board.allow(key)

    def healthy(self, candidates: Iterable[Key]) -> list[Key]:
        return self._board.healthy(candidates)

    def admitted(self, keys: Iterable[Key]) -> list[Key]:
        return self._board.admitted(keys)

    def candidates(self, chain: Chain) -> list[Key]:
        return self._board.candidates(chain)

    def pick(self, chain: Chain) -> Key:
        return self._board.pick(chain)

    def least_degraded(self, keys: Iterable[Key]) -> Key:
        return self._board.least_degraded(keys)

    def least_degraded_set(self, keys: Iterable[Key], tolerance: float = 1.5, *,
                           by_state: bool = True) -> list[Key]:
        return self._board.least_degraded_set(keys, tolerance, by_state=by_state)

    def degradation(self, key: Key) -> tuple[int, float]:
        return self._board.degradation(key)

    def readings(self, key: Key) -> Readings | None:
        return self._board.readings(key)

    def first_token_timeout(self, key: Key, default: float = 30.0, *, factor: float = 4.0,
                            floor: float = 1.0) -> float:
        return self._board.first_token_timeout(key, default, factor=factor, floor=floor)

    def hedge_delay(self, key: Key, default: float | None = None, *, floor: float = 0.05) -> float | None:
        return self._board.hedge_delay(key, default, floor=floor)

    def stall_threshold(self, key: Key, *, factor: float = 8.0, floor: float = 3.0) -> float | None:
        return self._board.stall_threshold(key, factor=factor, floor=floor)

    def records(self) -> dict[Key, ControlRecord]:
        return self._board.records()

    def states(self) -> dict[Key, str]:
        return self._board.states()
