"""The breaker state machine, one per key: closed -> open -> half_open -> closed (or open again).

A ``trip`` finding from a breaker rule opens a closed key, whatever its peers do: the collector
publishes each key's true state, a model served by one key included, and routers decide where
to go when every candidate is refused. After a jittered cooldown the key goes half-open;
requests that start from then on are probes. ``probes_needed`` healthy probes close it;
``probe_failures`` unhealthy ones open it again with a longer cooldown (``growth`` per re-open,
up to ``cooldown_max``). A probe that stalls (an in-flight stall report, or no first token
before the probe ceiling) is unhealthy; a cancelled copy is no verdict. Event time drives
everything, so a replay gives the same decisions.

Every transition carries one of :data:`~brownout.breakers.record.REASONS`, on the decision
(replay's line) and on the control record alike. Keys the detectors have readings for (TTFT
p50/p95 and baselines, see :meth:`BreakerBook.update_readings`) get a record too, closed ones
included, re-issued each heartbeat, so routers can set timeouts and hedge delays from data.

>>> from brownout.model import Finding, Event, Key
>>> book = BreakerBook(BreakerConfig(jitter=0.0, probes_needed=2))
>>> a = Key("openai", "eastus", "gpt-4o")
>>> book.on_finding(Finding(60.0, "error_breaker", a, "trip", 0.4, 0.01, action="breaker"))
>>> [(d.state, d.reason) for d in book.advance(60.0)]
[('open', 'tripped')]
>>> [(d.time, d.state, d.reason) for d in book.advance(90.0)]
[(90.0, 'half_open', 'cooldown_elapsed')]
>>> [(r.state, r.reason) for r in book.records(90.0)]
[('half_open', 'cooldown_elapsed')]
>>> for t in (91.0, 92.0):
...     book.observe(Event(a, t, 0.5))
>>> [(d.time, d.state, d.reason) for d in book.advance(93.0)]
[(92.5, 'closed', 'probes_healthy')]
"""

from __future__ import annotations

import heapq
import logging
import math
import random
import zlib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from brownout import semconv as sc
from brownout.breakers.config import BreakerConfig
from brownout.breakers.record import REASONS, ControlRecord, Readings, Signer
from brownout.model import Decision, Event, Finding, Key
from brownout.transport.base import Headers, Producer

__all__ = ["BreakerBook", "readings_from_status"]

log = logging.getLogger(__name__)

#: Stall reports remembered per half-open key (to skip their completions): a bound, not a tuning knob.
_MAX_STALLED = 1024

_STATES = ("closed", "open", "half_open")
#: A breaker's fields in a snapshot, and the types each may take.
_STATE_FIELDS: dict[str, tuple[type, ...]] = {
    "state": (str,), "since": (float, int), "until": (float, int, type(None)), "rule": (str, type(None)),
    "reason": (str, type(None)), "observed": (float, int, type(None)), "baseline": (float, int, type(None)),
    "seq": (int,), "level": (int,), "closed_at": (float, int, type(None)), "probe_ok": (int,), "probe_bad": (int,),
    "verdict": (str, type(None)), "verdict_at": (float, int), "published": (bool,), "dirty": (bool,),
    "last_issued": (float, int, type(None)), "signal": (str, type(None)),
}


