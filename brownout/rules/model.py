"""The rule model: which settings exist, what values they take, and how overrides apply to a key.

>>> from brownout.model import Key
>>> from brownout.rules import load_rules
>>> rs = load_rules()
>>> rs.rule("error_rate", Key("openai", "eastus", "gpt-4o")).fire_rate
0.05
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Mapping

from brownout.detectors.registry import ALERT_RULES, BREAKER_RULES, RULES
from brownout.detectors.settings import BaselineSettings, EngineSettings, Settings
from brownout.model import Key

__all__ = ["RuleError", "RuleSet", "Override", "SECTIONS", "RULE_NAMES", "ALERT_RULES", "BREAKER_RULES"]


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


#: Sections of a rule file whose fields are typed settings (the rules' own are in the registry).
SECTIONS: dict[str, type[Settings]] = {"engine": EngineSettings, "baseline": BaselineSettings}
#: Rule names in evaluation order (deterministic order of findings within a step).
RULE_NAMES: tuple[str, ...] = tuple(RULES)


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
    """Validated rule settings: each rule's settings, per-key overrides, engine and baseline settings.

    Build it with :func:`brownout.rules.load_rules`; read a rule's effective settings for a key with
    :meth:`rule` (overrides applied in file order, later ones win). Settings objects are shared by
    every key that the same overrides match, so 10,000 keys cost a handful of objects.
    """

    def __init__(self, rules: Mapping[str, Settings], *, engine: EngineSettings | None = None,
                 baseline: BaselineSettings | None = None, overrides: tuple[Override, ...] = (),
                 breaker_settings: Mapping[str, Any] | None = None, source: str | None = None) -> None:
        self.rules = dict(rules)
        self.engine_settings = engine or EngineSettings()
        self.baseline_settings = baseline or BaselineSettings()
        self.overrides = tuple(overrides)
        self.breaker_settings: dict[str, Any] = dict(breaker_settings or {})
        self.source = source
        self._cache: dict[tuple[int, ...], dict[str, Settings]] = {}
        self._breaker: Any = None

    @property
    def step(self) -> float:
        return self.engine_settings.step

    @property
    def allowed_lateness(self) -> float:
        return self.engine_settings.allowed_lateness

    @property
    def baseline(self) -> dict[str, Any]:
        """The baseline settings as plain values."""
        return self.baseline_settings.as_dict()

    def for_key(self, key: Key) -> dict[str, Settings]:
        """Every rule's effective settings for ``key`` (shared objects; read-only)."""
        matched = tuple(i for i, o in enumerate(self.overrides) if o.matches(key))
        got = self._cache.get(matched)
        if got is None:
            got = dict(self.rules)
            for i in matched:
                for name, part in self.overrides[i].rules.items():
                    got[name] = type(got[name]).from_mapping(part, got[name])
            self._cache[matched] = got
        return got

    def rule(self, name: str, key: Key | None = None) -> Any:
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
        rows = [{"scope": "*/*/*", "rule": name, **s.as_dict()} for name, s in self.rules.items()]
        for o in self.overrides:
            for name, part in o.rules.items():
                rows.append({"scope": f"{o.provider}/{o.region}/{o.model}", "rule": name,
                             **{k: list(v) if isinstance(v, tuple) else v for k, v in part.items()}})
        return rows
