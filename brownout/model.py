"""The few values every part of brownout passes around: Key, Event, Finding, Decision.

Plain frozen dataclasses, standard library only, so the hooks can import them cheaply.

>>> key = Key("openai", "eastus", "gpt-4o")
>>> str(key)
'openai/eastus/gpt-4o'
>>> Key.parse("openai/eastus/gpt-4o") == key
True
>>> ev = Event.from_flat({"start": 10.0, "duration": 1.5, "gen_ai.provider.name": "openai",
...     "cloud.region": "eastus", "gen_ai.request.model": "gpt-4o", "error.type": "429"})
>>> ev.key, ev.end, ev.error_class
(Key(provider='openai', region='eastus', model='gpt-4o'), 11.5, 'capacity')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple

from brownout import semconv as sc

__all__ = ["Key", "Event", "Finding", "Decision", "InvalidEvent"]


class InvalidEvent(ValueError):
    """An event that cannot be used; ``reason`` is a short, low-cardinality label for metrics.

    >>> InvalidEvent("missing_attribute", "gen_ai.provider.name").reason
    'missing_attribute'
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Key(NamedTuple):
    """Where requests go: ``(provider, region, model)``; the unit of every baseline and breaker.

    A named tuple: it hashes and compares at C speed, and it is looked up several times per event.
    """

    provider: str
    region: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.region}/{self.model}"

    @classmethod
    def parse(cls, text: str) -> "Key":
        """Parse ``provider/region/model`` (the model may itself contain ``/``)."""
        parts = text.split("/", 2)
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"key must be provider/region/model, got {text!r}")
        return cls(*parts)

    def as_dict(self) -> dict[str, str]:
        return {"provider": self.provider, "region": self.region, "model": self.model}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Key":
        return cls(str(d["provider"]), str(d["region"]), str(d["model"]))


#: Flat-form attribute name -> Event field, its type, and the range it must be in (None: any).
_FLAT_FIELDS: tuple[tuple[str, str, type, tuple[float, float] | None], ...] = (
    (sc.GEN_AI_RESPONSE_MODEL, "response_model", str, None),
    (sc.GEN_AI_REQUEST_STREAM, "stream", bool, None),
    (sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, "ttft", float, (0.0, 86_400.0)),
    (sc.GEN_AI_USAGE_INPUT_TOKENS, "input_tokens", int, (0, 100_000_000)),
    (sc.GEN_AI_USAGE_OUTPUT_TOKENS, "output_tokens", int, (0, 100_000_000)),
    (sc.ERROR_TYPE, "error_type", str, None),
    (sc.HTTP_RESPONSE_STATUS_CODE, "status_code", int, (0, 999)),
    (sc.SERVER_ADDRESS, "server_address", str, None),
    (sc.SERVER_PORT, "server_port", int, (0, 65535)),
    (sc.BROWNOUT_ITL_P50, "itl_p50", float, (0.0, 86_400.0)),
    (sc.BROWNOUT_ITL_P95, "itl_p95", float, (0.0, 86_400.0)),
    (sc.BROWNOUT_ITL_MAX, "itl_max", float, (0.0, 86_400.0)),
    (sc.BROWNOUT_DEADLINE, "deadline", float, (0.0, 86_400.0)),
    (sc.BROWNOUT_STALL, "stall", bool, None),
    (sc.BROWNOUT_TTFT_AT_LEAST, "ttft_at_least", float, (0.0, 86_400.0)),
)
_SECONDS_FIELDS = ("ttft", "itl_p50", "itl_p95", "itl_max", "deadline", "ttft_at_least")
#: Bounds that reject absurd values: a day-long request or TTFT is a bug, not a brownout.
MAX_SECONDS = 86_400.0
MAX_TOKENS = 100_000_000
#: Longest provider, region or model name: each becomes a record key and a metric label.
MAX_NAME = 256


