"""The rule pack: every rule's detector class, in evaluation order.

Adding a rule is one module (a :class:`~brownout.detectors.base.Detector` with its ``Settings``)
plus its entry here and in ``brownout/rules/default.yaml``; the loader, the engine, snapshots and
``brownout rules show`` find it through :data:`RULES`.

>>> list(RULES)[:3]
['error_rate', 'error_breaker', 'ttft_drift']
>>> [d.rule for d in build("goodput", RULES["goodput"].Settings(), step=5.0)]
['goodput_page', 'goodput_ticket']
"""

from __future__ import annotations

from typing import Any

from brownout.detectors.base import Detector
from brownout.detectors.error_breaker import ErrorBreaker
from brownout.detectors.error_rate import ErrorRate
from brownout.detectors.goodput import Goodput
from brownout.detectors.itl import Itl
from brownout.detectors.latency_breaker import LatencyBreaker
from brownout.detectors.latency_p95 import LatencyP95
from brownout.detectors.stall_breaker import StallBreaker
from brownout.detectors.throughput import Throughput
from brownout.detectors.ttft_drift import TtftDrift
from brownout.detectors.ttft_p95 import TtftP95

__all__ = ["RULES", "build", "ALERT_RULES", "BREAKER_RULES"]

RULES: dict[str, type[Detector]] = {
    cls.name: cls for cls in (ErrorRate, ErrorBreaker, TtftDrift, TtftP95, LatencyP95, LatencyBreaker,
                              StallBreaker, Throughput, Itl, Goodput)
}

#: Names on alert findings (goodput has two tiers) and on breaker trips.
ALERT_RULES: tuple[str, ...] = tuple(
    n for name, cls in RULES.items() if cls.kind == "alert"
    for n in ((f"{name}_page", f"{name}_ticket") if cls is Goodput else (name,)))
BREAKER_RULES: tuple[str, ...] = tuple(name for name, cls in RULES.items() if cls.kind == "breaker")


def build(name: str, settings: Any, step: float) -> list[Detector]:
    """The detectors of rule ``name`` for one key (one, or one per tier)."""
    return RULES[name].build(settings, step)
