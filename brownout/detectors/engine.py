"""The detection engine: per-key windows in event time, every rule of the pack, one clock.

``observe(event)`` only appends to the key's bucket for ``event.end`` (a few appends: it is on the
collector's per-event path). ``advance(now)`` closes every step (``engine.step``, 5 s) whose end is
at least ``allowed_lateness`` before ``now``, in time order, and evaluates each key's rules for it:
judge first, then learn (baselines learn once a minute, after the judgement, and not from a rule
that is pending or firing). Events for a step already closed are counted in ``late_events``.

>>> from brownout.model import Event, Key
>>> engine = Engine()
>>> key = Key("openai", "eastus", "gpt-4o")
>>> for i in range(600):                      # 10 req/s; from t=30 s every request is a 503
...     t = i / 10
...     engine.observe(Event(key, t, 0.5, error_type="503" if t >= 30 else None))
>>> [(f.time, f.rule, f.state) for f in engine.advance(60.0)][:3]
[(35.0, 'error_rate', 'pending'), (35.0, 'error_breaker', 'trip'), (40.0, 'error_breaker', 'trip')]
"""

from __future__ import annotations

import io
import math
import pickle
import zlib
from dataclasses import dataclass
from typing import Any, Mapping

from brownout import semconv as sc
from brownout.detectors.baseline import Baseline
from brownout.detectors.lifecycle import FIRING, AlertLifecycle
from brownout.detectors.stats import _EMPTY, RollingHistogram, RollingSum, WindowSums, bin_counts, wilson_lower_bound
from brownout.model import Event, Finding, Key

__all__ = ["Engine", "KeyStatus"]

