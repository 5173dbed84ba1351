"""The rule model: which settings exist, what values they take, and how overrides apply to a key.

>>> from brownout.model import Key
>>> from brownout.rules import load_rules
>>> rs = load_rules()
>>> rs.rule("error_rate", Key("openai", "eastus", "gpt-4o"))["fire_rate"]
0.05
"""

from __future__ import annotations

import copy
import fnmatch
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from brownout.model import Key

__all__ = ["RuleError", "RuleSet", "Override", "SCHEMA", "RULE_NAMES", "ALERT_RULES", "BREAKER_RULES"]


class RuleError(ValueError):
    """A rule file that cannot be used; names the field (dotted path) and, when known, its line.

    >>> str(RuleError("rules.error_rate.fire_rate", "must be a number", line=12, source="r.yaml"))
    'r.yaml:12: rules.error_rate.fire_rate: must be a number'
    """

    def __init__(self, field: str, message: str, *, line: int | None = None, source: str | None = None):
        where = f"{source or '<rules>'}:{line}: " if line is not None else (f"{source}: " if source else "")
        super().__init__(f"{where}{field}: {message}")
        self.field = field
        self.line = line
        self.source = source
        self.message = message


Check = Callable[[Any], Any]


def _number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
            integer: bool = False, optional: bool = False) -> Check:
    def check(v: Any) -> Any:
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            kind = "an integer" if integer else "a number"
            raise ValueError(f"must be {kind}{' or null' if optional else ''}, got {v!r}")
        if integer and not float(v).is_integer():
            raise ValueError(f"must be an integer, got {v!r}")
        if lo is not None and (v <= lo if lo_open else v < lo):
            raise ValueError(f"must be {'>' if lo_open else '>='} {lo}, got {v!r}")
        if hi is not None and v > hi:
            raise ValueError(f"must be <= {hi}, got {v!r}")
        return int(v) if integer else float(v)
    return check


def _choice(*values: str) -> Check:
    def check(v: Any) -> Any:
        if v not in values:
            raise ValueError(f"must be one of {', '.join(values)}; got {v!r}")
        return v
    return check


def _boolean(v: Any) -> Any:
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false, got {v!r}")
    return v


def _seconds_list(v: Any) -> Any:
    if not isinstance(v, list) or not v:
        raise ValueError(f"must be a non-empty list of seconds, got {v!r}")
    return tuple(_number(0, lo_open=True)(x) for x in v)


_SECONDS = _number(0, lo_open=True)
_SECONDS0 = _number(0)
_RATE = _number(0, 1, lo_open=True)
_RATIO = _number(0, lo_open=True)
_COUNT = _number(0, integer=True)
_OPT_POS = _number(0, lo_open=True, optional=True)
_SEVERITY = _choice("info", "warning", "critical", "page", "ticket")

_ALERT = {"enabled": _boolean, "severity": _SEVERITY, "for": _SECONDS0, "keep_firing_for": _SECONDS0}
_RELATIVE = {**_ALERT, "window": _SECONDS, "quantile": _number(0, 1), "fire_ratio": _RATIO,
             "clear_ratio": _RATIO, "limit": _OPT_POS, "clear_limit": _OPT_POS, "min_requests": _COUNT,
             "confidence_z": _number(0)}
_TIER = {"burn": _RATIO, "long": _SECONDS, "short": _SECONDS, "severity": _SEVERITY,
         "for": _SECONDS0, "keep_firing_for": _SECONDS0}

#: Every setting a rule file may hold, with its check. Nested dicts are sections.
SCHEMA: dict[str, Any] = {
    "engine": {"step": _SECONDS, "allowed_lateness": _SECONDS0},
    "baseline": {"halflife": _SECONDS, "warmup": _SECONDS0, "season_min_cycles": _number(1, integer=True),
                 "day_cycles": _number(1, integer=True), "week_cycles": _number(1, integer=True)},
    "rules": {
        "error_rate": {**_ALERT, "window": _SECONDS, "fire_rate": _RATE, "clear_rate": _RATE,
                       "min_requests": _COUNT, "min_errors": _COUNT, "slow_window": _SECONDS, "z": _RATIO},
        "error_breaker": {"enabled": _boolean, "severity": _SEVERITY, "window": _SECONDS, "rate": _RATE,
                          "min_requests": _COUNT, "short_windows": _seconds_list,
                          "short_min_requests": _COUNT, "z": _RATIO},
        "ttft_drift": dict(_RELATIVE),
        "latency_p95": dict(_RELATIVE),
        "latency_breaker": {"enabled": _boolean, "severity": _SEVERITY, "window": _SECONDS,
                            "quantile": _number(0, 1), "ratio": _RATIO, "hold": _SECONDS0,
                            "min_requests": _COUNT},
        "throughput": dict(_RELATIVE),
        "itl": {**_ALERT, "window": _SECONDS, "quantile": _number(0, 1), "limit": _SECONDS,
                "clear_limit": _SECONDS, "min_requests": _COUNT},
        "goodput": {"enabled": _boolean, "objective": _number(0, 1, lo_open=True),
                    "min_requests": _COUNT, "short_min_requests": _COUNT,
                    "page": dict(_TIER), "ticket": dict(_TIER)},
    },
}

#: Rule names in evaluation order (deterministic order of findings within a step).
RULE_NAMES: tuple[str, ...] = tuple(SCHEMA["rules"])
#: Rules whose findings are alerts (pending/firing/resolved); goodput yields goodput_page and goodput_ticket.
ALERT_RULES = ("error_rate", "ttft_drift", "latency_p95", "throughput", "itl", "goodput_page", "goodput_ticket")
#: Rules whose findings trip breakers (state "trip").
BREAKER_RULES = ("error_breaker", "latency_breaker")


