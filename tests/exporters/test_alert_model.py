"""Alerts built from decisions: lifecycle, labels, fingerprint, and clear errors on bad input."""

from __future__ import annotations

import pytest
from exporters_support import KEY, decision

from brownout.exporters.alerts import BREAKER_ALERT, Alert, fingerprint
from brownout.model import Key


def test_pending_is_not_notified_firing_and_resolved_are() -> None:
    assert Alert.from_decision(decision(0, state="pending")) is None
    firing = Alert.from_decision(decision(10, state="firing"))
    resolved = Alert.from_decision(decision(70, state="resolved"))
    assert firing is not None and resolved is not None
    assert (firing.status, firing.ends_at) == ("firing", None)
    assert (resolved.status, resolved.ends_at) == ("resolved", 70)
    assert firing.fingerprint == resolved.fingerprint


def test_labels_and_annotations() -> None:
    a = Alert.from_decision(decision(10, rule="latency_p95", observed=3.0, baseline=1.5, severity="warning"),
                            runbook_url="https://rb.example/brownout", window=300.0)
    assert a is not None
    assert a.labels == {"alertname": "latency_p95", "rule": "latency_p95", "provider": "openai",
                        "region": "eastus", "model": "gpt-4o", "severity": "warning"}
    assert a.annotations["runbook_url"] == "https://rb.example/brownout#latency_p95"
    assert a.annotations["window"] == "300s"
    assert "3.00 s" in a.annotations["summary"] and "1.50 s" in a.annotations["summary"]
    assert (a.observed, a.baseline, a.window, a.starts_at) == (3.0, 1.5, 300.0, 10)


def test_warming_baseline_is_shown_as_unknown() -> None:
    a = Alert.from_decision(decision(0, baseline=None))
    assert a is not None and a.baseline is None and a.annotations["baseline"] == "n/a"


def test_breaker_open_is_a_critical_alert_closed_resolves_it_half_open_is_silent() -> None:
    opened = Alert.from_decision(decision(0, kind="breaker", rule="error_breaker", state="open", severity=None))
    closed = Alert.from_decision(decision(90, kind="breaker", rule="latency_breaker", state="closed",
                                          severity=None))
    assert Alert.from_decision(decision(60, kind="breaker", state="half_open")) is None
    assert opened is not None and closed is not None
    assert (opened.alertname, opened.severity, opened.status) == (BREAKER_ALERT, "critical", "firing")
    assert opened.annotations["breaker_rule"] == "error_breaker"
    assert closed.status == "resolved" and closed.fingerprint == opened.fingerprint


def test_fingerprint_is_stable_and_depends_on_every_label() -> None:
    a = Alert.from_decision(decision(0))
    b = Alert.from_decision(decision(99, observed=0.9))
    c = Alert.from_decision(decision(0, key=Key("openai", "westus", "gpt-4o")))
    assert a is not None and b is not None and c is not None
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert len(a.fingerprint) == 16
    # Pinned: a fingerprint is a dedup key stored by PagerDuty and the outbox; it must not drift.
    assert a.fingerprint == fingerprint(dict(reversed(list(a.labels.items()))))


def test_round_trip_through_dict() -> None:
    a = Alert.from_decision(decision(5), runbook_url="https://rb", window=60.0)
    assert a is not None
    back = Alert.from_dict(a.to_dict())
    assert back == a and back.fingerprint == a.fingerprint


@pytest.mark.parametrize("kwargs,message", [
    ({"kind": "metric"}, "decision kind"),
    ({"state": "exploded"}, "alert decision state"),
    ({"kind": "breaker", "state": "ajar"}, "breaker decision state"),
])
def test_bad_decisions_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Alert.from_decision(decision(0, **kwargs))


def test_missing_label_is_named() -> None:
    with pytest.raises(ValueError, match="'model'"):
        Alert({"alertname": "x", "provider": "p", "region": "r", "severity": "info"}, {}, 0.0)


def test_key_reading() -> None:
    a = Alert.from_decision(decision(0))
    assert a is not None and a.key == KEY


def test_every_breaker_transition_is_one_alert_per_key():
    """One alert per key's breaker: whatever the reason, an open fires and the close resolves it."""
    from brownout.breakers.record import REASONS
    from brownout.model import Decision, Key

    key = Key("openai", "eastus", "gpt-4o")
    tripped = Alert.from_decision(Decision(10.0, "breaker", "error_breaker", key, "open", 0.4, None, None, "tripped"))
    half = Alert.from_decision(Decision(40.0, "breaker", "error_breaker", key, "half_open", None, None, None,
                                        "cooldown_elapsed"))
    reopened = Alert.from_decision(Decision(41.0, "breaker", "error_breaker", key, "open", None, None, None,
                                            "probes_failed"))
    closed = Alert.from_decision(Decision(95.0, "breaker", "error_breaker", key, "closed", None, None, None,
                                          "probes_healthy"))
    assert half is None
    assert tripped.labels["alertname"] == reopened.labels["alertname"] == "breaker_open"
    assert (tripped.status, reopened.status, closed.status) == ("firing", "firing", "resolved")
    assert tripped.fingerprint == reopened.fingerprint == closed.fingerprint
    assert set(REASONS) == {"tripped", "cooldown_elapsed", "probes_healthy", "probes_failed"}
