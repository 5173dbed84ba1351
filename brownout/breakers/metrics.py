"""Prometheus metrics of a collector's :class:`~brownout.breakers.BreakerBook`, read at scrape time.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> from brownout.breakers import BreakerBook
>>> reg = CollectorRegistry()
>>> reg.register(BreakerBookCollector(BreakerBook()))
>>> b'brownout_breaker_trips_ignored_total{reason="rearm"} 0.0' in generate_latest(reg)
True
"""

from __future__ import annotations

from typing import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from brownout.breakers.machine import BreakerBook

__all__ = ["BreakerBookCollector"]


class BreakerBookCollector(Collector):
    """``brownout_breaker_trips_ignored_total{reason="rearm"}`` (trips just after a close) and
    ``brownout_breakers{state}`` (keys per state). Per-key states are exported by
    :mod:`brownout.exporters.prometheus`."""

    def __init__(self, book: BreakerBook) -> None:
        self.book = book

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        ignored = CounterMetricFamily("brownout_breaker_trips_ignored",
                                      "Breaker trips ignored, by reason (rearm: just after a close).",
                                      labels=["reason"])
        ignored.add_metric(["rearm"], self.book.rearm_ignored)
        yield ignored
        counts = {"closed": 0, "open": 0, "half_open": 0}
        for state in self.book.states().values():
            counts[state] = counts.get(state, 0) + 1
        keys = GaugeMetricFamily("brownout_breakers", "Keys per breaker state.", labels=["state"])
        for state, n in counts.items():
            keys.add_metric([state], n)
        yield keys
