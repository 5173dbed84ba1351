"""Alerts as Alertmanager sees them: labels, annotations, startsAt/endsAt, firing or resolved.

An :class:`Alert` is built from a :class:`brownout.model.Decision`: an alert rule's ``firing`` and
``resolved`` transitions (``pending`` is not notified), and a breaker's ``open`` (a critical
``breaker_open`` alert) and ``closed`` (its resolve). The fingerprint, a stable hash of the sorted
labels, is the dedup key everywhere (PagerDuty ``dedup_key``, the outbox, the notification log).

>>> from brownout.model import Decision, Key
>>> d = Decision(120.0, "alert", "error_rate", Key("openai", "eastus", "gpt-4o"), "firing", 0.12, 0.01, "critical")
>>> a = Alert.from_decision(d, runbook_url="https://runbooks.example/brownout")
>>> a.status, a.labels["alertname"], a.labels["severity"], a.annotations["observed"]
('firing', 'error_rate', 'critical', '12.0%')
>>> a.fingerprint == Alert.from_decision(d).fingerprint
True
>>> a.resolved(180.0).status
'resolved'
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from brownout.model import Decision, Key

__all__ = ["BREAKER_ALERT", "SEVERITY_RANK", "Alert", "format_value", "rfc3339"]

#: The alertname of the alert an open breaker raises.
BREAKER_ALERT = "breaker_open"
#: Severity order used by inhibition: an alert silences same-key alerts of a lower rank.
SEVERITY_RANK: Mapping[str, int] = {
    "info": 0, "ticket": 1, "warning": 1, "error": 2, "page": 3, "critical": 3,
}
FIRING, RESOLVED = "firing", "resolved"


@dataclass(frozen=True)
class Alert:
    """One alert at one moment. ``ends_at`` is None while firing.

    ``observed``, ``baseline`` and ``window`` keep the numbers (for PagerDuty ``custom_details``);
    ``annotations`` carry them formatted for people.
    """

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float
    ends_at: float | None = None
    status: str = FIRING
    observed: float | None = None
    baseline: float | None = None
    window: float | None = None
    generator_url: str = ""
    fingerprint: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.status not in (FIRING, RESOLVED):
            raise ValueError(f"alert status must be firing or resolved, got {self.status!r}")
        for name in ("alertname", "provider", "region", "model", "severity"):
            if not self.labels.get(name):
                raise ValueError(f"alert label {name!r} is missing")
        object.__setattr__(self, "labels", dict(sorted(self.labels.items())))
        object.__setattr__(self, "annotations", dict(self.annotations))
        object.__setattr__(self, "fingerprint", fingerprint(self.labels))

    # --- readings ----------------------------------------------------------------------
    @property
    def alertname(self) -> str:
        return self.labels["alertname"]

    @property
    def severity(self) -> str:
        return self.labels["severity"]

    @property
    def key(self) -> Key:
        return Key(self.labels["provider"], self.labels["region"], self.labels["model"])

    @property
    def firing(self) -> bool:
        return self.status == FIRING

    @property
    def summary(self) -> str:
        return self.annotations.get("summary", self.alertname)

    def resolved(self, at: float) -> Alert:
        """This alert, resolved at ``at`` (unix seconds)."""
        return replace(self, status=RESOLVED, ends_at=at)

    # --- from a decision ---------------------------------------------------------------
    @classmethod
    def from_decision(
        cls,
        decision: Decision,
        *,
        runbook_url: str | None = None,
        window: float | None = None,
        generator_url: str = "",
    ) -> Alert | None:
        """The alert a decision raises or resolves, or None when it is not notified.

        Alert decisions: ``firing`` raises, ``resolved`` resolves, ``pending`` is None. Breaker
        decisions: ``open`` raises ``breaker_open`` (critical), ``closed`` resolves it,
        ``half_open`` is None (the breaker is still holding traffic back). Unknown kinds or states
        raise ValueError naming them.
        """
        if decision.kind == "alert":
            if decision.state == "pending":
                return None
            if decision.state not in (FIRING, RESOLVED):
                raise ValueError(f"alert decision state must be pending, firing or resolved, "
                                 f"got {decision.state!r}")
            alertname, rule = decision.rule, decision.rule
            severity = decision.severity or "warning"
            status = decision.state
        elif decision.kind == "breaker":
            if decision.state == "half_open":
                return None
            if decision.state not in ("open", "closed"):
                raise ValueError(f"breaker decision state must be open, half_open or closed, "
                                 f"got {decision.state!r}")
            # One breaker per key: the rule that tripped it goes in an annotation, so the
            # close (whatever rule it names) resolves the same fingerprint.
            alertname = rule = BREAKER_ALERT
            status = FIRING if decision.state == "open" else RESOLVED
            severity = "critical"
        else:
            raise ValueError(f"decision kind must be alert or breaker, got {decision.kind!r}")
        key = decision.key
        labels = {"alertname": alertname, "rule": rule, "provider": key.provider,
                  "region": key.region, "model": key.model, "severity": severity}
        annotations = _annotations(decision, alertname, window, runbook_url)
        return cls(
            labels=labels,
            annotations=annotations,
            starts_at=decision.time,
            ends_at=decision.time if status == RESOLVED else None,
            status=status,
            observed=_num(decision.observed),
            baseline=_num(decision.baseline),
            window=window,
            generator_url=generator_url,
        )

    # --- storage -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": dict(self.labels), "annotations": dict(self.annotations),
            "starts_at": self.starts_at, "ends_at": self.ends_at, "status": self.status,
            "observed": self.observed, "baseline": self.baseline, "window": self.window,
            "generator_url": self.generator_url,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Alert:
        return cls(
            labels=dict(d["labels"]), annotations=dict(d["annotations"]),
            starts_at=float(d["starts_at"]),
            ends_at=None if d.get("ends_at") is None else float(d["ends_at"]),
            status=str(d["status"]), observed=d.get("observed"), baseline=d.get("baseline"),
            window=d.get("window"), generator_url=str(d.get("generator_url") or ""),
        )


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable 64-bit hex hash of the sorted label set.

    >>> fingerprint({"b": "2", "a": "1"}) == fingerprint({"a": "1", "b": "2"})
    True
    """
    h = hashlib.sha256()
    for k, v in sorted(labels.items()):
        h.update(k.encode())
        h.update(b"\xff")
        h.update(v.encode())
        h.update(b"\xff")
    return h.hexdigest()[:16]


