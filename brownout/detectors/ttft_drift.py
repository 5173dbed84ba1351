"""``ttft_drift``: the median time to first token against its baseline, the early warning.

A provider that starts queueing you shows it first in the time to first token. Fires when, on some
window, at least half of the requests (a Wilson bound sure of it) took ``fire_ratio`` x the baseline
median or longer, or when a CUSUM over that share has gathered ``cusum_h`` of evidence (a creep),
so a +20 % drift is flagged minutes after it crosses the line and a hard step within seconds.
Calls abandoned before their first token count with their ``brownout.ttft.at_least``.

>>> from brownout.detectors.step import Step
>>> s = TtftDriftSettings(limit=0.2)            # a code-completion model held to 200 ms
>>> s.fire_ratio, s.limit, s.quantile
(1.2, 0.2, 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from brownout.detectors.base import QuantileRule, QuantileSettings
from brownout.detectors.settings import number, setting

__all__ = ["TtftDrift", "TtftDriftSettings"]


@dataclass(frozen=True)
class TtftDriftSettings(QuantileSettings):
    cusum_h: float = setting(10.0, number(0), "evidence (nats) of a slow shift that fires; 0 turns it off")


class TtftDrift(QuantileRule):
    """Median TTFT >= ``fire_ratio`` x its baseline (or >= ``limit``)."""

    name: ClassVar[str] = "ttft_drift"
    signal: ClassVar[str] = "ttft"
    Settings: ClassVar[type[TtftDriftSettings]] = TtftDriftSettings
