"""The control record routers read from ``brownout.control``, and its optional HMAC signature.

JSON, one per key (the topic is compacted, keyed ``provider/region/model``)::

    {"v": 1, "rev": 2, "key": {"provider", "region", "model"}, "state": "closed"|"open"|"half_open",
     "since", "until", "reason", "rule", "observed", "baseline", "probe_fraction",
     "seq", "issued_at", "expires_at",
     "readings": {"ttft_p50", "ttft_p95", "ttft_p50_baseline", "ttft_p95_baseline",
                  "requests_per_s", "capacity_error_rate"} | null}

``v`` is the major version: a reader refuses a ``v`` it does not know. ``rev`` is the revision
within it: revisions only add fields, so readers ignore fields they do not know, a revision-1
reader (which checks ``v == 1`` and nothing else) reads revision-2 records, and a revision-2
reader reads revision-1 records (no ``rev``, no ``readings``: nothing known about the key).

For routers in other languages, the whole contract:

- Read the topic from the beginning (no consumer group), keep the latest record per key, then
  follow. A null value (tombstone) deletes the key.
- Times are unix seconds. A record at or past ``expires_at`` means closed (fail open): the
  collector re-issues every record each heartbeat, so expiry means it went quiet.
- Keep a record only if ``(seq, issued_at)`` is not older than the one you hold (or that one
  expired): ``seq`` grows with each transition of the key, heartbeats repeat it.
- ``open``: send nothing to the key (``until`` says when the collector plans to half-open it;
  wait for that record). ``half_open``: admit a random ``probe_fraction`` of calls. ``closed``: all
  calls. The collector publishes each key's true state, so every candidate may be refused: walk
  your fallback chain, and when nothing is left call the least degraded candidate (half-open
  before open, then the lowest ``readings`` cost): nowhere to go is worse than a degraded provider.
- ``reason`` names the transition that set ``state``: ``tripped`` (a breaker rule opened it),
  ``cooldown_elapsed`` (open -> half_open), ``probes_healthy`` (half_open -> closed),
  ``probes_failed`` (half_open -> open); null for a key that never tripped. Replay prints the same words.
- ``readings`` (revision 2): what the collector measured on the key, in seconds and per second,
  each null when unknown (baselines while warming): TTFT p50 and p95 over the last minute and
  their baselines, requests/s and the capacity-error share over the last minute. Every key with
  traffic has a record, closed ones included, re-issued each heartbeat with fresh readings.
- Signed records carry ``brownout-signature``: hex HMAC-SHA256 of the value bytes, with the
  key named by ``brownout-key-id``. With a key configured, refuse records without a valid one.

>>> rec = ControlRecord(Key("openai", "eastus", "gpt-4o"), "open", since=100.0, until=130.0,
...     reason="tripped", rule="error_breaker", observed=0.4, baseline=0.01, probe_fraction=0.1,
...     seq=3, issued_at=100.0, expires_at=130.0, readings=Readings(ttft_p50=0.9, ttft_p50_baseline=0.3))
>>> ControlRecord.from_bytes(rec.to_bytes()) == rec
True
>>> rec.readings.ttft_p95 is None
True
>>> signer = Signer(b"s3cret", key_id="k1")
>>> headers = signer.headers(rec.to_bytes())
>>> verify(rec.to_bytes(), headers, {"k1": b"s3cret"})
True
>>> verify(rec.to_bytes() + b" ", headers, {"k1": b"s3cret"})
False
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Mapping, Sequence

from brownout import semconv as sc
from brownout.model import Key

__all__ = ["ControlRecord", "Readings", "Signer", "sign", "verify", "load_signing_key", "STATES", "REASONS",
           "VERSION", "REVISION"]

#: The major version: readers refuse any other. Additive changes bump :data:`REVISION` only.
VERSION = 1
#: The revision written: 2 added ``readings``.
REVISION = 2
STATES = ("closed", "open", "half_open")
#: Every ``reason`` a transition gives, on control records and replay lines alike.
REASONS = ("tripped", "cooldown_elapsed", "probes_healthy", "probes_failed")
Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class Readings:
    """What the collector measured on one key, carried on its control record (None: unknown).

    TTFT in seconds over the last minute and its baselines (None while they warm), requests per
    second and the share of capacity errors over the last minute.

    >>> r = Readings.from_mapping({"ttft_p50": 0.4, "ttft_p95_baseline": 0.8, "other": 1.0})
    >>> r.ttft_p50, r.ttft_p95_baseline, r.ttft_p95
    (0.4, 0.8, None)
    >>> Readings.from_mapping({"ttft_p50": -1.0})
    Traceback (most recent call last):
    ...
    ValueError: readings.ttft_p50: must be a finite number >= 0 or null, got -1.0
    """

    ttft_p50: float | None = None
    ttft_p95: float | None = None
    ttft_p50_baseline: float | None = None
    ttft_p95_baseline: float | None = None
    requests_per_s: float | None = None
    capacity_error_rate: float | None = None

    FIELDS: ClassVar[tuple[str, ...]] = ("ttft_p50", "ttft_p95", "ttft_p50_baseline", "ttft_p95_baseline",
                                         "requests_per_s", "capacity_error_rate")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any], path: str = "readings") -> "Readings":
        """Known fields from ``d`` (unknown ones are ignored); raises ValueError naming a bad one."""
        values: dict[str, float | None] = {}
        for name in cls.FIELDS:
            v = d.get(name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{path}.{name}: must be a finite number >= 0 or null, got {v!r}")
            values[name] = float(v)
        return cls(**values)

    def to_json(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in self.FIELDS}

    @property
    def known(self) -> bool:
        """Whether any reading is set."""
        return any(getattr(self, name) is not None for name in self.FIELDS)

    def normal_ttft_p95(self, *, current: bool = True) -> float | None:
        """The key's TTFT p95 in normal times: its p95 baseline, else twice its p50 baseline (a
        collector that learns no p95 baseline), else (with ``current``) its current p95 while
        the baselines warm.

        >>> Readings(ttft_p95=9.0, ttft_p50_baseline=0.4).normal_ttft_p95()
        0.8
        >>> Readings(ttft_p95=9.0).normal_ttft_p95(current=False) is None
        True
        """
        if self.ttft_p95_baseline:
            return self.ttft_p95_baseline
        if self.ttft_p50_baseline:
            return 2.0 * self.ttft_p50_baseline
        return (self.ttft_p95 or None) if current else None


@dataclass(frozen=True, slots=True)
class ControlRecord:
    """One key's breaker state as published; ``seq`` grows with each transition of that key.

    Heartbeats re-issue the same state and ``seq`` with a new ``issued_at`` and ``expires_at``
    (and fresh ``readings``). ``rev`` is the revision the record was read as (1: no readings).
    """

    key: Key
    state: str
    since: float
    until: float | None = None
    reason: str | None = None
    rule: str | None = None
    observed: float | None = None
    baseline: float | None = None
    probe_fraction: float = 0.0
    seq: int = 0
    issued_at: float = 0.0
    expires_at: float = 0.0
    readings: Readings | None = None
    rev: int = field(default=REVISION, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "rev": REVISION,
            "key": self.key.as_dict(),
            "state": self.state,
            "since": self.since,
            "until": self.until,
            "reason": self.reason,
            "rule": self.rule,
            "observed": self.observed,
            "baseline": self.baseline,
            "probe_fraction": self.probe_fraction,
            "seq": self.seq,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "readings": None if self.readings is None else self.readings.to_json(),
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":"), allow_nan=False).encode()

    def kafka_key(self) -> bytes:
        """The record key on the control topic: ``provider/region/model``."""
        return str(self.key).encode()

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    @classmethod
    def from_json(cls, d: Any) -> "ControlRecord":
        """Parse and validate any revision of version 1; raises ValueError naming the bad field."""
        if not isinstance(d, Mapping):
            raise ValueError(f"control record: must be an object, got {type(d).__name__}")
        if d.get("v") != VERSION:
            raise ValueError(f"control record.v: unsupported version {d.get('v')!r}")
        rev = d.get("rev", 1)
        if isinstance(rev, bool) or not isinstance(rev, int) or rev < 1:
            raise ValueError(f"control record.rev: must be an integer >= 1, got {rev!r}")
        raw_readings = d.get("readings")
        if raw_readings is not None and not isinstance(raw_readings, Mapping):
            raise ValueError(f"control record.readings: must be an object or null, got {raw_readings!r}")
        k = d.get("key")
        if not isinstance(k, Mapping) or not all(isinstance(k.get(f), str) and k.get(f)
                                                 for f in ("provider", "region", "model")):
            raise ValueError(f"control record.key: must be {{provider, region, model}}, got {k!r}")
        state = d.get("state")
        if state not in STATES:
            raise ValueError(f"control record.state: must be one of {', '.join(STATES)}, got {state!r}")
        seq = d.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise ValueError(f"control record.seq: must be a non-negative integer, got {seq!r}")
        for name in ("reason", "rule"):
            if d.get(name) is not None and not isinstance(d.get(name), str):
                raise ValueError(f"control record.{name}: must be a string or null, got {d.get(name)!r}")
        pf = _num(d, "probe_fraction", required=False)
        return cls(
            key=Key.from_dict(k),
            state=state,
            since=_num(d, "since"),  # type: ignore[arg-type]
            until=_num(d, "until", required=False),
            reason=d.get("reason"),
            rule=d.get("rule"),
            observed=_num(d, "observed", required=False),
            baseline=_num(d, "baseline", required=False),
            probe_fraction=0.0 if pf is None else pf,
            seq=seq,
            issued_at=_num(d, "issued_at"),  # type: ignore[arg-type]
            expires_at=_num(d, "expires_at"),  # type: ignore[arg-type]
            readings=None if raw_readings is None else Readings.from_mapping(raw_readings, "control record.readings"),
            rev=rev,
        )

    @classmethod
    def from_bytes(cls, value: bytes) -> "ControlRecord":
        try:
            d = json.loads(value)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"control record: not JSON ({exc})") from None
        return cls.from_json(d)


def _num(d: Mapping[str, Any], name: str, required: bool = True) -> float | None:
    v = d.get(name)
    if v is None and not required:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"control record.{name}: must be a finite number, got {v!r}")
    return float(v)


class Signer:
    """Signs control-record values: HMAC-SHA256 over the value bytes, hex, in a header.

    ``key_id`` (sent in ``brownout-key-id``) lets routers pick the key during a rotation;
    by default it is derived from the key itself.
    """

    def __init__(self, key: bytes, key_id: str | None = None) -> None:
        if not key:
            raise ValueError("signing key: must not be empty")
        self.key = key
        self.key_id = key_id or default_key_id(key)

    def signature(self, value: bytes) -> str:
        return hmac.new(self.key, value, hashlib.sha256).hexdigest()

    def headers(self, value: bytes) -> Headers:
        return ((sc.HEADER_SIGNATURE, self.signature(value).encode()),
                (sc.HEADER_KEY_ID, self.key_id.encode()))


def default_key_id(key: bytes) -> str:
    """A short, non-secret name for a key: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(b"brownout-key-id:" + key).hexdigest()[:8]


