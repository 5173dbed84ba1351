"""The shape every rule shares: a detector fed one step at a time, read for a verdict.

A detector is a small streaming object in the manner of river's statistics: ``update(step, key)``
changes its state and returns nothing, ``verdict()`` reads it and changes nothing. Its settings are a
typed :class:`~brownout.detectors.settings.Settings` validated when they are built. The engine owns
the rest: the clock, the alert lifecycle (pending, firing, resolved), learning, findings.

:class:`QuantileRule` is the common case: "the q-quantile of a measurement is past a threshold" is
judged as "the share of requests past the threshold is past 1 - q", over several windows at once, by
a Wilson bound (sure evidence now, on a short window) and a Bernoulli CUSUM (evidence that built up
slowly: a creep).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from brownout.detectors.settings import (COUNT, OPT_RATIO, OPT_SECONDS, QUANTILE, RATIO, SECONDS, SEVERITY,
                                         AlertSettings, SettingError, Settings, Z, number, seconds_list, setting)
from brownout.detectors.stats import (BernoulliCusum, NormalShare, WindowSums, count_at_least, count_at_most,
                                      wilson_lower_bound)

__all__ = ["Detector", "Verdict", "QuantileRule", "QuantileSettings", "TailSettings", "ShareBreaker", "steps"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a detector concludes at the end of a step.

    ``fire``: the firing condition holds (for a breaker rule: trip now). ``clear``: the value is back
    past the clear threshold (or there is no data); neither: inside the hysteresis band, hold.
    ``baseline`` is in the rule's unit (None: warming, or an absolute rule); ``window`` the seconds
    judged. The observed value is read from :meth:`Detector.observed` only when a finding needs it.
    """

    fire: bool = False
    clear: bool = True
    baseline: float | None = None
    window: float | None = None
    labels: tuple[tuple[str, str], ...] = ()


QUIET = Verdict()


def steps(seconds: float, step: float) -> int:
    """How many steps cover ``seconds`` (at least one)."""
    return max(1, int(math.ceil(seconds / step - 1e-9)))


class Detector:
    """Base of every rule's detector.

    Parameters
    ----------
    settings
        The rule's settings (its class is the detector's ``Settings``).
    step
        The engine's step in seconds.
    """

    #: The rule's name in the rule file and on findings.
    name: ClassVar[str] = ""
    #: ``alert`` (pending / firing / resolved) or ``breaker`` (trips).
    kind: ClassVar[str] = "alert"
    #: The settings class (typed, validated).
    Settings: ClassVar[type[Settings]] = AlertSettings
    #: Baselines this rule judges against, as (signal, quantile): they do not learn while it is active.
    reads: tuple[tuple[str, float], ...] = ()

    def __init__(self, settings: Any, step: float) -> None:
        self.settings = settings
        self.step = step
        self.alert = settings  # severity, for, keep_firing_for of its alert

    @classmethod
    def build(cls, settings: Any, step: float) -> list["Detector"]:
        """The detectors of this rule for one key (goodput builds one per tier)."""
        return [cls(settings, step)]

    @property
    def rule(self) -> str:
        """The name on findings (goodput has two tiers under one rule)."""
        return self.name

    def update(self, step: Any, key: Any) -> None:
        """Take one closed step (:class:`~brownout.detectors.step.Step`) of ``key`` (its state:
        ``key.t`` the step's end, ``key.signals`` the shared readings and baselines)."""
        raise NotImplementedError

    def verdict(self) -> Verdict:
        raise NotImplementedError

    def observed(self) -> float | None:
        """The value the rule judges, for a finding (None when there is no data)."""
        return None

    @property
    def suspect(self) -> bool:
        """Gathering evidence of a change: the baselines it reads should not learn now."""
        return False

    @property
    def idle(self) -> bool:
        """Nothing in its windows: stepping it with empty steps would change nothing."""
        return True

    def resolved(self) -> None:
        """Its alert resolved: drop evidence that belongs to the incident."""

    def export(self) -> dict[str, Any]:
        return {}

    def install(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"{self.name}: unexpected state {sorted(state)}")


