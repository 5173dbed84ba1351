"""Streaming statistics and detectors: per-key windows in event time, baselines, alert lifecycles.

>>> from brownout.detectors import Engine
>>> Engine().advance(0.0)
[]
"""

from brownout.detectors.baseline import Baseline, EwmaBaseline, SeasonalProfile
from brownout.detectors.engine import Engine, KeyStatus
from brownout.detectors.lifecycle import AlertLifecycle
from brownout.detectors.stats import RollingHistogram, RollingSum, wilson_lower_bound

__all__ = ["Engine", "KeyStatus", "AlertLifecycle", "Baseline", "EwmaBaseline", "SeasonalProfile",
           "RollingHistogram", "RollingSum", "wilson_lower_bound"]