# counter fields of a bucket
_N, _CAP, _CLIENT, _OTHER, _SLO_N, _SLO_GOOD = range(6)
_MINUTE = 60.0
_ZERO4 = (0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """What the engine knows about one key as of the last evaluated step (None where unknown)."""

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


class _Bucket:
    """One key's events for one step: counters plus the samples of each distribution."""

    __slots__ = ("counts", "ttft", "duration", "tps", "itl")

    def __init__(self) -> None:
        self.counts = [0, 0, 0, 0, 0, 0]
        self.ttft: list[float] = []
        self.duration: list[float] = []
        self.tps: list[float] = []
        self.itl: list[float] = []


def _steps(seconds: float, step: float) -> int:
    return max(1, int(math.ceil(seconds / step - 1e-9)))


class _KeyState:
    """Windows, baselines and alert lifecycles of one key."""

    def __init__(self, key: Key, rules: dict[str, dict[str, Any]], step: float, baseline: dict[str, Any]) -> None:
        self.key = key
        self.rules = rules
        self.open: dict[int, _Bucket] = {}
        self.late = 0
        r = rules
        eb = r["error_breaker"]
        self.w_status = _steps(60, step)
        self.w_err = _steps(r["error_rate"]["window"], step)
        self.w_brk = _steps(eb["window"], step)
        self.w_short = [(w, _steps(w, step)) for w in sorted(eb["short_windows"])]
        self.sums = WindowSums([1, self.w_status, self.w_err, self.w_brk] + [w for _, w in self.w_short], 4)
        self.err_minute = [0, 0]  # this minute's requests and capacity errors, for the slow window
        self.err_slow = RollingSum(_steps(r["error_rate"]["slow_window"], _MINUTE), 2)
        self.hists: dict[tuple[str, int], RollingHistogram] = {}
        self.ttft = self._hist("ttft", r["ttft_drift"]["window"], step)
        self.ttft_status = self._hist("ttft", 60, step)
        self.latency = self._hist("duration", r["latency_p95"]["window"], step)
        self.latency_brk = self._hist("duration", r["latency_breaker"]["window"], step)
        self.tps = self._hist("tps", r["throughput"]["window"], step)
        self.itl = self._hist("itl", r["itl"]["window"], step)
        b = dict(halflife=baseline["halflife"], warmup=baseline["warmup"],
                 min_cycles=baseline["season_min_cycles"], day_cycles=baseline["day_cycles"],
                 week_cycles=baseline["week_cycles"])
        self.base_ttft = Baseline(**b)
        self.base_latency = Baseline(**b)
        self.base_tps = Baseline(**b)
        self.life: dict[str, AlertLifecycle] = {}
        for name in ("error_rate", "ttft_drift", "latency_p95", "throughput", "itl"):
            self.life[name] = AlertLifecycle(r[name]["for"], r[name]["keep_firing_for"])
        g = r["goodput"]
        self.goodput_minute = [0, 0]
        self.goodput: dict[str, tuple[RollingSum, RollingSum]] = {}
        for tier in ("page", "ticket"):
            t = g[tier]
            self.life[f"goodput_{tier}"] = AlertLifecycle(t["for"], t["keep_firing_for"])
            self.goodput[tier] = (RollingSum(_steps(t["long"], _MINUTE), 2), RollingSum(_steps(t["short"], _MINUTE), 2))
        self.latency_hold_since: float | None = None
        self.tripping: set[str] = set()
        self.status: KeyStatus | None = None

    def _hist(self, metric: str, window: float, step: float) -> RollingHistogram:
        k = (metric, _steps(window, step))
        h = self.hists.get(k)
        if h is None:
            h = self.hists[k] = RollingHistogram(k[1])
        return h

    def push(self, b: _Bucket | None) -> None:
        """Slide every window by one step, with this step's bucket (None: nothing arrived)."""
        if b is None:
            self.sums.push(_ZERO4)
            for h in self.hists.values():
                h.push(_EMPTY)
            return
        counts = b.counts
        self.sums.push(counts[:4])
        self.goodput_minute[0] += counts[_SLO_N]
        self.goodput_minute[1] += counts[_SLO_GOOD]
        parts = {"ttft": bin_counts(b.ttft), "duration": bin_counts(b.duration), "tps": bin_counts(b.tps),
                 "itl": bin_counts(b.itl)}
        for (metric, _), h in self.hists.items():
            h.push(parts[metric])

    @property
    def idle(self) -> bool:
        """Nothing in any window and no alert active: stepping it would change nothing."""
        if any(self.sums.total(w)[_N] for w in self.sums.widths):
            return False
        if any(h.count for h in self.hists.values()):
            return False
        if any(life.active for life in self.life.values()) or self.latency_hold_since is not None:
            return False
        if self.goodput_minute[0] or any(s.total[0] for pair in self.goodput.values() for s in pair):
            return False
        if self.err_minute[0] or self.err_slow.total[0]:
            return False
        return True


class Engine:
    """Every rule of a :class:`~brownout.rules.RuleSet`, over per-key windows in event time.

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
        self._due: dict[int, set[Key]] = {}  # step -> keys with an open bucket there
        self._active: set[Key] = set()  # keys whose windows or alerts still need stepping

    # --- hot path ----------------------------------------------------------------------
    def observe(self, event: Event) -> None:
        """Add one event to its key's bucket for ``event.end``; late events are counted."""
        step_idx = int((event.start + event.duration) // self.step)
        ks = self._keys.get(event.key)
        if ks is None:
            ks = self._new_key(event.key)
        if self._evaluated is not None and step_idx <= self._evaluated:
            self.late_events += 1
            ks.late += 1
            return
        b = ks.open.get(step_idx)
        if b is None:
            b = ks.open[step_idx] = _Bucket()
            due = self._due.get(step_idx)
            if due is None:
                due = self._due[step_idx] = set()
            due.add(event.key)
        c = b.counts
        c[_N] += 1
        err = event.error_type
        cls = sc.error_class(err) if err else None
        if cls is None:
            b.duration.append(event.duration)
            if event.ttft is not None:
                b.ttft.append(event.ttft)
            tps = event.output_tokens_per_second
            if tps is not None:
                b.tps.append(tps)
            if event.itl_p95 is not None:
                b.itl.append(event.itl_p95)
        elif cls == "capacity":
            c[_CAP] += 1
        elif cls == "client":
            c[_CLIENT] += 1
        else:
            c[_OTHER] += 1
        if event.deadline is not None and cls != "client":
            c[_SLO_N] += 1
            if cls is None and event.duration <= event.deadline:
                c[_SLO_GOOD] += 1

    def _new_key(self, key: Key) -> _KeyState:
        ks = self._keys[key] = _KeyState(key, self.rules.for_key(key), self.step, self.rules.baseline)
        return ks

    # --- per step ----------------------------------------------------------------------
    def advance(self, now: float) -> list[Finding]:
        """Evaluate every step whose end is <= ``now - allowed_lateness``.

        Findings come ordered by step, then key, then rule (in pack order: error_rate,
        error_breaker, ttft_drift, latency_p95, latency_breaker, throughput, itl, goodput_page,
        goodput_ticket); ``Finding.time`` is the end of the step judged. Idempotent for a ``now``
        already passed; steps with no key to judge are skipped at no cost.
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
                self._evaluate(ks, i, findings)
                if ks.idle:
                    self._active.discard(key)
                else:
                    self._active.add(key)
            i += 1
        self._evaluated = max(self._evaluated, last)
        return findings

    def _evaluate(self, ks: _KeyState, i: int, out: list[Finding]) -> None:
        t = (i + 1) * self.step
        ks.push(ks.open.pop(i, None))
        ks.tripping.clear()
        r = ks.rules
        key = ks.key
        minute_end = int(t // _MINUTE) != int((t - self.step) // _MINUTE)  # this step crossed a minute

        # error rate alert: capacity errors only; client errors never count here
        er = r["error_rate"]
        n, cap = ks.sums.total(ks.w_err)[:2]
        rate = cap / n if n else None
        minute = ks.err_minute
        minute[0] += ks.sums.total(1)[_N]
        minute[1] += ks.sums.total(1)[_CAP]
        sn, scap = ks.err_slow.total[0] + minute[0], ks.err_slow.total[1] + minute[1]
        if er["enabled"]:
            # a key is low-traffic when even its slow window averages too few requests per window
            # (not when traffic merely stopped after an incident)
            enough = n >= er["min_requests"] or sn * er["window"] >= er["min_requests"] * er["slow_window"]
            fire = n >= er["min_requests"] and cap >= er["min_errors"] and rate is not None \
                and rate >= er["fire_rate"]
            if not enough and sn >= er["min_requests"] and scap >= er["min_errors"]:
                # a low-traffic key: the slow window, and only when its lower bound clears the rate
                fire = wilson_lower_bound(scap, sn, er["z"]) >= er["fire_rate"]
            if enough or not sn:
                clear = rate is None or rate < er["clear_rate"]
            else:
                clear = scap / sn < er["clear_rate"]
            shown = rate if enough or not sn else scap / sn
            self._life(ks, "error_rate", t, fire, clear, shown, None, er, out)

        # error breaker: the long window, or a short window whose Wilson lower bound clears the rate
        eb = r["error_breaker"]
        if eb["enabled"]:
            n, cap = ks.sums.total(ks.w_brk)[:2]
            trip: tuple[float, float] | None = None
            if n >= eb["min_requests"] and n and cap / n >= eb["rate"]:
                trip = (cap / n, eb["window"])
            else:
                for w, width in ks.w_short:
                    sn, scap = ks.sums.total(width)[:2]
                    if sn >= eb["short_min_requests"] and wilson_lower_bound(scap, sn, eb["z"]) >= eb["rate"]:
                        trip = (scap / sn, w)
                        break
            if trip is not None:
                ks.tripping.add("error_breaker")
                out.append(Finding(t, "error_breaker", key, "trip", trip[0], None, eb["severity"], "breaker",
                                   trip[1], f"capacity errors {trip[0]:.0%} over {trip[1]:g}s >= {eb['rate']:.0%}"))

        # relative rules, against baselines read before this step's learning
        td = r["ttft_drift"]
        ttft = ks.ttft.quantile(td["quantile"]) if ks.ttft.count >= max(td["min_requests"], 1) else None
        ttft_base = _envelope(ks.base_ttft, t, td["window"], max)
        if td["enabled"]:
            self._relative(ks, "ttft_drift", t, ttft, ttft_base, td, out, ks.ttft, above=True)
        lp = r["latency_p95"]
        lat = ks.latency.quantile(lp["quantile"]) if ks.latency.count >= max(lp["min_requests"], 1) else None
        lat_base = _envelope(ks.base_latency, t, lp["window"], max)
        if lp["enabled"]:
            self._relative(ks, "latency_p95", t, lat, lat_base, lp, out, ks.latency, above=True)
        lb = r["latency_breaker"]
        if lb["enabled"]:
            lbv = ks.latency_brk.quantile(lb["quantile"]) if ks.latency_brk.count >= max(lb["min_requests"], 1) else None
            if lbv is not None and lat_base is not None and lbv >= lb["ratio"] * lat_base:
                if ks.latency_hold_since is None:
                    ks.latency_hold_since = t
                if t - ks.latency_hold_since >= lb["hold"]:
                    out.append(Finding(t, "latency_breaker", key, "trip", lbv, lat_base, lb["severity"], "breaker",
                                       lb["window"], f"p95 latency {lbv:.3g}s >= {lb['ratio']:g} x baseline "
                                       f"{lat_base:.3g}s for {t - ks.latency_hold_since:g}s"))
                    ks.tripping.add("latency_breaker")
            else:
                ks.latency_hold_since = None
        tp = r["throughput"]
        tps = ks.tps.quantile(tp["quantile"]) if ks.tps.count >= max(tp["min_requests"], 1) else None
        tps_base = _envelope(ks.base_tps, t, tp["window"], min)
        if tp["enabled"]:
            self._relative(ks, "throughput", t, tps, tps_base, tp, out, ks.tps, above=False)
        it = r["itl"]
        itl = ks.itl.quantile(it["quantile"]) if ks.itl.count >= max(it["min_requests"], 1) else None
        if it["enabled"]:
            self._life(ks, "itl", t, itl is not None and itl > it["limit"], itl is None or itl < it["clear_limit"],
                       itl, None, it, out)

        goodput = None
        if minute_end:
            ks.err_slow.push(ks.err_minute)
            ks.err_minute = [0, 0]
            goodput = self._goodput(ks, t, out)
            # learn after judging, once a minute, never from a rule that is pending or firing
            if ttft is not None:
                ks.base_ttft.update(t, ttft, learn=not ks.life["ttft_drift"].active)
            if lat is not None:
                ks.base_latency.update(t, lat, learn=not ks.life["latency_p95"].active
                                       and ks.latency_hold_since is None)
            if tps is not None:
                ks.base_tps.update(t, tps, learn=not ks.life["throughput"].active)
        elif ks.status is not None:
            goodput = ks.status.goodput

        sc_ = ks.sums.total(ks.w_status)
        n1 = sc_[_N]
        firing = tuple(name for name, life in ks.life.items() if life.state == FIRING) + tuple(sorted(ks.tripping))
        ks.status = KeyStatus(
            time=t, requests=n1,
            error_rate=(sc_[_CAP] + sc_[_CLIENT] + sc_[_OTHER]) / n1 if n1 else None,
            capacity_error_rate=sc_[_CAP] / n1 if n1 else None,
            ttft_p50=ks.ttft_status.quantile(0.5), ttft_p50_baseline=ttft_base,
            ttft_p95=ks.ttft_status.quantile(0.95),
            latency_p95=lat, latency_p95_baseline=lat_base,
            tokens_per_s=tps, tokens_per_s_baseline=tps_base,
            itl_p95=itl, goodput=goodput,
            warming=ttft_base is None and lat_base is None and tps_base is None,
            firing=firing, late_events=ks.late)

    def _goodput(self, ks: _KeyState, t: float, out: list[Finding]) -> float | None:
        g = ks.rules["goodput"]
        minute = tuple(ks.goodput_minute)
        ks.goodput_minute = [0, 0]
        budget = 1.0 - g["objective"]
        ratio = None
        for tier in ("page", "ticket"):
            long_sum, short_sum = ks.goodput[tier]
            long_sum.push(minute)
            short_sum.push(minute)
            (ln, lgood), (sn, sgood) = long_sum.total, short_sum.total
            if tier == "page" and sn:
                ratio = sgood / sn
            if not g["enabled"]:
                continue
            tc = g[tier]
            burn_long = (1 - lgood / ln) / budget if ln else None
            burn_short = (1 - sgood / sn) / budget if sn else None
            fire = (ln >= g["min_requests"] and sn >= g["short_min_requests"] and burn_long is not None
                    and burn_short is not None and burn_long >= tc["burn"] and burn_short >= tc["burn"])
            clear = burn_long is None or burn_short is None or burn_long < tc["burn"] or burn_short < tc["burn"]
            rule = {**tc, "window": tc["long"]}
            self._life(ks, f"goodput_{tier}", t, fire, clear, burn_long, None, rule, out)
        return ratio

    def _relative(self, ks: _KeyState, name: str, t: float, obs: float | None, base: float | None,
                  rule: dict[str, Any], out: list[Finding], hist: RollingHistogram, *, above: bool) -> None:
        limit = rule["limit"]
        clear_limit = rule["clear_limit"]
        if limit is not None and clear_limit is None:
            clear_limit = limit * rule["clear_ratio"] / rule["fire_ratio"]
        fire = clear = False
        if obs is None:
            clear = True
        elif above:
            # fire only when confidently past the threshold: the margin shrinks with traffic
            fire = (base is not None and obs >= rule["fire_ratio"] * base) or (limit is not None and obs >= limit)
            z = rule["confidence_z"]
            if fire and z:
                sure = obs * math.exp(-z * hist.log_se(rule["quantile"]))
                fire = (base is not None and sure >= rule["fire_ratio"] * base) or (limit is not None and sure >= limit)
            clear = ((base is None or obs < rule["clear_ratio"] * base)
                     and (clear_limit is None or obs < clear_limit))
        else:
            fire = (base is not None and obs <= rule["fire_ratio"] * base) or (limit is not None and obs <= limit)
            z = rule["confidence_z"]
            if fire and z:
                sure = obs * math.exp(z * hist.log_se(rule["quantile"]))
                fire = (base is not None and sure <= rule["fire_ratio"] * base) or (limit is not None and sure <= limit)
            clear = ((base is None or obs > rule["clear_ratio"] * base)
                     and (clear_limit is None or obs > clear_limit))
        self._life(ks, name, t, fire, clear, obs, base, rule, out)

    def _life(self, ks: _KeyState, name: str, t: float, fire: bool, clear: bool, observed: float | None,
              baseline: float | None, rule: dict[str, Any], out: list[Finding]) -> None:
        state = ks.life[name].update(t, fire=fire, clear=clear)
        if state is not None:
            out.append(Finding(t, name, ks.key, state, observed, baseline, rule["severity"], "alert",
                               float(rule["window"]), _summary(name, state, observed, baseline)))

    # --- reading -----------------------------------------------------------------------
    def status(self) -> dict[Key, KeyStatus]:
        """Each key's status as of its last evaluated step (keys not yet evaluated are left out)."""
        return {k: ks.status for k, ks in sorted(self._keys.items()) if ks.status is not None}

    @property
    def watermark(self) -> float | None:
        """End of the last evaluated step: events ending before it are late."""
        return None if self._evaluated is None else (self._evaluated + 1) * self.step

    # --- state -------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """Windows, baselines and lifecycles of every key (not the rules), for :meth:`restore`."""
        return _pack({"v": 1, "evaluated": self._evaluated, "late_events": self.late_events,
                      "keys": {k: _key_state(ks) for k, ks in self._keys.items()}})

    def snapshot_keys(self) -> dict[Key, bytes]:
        """One small snapshot per key (a compacted state topic keyed by key); :meth:`restore` takes the dict."""
        return {k: _pack({"v": 1, "evaluated": self._evaluated, "late_events": 0, "keys": {k: _key_state(ks)}})
                for k, ks in self._keys.items()}

    @classmethod
    def restore(cls, data: bytes | Mapping[Key, bytes], rules: Any = None) -> "Engine":
        """An engine with the state of :meth:`snapshot` (or :meth:`snapshot_keys`) and ``rules``.

        Window widths and alert holds come from the snapshot; thresholds from ``rules``. Only
        the engine's own classes, numpy arrays and builtins are unpickled; anything else, or
        bytes that are not a snapshot, raise ValueError.
        """
        blobs = list(data.values()) if isinstance(data, Mapping) else [data]
        engine = cls(rules)
        for blob in blobs:
            state = _unpack(blob)
            ev = state["evaluated"]
            if ev is not None and (engine._evaluated is None or ev > engine._evaluated):
                engine._evaluated = ev
            engine.late_events += state["late_events"]
            for k, attrs in state["keys"].items():
                ks = _KeyState.__new__(_KeyState)
                vars(ks).update(attrs)
                ks.rules = engine.rules.for_key(k)
                engine._keys[k] = ks
        for k, ks in engine._keys.items():
            for idx in ks.open:
                engine._due.setdefault(idx, set()).add(k)
            if not ks.idle:
                engine._active.add(k)
        return engine


def _key_state(ks: _KeyState) -> dict[str, Any]:
    return {n: v for n, v in vars(ks).items() if n != "rules"}


def _pack(state: dict[str, Any]) -> bytes:
    return zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 1)


def _unpack(blob: bytes) -> dict[str, Any]:
    try:
        state = _SnapshotUnpickler(io.BytesIO(zlib.decompress(blob))).load()
    except (zlib.error, pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError,
            TypeError, ValueError) as exc:
        raise ValueError(f"not an engine snapshot: {exc}") from None
    if not isinstance(state, dict) or state.get("v") != 1 or not isinstance(state.get("keys"), dict):
        raise ValueError("not an engine snapshot (version 1)")
    return state


def _envelope(b: Baseline, t: float, window: float, pick: Any) -> float | None:
    """The baseline over the window ``[t - window, t]``: its max (or min) at both ends.

    Seasonal slots switch on the hour while a window still holds the previous hour's samples;
    judging against the envelope keeps a peak's last minute from alerting against the next hour.
    """
    now, then = b.value(t), b.value(t - window)
    if now is None or then is None:
        return now
    return pick(now, then)


class _SnapshotUnpickler(pickle.Unpickler):
    """Refuses every global but the few a snapshot is made of."""

    _ALLOWED = {
        ("collections", "deque"), ("builtins", "set"), ("builtins", "frozenset"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("numpy", "float64"), ("numpy", "int64"),
        ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
    }
    _CLASSES = {"_KeyState", "_Bucket", "KeyStatus", "Baseline", "EwmaBaseline", "SeasonalProfile",
                "RollingHistogram", "RollingSum", "WindowSums", "AlertLifecycle", "Key"}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED or (
                module.startswith(("brownout.detectors.", "brownout.model")) and name in self._CLASSES):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a snapshot")


_UNITS = {"error_rate": "", "ttft_drift": "s", "latency_p95": "s", "throughput": " tok/s", "itl": "s"}


def _summary(name: str, state: str, observed: float | None, baseline: float | None) -> str:
    obs = "n/a" if observed is None else f"{observed:.3g}{_UNITS.get(name, '')}"
    if baseline is None:
        return f"{name} {state}: {obs}"
    return f"{name} {state}: {obs} vs baseline {baseline:.3g}{_UNITS.get(name, '')}"
