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
from brownout.exporters.integrations import build_notifiers
from brownout.exporters.outbox import Notification, Outbox, OutboxError
from brownout.exporters.pagerduty import PagerDutyNotifier
from brownout.exporters.prometheus import (
    CollectorMetrics,
    KeyStatusCollector,
    MetricsServer,
    StatusBoard,
    StatusSource,
)
from brownout.exporters.slack import SlackNotifier

__all__ = [
    "Alert",
    "AlertDispatcher",
    "AlertmanagerNotifier",
    "CollectorMetrics",
    "Delivery",
    "KeyStatusCollector",
    "MetricsServer",
    "Notification",
    "Notifier",
    "Outbox",
    "OutboxError",
    "PagerDutyNotifier",
    "RecordingNotifier",
    "RetryingNotifier",
    "SlackNotifier",
    "StatusBoard",
    "StatusSource",
    "WebhookNotifier",
    "build_notifiers",
    "classify_http",
]
