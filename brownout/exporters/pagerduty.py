"""PagerDuty Events API v2: one trigger or resolve per alert, ``dedup_key`` = the alert fingerprint.

A trigger links the runbook and, when the collector has a public URL, the key's status page
(also as ``client_url``). 202 means accepted; 400 is permanent (a malformed event will not get better); 429 and 5xx are
retried by the wrapper.

>>> from brownout.model import Decision, Key
>>> from brownout.exporters.alerts import Alert
>>> a = Alert.from_decision(Decision(0.0, "alert", "error_rate", Key("openai", "eastus", "gpt-4o"),
...                                  "firing", 0.3, 0.01, "critical"))
>>> ev = pagerduty_event(a, routing_key="R" * 32)
>>> ev["event_action"], ev["dedup_key"] == a.fingerprint, ev["payload"]["severity"]
('trigger', True, 'critical')
>>> pagerduty_event(a.resolved(60.0), routing_key="R" * 32)["event_action"]
'resolve'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from brownout.exporters._http import clip, default_client, post_json
from brownout.exporters.alerts import Alert, rfc3339
from brownout.exporters.delivery import Delivery

__all__ = ["EVENTS_URL", "PagerDutyNotifier", "pagerduty_event", "pagerduty_severity"]

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
_SEVERITY = {"critical": "critical", "page": "critical", "error": "error", "high": "error",
             "warning": "warning", "ticket": "warning", "info": "info", "low": "info"}


def pagerduty_severity(severity: str) -> str:
    """Map brownout severities onto PagerDuty's four (unknown ones become ``error``).

    >>> [pagerduty_severity(s) for s in ("page", "ticket", "warning", "bogus")]
    ['critical', 'warning', 'warning', 'error']
    """
    return _SEVERITY.get(severity.lower(), "error")


def pagerduty_event(alert: Alert, *, routing_key: str, source: str = "brownout",
                    client_url: str | None = None) -> dict[str, Any]:
    """The Events API v2 body for one alert."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger" if alert.firing else "resolve",
        "dedup_key": alert.fingerprint[:MAX_DEDUP_KEY],
    }
    if not alert.firing:
        return event
    lab, ann = alert.labels, alert.annotations
    event["payload"] = {
        "summary": clip(alert.summary, MAX_SUMMARY),
        "source": clip(source, 255),
        "severity": pagerduty_severity(alert.severity),
        "timestamp": rfc3339(alert.starts_at),
        "component": str(alert.key),
        "group": f"{lab['provider']}/{lab['region']}",
        "class": lab.get("rule", alert.alertname),
        "custom_details": {
            "observed": alert.observed,
            "baseline": alert.baseline,
            "window": alert.window,
            "observed_text": ann.get("observed"),
            "baseline_text": ann.get("baseline"),
            "provider": lab["provider"], "region": lab["region"], "model": lab["model"],
            "rule": lab.get("rule", alert.alertname),
        },
    }
    event["client"] = "brownout"
    if client_url or alert.generator_url:
        event["client_url"] = client_url or alert.generator_url
    links = []
    if ann.get("runbook_url"):
        links.append({"href": ann["runbook_url"], "text": "Runbook"})
    if alert.generator_url:
        links.append({"href": alert.generator_url, "text": f"Status of {alert.key}"})
    if links:
        event["links"] = links
    return event


class PagerDutyNotifier:
    """Sends alerts to a PagerDuty service through its Events API v2 integration (routing) key.

    One event per alert (``per_alert``): the dispatcher calls it with one alert at a time.
    """

    per_alert = True
    repeat_interval: float | None = None

    def __init__(self, routing_key: str, *, url: str = EVENTS_URL, client: httpx.Client | None = None,
                 name: str = "pagerduty", source: str = "brownout", client_url: str | None = None) -> None:
        if not routing_key or not routing_key.strip():
            raise ValueError("pagerduty: routing_key is empty")
        self.name = name
        self._routing_key = routing_key.strip()
        self._url = url
        self._client = client if client is not None else default_client()
        self.source = source
        self.client_url = client_url

    def notify(self, alerts: Sequence[Alert]) -> Delivery:
        result = Delivery.delivered()
        # Events are idempotent per dedup_key, so resending a batch after a partial failure is safe.
        for alert in alerts:
            body = pagerduty_event(alert, routing_key=self._routing_key, source=self.source,
                                   client_url=self.client_url)
            result = post_json(self._client, self._url, body)
            if not result.ok:
                return result
        return result