class Event(NamedTuple):
    """One LLM request, as the hooks saw it. Times are seconds; ``start`` is unix time.

    A named tuple: immutable, and built at C speed (the collector and replay build one per line).
    """

    key: Key
    start: float
    duration: float
    operation: str = "chat"
    response_model: str | None = None
    stream: bool | None = None
    ttft: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reasons: tuple[str, ...] = ()
    error_type: str | None = None
    status_code: int | None = None
    server_address: str | None = None
    server_port: int | None = None
    itl_p50: float | None = None
    itl_p95: float | None = None
    itl_max: float | None = None
    deadline: float | None = None
    stall: bool | None = None  # an in-flight report, not a completed request (see semconv)
    ttft_at_least: float | None = None  # no first token seen; it was at least this late

    @property
    def end(self) -> float:
        return self.start + self.duration

    @property
    def error_class(self) -> str | None:
        """``capacity``, ``client``, ``cancelled``, ``other`` or None; see :func:`brownout.semconv.error_class`."""
        return sc.error_class(self.error_type)

    @property
    def output_tokens_per_second(self) -> float | None:
        """Decode speed: output tokens over the time after the first chunk (None if unknown)."""
        if self.error_type or not self.output_tokens or self.output_tokens < 2:
            return None
        gen = self.duration - (self.ttft or 0.0)
        if gen <= 0:
            return None
        tps = self.output_tokens / gen
        return tps if math.isfinite(tps) else None  # a subnormal duration would divide to inf

    def validate(self) -> "Event":
        """Return self, or raise :class:`InvalidEvent` naming what is wrong."""
        key = self.key
        if not key.provider or not key.region or not key.model:
            for name in ("provider", "region", "model"):
                if not getattr(key, name):
                    raise InvalidEvent("missing_attribute", _KEY_ATTRS[name])
        start, duration = self.start, self.duration
        if not _finite(start) or start < 0:
            raise InvalidEvent("bad_timestamp", f"start={start!r}")
        if not _finite(duration) or not 0 <= duration <= MAX_SECONDS:
            raise InvalidEvent("bad_duration", f"duration={duration!r}")
        # The hot path: most events carry a TTFT and little else; check only what is set.
        for name, v in ((n, getattr(self, n)) for n in _SECONDS_FIELDS):
            if v is not None and (not _finite(v) or not 0 <= v <= MAX_SECONDS):
                raise InvalidEvent("bad_value", f"{name}={v!r}")
        for name, v in (("input_tokens", self.input_tokens), ("output_tokens", self.output_tokens)):
            if v is not None and not 0 <= v <= MAX_TOKENS:
                raise InvalidEvent("bad_value", f"{name}={v!r}")
        if self.status_code is not None and not 0 <= self.status_code <= 999:
            raise InvalidEvent("bad_value", f"status_code={self.status_code!r}")
        if self.server_port is not None and not 0 <= self.server_port <= 65535:
            raise InvalidEvent("bad_value", f"server_port={self.server_port!r}")
        return self

    # --- flat JSON form ------------------------------------------------------------------
    def to_flat(self) -> dict[str, Any]:
        """The flat JSON form: ``start``, ``duration`` and the attributes under their names."""
        out: dict[str, Any] = {
            "start": self.start,
            "duration": self.duration,
            sc.GEN_AI_OPERATION_NAME: self.operation,
            sc.GEN_AI_PROVIDER_NAME: self.key.provider,
            sc.CLOUD_REGION: self.key.region,
            sc.GEN_AI_REQUEST_MODEL: self.key.model,
        }
        for attr, fname, _, _ in _FLAT_FIELDS:
            v = getattr(self, fname)
            if v is not None:
                out[attr] = v
        if self.finish_reasons:
            out[sc.GEN_AI_RESPONSE_FINISH_REASONS] = list(self.finish_reasons)
        return out

    @classmethod
    def from_flat(cls, d: Mapping[str, Any]) -> "Event":
        """Build from the flat form (legacy attribute names accepted); raises InvalidEvent."""
        if d.__class__ is not dict and not isinstance(d, Mapping):
            raise InvalidEvent("not_an_object", type(d).__name__)
        return cls.from_attributes(d, d.get("start"), d.get("duration"))

    @classmethod
    def from_attributes(cls, attrs: Mapping[str, Any], start: Any, duration: Any) -> "Event":
        """Build from span attributes plus start and duration in seconds; raises InvalidEvent."""
        get = attrs.get
        if not _LEGACY_NAMES.isdisjoint(attrs):
            merged = {sc.LEGACY_ATTRIBUTES.get(k, k): v for k, v in attrs.items()}
            merged.update((k, v) for k, v in attrs.items() if k not in sc.LEGACY_ATTRIBUTES)
            get = merged.get
        provider, region = get(sc.GEN_AI_PROVIDER_NAME), get(sc.CLOUD_REGION)
        model = get(sc.GEN_AI_REQUEST_MODEL) or get(sc.GEN_AI_RESPONSE_MODEL)
        try:
            key = _KEYS.get((provider, region, model))
        except TypeError:  # an unhashable attribute (a list): not a name
            key = None
        if key is None:
            key = _checked_key(provider, region, model)
        operation = get(sc.GEN_AI_OPERATION_NAME) or "chat"
        try:
            start_f, duration_f = float(start), float(duration)
        except (TypeError, ValueError, OverflowError):
            raise InvalidEvent("bad_timestamp", f"start={start!r} duration={duration!r}") from None
        if not 0.0 <= start_f < math.inf:
            raise InvalidEvent("bad_timestamp", f"start={start_f!r}")
        if not 0.0 <= duration_f <= MAX_SECONDS:
            raise InvalidEvent("bad_duration", f"duration={duration_f!r}")
        # every field is checked on the way in (no validate() pass, no keyword matching)
        return _tuple_new(cls, (key, start_f, duration_f,
                                operation if operation.__class__ is str else str(operation), *_read_optional(get)))


