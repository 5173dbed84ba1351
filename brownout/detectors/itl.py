"""``itl``: the p95 inter-token latency over a fixed ceiling (streams that stutter).

Each request reports its own p95 gap between chunks; the rule fires when, on some window, at least
5 % of the requests (a Wilson bound sure of it) had a p95 gap of ``limit`` or more.

>>> ItlSettings().limit, ItlSettings().fire_ratio
(0.1, None)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from brownout.detectors.base import QuantileRule, QuantileSettings
from brownout.detectors.settings import COUNT, OPT_RATIO, OPT_SECONDS, QUANTILE, setting

__all__ = ["Itl", "ItlSettings"]


@dataclass(frozen=True)
class ItlSettings(QuantileSettings):
    min_requests: int = setting(100, COUNT, "requests a window needs: about 5 beyond the p95")
    quantile: float = setting(0.95, QUANTILE, "which quantile")
    fire_ratio: float | None = setting(None, OPT_RATIO, "fire at this x baseline (null: the limit only)")
    clear_ratio: float | None = setting(None, OPT_RATIO, "clear below this x baseline")
    limit: float | None = setting(0.1, OPT_SECONDS, "ceiling on the p95 gap, seconds")
    clear_limit: float | None = setting(0.08, OPT_SECONDS, "clears below this")


class Itl(QuantileRule):
    """p95 inter-token latency >= ``limit``."""

    name: ClassVar[str] = "itl"
    signal: ClassVar[str] = "itl"
    Settings: ClassVar[type[ItlSettings]] = ItlSettings
