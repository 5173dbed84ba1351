"""The detection engine: per key, a loop over the rule pack's detectors, one step at a time, in event time.

``observe(event)`` adds the event to its key's step for ``event.end`` (a few appends: it is on the
collector's per-event path). ``advance(now)`` closes every step whose end is at least
``allowed_lateness`` before ``now``, in time order, and for each key with something to judge:
feeds the step to the key's shared readings and to each detector, reads each verdict (judge first),
runs alert lifecycles (pending, firing, resolved), and once a minute lets the baselines learn (then
learn), never from a rule that is active or gathering evidence. Events for a step already closed are
counted in ``late_events``. A key with no traffic in the last minute starts no new alert.

>>> from brownout.model import Event, Key
>>> engine = Engine()
>>> key = Key("openai", "eastus", "gpt-4o")
>>> for i in range(600):                      # 10 req/s; from t=30 s every request is a 503
...     t = i / 10
...     engine.observe(Event(key, t, 0.5, error_type="503" if t >= 30 else None))
>>> [(f.time, f.rule, f.state) for f in engine.advance(60.0)][:3]
[(35.0, 'error_rate', 'firing'), (35.0, 'error_breaker', 'trip'), (40.0, 'error_breaker', 'trip')]

Per-key state goes out and back in through :meth:`Engine.export_key` and :meth:`Engine.install_key`:
plain JSON-able values in a versioned document (see :mod:`brownout.collector.state`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from brownout.detectors.base import Detector
from brownout.detectors.lifecycle import FIRING, INACTIVE, RESOLVED, AlertLifecycle
from brownout.detectors.registry import RULES, build
from brownout.detectors.step import EMPTY, SIGNALS, Signal, Step
from brownout.detectors.stats import WindowSums
from brownout.model import Event, Finding, Key

__all__ = ["Engine", "KeyStatus", "STATE_VERSION"]

#: Version of :meth:`Engine.export_key` documents; another version is refused by :meth:`Engine.install_key`.
STATE_VERSION = 2
_MINUTE = 60.0
#: Counters kept per step for the key's status: requests, capacity / client / other errors, stalls.
_N, _CAP, _CLIENT, _OTHER, _STALLS = range(5)
#: Readings a status shows and routers read, whatever the rules judge.
_STATUS_READS = {("ttft", 0.5), ("ttft", 0.95), ("latency", 0.95), ("tps", 0.5)}
_HIGH = {"ttft": True, "latency": True, "tps": False, "itl": True}


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """What the engine knows about one key as of its last minute (None where unknown)."""

    time: float
    requests: int
    error_rate: float | None
    capacity_error_rate: float | None
    ttft_p50: float | None
    ttft_p50_baseline: float | None
    latency_p95: float | None
    latency_p95_baseline: float | None
    tokens_per_s: float | None
    tokens_per_s_baseline: float | None
    itl_p95: float | None
    goodput: float | None
    warming: bool
    firing: tuple[str, ...]
    late_events: int = 0
    ttft_p95: float | None = None
    ttft_p95_baseline: float | None = None
    stalls: int = 0  # in-flight stall reports over the last minute


class _KeyState:
    """One key: its open steps, shared readings, detectors and alert lifecycles."""

    __slots__ = ("key", "open", "late", "t", "minute_end", "signals", "detectors", "lives", "counts",
                 "status", "fingerprints", "_reads_by")

    def __init__(self, key: Key, rules: dict[str, Any], step: float, baseline: Any) -> None:
        self.key = key
        self.open: dict[int, Step] = {}
        self.late = 0
        self.t = 0.0
        self.minute_end = False
        self.detectors: list[Detector] = []
        for name in RULES:
            settings = rules[name]
            if settings.enabled:
                self.detectors.extend(build(name, settings, step))
        self.lives = {d.rule: AlertLifecycle(d.alert.for_, d.alert.keep_firing_for)
                      for d in self.detectors if d.kind == "alert"}
        reads = set(_STATUS_READS)
        for d in self.detectors:
            reads.update(d.reads)
        self.signals = {name: Signal(name, {q: _HIGH[name] for s, q in sorted(reads) if s == name}, baseline,
                                     int(round(_MINUTE / step)))
                        for name in SIGNALS}
        self.counts = WindowSums([int(round(_MINUTE / step))], 5)
        self.status: KeyStatus | None = None
        self.fingerprints = _fingerprints(tuple(rules[name] for name in RULES))
        by: dict[tuple[str, float], list[Detector]] = {}
        for d in self.detectors:
            for r in d.reads:
                by.setdefault(r, []).append(d)
        self._reads_by = by

    @property
    def idle(self) -> bool:
        """Nothing in any window and no alert active: stepping it would change nothing."""
        if not self.counts.empty or any(life.active for life in self.lives.values()):
            return False
        return all(d.idle for d in self.detectors) and all(s.idle for s in self.signals.values())

    def quiescent(self, quiet_steps: int) -> bool:
        """No alert active and no traffic for a minute: with no more events, it decides nothing."""
        recent = self.counts.total(quiet_steps)
        return not recent[_N] and not recent[_STALLS] and not any(life.active for life in self.lives.values())

    def is_active(self, rule: str) -> bool:
        """Is ``rule``'s alert pending or firing on this key?"""
        life = self.lives.get(rule)
        return life is not None and life.active

    def learning(self) -> dict[str, dict[float, bool]]:
        """Per signal and quantile: may its baseline learn now (no reader active or suspect)?"""
        out: dict[str, dict[float, bool]] = {}
        for (sig, q), readers in self._reads_by.items():
            out.setdefault(sig, {})[q] = not any(
                d.suspect or (d.kind == "alert" and self.lives[d.rule].active) for d in readers)
        return out


