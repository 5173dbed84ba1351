"""``ttft_p95``: the tail of the time to first token against its baseline p95.

Some brownouts leave the median alone: one replica in eight is saturated, and its users wait seven
times longer for a first token. The request duration hides it (it is dominated by output length);
the TTFT p95 does not. Fires when, on some window, at least 5 % of the requests (a Wilson bound sure
of it) took ``fire_ratio`` x the baseline p95 or longer.

>>> TtftP95Settings().quantile, TtftP95Settings().fire_ratio
(0.95, 1.5)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from brownout.detectors.base import QuantileRule, TailSettings

__all__ = ["TtftP95", "TtftP95Settings"]


@dataclass(frozen=True)
class TtftP95Settings(TailSettings):
    pass


class TtftP95(QuantileRule):
    """TTFT p95 >= ``fire_ratio`` x its baseline p95 (or >= ``limit``)."""

    name: ClassVar[str] = "ttft_p95"
    signal: ClassVar[str] = "ttft"
    Settings: ClassVar[type[TtftP95Settings]] = TtftP95Settings