def _checked_state(state: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, types in _STATE_FIELDS.items():
        if name not in state:
            raise ValueError(f"breaker.{name} is missing")
        v = state[name]
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            raise ValueError(f"breaker.{name}: {v!r} is not {' or '.join(t.__name__ for t in types)}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"breaker.{name}: {v!r} is not finite")
        if isinstance(v, int) and not isinstance(v, bool) and v < 0:
            raise ValueError(f"breaker.{name}: {v!r} is negative")
        out[name] = v
    if out["state"] not in _STATES or out["verdict"] not in (None, "healthy", "failed"):
        raise ValueError(f"breaker state {out['state']!r}, verdict {out['verdict']!r}")
    if out["reason"] is not None and out["reason"] not in REASONS:
        raise ValueError(f"breaker.reason: {out['reason']!r} is not one of {', '.join(REASONS)}")
    if out["last_issued"] is None:
        out["last_issued"] = -math.inf
    return out


@dataclass(slots=True)
class _Breaker:
    key: Key
    state: str = "closed"
    since: float = 0.0
    until: float | None = None
    rule: str | None = None
    reason: str | None = None
    observed: float | None = None
    baseline: float | None = None
    seq: int = 0
    level: int = 0  # re-opens in a row; the cooldown grows with it
    closed_at: float | None = None  # last close after a trip
    probe_ok: int = 0
    probe_bad: int = 0
    verdict: str | None = None  # "healthy" | "failed", once the probes decided
    verdict_at: float = 0.0
    published: bool = False
    dirty: bool = False
    last_issued: float = -math.inf
    readings: Readings | None = None
    stalled: set[float] | None = None  # starts of probes already failed by their stall report
    due: float = math.inf  # when the next heartbeat is scheduled
    signal: str | None = None  # what a latency trip judged: "ttft" or "latency" (per output token)

    def reset_probes(self) -> None:
        self.probe_ok = self.probe_bad = 0
        self.verdict = None
        self.verdict_at = 0.0
        self.stalled = None


class BreakerBook:
    """Breaker state for every key, fed with findings, events and readings; read as decisions and records.

    Parameters
    ----------
    config
        Cooldowns, probes and heartbeats (defaults: :class:`BreakerConfig`).
    seed
        Seeds the cooldown jitter; the jitter of a key's n-th transition depends only on
        the seed, the key and n, so the same input gives the same decisions.
    signer
        Signs what :meth:`publish` sends (HMAC-SHA256 header); None sends unsigned records.

    Counter: ``rearm_ignored`` (trips ignored just after a close).
    """

    def __init__(self, config: BreakerConfig | None = None, *, seed: int = 0,
                 signer: Signer | None = None) -> None:
        self.config = config or BreakerConfig()
        self.seed = seed
        self.signer = signer
        self._breakers: dict[Key, _Breaker] = {}
        self._pending: list[Decision] = []
        self._active: set[Key] = set()  # keys advance() must look at: not closed
        self._announced: set[Key] = set()  # keys with a record (a transition, or readings)
        self._dirty: set[Key] = set()  # keys whose record must go out at the next records()
        self._heap: list[tuple[float, Key]] = []  # (due, key) heartbeats; stale entries are skipped
        self._unsettled: set[Key] = set()  # keys created since the last records(): maybe restored from outside
        self.rearm_ignored = 0

    # --- input -------------------------------------------------------------------------
    def on_finding(self, finding: Finding) -> None:
        """Act on a breaker rule's finding: a ``trip`` opens a closed key."""
        if finding.action != "breaker":
            return
        b = self._breaker(finding.key)
        if finding.state != "trip" or b.state != "closed":
            return
        cfg = self.config
        if b.closed_at is not None and finding.time - b.closed_at < cfg.rearm_after:
            self.rearm_ignored += 1
            return
        flapping = b.closed_at is not None and finding.time - b.closed_at < cfg.cooldown_max
        b.rule, b.observed, b.baseline = finding.rule, finding.observed, finding.baseline
        b.signal = dict(finding.labels).get("signal")
        self._open(b, finding.time, b.level + 1 if flapping else 0, "tripped")

    def observe(self, event: Event) -> None:
        """Count ``event`` as a probe if its key is half-open (or due to be) when it started."""
        b = self._breakers.get(event.key)
        if b is None:
            b = self._breaker(event.key)
        if b.state == "closed" or b.verdict is not None:
            return
        probes_from = b.since if b.state == "half_open" else b.until
        if probes_from is None or event.start < probes_from:
            return
        verdict = self._probe_verdict(b, event)
        if verdict is None:
            return
        cfg = self.config
        if verdict == "healthy":
            b.probe_ok += 1
            if b.probe_ok >= cfg.probes_needed:
                b.verdict, b.verdict_at = "healthy", event.end
        else:
            b.probe_bad += 1
            if b.probe_bad >= cfg.probe_failures:
                b.verdict, b.verdict_at = "failed", event.end

    def update_readings(self, readings: Mapping[Key, Mapping[str, float | None] | Readings]) -> None:
        """Take each key's readings for its next record (see :class:`~brownout.breakers.record.Readings`
        for the fields; unknown fields are ignored). A key with readings gets a record at its next
        heartbeat, closed or not; a bad value is logged and the key keeps its previous readings.

        The pipeline calls this after each evaluated step with :func:`readings_from_status`.
        """
        for key, values in readings.items():
            try:
                r = values if isinstance(values, Readings) else Readings.from_mapping(values)
            except ValueError as exc:
                log.warning("readings for %s ignored: %s", key, exc)
                continue
            b = self._breakers.get(key)
            if b is None:
                b = self._breaker(key)
            b.readings = r if r.known else None
            if b.readings is not None and key not in self._announced:
                self._announced.add(key)
                self._unsettled.add(key)  # records() schedules its first heartbeat

    def restore_from_records(self, records: Iterable[ControlRecord]) -> None:
        """Seed states and ``seq`` from the control topic's current records (after a restart),
        so old transitions are not announced again and ``seq`` continues."""
        for rec in records:
            b = self._breaker(rec.key)
            if b.published and rec.seq < b.seq:
                continue
            b.state, b.since, b.until = rec.state, rec.since, rec.until
            b.rule, b.reason = rec.rule, rec.reason
            b.observed, b.baseline = rec.observed, rec.baseline
            b.seq, b.published, b.dirty = rec.seq, True, False
            b.readings = rec.readings if rec.readings is not None and rec.readings.known else b.readings
            self._announced.add(rec.key)
            self._dirty.discard(rec.key)
            b.last_issued = rec.issued_at
            self._schedule(b, rec.issued_at + self.config.heartbeat_interval)
            b.closed_at = rec.since if rec.state == "closed" and rec.reason == "probes_healthy" else None
            if rec.state != "closed":
                self._active.add(rec.key)
            else:
                self._active.discard(rec.key)
            if rec.state == "open" and rec.until is None:
                b.until = rec.since + self.config.cooldown_min
            b.reset_probes()

    def forget(self, key: Key) -> None:
        """Drop everything held for ``key`` (its events now go to another collector)."""
        self._breakers.pop(key, None)
        for keys in (self._active, self._announced, self._dirty, self._unsettled):
            keys.discard(key)

    # --- time --------------------------------------------------------------------------
    def advance(self, now: float) -> list[Decision]:
        """Apply what is due by ``now`` (cooldowns elapsed, probe verdicts) and return the
        decisions taken since the last call, in time order."""
        for key in sorted(self._active):
            b = self._breakers[key]
            for _ in range(64):  # a long gap in event time can hold several transitions
                if b.state == "open" and b.until is not None and now >= b.until:
                    self._move(b, b.until, "half_open", "cooldown_elapsed")
                elif b.state == "half_open" and b.verdict is not None and b.verdict_at <= now:
                    t = max(b.verdict_at, b.since)
                    if b.verdict == "healthy":
                        b.closed_at = t
                        self._move(b, t, "closed", "probes_healthy")
                    else:
                        self._open(b, t, b.level + 1, "probes_failed")
                else:
                    break
            if b.state == "closed":
                self._active.discard(key)
        out = sorted(self._pending, key=lambda d: d.time)  # stable: causal order within a time
        self._pending = []
        return out

    # --- output ------------------------------------------------------------------------
    def records(self, now: float) -> list[ControlRecord]:
        """Records to publish now: keys whose state changed, and heartbeats for keys whose last
        record is ``heartbeat_interval`` old (same state and ``seq``, new ``issued_at`` and
        readings). A key's first readings-only record goes out within one heartbeat interval,
        at a phase of its own, so thousands of keys do not heartbeat in the same instant."""
        cfg = self.config
        self._settle(now)
        due = set(self._dirty)
        self._dirty.clear()
        heap = self._heap
        while heap and heap[0][0] <= now:
            t, key = heapq.heappop(heap)
            b = self._breakers.get(key)
            if b is not None and b.due == t and key in self._announced:
                due.add(key)
        due.update(k for k in self._active if self._breakers[k].dirty)
        out = []
        for key in sorted(due):
            b = self._breakers.get(key)
            if b is None or key not in self._announced:
                continue
            if not (b.dirty or now >= b.due or now - b.last_issued >= cfg.heartbeat_interval):
                continue
            out.append(ControlRecord(
                key=key, state=b.state, since=b.since, until=b.until if b.state == "open" else None,
                reason=b.reason, rule=b.rule, observed=b.observed, baseline=b.baseline,
                probe_fraction=cfg.probe_fraction, seq=b.seq, issued_at=now,
                expires_at=now + cfg.record_ttl, readings=b.readings))
            b.dirty, b.published, b.last_issued = False, True, now
            self._schedule(b, now + cfg.heartbeat_interval)
        return out

    async def publish(self, producer: Producer, now: float, topic: str = sc.TOPIC_CONTROL) -> int:
        """Send :meth:`records` to ``topic`` (signed when a signer is set), flush; return how many."""
        recs = self.records(now)
        for rec in recs:
            value = rec.to_bytes()
            headers: Headers = ((sc.HEADER_CONTENT_TYPE, sc.CONTENT_FLAT_JSON.encode()),)
            if self.signer is not None:
                headers += self.signer.headers(value)
            await producer.send(topic, value, key=rec.kafka_key(), headers=headers)
        if recs:
            await producer.flush()
        return len(recs)

    def states(self) -> dict[Key, str]:
        """Every known key's breaker state."""
        return {k: b.state for k, b in self._breakers.items()}

    def readings(self, key: Key) -> Readings | None:
        """The readings ``key``'s next record carries (None: nothing known)."""
        b = self._breakers.get(key)
        return None if b is None else b.readings

    # --- per-key state (snapshots, rebalances) -------------------------------------------
    def keys(self) -> list[Key]:
        """Every key with a breaker."""
        return sorted(self._breakers)

    def export_key(self, key: Key) -> dict[str, Any] | None:
        """``key``'s breaker as plain JSON-able values (None: no breaker for it)."""
        b = self._breakers.get(key)
        if b is None:
            return None
        out = {f: getattr(b, f) for f in _STATE_FIELDS}
        if out["last_issued"] == -math.inf:
            out["last_issued"] = None  # never issued (JSON has no infinity)
        return out

    def install_key(self, key: Key, state: Mapping[str, Any] | None, control: ControlRecord | None = None) -> None:
        """Replace ``key``'s breaker with ``state`` (from :meth:`export_key`), reconciled with the key's
        latest control record: a newer record wins; a transition the topic never received is sent again.
        Raises ValueError naming the bad field before anything changes."""
        fields = None if state is None else _checked_state(state)
        self.forget(key)
        if fields is None and control is None:
            return
        b = self._breaker(key)
        if fields is not None:
            for f, v in fields.items():
                setattr(b, f, v)
        if control is not None and (fields is None or control.seq > b.seq):
            b.published = False
            self.restore_from_records([control])
        elif b.seq > (control.seq if control is not None else 0) and not b.dirty:
            b.dirty = True  # decided before the crash but never published: publish it now
        if b.published or b.dirty:
            self._announced.add(key)
        if b.state != "closed":
            self._active.add(key)

    forget_key = forget

    def cooldown(self, key: Key, seq: int, level: int) -> float:
        """The cooldown of ``key``'s transition number ``seq`` at re-open ``level`` (deterministic)."""
        cfg = self.config
        base = min(cfg.cooldown_min * cfg.growth ** min(level, 64), cfg.cooldown_max)
        u = random.Random(f"{self.seed}:{key}:{seq}").random()
        return min(base * (1.0 + cfg.jitter * u), cfg.cooldown_max)

    # --- internals ---------------------------------------------------------------------
    def _breaker(self, key: Key) -> _Breaker:
        b = self._breakers.get(key)
        if b is None:
            b = self._breakers[key] = _Breaker(key)
            self._unsettled.add(key)
        return b

    def _settle(self, now: float) -> None:
        """Schedule the keys created since the last call that have a record to heartbeat: new
        readings (first record at the key's phase), or a state restored from a snapshot."""
        hb = self.config.heartbeat_interval
        for key in self._unsettled:
            b = self._breakers.get(key)
            if b is None or key not in self._announced:
                continue
            if b.dirty:
                self._dirty.add(key)
            elif b.published:
                self._schedule(b, b.last_issued + hb)
            elif b.due == math.inf:
                phase = zlib.crc32(str(key).encode()) / 2 ** 32 * hb
                self._schedule(b, now + phase)
        self._unsettled.clear()

    def _schedule(self, b: _Breaker, due: float) -> None:
        b.due = due
        heapq.heappush(self._heap, (due, b.key))
        if len(self._heap) > 4 * len(self._breakers) + 64:  # drop the stale entries now and then
            self._heap = [(t, k) for t, k in self._heap if k in self._breakers and self._breakers[k].due == t]
            heapq.heapify(self._heap)

    def _open(self, b: _Breaker, t: float, level: int, reason: str) -> None:
        b.level = level
        self._move(b, t, "open", reason)
        b.until = t + self.cooldown(b.key, b.seq, level)

    def _move(self, b: _Breaker, t: float, state: str, reason: str) -> None:
        """The one way a key changes state: the record and the decision say the same ``reason``."""
        b.seq += 1
        b.dirty = True
        self._announced.add(b.key)
        self._dirty.add(b.key)
        b.state, b.since, b.until, b.reason = state, t, None, reason
        if state != "half_open":  # probes that started at the due time already count
            b.reset_probes()
        if state == "closed":
            self._active.discard(b.key)
        else:
            self._active.add(b.key)
        with_values = reason == "tripped"
        self._pending.append(Decision(
            t, "breaker", b.rule or "breaker", b.key, state,
            b.observed if with_values else None, b.baseline if with_values else None,
            None, reason))

    def _probe_verdict(self, b: _Breaker, event: Event) -> str | None:
        """``healthy``, ``failed``, or None: no verdict (a cancelled copy that was not late, or
        the completion of a probe whose stall report already failed it)."""
        if event.stall:
            if b.stalled is None:
                b.stalled = set()
            if event.start in b.stalled:
                return None
            if len(b.stalled) < _MAX_STALLED:
                b.stalled.add(event.start)
            return "failed"
        if b.stalled and event.start in b.stalled:
            return None
        ceiling = self._ttft_ceiling(b)
        late = ceiling is not None and event.ttft_at_least is not None and event.ttft_at_least >= ceiling
        cls = event.error_class
        if cls == "cancelled":
            return "failed" if late else None
        if cls == "capacity" or late:
            return "failed"
        if ceiling is not None and event.ttft is not None and event.ttft >= ceiling:
            return "failed"
        if (b.rule or "") == "latency_breaker" and b.baseline:
            # what the rule judged: the first token, or the duration per output token
            limit = self.config.latency_probe_factor * b.baseline
            if b.signal == "ttft":
                if (event.ttft or 0.0) >= limit or (event.ttft_at_least or 0.0) >= limit:
                    return "failed"
            elif event.duration / max(1, event.output_tokens or 0) >= limit:
                return "failed"
        return "healthy"

    def _ttft_ceiling(self, b: _Breaker) -> float | None:
        """Slower than this to a first token, a probe is unhealthy: ``latency_probe_factor`` x the
        key's normal TTFT p95 (its p95 baseline, else 2 x its p50 baseline; None while unknown:
        never the current p95, which is the degradation being probed)."""
        base = b.readings.normal_ttft_p95(current=False) if b.readings is not None else None
        return self.config.latency_probe_factor * base if base else None


def readings_from_status(status: Mapping[Key, object]) -> dict[Key, dict[str, float | None]]:
    """Readings for :meth:`BreakerBook.update_readings` from the detectors' per-key status
    (``Engine.status()``: ``KeyStatus`` values; a missing attribute reads as unknown).

    >>> from types import SimpleNamespace
    >>> s = SimpleNamespace(ttft_p50=0.4, ttft_p95=0.9, ttft_p50_baseline=0.3, ttft_p95_baseline=None,
    ...                     requests=120, capacity_error_rate=0.0)
    >>> readings_from_status({Key("openai", "eastus", "gpt-4o"): s})[Key("openai", "eastus", "gpt-4o")]["requests_per_s"]
    2.0
    """
    out = {}
    for key, s in status.items():
        requests = getattr(s, "requests", None)
        out[key] = {name: getattr(s, name, None) for name in _STATUS_FIELDS}
        out[key]["requests_per_s"] = None if requests is None else requests / 60.0
    return out


_STATUS_FIELDS = ("ttft_p50", "ttft_p95", "ttft_p50_baseline", "ttft_p95_baseline", "capacity_error_rate")