@functools.lru_cache(maxsize=256)
def _fingerprints(settings: tuple[Any, ...]) -> dict[str, str]:
    """Each rule's fingerprint, one dict shared by every key with the same settings."""
    return {name: fingerprint(s) for name, s in zip(RULES, settings)}


@functools.lru_cache(maxsize=1024)
def fingerprint(settings: Any) -> str:
    """A short stable hash of settings (a state made under other settings does not fit)."""
    value = settings.as_dict() if hasattr(settings, "as_dict") else settings
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=repr).encode()).hexdigest()[:16]


class Engine:
    """Every rule of a :class:`~brownout.rules.RuleSet`, over per-key steps in event time.

    Parameters
    ----------
    rules
        The rule set (None: the default pack).
    """

    def __init__(self, rules: Any = None) -> None:
        if rules is None:
            from brownout.rules import load_rules
            rules = load_rules()
        self.rules = rules
        self.step = float(rules.step)
        self.allowed_lateness = float(rules.allowed_lateness)
        self.late_events = 0
        self.key_steps = 0  # (key, step) evaluations so far: what advance() costs is proportional to it
        self._keys: dict[Key, _KeyState] = {}
        self._evaluated: int | None = None  # index of the last evaluated step
        self._due: dict[int, set[Key]] = {}  # step -> keys with an open step there
        self._active: set[Key] = set()  # keys whose windows or alerts still need stepping
        self._quiet_steps = int(round(_MINUTE / self.step))

    # --- hot path ----------------------------------------------------------------------
    def observe(self, event: Event) -> None:
        """Add one event to its key's step for ``event.end``; late events are counted."""
        idx = int((event.start + event.duration) // self.step)
        ks = self._keys.get(event.key)
        if ks is None:
            ks = self._new_key(event.key)
        if self._evaluated is not None and idx <= self._evaluated:
            self.late_events += 1
            ks.late += 1
            return
        b = ks.open.get(idx)
        if b is None:
            b = ks.open[idx] = Step()
            due = self._due.get(idx)
            if due is None:
                due = self._due[idx] = set()
            due.add(event.key)
        b.add(event)

    def _new_key(self, key: Key) -> _KeyState:
        ks = self._keys[key] = _KeyState(key, self.rules.for_key(key), self.step, self.rules.baseline_settings)
        return ks

    # --- per step ----------------------------------------------------------------------
    def advance(self, now: float, *, final: bool = False) -> list[Finding]:
        """Evaluate every step whose end is <= ``now - allowed_lateness``.

        Findings come ordered by step, then key, then rule (in pack order); ``Finding.time`` is the
        end of the step judged. Idempotent for a ``now`` already passed; steps with no key to judge
        are skipped at no cost. ``final``: no event will come any more (the end of a replay file):
        a key with no alert active and no traffic in the last minute can decide nothing more, and
        is not stepped on.
        """
        if not math.isfinite(now):
            raise ValueError(f"now must be a finite unix time, got {now!r}")
        last = int((now - self.allowed_lateness) // self.step) - 1
        if self._evaluated is None:
            if not self._due:
                return []
            self._evaluated = min(min(self._due), last + 1) - 1
        findings: list[Finding] = []
        i = self._evaluated + 1
        keys = self._keys
        while i <= last:
            due = self._due.pop(i, None)
            if not self._active and due is None:
                nxt = min(self._due, default=last + 1)
                if nxt > last:
                    break
                i = nxt
                continue
            todo = self._active if due is None else self._active | due
            self.key_steps += len(todo)
            for key in sorted(todo):
                ks = keys[key]
                if self._evaluate(ks, i, findings) and (ks.idle or final and ks.quiescent(self._quiet_steps)):
                    self._active.discard(key)  # a key that saw events this step is not idle
                else:
                    self._active.add(key)
            i += 1
        self._evaluated = max(self._evaluated, last)
        return findings

    def _evaluate(self, ks: _KeyState, i: int, out: list[Finding]) -> bool:
        """Judge step ``i`` of ``ks``; True when the step held no event."""
        step = self.step
        t = (i + 1) * step
        b = ks.open.pop(i, None)
        empty = b is None
        if b is None:
            b = EMPTY
        else:
            b.close()
        ks.t = t
        ks.minute_end = minute_end = int(t // _MINUTE) != int((t - step) // _MINUTE)
        sig = ks.signals
        sig["ttft"].push(b.ttft)
        sig["latency"].push(b.latency)
        sig["tps"].push(b.tps)
        sig["itl"].push(b.itl)
        ks.counts.push((b.n, b.cap, b.client, b.other, b.stalls))
        for d in ks.detectors:
            d.update(b, ks)
        silent: bool | None = None  # no requests or stall reports in the last minute (read when needed)
        changed = False
        key = ks.key
        for d in ks.detectors:
            v = d.verdict()
            if d.kind == "breaker":
                if v.fire:
                    if silent is None:
                        recent = ks.counts.total(self._quiet_steps)
                        silent = not recent[_N] and not recent[_STALLS]
                    if silent:  # only the tail of an old window: a key with no traffic trips nothing
                        continue
                    obs = d.observed()
                    out.append(Finding(t, d.rule, key, "trip", obs, v.baseline, d.alert.severity, "breaker", v.window,
                                       _summary(d.rule, "trip", obs, v.baseline), v.labels))
                continue
            life = ks.lives[d.rule]
            fire = v.fire
            if life.state == INACTIVE:
                if not fire:
                    continue
                if silent is None:
                    recent = ks.counts.total(self._quiet_steps)
                    silent = not recent[_N] and not recent[_STALLS]
                if silent:
                    continue
            state = life.update(t, fire=fire, clear=v.clear)
            if state is not None:
                changed = True
                obs = d.observed()
                out.append(Finding(t, d.rule, key, state, obs, v.baseline, d.alert.severity, "alert", v.window,
                                   _summary(d.rule, state, obs, v.baseline)))
                if state == RESOLVED:
                    d.resolved()
        if minute_end:
            learn = ks.learning()
            for name, s in sig.items():
                s.minute(t, learn.get(name, {}))
        if minute_end or changed or ks.status is None:
            ks.status = self._status(ks, t)
        return empty

    def _status(self, ks: _KeyState, t: float) -> KeyStatus:
        c = ks.counts.total(self._quiet_steps)
        n = c[_N]
        ttft, lat, tps, itl = (ks.signals[s] for s in SIGNALS)
        goodput = next((d.ratio() for d in ks.detectors if d.rule == "goodput_page"), None)  # type: ignore[attr-defined]
        bases = (ttft.baseline(0.5, t), lat.baseline(0.95, t), tps.baseline(0.5, t))
        return KeyStatus(
            time=t, requests=n,
            error_rate=(c[_CAP] + c[_CLIENT] + c[_OTHER]) / n if n else None,
            capacity_error_rate=c[_CAP] / n if n else None,
            ttft_p50=ttft.readings[0], ttft_p50_baseline=bases[0],
            latency_p95=lat.readings[1], latency_p95_baseline=bases[1],
            tokens_per_s=tps.readings[0], tokens_per_s_baseline=bases[2],
            itl_p95=itl.readings[1], goodput=goodput,
            warming=all(b is None for b in bases),
            firing=tuple(name for name, life in ks.lives.items() if life.state == FIRING),
            late_events=ks.late, ttft_p95=ttft.readings[1], ttft_p95_baseline=ttft.baseline(0.95, t),
            stalls=c[_STALLS])

    # --- reading -----------------------------------------------------------------------
    def status(self) -> dict[Key, KeyStatus]:
        """Each key's status as of its last evaluated minute (keys not yet evaluated are left out)."""
        out = {}
        for k, ks in sorted(self._keys.items()):
            st = ks.status
            if st is None:
                continue
            if st.late_events != ks.late:  # late events arrive between minutes
                st = ks.status = dataclasses.replace(st, late_events=ks.late)
            out[k] = st
        return out

    def keys(self) -> list[Key]:
        """Every key the engine holds state for."""
        return sorted(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    @property
    def watermark(self) -> float | None:
        """End of the last evaluated step: events ending before it are late."""
        return None if self._evaluated is None else (self._evaluated + 1) * self.step

    # --- per-key state -----------------------------------------------------------------
    def export_key(self, key: Key) -> dict[str, Any]:
        """``key``'s whole state as plain JSON-able values (KeyError when the engine has none).

        The document: ``{"v": 2, "evaluated", "t", "late", "open": [[step, counters, samples]],
        "counts", "signals": {name: {...}}, "rules": {rule: {"fingerprint", "state", "life"}}}``;
        the baselines' settings fingerprint is in ``signals_fingerprint``.
        """
        ks = self._keys[key]
        rules: dict[str, Any] = {}
        for d in ks.detectors:
            life = ks.lives.get(d.rule)
            rules[d.rule] = {"fingerprint": ks.fingerprints[d.name], "state": d.export(),
                             "life": None if life is None else life.export()}
        return {"v": STATE_VERSION, "evaluated": self._evaluated, "t": ks.t, "late": ks.late,
                "open": [[i, _step_export(s)] for i, s in sorted(ks.open.items())],
                "counts": ks.counts.export(),
                "signals_fingerprint": fingerprint(self.rules.baseline_settings),
                "signals": {name: s.export() for name, s in ks.signals.items()},
                "rules": rules,
                "status": None if ks.status is None else dataclasses.asdict(ks.status)}

    def install_key(self, key: Key, doc: dict[str, Any]) -> str:
        """Replace ``key``'s state with ``doc`` (from :meth:`export_key`); say what came back.

        ``"restored"``: everything. After a rule change, rules whose settings differ start fresh and
        the rest comes back (``"restored_partly"``); after a change of the baseline settings only the
        alert states and windows do. Raises ValueError naming what does not fit, before anything
        changes.
        """
        if not isinstance(doc, dict) or doc.get("v") != STATE_VERSION:
            raise ValueError(f"not a version {STATE_VERSION} key state")
        ks = _KeyState(key, self.rules.for_key(key), self.step, self.rules.baseline_settings)
        complete = True
        try:
            ks.late = _nonneg_int(doc["late"])
            ks.t = _finite(doc["t"])
            evaluated = doc["evaluated"]
            if evaluated is not None:
                evaluated = int(evaluated)
            for i, raw in doc["open"]:
                ks.open[int(i)] = _step_install(raw)
            ks.counts.install(doc["counts"])
            if doc["signals_fingerprint"] == fingerprint(self.rules.baseline_settings):
                if set(doc["signals"]) != set(ks.signals):
                    raise ValueError(f"signals {sorted(doc['signals'])} differ from {sorted(ks.signals)}")
                for name, s in ks.signals.items():
                    s.install(doc["signals"][name])
            else:
                complete = False
            rules = doc["rules"]
            for d in ks.detectors:
                got = rules.get(d.rule)
                if got is None or got["fingerprint"] != ks.fingerprints[d.name]:
                    complete = False
                    continue
                d.install(got["state"])
                life = ks.lives.get(d.rule)
                if life is not None and got["life"] is not None:
                    life.install(got["life"])
            status = doc.get("status")
            ks.status = None if status is None else _status_install(status)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ValueError(f"key state of {key} does not fit: {type(exc).__name__}: {exc}") from None
        self.forget_key(key)
        self._keys[key] = ks
        self._align(ks, evaluated)
        return "restored" if complete else "restored_partly"

    def _align(self, ks: _KeyState, evaluated: int | None) -> None:
        """Slide the restored windows over the steps judged here since the snapshot (nothing seen for
        them here), so the key's windows and the engine's clock agree again."""
        if self._evaluated is None:
            self._evaluated = evaluated
        target = self._evaluated
        if evaluated is not None and target is not None and evaluated < target:
            for i in range(max(evaluated + 1, target - 120), target + 1):  # 10 min of steps: every window
                self._evaluate(ks, i, [])
            ks.open = {i: s for i, s in ks.open.items() if i > target}
        for idx in ks.open:
            self._due.setdefault(idx, set()).add(ks.key)
        if not ks.idle:
            self._active.add(ks.key)

    def forget_key(self, key: Key) -> None:
        """Drop everything held for ``key`` (its partition went to another collector)."""
        self._keys.pop(key, None)
        self._active.discard(key)
        for idx in [i for i, keys in self._due.items() if key in keys]:
            self._due[idx].discard(key)
            if not self._due[idx]:
                del self._due[idx]


_STEP_COUNTERS = ("n", "cap", "client", "other", "cancelled", "stalls", "slo_n", "slo_good")


def _step_export(s: Step) -> dict[str, Any]:
    return {"counts": [getattr(s, f) for f in _STEP_COUNTERS], **{name: list(s.samples(name)) for name in SIGNALS}}


def _step_install(raw: dict[str, Any]) -> Step:
    s = Step()
    counts = raw["counts"]
    if len(counts) != len(_STEP_COUNTERS):
        raise ValueError(f"a step has {len(counts)} counters, expected {len(_STEP_COUNTERS)}")
    for f, v in zip(_STEP_COUNTERS, counts):
        setattr(s, f, _nonneg_int(v))
    for name in SIGNALS:
        setattr(s, name, [_finite(x) for x in raw[name]])
    return s


def _status_install(raw: dict[str, Any]) -> KeyStatus:
    fields = {f.name: f for f in dataclasses.fields(KeyStatus)}
    if set(raw) != set(fields):
        raise ValueError(f"status fields {sorted(raw)} differ from {sorted(fields)}")
    values: dict[str, Any] = {}
    for name, v in raw.items():
        if name == "firing":
            if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
                raise ValueError(f"status.firing must be rule names, got {v!r}")
            values[name] = tuple(v)
        elif name == "warming":
            if not isinstance(v, bool):
                raise ValueError(f"status.warming must be true or false, got {v!r}")
            values[name] = v
        elif name in ("requests", "late_events", "stalls"):
            values[name] = _nonneg_int(v)
        else:
            values[name] = None if v is None else _finite(v)
    return KeyStatus(**values)


def _nonneg_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"expected a count, got {v!r}")
    return v


def _finite(v: Any) -> float:
    x = float(v)
    if not math.isfinite(x):
        raise ValueError(f"expected a finite number, got {v!r}")
    return x


_UNITS = {"error_rate": "", "ttft_drift": "s", "ttft_p95": "s", "latency_p95": "s/token", "throughput": " tok/s",
          "itl": "s"}


def _summary(name: str, state: str, observed: float | None, baseline: float | None) -> str:
    unit = _UNITS.get(name, "")
    obs = "n/a" if observed is None else f"{observed:.3g}{unit}"
    if baseline is None:
        return f"{name} {state}: {obs}"
    return f"{name} {state}: {obs} vs baseline {baseline:.3g}{unit}"
