"""``goodput``: the SLO burn rate over requests that carry a deadline (``brownout.deadline``).

A request is good when it succeeded within its deadline; the error budget is ``1 - objective``. Two
alerts, as in the multiwindow burn-rate practice: ``goodput_page`` when the budget burns 14.4 x too
fast over both 1 h and 5 min, ``goodput_ticket`` at 6 x over 6 h and 30 min (windows per minute).

>>> from brownout.detectors.step import Step
>>> from types import SimpleNamespace
>>> page, ticket = Goodput.build(GoodputSettings(), step=60.0)
>>> page.rule, ticket.rule, page.alert.severity
('goodput_page', 'goodput_ticket', 'page')
>>> for minute in range(5):                      # half of the requests miss their deadline
...     s = Step(); s.slo_n, s.slo_good = 20, 10
...     page.update(s, SimpleNamespace(t=60.0 * minute, minute_end=True))
>>> page.verdict().fire, round(page.observed(), 1)
(True, 50.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from brownout.detectors.base import QUIET, Detector, Verdict, steps
from brownout.detectors.settings import (COUNT, RATIO, SECONDS, SECONDS0, SEVERITY, AlertSettings, Settings,
                                         SettingError, boolean, nested, number, setting)
from brownout.detectors.stats import RollingSum

__all__ = ["Goodput", "GoodputSettings", "GoodputTier"]

_MINUTE = 60.0


@dataclass(frozen=True)
class GoodputTier(AlertSettings):
    burn: float = setting(14.4, RATIO, "burn rate (x the budget) over both windows that fires")
    long: float = setting(3600.0, SECONDS, "the long window")
    short: float = setting(300.0, SECONDS, "the short window")
    severity: str = setting("page", SEVERITY, "label on the alert")
    keep_firing_for: float = setting(120.0, SECONDS0, "seconds clear before it resolves")

    def validate(self) -> None:
        if self.short > self.long:
            raise SettingError("short", f"must be <= long ({self.long:g}), got {self.short:g}")


def _ticket() -> GoodputTier:
    return GoodputTier(burn=6.0, long=21600.0, short=1800.0, severity="ticket", keep_firing_for=600.0)


@dataclass(frozen=True)
class GoodputSettings(Settings):
    enabled: bool = setting(True, boolean, "evaluate this rule")
    objective: float = setting(0.99, number(0, 1, lo_open=True), "share of requests done within their deadline")
    min_requests: int = setting(50, COUNT, "requests with a deadline the long window needs")
    short_min_requests: int = setting(10, COUNT, "requests the short window needs")
    page: GoodputTier = nested(GoodputTier, "the fast-burn tier")
    ticket: GoodputTier = nested(GoodputTier, "the slow-burn tier", _ticket)

    KIND: ClassVar[str] = "alert"

    def validate(self) -> None:
        if self.objective >= 1:
            raise SettingError("objective", "must be < 1 (no budget at 1)")


class Goodput(Detector):
    """One burn-rate tier (``page`` or ``ticket``) of the goodput rule."""

    name: ClassVar[str] = "goodput"
    Settings: ClassVar[type[GoodputSettings]] = GoodputSettings

    def __init__(self, settings: GoodputSettings, step: float, tier: str = "page") -> None:
        super().__init__(settings, step)
        self.tier = tier
        self.alert = getattr(settings, tier)
        self.long = RollingSum(steps(self.alert.long, _MINUTE), 2)
        self.short = RollingSum(steps(self.alert.short, _MINUTE), 2)
        self.minute = [0, 0]

    @classmethod
    def build(cls, settings: Any, step: float) -> list[Detector]:
        return [cls(settings, step, tier) for tier in ("page", "ticket") if getattr(settings, tier).enabled]

    @property
    def rule(self) -> str:
        return f"goodput_{self.tier}"

    def update(self, step: Any, key: Any) -> None:
        self.minute[0] += step.slo_n
        self.minute[1] += step.slo_good
        if key.minute_end:
            self.long.push(self.minute)
            self.short.push(self.minute)
            self.minute = [0, 0]

    def _burn(self, sums: RollingSum) -> float | None:
        n, good = sums.total
        return (1 - good / n) / (1 - self.settings.objective) if n else None

    def verdict(self) -> Verdict:
        s, tier = self.settings, self.alert
        burn_long, burn_short = self._burn(self.long), self._burn(self.short)
        if burn_long is None or burn_short is None:
            return QUIET
        fire = (self.long.total[0] >= s.min_requests and self.short.total[0] >= s.short_min_requests
                and burn_long >= tier.burn and burn_short >= tier.burn)
        return Verdict(fire, burn_long < tier.burn or burn_short < tier.burn, None, tier.long)

    def observed(self) -> float | None:
        return self._burn(self.long)

    def ratio(self) -> float | None:
        """Share of good requests over the short window (None without deadlines)."""
        n, good = self.short.total
        return good / n if n else None

    @property
    def idle(self) -> bool:
        return not (self.minute[0] or self.long.total[0] or self.short.total[0])

    def export(self) -> dict[str, Any]:
        return {"long": self.long.export(), "short": self.short.export(), "minute": list(self.minute)}

    def install(self, state: dict[str, Any]) -> None:
        self.long.install(state["long"])
        self.short.install(state["short"])
        self.minute = [int(x) for x in state["minute"]][:2]
