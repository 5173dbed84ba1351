"""The control record routers read from ``brownout.control``, and its optional HMAC signature.

JSON, versioned, one per key (the topic is compacted, keyed ``provider/region/model``)::

    {"v": 1, "key": {"provider", "region", "model"}, "state": "closed"|"open"|"half_open",
     "since", "until", "reason", "rule", "observed", "baseline", "probe_fraction",
     "seq", "issued_at", "expires_at"}

For routers in other languages, the whole contract:

- Read the topic from the beginning (no consumer group), keep the latest record per key, then
  follow. A null value (tombstone) deletes the key.
- Times are unix seconds. A record at or past ``expires_at`` means closed (fail open): the
  collector re-issues every record each heartbeat, so expiry means it went quiet.
- Keep a record only if ``(seq, issued_at)`` is not older than the one you hold (or that one
  expired): ``seq`` grows with each transition of the key, heartbeats repeat it.
- ``open``: send nothing to the key (``until`` says when the collector plans to half-open it;
  wait for that record). ``half_open``: admit a random ``probe_fraction`` of calls. ``closed``: all calls. When every
  candidate is refused, call them anyway: nowhere to go is worse than a degraded provider.
- Signed records carry ``brownout-signature``: hex HMAC-SHA256 of the value bytes, with the
  key named by ``brownout-key-id``. With a key configured, refuse records without a valid one.

>>> rec = ControlRecord(Key("openai", "eastus", "gpt-4o"), "open", since=100.0, until=130.0,
...     reason="tripped", rule="error_breaker", observed=0.4, baseline=0.01, probe_fraction=0.1,
...     seq=3, issued_at=100.0, expires_at=130.0)
>>> ControlRecord.from_bytes(rec.to_bytes()) == rec
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
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from brownout import semconv as sc
from brownout.model import Key

__all__ = ["ControlRecord", "Signer", "sign", "verify", "load_signing_key", "STATES", "VERSION"]

VERSION = 1
STATES = ("closed", "open", "half_open")
Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class ControlRecord:
    """One key's breaker state as published; ``seq`` grows with each transition of that key.

    Heartbeats re-issue the same state and ``seq`` with a new ``issued_at`` and ``expires_at``.
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

    def to_json(self) -> dict[str, Any]:
        return {
            "v": VERSION,
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
        """Parse and validate; raises ValueError naming the bad field."""
        if not isinstance(d, Mapping):
            raise ValueError(f"control record: must be an object, got {type(d).__name__}")
        if d.get("v") != VERSION:
            raise ValueError(f"control record.v: unsupported version {d.get('v')!r}")
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
