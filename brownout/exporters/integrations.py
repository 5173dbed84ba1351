"""Build the notifiers a collector's ``notify:`` settings ask for.

>>> [n.name for n in build_notifiers(alertmanager_url="http://am:9093", webhook_url="https://hooks.example/x")]
['alertmanager', 'webhook']
>>> build_notifiers()
[]
"""

from __future__ import annotations

import httpx

from brownout.exporters.alertmanager import AlertmanagerNotifier, WebhookNotifier
from brownout.exporters.delivery import Notifier
from brownout.exporters.pagerduty import EVENTS_URL, PagerDutyNotifier
from brownout.exporters.slack import SlackNotifier

__all__ = ["build_notifiers"]


def build_notifiers(
    *,
    slack_webhook_url: str | None = None,
    pagerduty_routing_key: str | None = None,
    alertmanager_url: str | None = None,
    webhook_url: str | None = None,
    pagerduty_url: str = EVENTS_URL,
    client: httpx.Client | None = None,
) -> list[Notifier]:
    """One notifier per configured integration (secrets already resolved by the caller).

    A bad value raises ValueError naming the integration.
    """
    out: list[Notifier] = []
    if slack_webhook_url:
        out.append(SlackNotifier(slack_webhook_url, client=client))
    if pagerduty_routing_key:
        out.append(PagerDutyNotifier(pagerduty_routing_key, url=pagerduty_url, client=client))
    if alertmanager_url:
        out.append(AlertmanagerNotifier(alertmanager_url, client=client))
    if webhook_url:
        out.append(WebhookNotifier(webhook_url, client=client))
    return out
