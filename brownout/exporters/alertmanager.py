"""Alertmanager (``POST /api/v2/alerts``) and a generic JSON webhook (Alertmanager's webhook format).

Alertmanager resolves an alert by itself once it has not been re-sent for its
``resolve_timeout``, so :class:`AlertmanagerNotifier` asks the dispatcher to repeat firing
alerts every minute, as Prometheus does.

>>> from brownout.model import Decision, Key
>>> from brownout.exporters.alerts import Alert
>>> a = Alert.from_decision(Decision(0.0, "alert", "error_rate", Key("openai", "eastus", "gpt-4o"),
...                                  "firing", 0.3, 0.01, "critical"))
>>> body = alertmanager_alerts([a])
>>> body[0]["labels"]["alertname"], body[0]["startsAt"], "endsAt" in body[0]
('error_rate', '1970-01-01T00:00:00.000Z', False)
>>> webhook_body([a.resolved(60.0)])["status"]
'resolved'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from brownout.exporters._http import default_client, post_json
from brownout.exporters.alerts import Alert, rfc3339
from brownout.exporters.delivery import Delivery

__all__ = ["AlertmanagerNotifier", "WebhookNotifier", "alertmanager_alerts", "webhook_body"]


def alertmanager_alerts(alerts: Sequence[Alert]) -> list[dict[str, Any]]:
    """The ``postableAlerts`` body of Alertmanager's API v2."""
    out = []
    for a in alerts:
        item: dict[str, Any] = {"labels": dict(a.labels), "annotations": dict(a.annotations),
                                "startsAt": rfc3339(a.starts_at)}
        if a.ends_at is not None:
            item["endsAt"] = rfc3339(a.ends_at)
        if a.generator_url:
            item["generatorURL"] = a.generator_url
        out.append(item)
    return out


def webhook_body(alerts: Sequence[Alert], *, receiver: str = "brownout", external_url: str = "") -> dict[str, Any]:
    """A body in Alertmanager's webhook format (version 4), so existing receivers understand it."""
    if not alerts:
        raise ValueError("webhook: a notification needs at least one alert")
    common_labels = _common([a.labels for a in alerts])
    return {
        "version": "4",
        "receiver": receiver,
        "status": "firing" if any(a.firing for a in alerts) else "resolved",
        "groupKey": f"{alerts[0].labels['provider']}/{alerts[0].labels['region']}",
        "groupLabels": {k: common_labels[k] for k in ("provider", "region") if k in common_labels},
        "commonLabels": common_labels,
        "commonAnnotations": _common([a.annotations for a in alerts]),
        "externalURL": external_url,
        "truncatedAlerts": 0,
        "alerts": [
            {"status": a.status, "labels": dict(a.labels), "annotations": dict(a.annotations),
             "startsAt": rfc3339(a.starts_at),
             "endsAt": rfc3339(a.ends_at) if a.ends_at is not None else "0001-01-01T00:00:00Z",
             "generatorURL": a.generator_url, "fingerprint": a.fingerprint,
             "observed": a.observed, "baseline": a.baseline, "window": a.window}
            for a in alerts
        ],
    }


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    first = dict(maps[0])
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


class AlertmanagerNotifier:
    """Posts alerts to an Alertmanager (``url`` is its base, e.g. ``http://alertmanager:9093``)."""

    per_alert = False

    def __init__(self, url: str, *, client: httpx.Client | None = None, name: str = "alertmanager",
                 repeat_interval: float | None = 60.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"alertmanager: url must be http(s), got {url!r}")
        self.name = name
        self._url = url.rstrip("/") + "/api/v2/alerts"
        self._client = client if client is not None else default_client()
        self.repeat_interval = repeat_interval

    def notify(self, alerts: Sequence[Alert]) -> Delivery:
        return post_json(self._client, self._url, alertmanager_alerts(alerts))


class WebhookNotifier:
    """Posts :func:`webhook_body` JSON to any URL, with optional extra headers (e.g. a token)."""

    per_alert = False
    repeat_interval: float | None = None

    def __init__(self, url: str, *, client: httpx.Client | None = None, name: str = "webhook",
                 headers: Mapping[str, str] | None = None, external_url: str = "") -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("webhook: url must be an http(s) URL")
        self.name = name
        self._url = url
        self._client = client if client is not None else default_client()
        self._headers = dict(headers or {})
        self.external_url = external_url

    def notify(self, alerts: Sequence[Alert]) -> Delivery:
        return post_json(self._client, self._url, webhook_body(alerts, external_url=self.external_url),
                         self._headers)
