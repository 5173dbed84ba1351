"""The breaker state machine, one per key: closed -> open -> half_open -> closed (or open again).

A ``trip`` finding from a breaker rule (``error_breaker``, ``latency_breaker``) opens a closed
key, unless the guard holds it: never more than ``max_open_share`` of the keys serving one
model are open at once. After a jittered cooldown the key goes half-open; requests that start
from then on are probes. ``probes_needed`` healthy probes close it; ``probe_failures``
unhealthy ones open it again with a longer cooldown (``growth`` per re-open, up to
``cooldown_max``). Event time drives everything, so a replay gives the same decisions.

>>> from brownout.model import Finding, Event, Key
>>> book = BreakerBook(BreakerConfig(jitter=0.0, probes_needed=2))
>>> a, b = Key("openai", "eastus", "gpt-4o"), Key("azure.ai.openai", "swedencentral", "gpt-4o")
>>> book.observe(Event(b, 0.0, 1.0))
>>> book.on_finding(Finding(60.0, "error_breaker", a, "trip", 0.4, 0.01, action="breaker"))
>>> [(d.state, d.reason) for d in book.advance(60.0)]
[('open', 'tripped')]
>>> [(d.time, d.state) for d in book.advance(90.0)]
[(90.0, 'half_open')]
>>> for t in (91.0, 92.0):
...     book.observe(Event(a, t, 0.5))
>>> [(d.time, d.state, d.reason) for d in book.advance(93.0)]
[(92.5, 'closed', 'probes_healthy')]
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from brownout import semconv as sc
from brownout.breakers.config import BreakerConfig
from brownout.breakers.record import ControlRecord, Signer
from brownout.model import Decision, Event, Finding, Key
from brownout.transport.base import Headers, Producer

__all__ = ["BreakerBook"]

_STATES = ("closed", "open", "half_open")
#: A breaker's fields in a snapshot, and the types each may take.
_STATE_FIELDS: dict[str, tuple[type, ...]] = {
    "state": (str,), "since": (float, int), "until": (float, int, type(None)), "rule": (str, type(None)),
    "reason": (str, type(None)), "observed": (float, int, type(None)), "baseline": (float, int, type(None)),
    "seq": (int,), "level": (int,), "closed_at": (float, int, type(None)), "guard_last": (float, int, type(None)),
    "probe_ok": (int,), "probe_bad": (int,), "verdict": (str, type(None)), "verdict_at": (float, int),
    "published": (bool,), "dirty": (bool,), "last_issued": (float, int, type(None)), "signal": (str, type(None)),
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
    guard_last: float | None = None  # last trip the guard held back
    probe_ok: int = 0
    probe_bad: int = 0
    verdict: str | None = None  # "healthy" | "failed", once the probes decided
    verdict_at: float = 0.0
    published: bool = False
    dirty: bool = False
    last_issued: float = -math.inf
    signal: str | None = None  # what a latency trip judged: "ttft" or "latency" (per output token)

    def reset_probes(self) -> None:
        self.probe_ok = self.probe_bad = 0
        self.verdict = None
        self.verdict_at = 0.0


class BreakerBook:
    """Breaker state for every key, fed with findings and events, read as decisions and records.

    Parameters
    ----------
    config
        Cooldowns, probes, guard and heartbeats (defaults: :class:`BreakerConfig`).
    seed
        Seeds the cooldown jitter; the jitter of a key's n-th transition depends only on
        the seed, the key and n, so the same input gives the same decisions.
    signer
        Signs what :meth:`publish` sends (HMAC-SHA256 header); None sends unsigned records.

    Counters: ``guard_held`` (trips the guard held back), ``rearm_ignored`` (trips ignored
    just after a close).
    """

    def __init__(self, config: BreakerConfig | None = None, *, seed: int = 0,
                 signer: Signer | None = None) -> None:
        self.config = config or BreakerConfig()
        self.seed = seed
        self.signer = signer
        self._breakers: dict[Key, _Breaker] = {}
        self._models: dict[str, set[Key]] = {}
        self._pending: list[Decision] = []
        self._active: set[Key] = set()  # keys advance() must look at: not closed, or guard-held
        self._announced: set[Key] = set()  # keys with a record: records() looks only at these
        self.guard_held = 0
        self.rearm_ignored = 0

    # --- input -------------------------------------------------------------------------
    def on_finding(self, finding: Finding) -> None:
        """Act on a breaker rule's finding: a ``trip`` opens a closed key (subject to the guard)."""
        if finding.action != "breaker":
            return
        b = self._breaker(finding.key)
        if finding.state != "trip" or b.state != "closed":
            return
        cfg = self.config
        if b.closed_at is not None and finding.time - b.closed_at < cfg.rearm_after:
            self.rearm_ignored += 1
            return
        if not self._guard_allows(b.key):
            self.guard_held += 1
            b.guard_last = finding.time
            if b.reason != "guard":
                b.reason, b.rule, b.since = "guard", finding.rule, finding.time
                b.observed, b.baseline = finding.observed, finding.baseline
                self._active.add(b.key)
                self._bump(b)
                self._decide(b, finding.time, "closed", "guard")
            return
        if b.reason == "guard":  # the hold ends before the key opens, so its alert resolves
            b.reason, b.guard_last = "guard_released", None
            self._decide(b, finding.time, "closed", "guard_released")
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
        cfg = self.config
        if self._probe_healthy(b, event):
            b.probe_ok += 1
            if b.probe_ok >= cfg.probes_needed:
                b.verdict, b.verdict_at = "healthy", event.end
        else:
            b.probe_bad += 1
            if b.probe_bad >= cfg.probe_failures:
                b.verdict, b.verdict_at = "failed", event.end

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
            self._announced.add(rec.key)
            b.last_issued = rec.issued_at
            b.closed_at = rec.since if rec.state == "closed" and rec.reason == "probes_healthy" else None
            b.guard_last = rec.issued_at if rec.reason == "guard" else None
            if rec.state != "closed" or rec.reason == "guard":
                self._active.add(rec.key)
            else:
                self._active.discard(rec.key)
            if rec.state == "open" and rec.until is None:
                b.until = rec.since + self.config.cooldown_min
            b.reset_probes()

    # --- time --------------------------------------------------------------------------
    def advance(self, now: float) -> list[Decision]:
        """Apply what is due by ``now`` (cooldowns elapsed, probe verdicts) and return the
        decisions taken since the last call, in time order."""
        cfg = self.config
        for key in sorted(self._active):
            b = self._breakers[key]
            for _ in range(64):  # a long gap in event time can hold several transitions
                if b.state == "open" and b.until is not None and now >= b.until:
                    b.state, b.since, b.until = "half_open", b.until, None
                    self._bump(b)
                    self._decide(b, b.since, "half_open", "cooldown_elapsed")
                elif b.state == "half_open" and b.verdict is not None and b.verdict_at <= now:
                    t = max(b.verdict_at, b.since)
                    if b.verdict == "healthy":
                        b.state, b.since, b.until, b.closed_at = "closed", t, None, t
                        b.reason = "probes_healthy"
                        b.reset_probes()
                        self._bump(b)
                        self._decide(b, t, "closed", "probes_healthy")
                    else:
                        self._open(b, t, b.level + 1, "probes_failed")
                else:
                    break
            if (b.state == "closed" and b.reason == "guard" and b.guard_last is not None
                    and now - b.guard_last > cfg.rearm_after):
                b.reason, b.since, b.guard_last = "guard_released", now, None
                self._bump(b)
                self._decide(b, now, "closed", "guard_released")
            if b.state == "closed" and b.reason != "guard":
                self._active.discard(key)
        out = sorted(self._pending, key=lambda d: d.time)  # stable: causal order within a time
        self._pending = []
        return out

    # --- output ------------------------------------------------------------------------
    def records(self, now: float) -> list[ControlRecord]:
        """Records to publish now: keys whose state changed, and heartbeats for keys whose last
        record is ``heartbeat_interval`` old (same state and ``seq``, new ``issued_at``)."""
        cfg = self.config
        out = []
        for key in sorted(self._announced):
            b = self._breakers[key]
            if not (b.dirty or (b.published and now - b.last_issued >= cfg.heartbeat_interval)):
                continue
            out.append(ControlRecord(
                key=key, state=b.state, since=b.since, until=b.until if b.state == "open" else None,
                reason=b.reason, rule=b.rule, observed=b.observed, baseline=b.baseline,
                probe_fraction=cfg.probe_fraction, seq=b.seq, issued_at=now,
                expires_at=now + cfg.record_ttl))
            b.dirty, b.published, b.last_issued = False, True, now
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
        self.forget_key(key)
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
        if b.state != "closed" or b.reason == "guard":
            self._active.add(key)

    def forget_key(self, key: Key) -> None:
        """Drop ``key``'s breaker (its partition went to another collector)."""
        if self._breakers.pop(key, None) is not None:
            peers = self._models.get(key.model)
            if peers is not None:
                peers.discard(key)
                if not peers:
                    del self._models[key.model]
        self._active.discard(key)
        self._announced.discard(key)

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
            self._models.setdefault(key.model, set()).add(key)
        return b

    def _guard_allows(self, key: Key) -> bool:
        peers = self._models.get(key.model, {key})
        not_closed = sum(1 for k in peers if k != key and self._breakers[k].state != "closed")
        return not_closed + 1 <= math.floor(self.config.max_open_share * len(peers) + 1e-9)

    def _open(self, b: _Breaker, t: float, level: int, reason: str) -> None:
        self._active.add(b.key)
        b.level = level
        self._bump(b)
        b.state, b.since, b.reason, b.guard_last = "open", t, reason, None
        b.until = t + self.cooldown(b.key, b.seq, level)
        b.reset_probes()
        self._decide(b, t, "open", reason)

    def _bump(self, b: _Breaker) -> None:
        b.seq += 1
        b.dirty = True
        self._announced.add(b.key)

    def _decide(self, b: _Breaker, t: float, state: str, reason: str) -> None:
        with_values = state == "open" and reason == "tripped" or reason == "guard"
        self._pending.append(Decision(
            t, "breaker", b.rule or "breaker", b.key, state,
            b.observed if with_values else None, b.baseline if with_values else None,
            None, reason))

    def _probe_healthy(self, b: _Breaker, event: Event) -> bool:
        if event.error_class == "capacity":
            return False
        if (b.rule or "") == "latency_breaker" and b.baseline:
            # what the rule judged: the first token, or the duration per output token
            measured = event.ttft if b.signal == "ttft" else event.duration / max(1, event.output_tokens or 0)
            if measured is not None and measured >= self.config.latency_probe_factor * b.baseline:
                return False
        return True