def format_value(rule: str, x: float | None) -> str:
    """A reading in the rule's unit, for people: ratios as percent, tokens/s, burn rates, seconds.

    >>> format_value("error_rate", 0.051), format_value("ttft_drift", 0.42), format_value("throughput", 31.5)
    ('5.1%', '420 ms', '31.5 tok/s')
    >>> format_value("latency_p95", 2.5), format_value("goodput", 14.4), format_value("x", None)
    ('2.50 s', '14.4x', 'n/a')
    """
    if x is None or not math.isfinite(x):
        return "n/a"
    r = rule.lower()
    if "error" in r or "ratio" in r:
        return f"{x * 100:.1f}%"
    if "throughput" in r or "token" in r:
        return f"{x:.1f} tok/s"
    if "goodput" in r or "burn" in r or "slo" in r:
        return f"{x:.1f}x"
    if abs(x) < 1.0:
        return f"{x * 1000:.0f} ms"
    return f"{x:.2f} s"


def rfc3339(t: float) -> str:
    """Unix seconds as RFC 3339 UTC with milliseconds (what Alertmanager and PagerDuty expect).

    >>> rfc3339(0.5)
    '1970-01-01T00:00:00.500Z'
    """
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _annotations(decision: Decision, alertname: str, window: float | None,
                 runbook_url: str | None) -> dict[str, str]:
    key = decision.key
    observed = format_value(decision.rule, decision.observed)
    baseline = format_value(decision.rule, decision.baseline)
    if decision.kind == "breaker":
        what = "breaker open" if decision.state == "open" else "breaker closed"
        summary = f"{what} on {key}: {decision.rule}"
    elif decision.state == RESOLVED:
        summary = f"{decision.rule} resolved on {key}"
    else:
        summary = f"{decision.rule} on {key}: {observed} vs baseline {baseline}"
    if decision.reason:
        summary = f"{summary} ({decision.reason})"
    out = {"summary": summary, "observed": observed, "baseline": baseline}
    if window is not None:
        out["window"] = f"{window:g}s"
    if decision.kind == "breaker":
        out["breaker_rule"] = decision.rule
    if decision.reason:
        out["reason"] = decision.reason
    if runbook_url:
        out["runbook_url"] = f"{runbook_url}#{alertname}"
    return out


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)