_LEGACY_NAMES = frozenset(sc.LEGACY_ATTRIBUTES)
_FIELDS = Event._fields
_ERROR_TYPE = _FIELDS.index("error_type")
_tuple_new = tuple.__new__
#: Keys already checked, by their (provider, region, model) as read: a key's names are checked once,
#: and its events share one Key object (the engine's lookups then compare by identity).
_KEYS: dict[tuple[Any, Any, Any], Key] = {}
_MAX_KEYS = 20_000  # ten times the collector's default metrics.max_keys; then it starts over


def _checked_key(provider: Any, region: Any, model: Any) -> Key:
    """The Key of three attribute values, checked (or :class:`InvalidEvent`), and remembered."""
    for attr, value in ((sc.GEN_AI_PROVIDER_NAME, provider), (sc.CLOUD_REGION, region),
                        (sc.GEN_AI_REQUEST_MODEL, model)):
        if not value or not isinstance(value, str):
            raise InvalidEvent("missing_attribute", attr)
        if len(value) > MAX_NAME or (not value.isascii() and not _utf8(value)) or (
                "/" in value and attr != sc.GEN_AI_REQUEST_MODEL):
            # A lone surrogate would crash every writer of the key; a "/" outside the model
            # would make two keys share one record key on the compacted control topic.
            raise InvalidEvent("bad_value", f"{attr}={value[:80]!r}")
    key = Key(sc.LEGACY_PROVIDERS.get(provider, provider), region, model)
    if provider.__class__ is str and region.__class__ is str and model.__class__ is str:  # not a subclass
        if len(_KEYS) >= _MAX_KEYS:
            _KEYS.clear()
        _KEYS[(provider, region, model)] = key
    return key


def _slow_field(attr: str, v: Any) -> Any:
    """An optional attribute off the common path: convert it to its field's type and check its
    range (a JSON ``0`` for a float field, ``"true"`` for a bool), or raise :class:`InvalidEvent`."""
    fname, typ, bounds = _FLAT_BY_ATTR[attr]
    if v.__class__ is not typ:  # exact type (a bool is not an int here)
        try:
            v = _coerce(v, typ)
        except (TypeError, ValueError, OverflowError):
            raise InvalidEvent("bad_value", f"{attr}={v!r}") from None
    if bounds is not None and not bounds[0] <= v <= bounds[1]:  # NaN fails too
        raise InvalidEvent("bad_value", f"{fname}={v!r}")
    return v


def _finish_reasons(reasons: Any) -> tuple[str, ...]:
    if isinstance(reasons, str):
        return (reasons,)
    if not isinstance(reasons, (list, tuple)):
        raise InvalidEvent("bad_value", f"{sc.GEN_AI_RESPONSE_FINISH_REASONS}={reasons!r}")
    if len(reasons) == 1 and reasons[0].__class__ is str or all(r.__class__ is str for r in reasons):
        return tuple(reasons)
    return tuple(str(r) for r in reasons)


def _error_type(err: Any) -> Any:
    if err.__class__ is not str:
        err = _slow_field(sc.ERROR_TYPE, err)
    return _class_name(err) if err.startswith("<class '") else err


_FLAT_BY_ATTR = {attr: (fname, typ, bounds) for attr, fname, typ, bounds in _FLAT_FIELDS}