class ShareBreaker(Detector):
    """A breaker over one share (capacity errors, stalls): windows of (calls, counted) per step."""

    kind: ClassVar[str] = "breaker"

    def __init__(self, settings: Any, step: float, widths: list[int]) -> None:
        super().__init__(settings, step)
        self.sums = WindowSums(widths, 2)
        self.judged = max(widths)

    def observed(self) -> float | None:
        """The share on the window that tripped (or the longest)."""
        n, k = self.sums.total(self.judged)
        return k / n if n else None

    @property
    def idle(self) -> bool:
        return self.sums.empty

    def export(self) -> dict[str, Any]:
        return {"sums": self.sums.export()}

    def install(self, state: dict[str, Any]) -> None:
        self.sums.install(state["sums"])


@dataclass(frozen=True)
class QuantileSettings(AlertSettings):
    """A quantile of one measurement against its baseline (``fire_ratio``) or a ceiling (``limit``)."""

    window: float = setting(60.0, SECONDS, "the longest window judged, and the one that clears")
    short_windows: tuple[float, ...] = setting((15.0, 30.0), seconds_list, "shorter windows judged too")
    quantile: float = setting(0.5, QUANTILE, "which quantile (0.5 median, 0.95 p95)")
    fire_ratio: float | None = setting(1.2, OPT_RATIO, "fire at this x baseline (null: limit only)")
    clear_ratio: float | None = setting(1.1, OPT_RATIO, "clear below this x baseline")
    limit: float | None = setting(None, OPT_SECONDS, "absolute threshold, fires even while the baseline warms")
    clear_limit: float | None = setting(None, OPT_SECONDS, "clears below this (default limit x clear/fire ratio)")
    min_requests: int = setting(10, COUNT, "requests a window needs before it is judged")
    z: float = setting(2.576, Z, "Wilson bound: fire only when the share is this sure (2.576: 99 %)")
    cusum_h: float = setting(0.0, number(0), "evidence (nats) of a slow shift that fires; 0 turns it off")

    #: A ceiling (True: TTFT, latency) or a floor (False: throughput).
    HIGH: ClassVar[bool] = True

    def validate(self) -> None:
        if max(self.short_windows) > self.window:
            raise SettingError("short_windows", f"must all be <= window ({self.window:g})")
        if self.fire_ratio is None and self.limit is None:
            raise SettingError("limit", "set fire_ratio or limit (or both)")
        if (self.fire_ratio is None) != (self.clear_ratio is None):
            raise SettingError("clear_ratio", "set with fire_ratio (both or neither)")
        if self.fire_ratio is not None and self.clear_ratio is not None:
            if self.HIGH and self.clear_ratio > self.fire_ratio:
                raise SettingError("clear_ratio", f"must be <= fire_ratio ({self.fire_ratio:g}), got {self.clear_ratio:g}")
            if not self.HIGH and self.clear_ratio < self.fire_ratio:
                raise SettingError("clear_ratio",
                                   f"must be >= fire_ratio ({self.fire_ratio:g}) for a floor, got {self.clear_ratio:g}")
        if self.limit is not None and self.clear_limit is not None:
            if self.HIGH and self.clear_limit > self.limit:
                raise SettingError("clear_limit", f"must be <= limit ({self.limit:g}), got {self.clear_limit:g}")
            if not self.HIGH and self.clear_limit < self.limit:
                raise SettingError("clear_limit", f"must be >= limit ({self.limit:g}) for a floor")


@dataclass(frozen=True)
class TailSettings(QuantileSettings):
    """A p95 rule: judged over 5 minutes, on 100 requests at least (about 5 beyond the p95)."""

    severity: str = setting("critical", SEVERITY, "label on the alert")
    window: float = setting(300.0, SECONDS, "the longest window judged, and the one that clears")
    short_windows: tuple[float, ...] = setting((30.0, 60.0), seconds_list, "shorter windows judged too")
    min_requests: int = setting(100, COUNT, "requests a window needs: about 5 beyond the p95")
    z: float = setting(3.0, Z, "Wilson bound (3.0: 99.9 %): a tail is noisy, and judged often")
    quantile: float = setting(0.95, QUANTILE, "which quantile")
    fire_ratio: float | None = setting(1.5, OPT_RATIO, "fire at this x the baseline p95")
    clear_ratio: float | None = setting(1.3, OPT_RATIO, "clear below this x the baseline p95")


