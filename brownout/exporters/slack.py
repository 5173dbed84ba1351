"""Slack incoming webhook with Block Kit: one message per provider-region group.

Each alert gets a section saying what (rule and summary), where (provider, region, model),
observed against baseline, since when, the runbook link and, when the collector has a public URL,
a link to the key's status page; a resolve message says when it ended.
Slack's limits are kept (header 150 characters, section text 3000, at most 10 fields of 2000,
at most 50 blocks; cut text ends with an ellipsis), and at most one message per second goes out.

>>> from brownout.model import Decision, Key
>>> from brownout.exporters.alerts import Alert
>>> a = Alert.from_decision(Decision(0.0, "alert", "ttft_drift", Key("openai", "eastus", "gpt-4o"),
...                                  "firing", 0.9, 0.5, "warning"), runbook_url="https://rb.example")
>>> msg = slack_message([a])
>>> msg["blocks"][0]["text"]["text"]
'FIRING: ttft_drift on openai/eastus'
>>> len(msg["blocks"]) <= MAX_BLOCKS
True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from brownout.exporters._http import clip, default_client, post_json
from brownout.exporters.alerts import Alert, rfc3339
from brownout.exporters.delivery import Delivery

__all__ = [
    "MAX_BLOCKS",
    "MAX_FIELDS",
    "MAX_FIELD_TEXT",
    "MAX_HEADER",
    "MAX_TEXT",
    "SlackNotifier",
    "slack_message",
]

MAX_HEADER = 150
MAX_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_BLOCKS = 50


def slack_message(alerts: Sequence[Alert]) -> dict[str, Any]:
    """The Block Kit payload for one group's notification (firing and resolved alerts)."""
    if not alerts:
        raise ValueError("slack: a message needs at least one alert")
    firing = [a for a in alerts if a.firing]
    resolved = [a for a in alerts if not a.firing]
    first = alerts[0]
    where = f"{first.labels['provider']}/{first.labels['region']}"
    names = sorted({a.alertname for a in alerts})
    what = ", ".join(names) if len(names) <= 3 else f"{len(names)} rules"
    if firing:
        title = f"FIRING: {what} on {where}"
        if len(alerts) > 1:
            title = f"FIRING ({len(firing)}" + (f", {len(resolved)} resolved" if resolved else "") + f"): {what} on {where}"
    else:
        title = f"RESOLVED: {what} on {where}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(title, MAX_HEADER), "emoji": True}}
    ]
    room = MAX_BLOCKS - 2  # header, and one for "and N more"
    shown = list(firing) + list(resolved)
    for alert in shown[:room]:
        blocks.append(_section(alert))
    if len(shown) > room:
        more = len(shown) - room
        blocks.append({"type": "context",
                       "elements": [{"type": "mrkdwn", "text": f"… and {more} more alert(s) on {where}"}]})
    fallback = "; ".join(a.summary for a in shown[:10])
    return {"text": clip(f"{title}: {fallback}", MAX_TEXT), "blocks": blocks}


def _section(alert: Alert) -> dict[str, Any]:
    lab, ann = alert.labels, alert.annotations
    mark = ":red_circle:" if alert.firing else ":large_green_circle:"
    state = "firing" if alert.firing else "resolved"
    text = f"{mark} *{_esc(alert.alertname)}* {state} on `{_esc(str(alert.key))}`\n{_esc(alert.summary)}"
    links = []
    if ann.get("runbook_url"):
        links.append(f"<{ann['runbook_url']}|Runbook>")
    if alert.generator_url:
        links.append(f"<{alert.generator_url}|Status page>")
    if links:
        text += "\n" + " · ".join(links)
    fields = [
        ("Provider", lab["provider"]),
        ("Region", lab["region"]),
        ("Model", lab["model"]),
        ("Observed", ann.get("observed", "n/a")),
        ("Baseline", ann.get("baseline", "n/a")),
        ("Since", rfc3339(alert.starts_at)),
        ("Rule", lab.get("rule", alert.alertname)),
        ("Severity", lab["severity"]),
    ]
    if alert.ends_at is not None:
        fields.append(("Resolved at", rfc3339(alert.ends_at)))
    if ann.get("window"):
        fields.append(("Window", ann["window"]))
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": clip(text, MAX_TEXT)},
        "fields": [{"type": "mrkdwn", "text": clip(f"*{name}*\n{_esc(value)}", MAX_FIELD_TEXT)}
                   for name, value in fields[:MAX_FIELDS]],
    }


def _esc(text: str) -> str:
    """Slack's mrkdwn needs only &, < and > escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackNotifier:
    """Posts one Block Kit message per call to a Slack incoming webhook, at most one per second.

    A 429's ``Retry-After`` comes back in the :class:`Delivery` for the retry wrapper to honour.

    Parameters
    ----------
    webhook_url: the incoming webhook URL (a secret: it is never logged).
    client: an ``httpx.Client`` (default: a new one with a 10 s timeout).
    min_interval: seconds between two messages (Slack allows about one per second per webhook).
    clock, sleep: injectable edges for the rate limit.
    """

    per_alert = False
    repeat_interval: float | None = None

    def __init__(
        self,
        webhook_url: str,
        *,
        client: httpx.Client | None = None,
        name: str = "slack",
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        if not webhook_url or not webhook_url.startswith(("https://", "http://")):
            raise ValueError("slack: webhook_url must be an http(s) URL")
        self.name = name
        self._url = webhook_url
        self._client = client if client is not None else default_client()
        self.min_interval = min_interval
        self._clock = clock
        self._sleep = sleep
        self._last: float | None = None
        self._lock = threading.Lock()

    def notify(self, alerts: Sequence[Alert]) -> Delivery:
        body = slack_message(alerts)
        with self._lock:
            if self._last is not None:
                wait = self._last + self.min_interval - self._clock()
                if wait > 0:
                    self._sleep(wait)
            try:
                return post_json(self._client, self._url, body)
            finally:
                self._last = self._clock()
