"""How people and dashboards hear about a brownout: alerts to Slack, PagerDuty, Alertmanager or a
webhook (grouped, deduplicated, inhibited, retried, kept in an outbox), and Prometheus metrics.

>>> from brownout.exporters import AlertDispatcher, RecordingNotifier
>>> AlertDispatcher([RecordingNotifier()]).alerts()
[]
"""

from brownout.exporters.alertmanager import AlertmanagerNotifier, WebhookNotifier
from brownout.exporters.alerts import Alert
from brownout.exporters.delivery import (
    Delivery,
    Notifier,
    RecordingNotifier,
    RetryingNotifier,
    classify_http,
)
from brownout.exporters.dispatcher import AlertDispatcher
from brownout.exporters.outbox import Notification, Outbox
from brownout.exporters.pagerduty import PagerDutyNotifier
from brownout.exporters.slack import SlackNotifier

__all__ = [
    "Alert",
    "AlertDispatcher",
    "AlertmanagerNotifier",
    "Delivery",
    "Notification",
    "Notifier",
    "Outbox",
    "PagerDutyNotifier",
    "RecordingNotifier",
    "RetryingNotifier",
    "SlackNotifier",
    "WebhookNotifier",
    "classify_http",
]
