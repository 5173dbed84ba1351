"""``stall_breaker``: open the key's circuit on a burst of calls still waiting for a first token.

Every other rule hears of a request when it completes, so a first token 60 s late is news 60 s
later. The hooks report a call that has waited past its key's threshold as a stall while it still
waits (``brownout.stall``, once per call). This rule trips when, on a short window with at least
``min_stalls`` reports, a Wilson bound is sure that ``share`` of the calls heard of (stalled,
completed or abandoned) are stalls: a hard TTFT step opens the breaker in seconds.

>>> from brownout.detectors.step import Step
>>> from types import SimpleNamespace
>>> d = StallBreaker(StallBreakerSettings(), step=5.0)
>>> for stalls, done in ((8, 12), (20, 2)):                   # new calls stall, old ones drain
...     s = Step(); s.stalls, s.n = stalls, done
...     d.update(s, SimpleNamespace(t=0.0))
>>> v = d.verdict(); v.fire, round(d.observed(), 2)
(True, 0.67)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from brownout.detectors.base import QUIET, ShareBreaker, Verdict, steps
from brownout.detectors.settings import COUNT, RATE, BreakerSettings, Z, seconds_list, setting
from brownout.detectors.stats import wilson_lower_bound

__all__ = ["StallBreaker", "StallBreakerSettings"]


@dataclass(frozen=True)
class StallBreakerSettings(BreakerSettings):
    windows: tuple[float, ...] = setting((10.0, 20.0, 30.0), seconds_list, "windows judged")
    share: float = setting(0.25, RATE, "share of calls stalled that trips")
    min_stalls: int = setting(5, COUNT, "stall reports a window needs")
    z: float = setting(2.576, Z, "Wilson bound (2.576: 99 %)")


class StallBreaker(ShareBreaker):
    """Stall reports against every call heard of, over short windows."""

    name: ClassVar[str] = "stall_breaker"
    Settings: ClassVar[type[StallBreakerSettings]] = StallBreakerSettings

    def __init__(self, settings: StallBreakerSettings, step: float) -> None:
        self.windows = sorted({steps(w, step) for w in settings.windows})
        super().__init__(settings, step, self.windows)  # calls heard of, stall reports

    def update(self, step: Any, key: Any) -> None:
        self.sums.push((step.stalls + step.n + step.cancelled, step.stalls))

    def verdict(self) -> Verdict:
        s = self.settings
        if not self.sums.total(self.windows[-1])[1]:
            return QUIET
        for w in self.windows:
            n, stalls = self.sums.total(w)
            if stalls >= s.min_stalls and stalls >= s.share * n and wilson_lower_bound(stalls, n, s.z) >= s.share:
                self.judged = w
                return Verdict(True, False, None, w * self.step)
        return Verdict(False, True, None, self.windows[-1] * self.step)
