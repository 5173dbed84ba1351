"""``error_rate``: the share of capacity errors (429, 5xx, 529, timeouts, connection failures).

Fires when a window's Wilson lower bound of the capacity-error share clears ``fire_rate`` (a burst is
sure within seconds), or when a CUSUM has gathered ``cusum_h`` of evidence that the share sits above
it (a rate just past 5 % for minutes). A key too quiet for ``min_requests`` in ``window`` is judged
over ``slow_window`` instead, with a stricter bound (``slow_z``: a one-in-a-hundred fluke of a 99 %
bound turns up every few hours when a ten-minute window is judged every step), and only on errors
that are still arriving: a key whose traffic stopped after a burst raises nothing new. Client errors
(400, 401, 403, 404, 422) never count.

>>> from brownout.detectors.step import Step
>>> from types import SimpleNamespace
>>> d = ErrorRate(ErrorRateSettings(), step=5.0)
>>> for _ in range(3):                          # 15 s at 4 req/s, a third of them 503s
...     s = Step(); s.n, s.cap = 20, 7
...     d.update(s, SimpleNamespace(t=0.0, minute_end=False))
>>> d.verdict().fire, round(d.observed(), 2)
(True, 0.35)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from brownout.detectors.base import QUIET, Detector, Verdict, steps
from brownout.detectors.settings import (COUNT, RATE, SECONDS, SEVERITY, AlertSettings, SettingError, Z, number,
                                         seconds_list, setting)
from brownout.detectors.stats import BernoulliCusum, RollingSum, WindowSums, wilson_lower_bound

__all__ = ["ErrorRate", "ErrorRateSettings"]

_MINUTE = 60.0


@dataclass(frozen=True)
class ErrorRateSettings(AlertSettings):
    severity: str = setting("critical", SEVERITY, "label on the alert")
    window: float = setting(60.0, SECONDS, "the longest fast window, and the one that clears")
    short_windows: tuple[float, ...] = setting((15.0, 30.0), seconds_list, "shorter windows judged too")
    fire_rate: float = setting(0.05, RATE, "share of capacity errors that fires")
    clear_rate: float = setting(0.025, RATE, "share under which it clears")
    min_requests: int = setting(10, COUNT, "requests a window needs before it is judged")
    min_errors: int = setting(3, COUNT, "a window with fewer capacity errors never fires")
    z: float = setting(2.576, Z, "Wilson bound: fire only when the share is this sure (2.576: 99 %)")
    cusum_h: float = setting(8.0, number(0), "evidence (nats) of a rate held above fire_rate; 0 turns it off")
    slow_window: float = setting(600.0, SECONDS, "a quiet key is judged over this window")
    slow_z: float = setting(3.29, Z, "Wilson bound on the slow window (3.29: 99.95 %): stricter, as it "
                                     "slides over ten minutes a step at a time")

    def validate(self) -> None:
        if self.clear_rate > self.fire_rate:
            raise SettingError("clear_rate", f"must be <= fire_rate ({self.fire_rate:g}), got {self.clear_rate:g}")
        if max(self.short_windows) > self.window:
            raise SettingError("short_windows", f"must all be <= window ({self.window:g})")
        if self.slow_window < self.window:
            raise SettingError("slow_window", f"must be >= window ({self.window:g}), got {self.slow_window:g}")


class ErrorRate(Detector):
    """Capacity-error share over fast windows (Wilson bound, CUSUM) and a slow one for quiet keys."""

    name: ClassVar[str] = "error_rate"
    Settings: ClassVar[type[ErrorRateSettings]] = ErrorRateSettings

    def __init__(self, settings: ErrorRateSettings, step: float) -> None:
        super().__init__(settings, step)
        self.long = steps(settings.window, step)
        self.windows = sorted({steps(w, step) for w in settings.short_windows} | {self.long})
        self.sums = WindowSums(self.windows, 2)  # requests, capacity errors
        self.cusum = BernoulliCusum(settings.fire_rate, settings.cusum_h) if settings.cusum_h > 0 else None
        self.slow = RollingSum(steps(settings.slow_window, _MINUTE), 2)
        self.minute = [0, 0]  # this minute's requests and capacity errors, for the slow window

    def update(self, step: Any, key: Any) -> None:
        n, cap = step.n, step.cap
        self.sums.push((n, cap))
        if self.cusum is not None and n:
            self.cusum.update(cap, n)
        self.minute[0] += n
        self.minute[1] += cap
        if key.minute_end:
            self.slow.push(self.minute)
            self.minute = [0, 0]

    def _slow_totals(self) -> tuple[int, int]:
        return self.slow.total[0] + self.minute[0], self.slow.total[1] + self.minute[1]

    def verdict(self) -> Verdict:
        s = self.settings
        n, cap = self.sums.total(self.long)
        if not n and not self.slow.total[0] and not self.minute[0]:
            return QUIET
        fire, judged = False, self.long
        if cap >= s.min_errors:  # a shorter window holds no more errors than the longest
            for w in self.windows:
                wn, wcap = self.sums.total(w) if w != self.long else (n, cap)
                if (wn >= s.min_requests and wcap >= s.min_errors and wcap >= s.fire_rate * wn
                        and wilson_lower_bound(wcap, wn, s.z) >= s.fire_rate):
                    fire, judged = True, w
                    break
        if not fire and self.cusum is not None and self.cusum.alarm and cap:
            fire = True
        slow_n, slow_cap = self._slow_totals()
        quiet = n < s.min_requests
        if not fire and quiet and cap and slow_n >= s.min_requests and slow_cap >= s.min_errors:
            fire = wilson_lower_bound(slow_cap, slow_n, s.slow_z) >= s.fire_rate
            judged = 0
        if quiet and slow_n:
            clear = slow_cap < s.clear_rate * slow_n or not cap
        else:
            clear = not n or cap < s.clear_rate * n
        return Verdict(fire, clear, None, (judged * self.step) if judged else s.slow_window)

    def observed(self) -> float | None:
        n, cap = self.sums.total(self.long)
        if n >= self.settings.min_requests:
            return cap / n
        slow_n, slow_cap = self._slow_totals()
        return slow_cap / slow_n if slow_n else (cap / n if n else None)

    @property
    def suspect(self) -> bool:
        return self.cusum is not None and self.cusum.value >= self.cusum.h / 2

    @property
    def idle(self) -> bool:
        return (self.sums.empty and not self.slow.total[0] and not self.minute[0]
                and (self.cusum is None or self.cusum.value == 0.0))

    def resolved(self) -> None:
        if self.cusum is not None:
            self.cusum.reset()

    def export(self) -> dict[str, Any]:
        return {"sums": self.sums.export(), "slow": self.slow.export(), "minute": list(self.minute),
                "cusum": None if self.cusum is None else self.cusum.value}

    def install(self, state: dict[str, Any]) -> None:
        self.sums.install(state["sums"])
        self.slow.install(state["slow"])
        self.minute = [int(x) for x in state["minute"]][:2]
        if self.cusum is not None and state["cusum"] is not None:
            self.cusum.value = min(max(0.0, float(state["cusum"])), 2 * self.cusum.h)
