"""``throughput``: output tokens per second (decode speed) against its baseline, a floor.

A saturated decode fleet streams slower once it has started: TTFT may be fine while answers crawl.
Fires when, on some window, at least half of the requests (a Wilson bound sure of it) decoded at
``fire_ratio`` x the baseline median or slower, or when a CUSUM has gathered ``cusum_h`` of evidence.

>>> ThroughputSettings().fire_ratio, ThroughputSettings().clear_ratio
(0.5, 0.7)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from brownout.detectors.base import QuantileRule, QuantileSettings
from brownout.detectors.settings import OPT_RATIO, SEVERITY, number, setting

__all__ = ["Throughput", "ThroughputSettings"]


@dataclass(frozen=True)
class ThroughputSettings(QuantileSettings):
    severity: str = setting("critical", SEVERITY, "label on the alert")
    fire_ratio: float | None = setting(0.5, OPT_RATIO, "fire at this x the baseline median (a floor)")
    clear_ratio: float | None = setting(0.7, OPT_RATIO, "clear above this x the baseline median")
    cusum_h: float = setting(10.0, number(0), "evidence (nats) of a slow shift that fires; 0 turns it off")

    HIGH = False


class Throughput(QuantileRule):
    """Median output tokens/s <= ``fire_ratio`` x its baseline (or <= ``limit``)."""

    name: ClassVar[str] = "throughput"
    signal: ClassVar[str] = "tps"
    Settings: ClassVar[type[ThroughputSettings]] = ThroughputSettings