def _compile_reader() -> Callable[[Callable[[str], Any]], tuple[Any, ...]]:
    """``_read_optional(get)``: the optional fields after ``operation``, in field order, read from
    the attribute getter ``get``. One line per field with the attribute names and bounds as
    constants: this runs once per event in the collector and in replay, and a loop over
    :data:`_FLAT_FIELDS` spent most of its time on the loop itself. (As ``namedtuple`` once
    did, the source is generated from the table, so the two cannot drift apart.)"""
    lines, names = ["def _read_optional(get):"], []
    for fname in _FIELDS[4:]:
        var = f"f_{fname}"
        names.append(var)
        if fname == "finish_reasons":
            attr = sc.GEN_AI_RESPONSE_FINISH_REASONS
            lines.append(f"    {var} = get({attr!r})")
            lines.append(f"    {var} = () if {var} is None else _finish_reasons({var})")
            continue
        attr, _, typ, bounds = next(f for f in _FLAT_FIELDS if f[1] == fname)
        lines.append(f"    {var} = get({attr!r})")
        if fname == "error_type":
            lines.append(f"    if {var} is not None: {var} = _error_type({var})")
            continue
        check = f"{var}.__class__ is not {typ.__name__}"
        if bounds is not None:
            check += f" or not {bounds[0]!r} <= {var} <= {bounds[1]!r}"
        lines.append(f"    if {var} is not None and ({check}): {var} = _slow_field({attr!r}, {var})")
    lines.append(f"    return ({', '.join(names)},)")
    scope: dict[str, Any] = {"_slow_field": _slow_field, "_finish_reasons": _finish_reasons,
                             "_error_type": _error_type}
    exec("\n".join(lines), scope)  # our own table, never input
    return scope["_read_optional"]  # type: ignore[no-any-return]


_read_optional = _compile_reader()
_KEY_ATTRS = {"provider": sc.GEN_AI_PROVIDER_NAME, "region": sc.CLOUD_REGION, "model": sc.GEN_AI_REQUEST_MODEL}


def _class_name(text: str) -> str:
    """``InternalServerError`` of ``<class 'openai.InternalServerError'>``: the ``str()`` of an exception
    class, which some instrumentations (OTel's openai-v2 with opentelemetry-util-genai 1.1) write as
    ``error.type``; the class name is what :func:`brownout.semconv.error_class` knows."""
    inner = text[len("<class '"):].rstrip("'>")
    return inner.rpartition(".")[2] or text


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _coerce(v: Any, typ: type) -> Any:
    if typ is bool:
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
        raise ValueError(v)
    if typ is int:
        if isinstance(v, bool):
            raise ValueError(v)
        if isinstance(v, float):
            if not v.is_integer():
                raise ValueError(v)
            return int(v)
        return int(v)
    if typ is float:
        if isinstance(v, bool):
            raise ValueError(v)
        return float(v)
    return str(v)


@dataclass(frozen=True, slots=True)
class Finding:
    """What a detector concluded about one key at one moment (event time).

    ``state`` is the alert state (``pending``, ``firing``, ``resolved``) for alert rules,
    or ``trip`` / ``healthy`` for breaker rules. ``observed`` and ``baseline`` are in the
    rule's unit (seconds, a ratio, tokens/s); ``baseline`` is None while warming.
    """

    time: float
    rule: str
    key: Key
    state: str
    observed: float | None = None
    baseline: float | None = None
    severity: str = "warning"
    action: str = "alert"  # "alert" or "breaker"
    window: float | None = None
    summary: str = ""
    labels: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Decision:
    """One line of replay output and one transition the collector acts on.

    >>> d = Decision(60.0, "breaker", "error_breaker", Key("a", "b", "c"), "open", 0.4, None)
    >>> d.to_json()["key"]
    {'provider': 'a', 'region': 'b', 'model': 'c'}
    """

    time: float
    kind: str  # "alert" or "breaker"
    rule: str
    key: Key
    state: str
    observed: float | None = None
    baseline: float | None = None
    severity: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time": round(self.time, 6),
            "kind": self.kind,
            "rule": self.rule,
            "key": self.key.as_dict(),
            "state": self.state,
            "observed": _round(self.observed),
            "baseline": _round(self.baseline),
        }
        if self.severity is not None:
            out["severity"] = self.severity
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)
