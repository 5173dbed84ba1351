"""One contract suite for every notifier: one attempt per call, failures classified, never raising."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from exporters_support import FakeClock, decision

from brownout import exporters
from brownout.exporters import (
    AlertmanagerNotifier,
    Delivery,
    Notifier,
    PagerDutyNotifier,
    RecordingNotifier,
    SlackNotifier,
    WebhookNotifier,
)
from brownout.exporters.alerts import Alert

TIMEOUT = 0.3


def accept_all(path: str, body: Any) -> list[str]:
    return []


Factory = Callable[[str, httpx.Client, FakeClock], Notifier]
HTTP_NOTIFIERS: dict[str, Factory] = {
    "slack": lambda url, c, clock: SlackNotifier(url + "/hook", client=c, clock=clock, sleep=clock.sleep),
    "pagerduty": lambda url, c, clock: PagerDutyNotifier("k" * 32, url=url + "/v2/enqueue", client=c),
    "alertmanager": lambda url, c, clock: AlertmanagerNotifier(url, client=c),
    "webhook": lambda url, c, clock: WebhookNotifier(url + "/in", client=c),
}


@pytest.fixture
def client() -> httpx.Client:
    with httpx.Client(timeout=TIMEOUT) as c:
        yield c


def alerts() -> tuple[Alert, Alert]:
    a = Alert.from_decision(decision(1_700_000_000.0), runbook_url="https://rb")
    assert a is not None
    return a, a.resolved(1_700_000_100.0)


@pytest.mark.parametrize("name", sorted(HTTP_NOTIFIERS))
def test_traits(name: str, receiver, client, clock) -> None:
    n = HTTP_NOTIFIERS[name](receiver(accept_all).url, client, clock)
    assert isinstance(n, Notifier)
    assert n.name == name and isinstance(n.per_alert, bool)
    assert n.repeat_interval is None or n.repeat_interval > 0


@pytest.mark.parametrize("name", sorted(HTTP_NOTIFIERS))
@pytest.mark.parametrize("status", [200, 202])
def test_trigger_and_resolve_are_one_request_each(name: str, status: int, receiver, client, clock) -> None:
    rx = receiver(accept_all, default_status=status)
    n = HTTP_NOTIFIERS[name](rx.url, client, clock)
    firing, resolved = alerts()
    assert n.notify([firing]) == Delivery(True, False, None, status, "")
    assert n.notify([resolved]).ok
    assert len(rx.received) == 2


@pytest.mark.parametrize("name", sorted(HTTP_NOTIFIERS))
@pytest.mark.parametrize("status,headers,retryable,retry_after", [
    (400, {}, False, None),
    (403, {}, False, None),
    (404, {}, False, None),
    (429, {"Retry-After": "4"}, True, 4.0),
    (500, {}, True, None),
    (503, {"Retry-After": "1"}, True, 1.0),
])
def test_failures_are_classified_after_one_attempt(name: str, status: int, headers: dict, retryable: bool,
                                                   retry_after: float | None, receiver, client, clock) -> None:
    rx = receiver(accept_all)
    rx.script.append((status, headers, 0.0))
    n = HTTP_NOTIFIERS[name](rx.url, client, clock)
    result = n.notify([alerts()[0]])
    assert (result.ok, result.retryable, result.retry_after, result.status) == (False, retryable, retry_after, status)
    assert len(rx.received) == 1


@pytest.mark.parametrize("name", sorted(HTTP_NOTIFIERS))
def test_a_timeout_is_retryable(name: str, receiver, client, clock) -> None:
    rx = receiver(accept_all)
    rx.script.append((200, {}, TIMEOUT * 2))
    result = HTTP_NOTIFIERS[name](rx.url, client, clock).notify([alerts()[0]])
    assert (result.ok, result.retryable) == (False, True) and "timeout" in result.detail


@pytest.mark.parametrize("name", sorted(HTTP_NOTIFIERS))
def test_connection_refused_is_retryable(name: str, client, clock) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = HTTP_NOTIFIERS[name](f"http://127.0.0.1:{port}", client, clock).notify([alerts()[0]])
    assert (result.ok, result.retryable) == (False, True)


def test_recording_notifier_is_a_notifier() -> None:
    rec = RecordingNotifier(fail=[Delivery.transient("x")])
    assert isinstance(rec, Notifier)
    firing, _ = alerts()
    assert not rec.notify([firing]).ok and rec.notify([firing]).ok
    assert rec.calls == [[firing], [firing]] and rec.delivered == [[firing]]


def test_public_surface_is_pinned() -> None:
    assert exporters.__all__ == [
        "Alert", "AlertDispatcher", "AlertmanagerNotifier", "CollectorMetrics", "Delivery", "KeyStatusCollector",
        "MetricsServer", "Notification", "Notifier", "Outbox", "OutboxError",
        "PagerDutyNotifier", "RecordingNotifier",
        "RetryingNotifier", "SlackNotifier", "StatusBoard", "StatusSource", "WebhookNotifier", "build_notifiers",
        "classify_http",
    ]
    assert all(hasattr(exporters, name) for name in exporters.__all__)