def check_rule(name: str, settings: Mapping[str, Any], path: str) -> None:
    """Cross-field checks of one rule's complete settings; raises RuleError naming the field."""
    s = settings
    if name == "error_rate" and s["clear_rate"] > s["fire_rate"]:
        raise RuleError(f"{path}.clear_rate", f"must be <= fire_rate ({s['fire_rate']}), got {s['clear_rate']}")
    if name == "error_rate" and s["slow_window"] < s["window"]:
        raise RuleError(f"{path}.slow_window", f"must be >= window ({s['window']}), got {s['slow_window']}")
    if name in ("ttft_drift", "latency_p95"):
        if s["clear_ratio"] > s["fire_ratio"]:
            raise RuleError(f"{path}.clear_ratio",
                            f"must be <= fire_ratio ({s['fire_ratio']}), got {s['clear_ratio']}")
        if s["limit"] is not None and s["clear_limit"] is not None and s["clear_limit"] > s["limit"]:
            raise RuleError(f"{path}.clear_limit", f"must be <= limit ({s['limit']}), got {s['clear_limit']}")
    if name == "throughput":
        if s["clear_ratio"] < s["fire_ratio"]:
            raise RuleError(f"{path}.clear_ratio",
                            f"must be >= fire_ratio ({s['fire_ratio']}) for a floor, got {s['clear_ratio']}")
        if s["limit"] is not None and s["clear_limit"] is not None and s["clear_limit"] < s["limit"]:
            raise RuleError(f"{path}.clear_limit", f"must be >= limit ({s['limit']}), got {s['clear_limit']}")
    if name == "itl" and s["clear_limit"] > s["limit"]:
        raise RuleError(f"{path}.clear_limit", f"must be <= limit ({s['limit']}), got {s['clear_limit']}")
    if name == "goodput":
        for tier in ("page", "ticket"):
            t = s[tier]
            if t["short"] > t["long"]:
                raise RuleError(f"{path}.{tier}.short", f"must be <= long ({t['long']}), got {t['short']}")
    if name == "error_breaker" and max(s["short_windows"]) > s["window"]:
        raise RuleError(f"{path}.short_windows", f"must all be <= window ({s['window']})")


def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


@dataclass(frozen=True)
class Override:
    """Rule settings for the keys whose provider, region and model match the globs.

    >>> o = Override(provider="*", region="*", model="*copilot*", rules={"ttft_drift": {"limit": 0.2}})
    >>> o.matches(Key("azure.ai.openai", "eastus", "gpt-4o-copilot")), o.matches(Key("a", "b", "gpt-4o"))
    (True, False)
    """

    provider: str = "*"
    region: str = "*"
    model: str = "*"
    rules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def matches(self, key: Key) -> bool:
        return (fnmatch.fnmatchcase(key.provider, self.provider)
                and fnmatch.fnmatchcase(key.region, self.region)
                and fnmatch.fnmatchcase(key.model, self.model))


class RuleSet:
    """Validated rule settings: per-rule defaults, per-key overrides, engine and baseline settings.

    Build it with :func:`brownout.rules.load_rules`; read a rule's effective settings for a key
    with :meth:`rule` (overrides applied in file order, later ones win).
    """

    def __init__(self, rules: Mapping[str, Mapping[str, Any]], *, engine: Mapping[str, Any],
                 baseline: Mapping[str, Any], overrides: tuple[Override, ...] = (),
                 breaker_settings: Mapping[str, Any] | None = None, source: str | None = None) -> None:
        self.rules = {k: dict(v) for k, v in rules.items()}
        self.engine = dict(engine)
        self.baseline = dict(baseline)
        self.overrides = tuple(overrides)
        self.breaker_settings: dict[str, Any] = dict(breaker_settings or {})
        self.source = source
        self._cache: dict[Key, dict[str, dict[str, Any]]] = {}
        self._breaker: Any = None

    @property
    def step(self) -> float:
        return float(self.engine["step"])

    @property
    def allowed_lateness(self) -> float:
        return float(self.engine["allowed_lateness"])

    def for_key(self, key: Key) -> dict[str, dict[str, Any]]:
        """Every rule's effective settings for ``key`` (cached; treat as read-only)."""
        got = self._cache.get(key)
        if got is None:
            got = self.rules
            for o in self.overrides:
                if o.matches(key):
                    got = _merge(got, o.rules)
            self._cache[key] = got
        return got

    def rule(self, name: str, key: Key | None = None) -> dict[str, Any]:
        """One rule's effective settings, for ``key`` or the defaults."""
        return (self.for_key(key) if key is not None else self.rules)[name]

    @property
    def breaker(self) -> Any:
        """The breaker settings as ``brownout.breakers.config.BreakerConfig`` (built on first use)."""
        if self._breaker is None:
            from brownout.breakers.config import BreakerConfig  # lazy: breakers may import rules
            try:
                self._breaker = BreakerConfig.from_mapping(self.breaker_settings, path="breaker")
            except ValueError as exc:
                raise RuleError("breaker", str(exc), source=self.source) from None
        return self._breaker

    def table(self) -> list[dict[str, Any]]:
        """The effective rule table, one row per rule (defaults) and per override."""
        rows = [{"scope": "*/*/*", "rule": name, **copy.deepcopy(s)} for name, s in self.rules.items()]
        for o in self.overrides:
            for name, s in o.rules.items():
                rows.append({"scope": f"{o.provider}/{o.region}/{o.model}", "rule": name, **copy.deepcopy(dict(s))})
        return rows
