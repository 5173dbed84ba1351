"""``latency_p95``: the p95 of request duration per output token against its baseline.

A request's duration is dominated by how much it generates, so its raw p95 moves little when the
provider slows down for some requests (and a lot when users ask for longer answers). Per output
token, it measures the provider: prefill and decode, streamed or not. Fires when, on some window,
at least 5 % of the requests (a Wilson bound sure of it) took ``fire_ratio`` x the baseline p95 per
token or longer. Requests with no token count are judged on their whole duration.

>>> LatencyP95Settings().window, LatencyP95Settings().fire_ratio
(300.0, 1.5)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from brownout.detectors.base import QuantileRule, TailSettings

__all__ = ["LatencyP95", "LatencyP95Settings"]


@dataclass(frozen=True)
class LatencyP95Settings(TailSettings):
    pass


class LatencyP95(QuantileRule):
    """p95 of duration per output token >= ``fire_ratio`` x its baseline (or >= ``limit``)."""

    name: ClassVar[str] = "latency_p95"
    signal: ClassVar[str] = "latency"
    Settings: ClassVar[type[LatencyP95Settings]] = LatencyP95Settings
