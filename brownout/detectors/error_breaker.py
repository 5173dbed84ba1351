"""``error_breaker``: open the key's circuit when capacity errors reach ``rate``.

Trips when the capacity-error share over ``window`` reaches ``rate`` (with ``min_requests``), or
sooner when a shorter window's Wilson lower bound already clears it (with ``short_min_requests``): a
hard burst opens the breaker within seconds, a handful of unlucky requests never does.

>>> from brownout.detectors.step import Step
>>> from types import SimpleNamespace
>>> d = ErrorBreaker(ErrorBreakerSettings(), step=5.0)
>>> s = Step(); s.n, s.cap = 20, 14                # 5 s at 4 req/s, 70 % failing
>>> d.update(s, SimpleNamespace(t=0.0))
>>> v = d.verdict(); v.fire, v.window
(True, 5.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from brownout.detectors.base import QUIET, ShareBreaker, Verdict, steps
from brownout.detectors.settings import COUNT, RATE, SECONDS, BreakerSettings, SettingError, Z, seconds_list, setting
from brownout.detectors.stats import wilson_lower_bound

__all__ = ["ErrorBreaker", "ErrorBreakerSettings"]


@dataclass(frozen=True)
class ErrorBreakerSettings(BreakerSettings):
    window: float = setting(60.0, SECONDS, "the long window")
    rate: float = setting(0.25, RATE, "share of capacity errors that trips")
    min_requests: int = setting(20, COUNT, "requests the long window needs")
    short_windows: tuple[float, ...] = setting((5.0, 10.0, 15.0, 30.0), seconds_list,
                                               "trip sooner when one's Wilson lower bound clears rate")
    short_min_requests: int = setting(10, COUNT, "requests a short window needs")
    z: float = setting(2.576, Z, "Wilson bound (2.576: 99 %)")

    def validate(self) -> None:
        if max(self.short_windows) > self.window:
            raise SettingError("short_windows", f"must all be <= window ({self.window:g})")


class _Healthy(dict[float, Verdict]):
    def __missing__(self, window: float) -> Verdict:
        v = self[window] = Verdict(False, True, None, window)
        return v


_HEALTHY = _Healthy()


class ErrorBreaker(ShareBreaker):
    """Capacity-error share: the long window's point estimate, or a short window's Wilson bound."""

    name: ClassVar[str] = "error_breaker"
    Settings: ClassVar[type[ErrorBreakerSettings]] = ErrorBreakerSettings

    def __init__(self, settings: ErrorBreakerSettings, step: float) -> None:
        long = steps(settings.window, step)
        short = sorted({steps(w, step) for w in settings.short_windows} | {long})
        super().__init__(settings, step, short)
        self.long, self.short = long, short

    def update(self, step: Any, key: Any) -> None:
        self.sums.push((step.n, step.cap))

    def verdict(self) -> Verdict:
        s = self.settings
        n, cap = self.sums.total(self.long)
        if not n:
            return QUIET
        if not cap:
            return _HEALTHY[self.long * self.step]
        for w in self.short:
            wn, wcap = self.sums.total(w) if w != self.long else (n, cap)
            if wn >= s.short_min_requests and wcap >= s.rate * wn and wilson_lower_bound(wcap, wn, s.z) >= s.rate:
                self.judged = w
                return Verdict(True, False, None, w * self.step)
        if n >= s.min_requests and cap >= s.rate * n:
            self.judged = self.long
            return Verdict(True, False, None, self.long * self.step)
        return Verdict(False, True, None, self.long * self.step)
