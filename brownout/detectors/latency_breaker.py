"""``latency_breaker``: open the key's circuit when its latency is twice its normal p95.

Two triggers, as the seed asks. **Held**: the p95 reaches ``ratio`` x its baseline p95 over
``window`` (a Wilson bound sure that 5 % of the requests are past it, or more on a key whose tail
often is: see :class:`~brownout.detectors.stats.NormalShare`) and stays there, the last minute
included, for ``hold`` (a moderate drift: 5 minutes of it; an incident that ended does not trip it
while its requests are still in the window). **Fast**: on a short
window, a Wilson bound is sure that ``fast_share`` of the requests already took ``fast_ratio`` (4)
x the baseline p95 or longer (a hard step: no reason to wait 5 minutes). The fast line is far above
the held one on purpose: when a router sheds a slow deployment, its siblings queue the extra load
and their first tokens slow down too, and opening them as well would leave nowhere to go.

The latency is the time to first token and the duration per output token, each against its own
baseline p95: a stalled first token or a decode collapse (the finding's ``signal`` label says which).

>>> from brownout.detectors.step import Step, Signal
>>> from types import SimpleNamespace
>>> d = LatencyBreaker(LatencyBreakerSettings(), step=5.0)
>>> ttft = SimpleNamespace(baseline=lambda q, t: 0.5)           # the key's TTFT p95 baseline: 0.5 s
>>> per_token = SimpleNamespace(baseline=lambda q, t: None)     # (not known yet)
>>> key = SimpleNamespace(t=0.0, minute_end=False, signals={"ttft": ttft, "latency": per_token})
>>> for _ in range(3):                                           # 15 s of 4 s first tokens
...     s = Step(); s.ttft = [4.0] * 20; s.n = 20
...     d.update(s, key)
>>> v = d.verdict(); v.fire, v.window, v.baseline, v.labels
(True, 15.0, 0.5, (('signal', 'ttft'),))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from brownout.detectors.base import QUIET, Detector, Verdict, steps
from brownout.detectors.settings import (COUNT, QUANTILE, RATE, RATIO, SECONDS, SECONDS0, BreakerSettings, SettingError,
                                         Z, seconds_list, setting)
from brownout.detectors.step import Signal
from brownout.detectors.stats import NormalShare, WindowSums, count_at_least, wilson_lower_bound

__all__ = ["LatencyBreaker", "LatencyBreakerSettings"]


@dataclass(frozen=True)
class LatencyBreakerSettings(BreakerSettings):
    window: float = setting(300.0, SECONDS, "the held trigger's window")
    quantile: float = setting(0.95, QUANTILE, "the quantile held against ratio x its baseline")
    ratio: float = setting(2.0, RATIO, "x the baseline p95")
    hold: float = setting(300.0, SECONDS0, "seconds the held trigger must last")
    min_requests: int = setting(100, COUNT, "requests the held window needs: about 5 beyond the p95")
    fast_windows: tuple[float, ...] = setting((15.0, 30.0, 60.0), seconds_list, "windows of the fast trigger")
    fast_ratio: float = setting(4.0, RATIO, "the fast trigger's line: x the baseline p95")
    fast_share: float = setting(0.5, RATE, "share of requests past fast_ratio x baseline p95 that trips at once")
    fast_min_requests: int = setting(10, COUNT, "requests a fast window needs")
    z: float = setting(2.576, Z, "Wilson bound of the fast trigger (2.576: 99 %)")

    def validate(self) -> None:
        if max(self.fast_windows) > self.window:
            raise SettingError("fast_windows", f"must all be <= window ({self.window:g})")
        if self.fast_ratio < self.ratio:
            raise SettingError("fast_ratio", f"must be >= ratio ({self.ratio:g}), got {self.fast_ratio:g}")


class _Channel:
    """One latency the breaker judges (TTFT, or duration per output token)."""

    __slots__ = ("signal", "sums", "normal", "base", "hold_since")

    def __init__(self, signal: str, widths: list[int], share: float, min_requests: int) -> None:
        self.signal = signal
        self.sums = WindowSums(widths, 3)  # requests, past ratio x and past fast_ratio x baseline p95
        self.normal = NormalShare(share, min_requests)
        self.base: float | None = None
        self.hold_since: float | None = None

    def export(self) -> dict[str, Any]:
        return {"sums": self.sums.export(), "hold_since": self.hold_since, "normal": self.normal.export()}

    def install(self, state: dict[str, Any]) -> None:
        self.sums.install(state["sums"])
        hs = state["hold_since"]
        self.hold_since = None if hs is None else float(hs)
        self.normal.install(state["normal"])


class LatencyBreaker(Detector):
    """TTFT or duration-per-token p95 >= ``ratio`` x baseline: held for ``hold``, or overwhelming now."""

    name: ClassVar[str] = "latency_breaker"
    kind: ClassVar[str] = "breaker"
    Settings: ClassVar[type[LatencyBreakerSettings]] = LatencyBreakerSettings

    def __init__(self, settings: LatencyBreakerSettings, step: float) -> None:
        super().__init__(settings, step)
        self.reads = (("ttft", settings.quantile), ("latency", settings.quantile))
        self.long = steps(settings.window, step)
        self.fast = sorted({steps(w, step) for w in settings.fast_windows})
        self.recent = steps(60.0, step)  # the hold lasts while the last minute is past the line too
        widths = sorted(set(self.fast) | {self.long, self.recent})
        self.channels = [_Channel(sig, widths, 1 - settings.quantile, settings.min_requests)
                         for sig in ("ttft", "latency")]
        self.t = 0.0
        self.judged: tuple[_Channel, int] = (self.channels[0], self.long)
        self.signals: Any = None  # the key's readings, for the observed value

    def update(self, step: Any, key: Any) -> None:
        s = self.settings
        self.t = key.t
        self.signals = key.signals
        for ch in self.channels:
            base = ch.base = key.signals[ch.signal].baseline(s.quantile, key.t)
            xs = step.samples(ch.signal)
            if base is None or not xs:
                ch.sums.push(_NONE)
            else:
                k = count_at_least(xs, s.ratio * base)
                ch.sums.push((len(xs), k, count_at_least(xs, s.fast_ratio * base)))
                ch.normal.add(len(xs), k)
            if key.minute_end:
                ch.normal.minute(ch.hold_since is None)
            n, k, _ = ch.sums.total(self.long)
            rn, rk, _ = ch.sums.total(self.recent)
            if (base is not None and n >= s.min_requests and k >= ch.normal.boundary * n
                    and wilson_lower_bound(k, n, s.z) >= ch.normal.boundary and rk >= ch.normal.boundary * rn):
                if ch.hold_since is None:
                    ch.hold_since = key.t
            else:
                ch.hold_since = None

    def verdict(self) -> Verdict:
        s = self.settings
        held = False
        for ch in self.channels:
            if ch.base is None:
                continue
            for w in self.fast:
                n, _, k = ch.sums.total(w)
                if n >= s.fast_min_requests and k >= s.fast_share * n and wilson_lower_bound(k, n, s.z) >= s.fast_share:
                    self.judged = (ch, w)
                    return Verdict(True, False, ch.base, w * self.step, (("signal", ch.signal),))
            if ch.hold_since is not None:
                held = True
                if self.t - ch.hold_since >= s.hold:
                    self.judged = (ch, self.long)
                    return Verdict(True, False, ch.base, self.long * self.step, (("signal", ch.signal),))
        if all(ch.base is None for ch in self.channels):
            return QUIET
        return Verdict(False, not held, None, self.long * self.step)

    def observed(self) -> float | None:
        """The latency that tripped it, in seconds like its baseline: the p95 of the last minute of
        that signal (the held trigger) or the median of the window that tripped (the fast one)."""
        ch, w = self.judged
        sig: Signal | None = self.signals.get(ch.signal) if self.signals is not None else None
        if sig is None:
            return None
        if w in self.fast:
            return sig.ring.quantile(0.5, w)
        return sig.ring.quantile(self.settings.quantile)

    @property
    def suspect(self) -> bool:
        return any(ch.hold_since is not None for ch in self.channels)

    @property
    def idle(self) -> bool:
        return all(ch.sums.empty and ch.hold_since is None for ch in self.channels)

    def export(self) -> dict[str, Any]:
        return {ch.signal: ch.export() for ch in self.channels}

    def install(self, state: dict[str, Any]) -> None:
        for ch in self.channels:
            ch.install(state[ch.signal])


_NONE = (0, 0, 0)