def sign(value: bytes, key: bytes, key_id: str | None = None) -> Headers:
    """The signature headers for ``value``: ``Signer(key, key_id).headers(value)``."""
    return Signer(key, key_id).headers(value)


def verify(value: bytes | None, headers: Iterable[tuple[str, bytes]],
           keys: Mapping[str, bytes] | Sequence[bytes]) -> bool:
    """True if ``headers`` carry a valid signature of ``value`` under one of ``keys``.

    ``keys`` maps key ids to keys, or is a plain list of keys (their ids are derived); the
    key named by ``brownout-key-id`` is tried, or every key when that id is unknown.
    """
    hdr = dict(headers)
    sig = hdr.get(sc.HEADER_SIGNATURE)
    if value is None or not sig:
        return False
    by_id = dict(keys) if isinstance(keys, Mapping) else {default_key_id(k): k for k in keys}
    kid = hdr.get(sc.HEADER_KEY_ID, b"").decode("utf-8", "replace")
    candidates = [by_id[kid]] if kid in by_id else list(by_id.values())
    try:
        got = sig.decode("ascii")
    except UnicodeDecodeError:
        return False
    for key in candidates:
        want = hmac.new(key, value, hashlib.sha256).hexdigest()
        if hmac.compare_digest(want, got):
            return True
    return False


def load_signing_key(key_file: str | None = None, env: Mapping[str, str] | None = None) -> bytes | None:
    """The signing key from ``key_file`` or env ``BROWNOUT_SIGNING_KEY``; None when neither is set.

    Surrounding whitespace (a trailing newline in a mounted secret) is stripped.
    """
    env = os.environ if env is None else env
    if key_file:
        with open(key_file, "rb") as fh:
            key = fh.read().strip()
        if not key:
            raise ValueError(f"signing.key_file: {key_file} is empty")
        return key
    raw = env.get("BROWNOUT_SIGNING_KEY", "").strip()
    return raw.encode() if raw else None
