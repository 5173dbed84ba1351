"""Streaming detectors: one object per rule, fed a key's step, read for a verdict; the engine loops over them.

>>> from brownout.detectors import Engine
>>> Engine().advance(0.0)
[]
"""

from brownout.detectors.base import Detector, QuantileRule, QuantileSettings, Verdict
from brownout.detectors.baseline import Baseline, DailyProfile, EwmaBaseline
from brownout.detectors.engine import Engine, KeyStatus
from brownout.detectors.lifecycle import AlertLifecycle
from brownout.detectors.registry import ALERT_RULES, BREAKER_RULES, RULES
from brownout.detectors.settings import Settings, SettingError
from brownout.detectors.stats import BernoulliCusum, RollingSum, WindowSums, wilson_lower_bound

__all__ = ["Engine", "KeyStatus", "Detector", "QuantileRule", "QuantileSettings", "Verdict", "RULES", "ALERT_RULES",
           "BREAKER_RULES", "AlertLifecycle", "Baseline", "DailyProfile", "EwmaBaseline", "Settings", "SettingError",
           "BernoulliCusum", "RollingSum", "WindowSums", "wilson_lower_bound"]
