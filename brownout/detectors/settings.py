"""Typed, validated settings: each rule's settings are a frozen dataclass checked at construction.

A field is declared with :func:`setting` (its default, its check and a one-line doc); the class
validates every field and its cross-field rules in ``__post_init__``, so a bad value can never reach a
detector. :meth:`Settings.from_mapping` builds one from a rule file's mapping and names the bad field.

>>> @dataclass(frozen=True)
... class Demo(Settings):
...     window: float = setting(60.0, SECONDS, "seconds of data judged")
...     rate: float = setting(0.05, RATE, "share of requests")
>>> Demo.from_mapping({"rate": 0.1}).rate
0.1
>>> Demo.from_mapping({"rate": 2})
Traceback (most recent call last):
...
brownout.detectors.settings.SettingError: rate: must be <= 1, got 2
>>> Demo.from_mapping({"rat": 2})
Traceback (most recent call last):
...
brownout.detectors.settings.SettingError: rat: unknown field; valid fields are: window, rate
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, TypeVar

__all__ = ["SettingError", "Settings", "AlertSettings", "BreakerSettings", "EngineSettings", "BaselineSettings",
           "setting", "nested", "Check",
           "number", "choice", "boolean", "seconds_list", "SECONDS", "SECONDS0", "RATE", "RATIO", "COUNT",
           "OPT_SECONDS", "OPT_RATIO", "SEVERITY", "QUANTILE", "Z"]


class SettingError(ValueError):
    """A setting that cannot be used: ``field`` is its dotted path within the settings object."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


Check = Callable[[Any], Any]


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           integer: bool = False, optional: bool = False) -> Check:
    """A check for a finite number in a range (an int when ``integer``; None allowed when ``optional``)."""
    def check(v: Any) -> Any:
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            kind = "an integer" if integer else "a number"
            raise ValueError(f"must be {kind}{' or null' if optional else ''}, got {v!r}")
        if integer and not float(v).is_integer():
            raise ValueError(f"must be an integer, got {v!r}")
        if lo is not None and (v <= lo if lo_open else v < lo):
            raise ValueError(f"must be {'>' if lo_open else '>='} {lo:g}, got {v!r}")
        if hi is not None and v > hi:
            raise ValueError(f"must be <= {hi:g}, got {v!r}")
        return int(v) if integer else float(v)
    return check


def choice(*values: str) -> Check:
    def check(v: Any) -> Any:
        if v not in values:
            raise ValueError(f"must be one of {', '.join(values)}; got {v!r}")
        return v
    return check


def boolean(v: Any) -> Any:
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false, got {v!r}")
    return v


def seconds_list(v: Any) -> Any:
    if not isinstance(v, (list, tuple)) or not v:
        raise ValueError(f"must be a non-empty list of seconds, got {v!r}")
    return tuple(sorted(SECONDS(x) for x in v))


SECONDS = number(0, lo_open=True)
SECONDS0 = number(0)
OPT_SECONDS = number(0, lo_open=True, optional=True)
RATE = number(0, 1, lo_open=True)
RATIO = number(0, lo_open=True)
OPT_RATIO = number(0, lo_open=True, optional=True)
COUNT = number(0, integer=True)
QUANTILE = number(0, 1, lo_open=True)
Z = number(0)
SEVERITY = choice("info", "warning", "critical", "page", "ticket")


def setting(default: Any, check: Check, doc: str) -> Any:
    """A settings field: its default, the check every value goes through, and what it means."""
    return field(default=default, metadata={"check": check, "doc": doc})


S = TypeVar("S", bound="Settings")