class QuantileRule(Detector):
    """Judge "quantile q of ``signal`` is past its threshold" as a share of requests past it.

    For a ceiling (``Settings.HIGH``), the q-quantile is at or above a threshold exactly when at least
    ``1 - q`` of the requests are: each step counts the samples at or above the fire and the clear
    thresholds (two bisections of the sorted step), and windows sum the counts. The rule **fires**
    when, on any window with ``min_requests``, the Wilson lower bound of that share clears ``1 - q``
    (a hard step is sure within seconds), or when the CUSUM over the fire threshold has gathered
    ``cusum_h`` of evidence (a creep: minutes after it crosses the line); it **clears** when the
    longest window's share past the clear threshold is under ``1 - q``. A floor (throughput) is the
    mirror image. Thresholds come from the baseline as it stood before the step (judge first, then
    learn) and from ``limit``.

    Some keys sit at that line in normal times: a TTFT split between two modes (a cache hit and a
    miss, two backend pools: llmperf's replicate-70b) has ~47 % of its requests past 1.2 x its median,
    so a few percent more of the slow mode would "double the median". The rule therefore also learns
    the share past the fire threshold in quiet minutes, and demands that a window be sure of more than
    that (:class:`~brownout.detectors.stats.NormalShare`): a real shift, not a coin flip.
    """

    #: The measurement judged (see :data:`~brownout.detectors.step.SIGNALS`).
    signal: ClassVar[str] = "ttft"
    Settings: ClassVar[type[Settings]] = QuantileSettings

    def __init__(self, settings: QuantileSettings, step: float) -> None:
        super().__init__(settings, step)
        s = settings
        self.high = s.HIGH
        self.share = (1.0 - s.quantile) if self.high else s.quantile
        self.reads = _reads(self.signal, s.quantile) if s.fire_ratio is not None else ()
        self.long = steps(s.window, step)
        self.windows = _windows(s.short_windows, s.window, step)
        self.sums = WindowSums(self.windows, 3)  # requests, past the fire threshold, past the clear one
        self.cusum = BernoulliCusum(self.share, s.cusum_h) if s.cusum_h > 0 else None
        clear_limit = s.clear_limit
        if s.limit is not None and clear_limit is None:
            clear_limit = s.limit * (s.clear_ratio / s.fire_ratio if s.fire_ratio and s.clear_ratio else 0.8)
        self.clear_limit = clear_limit
        self.base: float | None = None
        self._signal: Any = None  # the key's Signal, read for the observed value
        self.normal = NormalShare(self.share, s.min_requests)  # the share past the fire threshold, quiet minutes
        self.firing = False
        self.judged = self.long
        self.quantile = s.quantile
        self.relative = s.fire_ratio is not None
        self._thresholds: tuple[float | None, float | None] | None = None
        self._verdict = _clear_verdict(self.long * step)

    def thresholds(self, base: float | None) -> tuple[float | None, float | None]:
        s = self.settings
        pick = min if self.high else max
        fire = clear = None
        if base is not None and s.fire_ratio is not None:
            fire, clear = s.fire_ratio * base, s.clear_ratio * base
        if s.limit is not None:
            fire = s.limit if fire is None else pick(fire, s.limit)
            clear = self.clear_limit if clear is None else pick(clear, self.clear_limit)
        return fire, clear

    def update(self, step: Any, key: Any) -> None:
        sig = key.signals[self.signal]
        self._signal = sig
        base = sig.baseline(self.quantile, key.t) if self.relative else None
        if base != self.base or self._thresholds is None:
            self.base = base
            self._thresholds = self.thresholds(base)
        xs = getattr(step, self.signal)
        n = len(xs)
        if not n:
            self.sums.push(_ZERO3)
            if key.minute_end:
                self._learn_normal(key)
            return
        fire_at, clear_at = self._thresholds
        if fire_at is None:
            self.sums.push((n, 0, 0))
            return
        count = count_at_least if self.high else count_at_most
        k_fire = count(xs, fire_at)
        self.sums.push((n, k_fire, count(xs, clear_at)))  # type: ignore[arg-type]  # set whenever fire_at is
        if self.cusum is not None:
            self.cusum.update(k_fire, n)
        self.normal.add(n, k_fire)
        if key.minute_end:
            self._learn_normal(key)

    def _learn_normal(self, key: Any) -> None:
        quiet = not (self.firing or self.suspect or key.is_active(self.rule))
        if self.normal.minute(quiet) and self.cusum is not None:
            self.cusum.move(self.normal.boundary)

    def verdict(self) -> Verdict:
        s = self.settings
        share = self.normal.boundary
        n, k, k_clear = self.sums.total(self.long)
        clear = n == 0 or k_clear < self.share * n
        fire = False
        judged = self.long
        if k and n >= s.min_requests:  # a shorter window holds no more than the longest
            for w in self.windows:
                wn, wk, _ = self.sums.total(w) if w != self.long else (n, k, k_clear)
                if wn >= s.min_requests and wk >= share * wn and wilson_lower_bound(wk, wn, s.z) >= share:
                    fire, judged = True, w
                    break
        if not fire and self.cusum is not None and self.cusum.alarm:
            fire = True
        self.firing = fire
        self.judged = judged
        last = self._verdict
        if last.fire is fire and last.clear is clear and last.baseline == self.base and last.window == judged * self.step:
            return last  # most steps judge as the last one did: no new object
        v = self._verdict = Verdict(fire, clear, self.base, judged * self.step)
        return v

    def observed(self) -> float | None:
        """The quantile over the window judged (its last minute, for a longer window)."""
        return None if self._signal is None else self._signal.ring.quantile(self.settings.quantile, self.judged)

    @property
    def suspect(self) -> bool:
        """Past the clear line (the hysteresis band), or evidence of a creep half gathered: a baseline
        that learned now would chase the change it should catch."""
        if self.cusum is not None and self.cusum.value >= self.cusum.h / 2:
            return True
        n, _, k_clear = self.sums.total(self.long)  # in the hysteresis band
        return n >= self.settings.min_requests and k_clear >= self.normal.boundary * n

    @property
    def idle(self) -> bool:
        return self.sums.empty and (self.cusum is None or self.cusum.value == 0.0)

    def resolved(self) -> None:
        if self.cusum is not None:
            self.cusum.reset()

    def export(self) -> dict[str, Any]:
        return {"sums": self.sums.export(), "cusum": None if self.cusum is None else self.cusum.value,
                "normal": self.normal.export()}

    def install(self, state: dict[str, Any]) -> None:
        self.sums.install(state["sums"])
        if self.cusum is not None and state["cusum"] is not None:
            self.cusum.value = min(max(0.0, float(state["cusum"])), 2 * self.cusum.h)
        self.normal.install(state["normal"])
        if self.cusum is not None:
            self.cusum.move(self.normal.boundary)


_ZERO3 = (0, 0, 0)


@functools.lru_cache(maxsize=256)
def _reads(signal: str, q: float) -> tuple[tuple[str, float], ...]:
    return ((signal, q),)


@functools.lru_cache(maxsize=256)
def _windows(short: tuple[float, ...], window: float, step: float) -> tuple[int, ...]:
    """A rule's windows in steps, shortest first (one tuple shared by every key)."""
    return tuple(sorted({steps(w, step) for w in short} | {steps(window, step)}))


@functools.lru_cache(maxsize=256)
def _clear_verdict(window: float) -> Verdict:
    return Verdict(False, True, None, window)

# re-exported for rule modules
__all__ += ["COUNT", "RATIO", "SECONDS", "Z", "setting", "SettingError"]
