"""Breaker settings: defaults first, then the rule file's ``breaker:`` section, then validation.

>>> cfg = BreakerConfig.from_mapping({"cooldown_min": 45, "probes_needed": 3})
>>> cfg.cooldown_min, cfg.probes_needed
(45.0, 3)
>>> BreakerConfig.from_mapping({"probe_fraction": 2})
Traceback (most recent call last):
...
ValueError: breaker.probe_fraction: must be in (0, 1], got 2.0
>>> BreakerConfig.from_mapping({"max_open_share": 0.5})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: breaker.max_open_share: no longer a setting: ...
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["BreakerConfig"]

#: Settings that existed once, with what to do about them: a rule file that still sets one fails
#: with this text rather than a bare "unknown field".
REMOVED = {
    "max_open_share": "no longer a setting: the collector publishes each key's true state (a key whose "
                      "model has nowhere else to go opens too) and routers decide where to go "
                      "(BreakerBoard fallback chains, the least degraded candidate when all are refused); "
                      "delete this line",
}


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """How breakers open, wait, probe and close.

    Parameters
    ----------
    cooldown_min
        Seconds an open breaker waits before half-open, at the first open.
    cooldown_max
        Cap on the cooldown however often the key re-opens (jitter included).
    growth
        Factor applied to the cooldown at each re-open (a failed probe round, or a trip
        within ``cooldown_max`` of the last close).
    jitter
        The cooldown is stretched by a random fraction in ``[0, jitter)`` so that breakers
        opened by one incident do not all probe at the same instant.
    probe_fraction
        Share of calls a router admits to a half-open key.
    probes_needed
        Healthy probe requests that close a half-open breaker.
    probe_failures
        Unhealthy probe requests that send a half-open breaker back to open.
    latency_probe_factor
        A probe is unhealthy when slower than this factor times a baseline: for latency trips,
        its duration (or TTFT) against the trip's baseline; for every trip, its TTFT (or, when it
        saw no first token, ``ttft_at_least``) against the key's normal TTFT p95 when known (its
        p95 baseline, else 2 x its p50 baseline).
    rearm_after
        Seconds after a close during which trip findings are ignored: the detector's window
        still holds requests from before the close.
    heartbeat_interval
        Seconds between re-issues of each key's current record.
    record_ttl
        Seconds a record stays valid after it was issued (``expires_at - issued_at``);
        routers fail open after that.
    """

    cooldown_min: float = 30.0
    cooldown_max: float = 300.0
    growth: float = 2.0
    jitter: float = 0.5
    probe_fraction: float = 0.1
    probes_needed: int = 5
    probe_failures: int = 2
    latency_probe_factor: float = 2.0
    rearm_after: float = 60.0
    heartbeat_interval: float = 10.0
    record_ttl: float = 30.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, path: str = "breaker") -> None:
        """Raise ValueError naming the first bad field."""
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"{path}.{name}: {why}, got {getattr(self, name)!r}")

        for name in ("cooldown_min", "cooldown_max", "heartbeat_interval", "record_ttl"):
            if not getattr(self, name) > 0:
                raise bad(name, "must be > 0")
        if self.cooldown_max < self.cooldown_min:
            raise bad("cooldown_max", f"must be >= cooldown_min ({self.cooldown_min})")
        if not 1 <= self.growth <= 10:
            raise bad("growth", "must be in [1, 10]")
        if not 0 <= self.jitter <= 1:
            raise bad("jitter", "must be in [0, 1]")
        if not 0 < self.probe_fraction <= 1:
            raise bad("probe_fraction", "must be in (0, 1]")
        for name in ("probes_needed", "probe_failures"):
            if getattr(self, name) < 1:
                raise bad(name, "must be >= 1")
        if not self.latency_probe_factor > 0:
            raise bad("latency_probe_factor", "must be > 0")
        if not self.rearm_after >= 0:
            raise bad("rearm_after", "must be >= 0")
        if self.record_ttl <= self.heartbeat_interval:
            raise bad("record_ttl", f"must be > heartbeat_interval ({self.heartbeat_interval})")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None, path: str = "breaker") -> "BreakerConfig":
        """Defaults overlaid with ``mapping`` (a rule file's ``breaker:`` section).

        Raises ValueError naming ``path.field`` for an unknown field, a wrong type or a
        value out of range.
        """
        if mapping is None:
            return cls()
        if not isinstance(mapping, Mapping):
            raise ValueError(f"{path}: must be a mapping, got {type(mapping).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for name, raw in mapping.items():
            if name in REMOVED:
                raise ValueError(f"{path}.{name}: {REMOVED[name]}")
            if name not in fields:
                valid = ", ".join(sorted(fields))
                raise ValueError(f"{path}.{name}: unknown field; valid fields are: {valid}")
            want = int if isinstance(fields[name].default, int) else float
            values[name] = _number(raw, want, f"{path}.{name}")
        try:
            return cls(**values)
        except ValueError as exc:
            if path != "breaker":
                raise ValueError(str(exc).replace("breaker.", f"{path}.", 1)) from None
            raise


def _number(raw: Any, want: type, where: str) -> float | int:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ValueError(f"{where}: must be a number, got {raw!r}")
    if want is int:
        if isinstance(raw, float) and not raw.is_integer():
            raise ValueError(f"{where}: must be an integer, got {raw!r}")
        return int(raw)
    if not math.isfinite(raw):
        raise ValueError(f"{where}: must be finite, got {raw!r}")
    return float(raw)