@dataclass(frozen=True)
class Settings:
    """Base of every settings class: checks each field, then :meth:`validate` (cross-field rules)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check = f.metadata.get("check")
            if check is None:
                continue
            value = getattr(self, f.name)
            if isinstance(value, Settings):
                continue
            try:
                checked = check(value)
            except ValueError as exc:
                raise SettingError(f.metadata.get("name", f.name), str(exc)) from None
            if checked is not value:
                object.__setattr__(self, f.name, checked)
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; raise :class:`SettingError` naming the field."""

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The names a rule file uses (``for``, not ``for_``)."""
        return tuple(_by_name(cls))

    @classmethod
    def check_partial(cls, mapping: Mapping[str, Any]) -> dict[str, Any]:
        """Each field of ``mapping`` through its own check (an override's fields, before merging)."""
        if not isinstance(mapping, Mapping):
            raise SettingError("<settings>", f"must be a mapping, got {mapping!r}")
        fields = _by_name(cls)
        out: dict[str, Any] = {}
        for name, raw in mapping.items():
            f = fields.get(name)
            if f is None:
                raise SettingError(str(name), f"unknown field; valid fields are: {', '.join(fields)}")
            sub = _nested(f)
            try:
                out[name] = sub.check_partial(raw) if sub is not None else f.metadata["check"](raw)
            except SettingError as exc:
                raise SettingError(f"{name}.{exc.field}", exc.message) from None
            except ValueError as exc:
                raise SettingError(name, str(exc)) from None
        return out

    @classmethod
    def from_mapping(cls: type[S], mapping: Mapping[str, Any] | None, base: S | None = None) -> S:
        """``base`` (default: the class defaults) overlaid with ``mapping``; raises SettingError."""
        checked = cls.check_partial(mapping or {})
        fields = _by_name(cls)
        values: dict[str, Any] = {}
        for name, v in checked.items():
            f = fields[name]
            sub = _nested(f)
            if sub is not None:
                inner = getattr(base, f.name) if base is not None else f.default_factory()  # type: ignore[operator]  # nested settings always have a factory
                try:
                    v = sub.from_mapping(v, inner)
                except SettingError as exc:
                    raise SettingError(f"{name}.{exc.field}", exc.message) from None
            values[f.name] = v
        try:
            return dataclasses.replace(base, **values) if base is not None else cls(**values)
        except SettingError as exc:
            raise SettingError(_yaml_name(cls, exc.field), exc.message) from None

    def as_dict(self) -> dict[str, Any]:
        """Plain values (nested settings as dicts, tuples as lists): a rule file's form."""
        out: dict[str, Any] = {}
        for name, f in _by_name(type(self)).items():
            v = getattr(self, f.name)
            out[name] = v.as_dict() if isinstance(v, Settings) else list(v) if isinstance(v, tuple) else v
        return out


def _by_name(cls: type[Settings]) -> dict[str, dataclasses.Field[Any]]:
    return {f.metadata.get("name", f.name): f for f in dataclasses.fields(cls)}


def _yaml_name(cls: type[Settings], field_name: str) -> str:
    head, _, rest = field_name.partition(".")
    for name, f in _by_name(cls).items():
        if f.name == head:
            return name + ("." + rest if rest else "")
    return field_name


def _nested(f: dataclasses.Field[Any]) -> type[Settings] | None:
    sub = f.metadata.get("settings")
    return sub if isinstance(sub, type) and issubclass(sub, Settings) else None


def nested(cls: type[Settings], doc: str, factory: Callable[[], Settings] | None = None) -> Any:
    """A field holding a nested settings object (a goodput tier, say); ``factory`` makes its default."""
    return field(default_factory=factory or cls, metadata={"settings": cls, "doc": doc})


@dataclass(frozen=True)
class AlertSettings(Settings):
    """What every alert rule has: on/off, severity, and the Prometheus-style ``for`` and ``keep_firing_for``."""

    KIND: ClassVar[str] = "alert"
    enabled: bool = setting(True, boolean, "evaluate this rule")
    severity: str = setting("warning", SEVERITY, "label on the alert")
    for_: float = field(default=0.0, metadata={"check": SECONDS0, "doc": "seconds pending before firing",
                                               "name": "for"})
    keep_firing_for: float = setting(60.0, SECONDS0, "seconds clear before a firing alert resolves")


@dataclass(frozen=True)
class BreakerSettings(Settings):
    """What every breaker rule has: on/off and the severity of its trip."""

    KIND: ClassVar[str] = "breaker"
    enabled: bool = setting(True, boolean, "evaluate this rule")
    severity: str = setting("critical", SEVERITY, "label on the trip")


@dataclass(frozen=True)
class EngineSettings(Settings):
    """The engine's clock: how long a step is and how late an event may be."""

    step: float = setting(5.0, number(0.5, 60), "evaluation step and window bucket width, seconds")
    allowed_lateness: float = setting(5.0, SECONDS0, "a step is judged this long after it ends")


@dataclass(frozen=True)
class BaselineSettings(Settings):
    """How baselines learn (see :mod:`brownout.detectors.baseline`)."""

    halflife: float = setting(3600.0, SECONDS, "the non-seasonal fallback forgets with this half-life")
    warmup: float = setting(600.0, SECONDS0, "seconds of data before the fallback reports (warming until then)")
    min_days: int = setting(2, number(1, integer=True), "a time-of-day slot is used once it has this many past days")
    days: int = setting(7, number(1, 31, integer=True), "past days the daily profile keeps")
    slot: float = setting(600.0, number(60, 86400), "width of a time-of-day slot, seconds")
    min_samples: int = setting(20, number(1, integer=True), "samples behind each value a baseline learns")

    def validate(self) -> None:
        if self.min_days > self.days:
            raise SettingError("min_days", f"must be <= days ({self.days}), got {self.min_days}")
