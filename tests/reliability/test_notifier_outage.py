"""Notifier outage: Slack and PagerDuty go away (connection refused, then 503s) and come back,
and the dispatcher restarts in between. Every trigger and resolve arrives exactly once, in the
order it was decided, per key; nothing stays queued.

The receivers are real loopback HTTP servers on fixed ports that are closed (refused) and
reopened; the dispatcher runs its own worker thread over a sqlite outbox in ``tmp_path``.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest
from support import wait_for

from brownout.exporters.delivery import RetryingNotifier
from brownout.exporters.dispatcher import AlertDispatcher
from brownout.exporters.outbox import Outbox
from brownout.exporters.pagerduty import PagerDutyNotifier
from brownout.exporters.slack import SlackNotifier
from brownout.model import Decision, Key

K1 = Key("openai", "eastus", "gpt-4o")
K2 = Key("openai", "westus", "gpt-4o")
K3 = Key("anthropic", "us-east-1", "claude-sonnet-4")
ROUTING_KEY = "R" * 32
GROUP_INTERVAL = 10.0


class Clock:
    """Wall time for the dispatcher's group timers, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class LoopbackService:
    """A stand-in Slack webhook or PagerDuty Events API on a fixed loopback port.

    ``down()`` closes the listening socket (clients get connection refused), ``up()`` binds the
    same port again, ``failing(status)`` answers every request with that status. Only requests
    it answered 2xx are in :attr:`accepted`, in arrival order.
    """

    def __init__(self, validate: Callable[[Any], list[str]], ok_status: int) -> None:
        self.validate = validate
        self.ok_status = ok_status
        self.fail_status: int | None = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.accepted: list[Any] = []
        self.refused_requests = 0
        self.problems: list[str] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
            self._server.daemon_threads = True
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                             daemon=True).start()
        self.fail_status = None

    def down(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def failing(self, status: int) -> None:
        self.up()
        self.fail_status = status

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        svc = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body = json.loads(raw)
                    problems = svc.validate(body)
                except ValueError as exc:
                    body, problems = raw, [f"not JSON: {exc}"]
                with svc.lock:
                    if problems:
                        svc.problems += problems
                        status = 400
                    elif svc.fail_status is not None:
                        svc.refused_requests += 1
                        status = svc.fail_status
                    else:
                        svc.accepted.append(body)
                        status = svc.ok_status
                payload = b'{"status":"success"}' if status < 300 else b'{"status":"unavailable"}'
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", "0")
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def slack_problems(body: Any) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body.get("blocks"):
        return ["slack: a message needs text and blocks"]
    return []


def pagerduty_problems(body: Any) -> list[str]:
    if not isinstance(body, dict) or body.get("routing_key") != ROUTING_KEY or not body.get("dedup_key"):
        return ["pagerduty: routing_key and dedup_key are required"]
    if body.get("event_action") not in ("trigger", "resolve"):
        return [f"pagerduty: bad event_action {body.get('event_action')!r}"]
    if body["event_action"] == "trigger" and not body.get("payload", {}).get("summary"):
        return ["pagerduty: a trigger needs payload.summary"]
    return []


_SECTION = re.compile(r"\*(?P<name>[^*]+)\* (?P<status>firing|resolved) on `(?P<key>[^`]+)`")


def slack_transitions(messages: list[Any]) -> dict[tuple[str, str], list[str]]:
    """(alertname, key) -> the statuses Slack was told, in arrival order."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for msg in messages:
        for block in msg["blocks"]:
            if block.get("type") == "section":
                m = _SECTION.search(block["text"]["text"])
                assert m, block
                out[(m["name"], m["key"])].append(m["status"])
    return dict(out)


def pagerduty_transitions(events: list[Any]) -> dict[tuple[str, str], list[str]]:
    """(alert class, component) -> event actions PagerDuty got, in arrival order (per dedup key)."""
    names: dict[str, tuple[str, str]] = {}
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for ev in events:
        if ev["event_action"] == "trigger":
            names[ev["dedup_key"]] = (ev["payload"]["class"], ev["payload"]["component"])
        assert ev["dedup_key"] in names, f"a resolve for an incident never triggered: {ev}"
        out[names[ev["dedup_key"]]].append(ev["event_action"])
    return dict(out)


class Counts:
    """The dispatcher's ``metrics``: notification results per integration."""

    def __init__(self) -> None:
        self.by: dict[tuple[str, str], int] = defaultdict(int)

    def notification(self, integration: str, result: str) -> None:
        self.by[(integration, result)] += 1


def alert(t: float, rule: str, key: Key, state: str) -> Decision:
    return Decision(t, "alert", rule, key, state, 0.2 if state == "firing" else 0.01, 0.01, "critical")


def breaker(t: float, key: Key, state: str) -> Decision:
    return Decision(t, "breaker", "error_breaker", key, state, 0.4, 0.01, "critical", "tripped")


@pytest.fixture
def services():
    slack = LoopbackService(slack_problems, ok_status=200)
    pagerduty = LoopbackService(pagerduty_problems, ok_status=202)
    slack.up()
    pagerduty.up()
    yield slack, pagerduty
    slack.down()
    pagerduty.down()


def make_dispatcher(slack: LoopbackService, pagerduty: LoopbackService, outbox_path: Any, clock: Clock,
                    counts: Counts) -> AlertDispatcher:
    import httpx

    def retrying(n: Any) -> RetryingNotifier:
        # A short retry deadline: what fails in one pass stays in the outbox for the next one.
        return RetryingNotifier(n, deadline=0.5, initial_backoff=0.05, max_backoff=0.2)

    client = httpx.Client(timeout=2.0)
    return AlertDispatcher(
        [retrying(SlackNotifier(slack.url, client=client, min_interval=0.0)),
         retrying(PagerDutyNotifier(ROUTING_KEY, url=pagerduty.url, client=client))],
        outbox=Outbox(outbox_path), group_wait=0.0, group_interval=GROUP_INTERVAL, clock=clock,
        metrics=counts)


def test_outage_then_recovery_with_a_dispatcher_restart(services, tmp_path):
    slack, pagerduty = services
    clock, counts = Clock(), Counts()
    box = tmp_path / "outbox.db"
    decided: dict[tuple[str, str], list[str]] = defaultdict(list)

    def decide(d: AlertDispatcher, decision: Decision) -> None:
        d.observe(decision)
        name = "breaker_open" if decision.kind == "breaker" else decision.rule
        status = "firing" if decision.state in ("firing", "open") else "resolved"
        decided[(name, str(decision.key))].append(status)

    def step(d: AlertDispatcher) -> None:
        clock.now += GROUP_INTERVAL
        d.advance()

    d = make_dispatcher(slack, pagerduty, box, clock, counts)
    # 1. Healthy: the first trigger goes straight out.
    decide(d, alert(clock.now, "error_rate", K1, "firing"))
    d.advance()
    d.deliver()
    assert len(slack.accepted) == 1 and len(pagerduty.accepted) == 1

    # 2. Both receivers refuse connections; the worker keeps failing, the outbox keeps everything.
    slack.down()
    pagerduty.down()
    d.start(interval=0.05)
    step(d)
    decide(d, alert(clock.now, "error_rate", K2, "firing"))
    decide(d, breaker(clock.now, K3, "open"))
    step(d)
    decide(d, alert(clock.now, "error_rate", K1, "resolved"))
    step(d)
    wait_for(lambda: counts.by[("slack", "deferred")] >= 2 and counts.by[("pagerduty", "deferred")] >= 2,
             30, "the dispatcher to retry against the dead receivers")
    queued_before_restart = len(d.pending())
    assert queued_before_restart >= 4  # slack: 3 groups' changes; pagerduty: one per alert

    # 3. The collector restarts mid-outage: a new dispatcher over the same outbox.
    d.stop()
    d = make_dispatcher(slack, pagerduty, box, clock, counts)
    assert len(d.pending()) == queued_before_restart
    decide(d, alert(clock.now, "error_rate", K2, "resolved"))
    decide(d, alert(clock.now, "error_rate", K1, "firing"))  # a second incident on K1
    d.start(interval=0.05)
    step(d)

    # 4. The receivers answer again, but with 503 (Retry-After: 0): still nothing is lost or reordered.
    slack.failing(503)
    pagerduty.failing(503)
    wait_for(lambda: slack.refused_requests >= 2 and pagerduty.refused_requests >= 2, 30,
             "the receivers to see retries while answering 503")
    assert slack.accepted[1:] == [] and pagerduty.accepted[1:] == []

    # 5. Back to normal: the backlog drains in order, then new changes go out as usual.
    outage_ended = time.monotonic()
    slack.up()
    pagerduty.up()
    wait_for(lambda: not d.pending(), 30, "the outbox to drain after the receivers came back")
    drained_in = time.monotonic() - outage_ended
    step(d)
    decide(d, breaker(clock.now, K3, "closed"))
    decide(d, alert(clock.now, "error_rate", K1, "resolved"))
    step(d)
    wait_for(lambda: not d.pending() and sum(a == "resolve" for a in
                                             (e["event_action"] for e in pagerduty.accepted)) == 4,
             30, "the last resolves")
    # Give a duplicate every chance to show up before counting.
    for _ in range(3):
        step(d)
        d.deliver()
    d.stop()
    print(f"\nbacklog drained {drained_in:.2f} s after the receivers came back; "
          f"deliveries: {dict(counts.by)}")

    assert slack.problems == [] and pagerduty.problems == []
    want = dict(decided)
    assert want == {
        ("error_rate", str(K1)): ["firing", "resolved", "firing", "resolved"],
        ("error_rate", str(K2)): ["firing", "resolved"],
        ("breaker_open", str(K3)): ["firing", "resolved"],
    }
    assert slack_transitions(slack.accepted) == want
    pd = {k: ["firing" if a == "trigger" else "resolved" for a in v]
          for k, v in pagerduty_transitions(pagerduty.accepted).items()}
    assert pd == want
    assert Outbox(box).pending() == []
