"""Slack and PagerDuty against real loopback HTTP servers that check every payload.

The servers validate each body against the documented fields and limits (Slack Block Kit,
PagerDuty Events API v2) and inject 429 with Retry-After, 5xx and timeouts; every incident must
arrive as exactly one accepted trigger and one accepted resolve, in that order.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from exporters_support import KEY, FakeClock, decision

from brownout.exporters import (
    AlertDispatcher,
    PagerDutyNotifier,
    RetryingNotifier,
    SlackNotifier,
    WebhookNotifier,
)
from brownout.exporters.alerts import Alert
from brownout.model import Key

ROUTING_KEY = "R0UT1NGK3Y0123456789abcdefABCDEF"
TIMEOUT = 0.3
SLOW = 0.8  # longer than TIMEOUT: the client gives up first


# --- the documented contracts, as validators -------------------------------------------------
def slack_problems(path: str, body: Any) -> list[str]:
    p: list[str] = []
    if not isinstance(body, dict):
        return ["body is not an object"]
    if not isinstance(body.get("text"), str) or not body["text"]:
        p.append("text: required fallback string")
    elif len(body["text"]) > 40_000:
        p.append("text: longer than 40000")
    blocks = body.get("blocks")
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= 50:
        return p + ["blocks: 1 to 50 required"]
    for i, b in enumerate(blocks):
        t = b.get("type")
        if t == "header":
            txt = b.get("text", {})
            if txt.get("type") != "plain_text" or not 1 <= len(txt.get("text", "")) <= 150:
                p.append(f"blocks[{i}]: header text must be plain_text of 1..150 chars")
        elif t == "section":
            txt = b.get("text")
            fields = b.get("fields", [])
            if txt is None and not fields:
                p.append(f"blocks[{i}]: section needs text or fields")
            if txt is not None and (txt.get("type") not in ("mrkdwn", "plain_text")
                                    or not 1 <= len(txt.get("text", "")) <= 3000):
                p.append(f"blocks[{i}]: section text must be 1..3000 chars")
            if len(fields) > 10:
                p.append(f"blocks[{i}]: more than 10 fields")
            for j, f in enumerate(fields):
                if f.get("type") not in ("mrkdwn", "plain_text") or not 1 <= len(f.get("text", "")) <= 2000:
                    p.append(f"blocks[{i}].fields[{j}]: 1..2000 chars")
        elif t == "context":
            els = b.get("elements", [])
            if not 1 <= len(els) <= 10:
                p.append(f"blocks[{i}]: context needs 1..10 elements")
        elif t not in ("divider", "actions"):
            p.append(f"blocks[{i}]: unknown block type {t!r}")
    return p


PD_SEVERITIES = {"critical", "error", "warning", "info"}
PD_TOP = {"routing_key", "event_action", "dedup_key", "payload", "images", "links", "client", "client_url"}


def pagerduty_problems(path: str, body: Any) -> list[str]:
    p: list[str] = []
    if path != "/v2/enqueue":
        p.append(f"path {path} is not /v2/enqueue")
    if not isinstance(body, dict):
        return p + ["body is not an object"]
    if set(body) - PD_TOP:
        p.append(f"unknown fields {sorted(set(body) - PD_TOP)}")
    if not isinstance(body.get("routing_key"), str) or len(body["routing_key"]) != 32:
        p.append("routing_key: 32 characters required")
    action = body.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        p.append(f"event_action: {action!r}")
    dedup = body.get("dedup_key")
    if action != "trigger" and not dedup:
        p.append("dedup_key: required to acknowledge or resolve")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        p.append("dedup_key: string of at most 255")
    if action == "trigger":
        pl = body.get("payload")
        if not isinstance(pl, dict):
            return p + ["payload: required for trigger"]
        if not isinstance(pl.get("summary"), str) or not 1 <= len(pl["summary"]) <= 1024:
            p.append("payload.summary: 1..1024 chars")
        if not isinstance(pl.get("source"), str) or not pl["source"]:
            p.append("payload.source: required")
        if pl.get("severity") not in PD_SEVERITIES:
            p.append(f"payload.severity: {pl.get('severity')!r}")
        if "timestamp" in pl:
            try:
                datetime.fromisoformat(pl["timestamp"])
            except (AttributeError, ValueError):
                p.append("payload.timestamp: not ISO 8601")
        if "custom_details" in pl and not isinstance(pl["custom_details"], dict):
            p.append("payload.custom_details: object")
        for link in body.get("links", []):
            if not isinstance(link.get("href"), str):
                p.append("links[].href required")
    return p


# --- helpers -------------------------------------------------------------------------------
@pytest.fixture
def client() -> httpx.Client:
    with httpx.Client(timeout=TIMEOUT) as c:
        yield c


def retrying(n: Any, clock: FakeClock) -> RetryingNotifier:
    return RetryingNotifier(n, deadline=120.0, initial_backoff=0.5, max_backoff=8.0,
                            sleep=clock.sleep, clock=clock, rng=random.Random(7))


def incident(d: AlertDispatcher, clock: FakeClock, *keys: Key) -> None:
    t0 = clock.now
    for k in keys:
        d.observe(decision(t0, key=k, state="pending"))
        d.observe(decision(t0 + 5, key=k))
    clock.now = t0 + 40
    d.advance()
    d.deliver()
    for k in keys:
        d.observe(decision(clock.now + 60, key=k, state="resolved"))
    clock.now = t0 + 400
    d.advance()
    d.deliver()


def events(accepted: list, action_of: Callable[[Any], str]) -> list[str]:
    return [action_of(r.body) for r in accepted]


# --- Slack ---------------------------------------------------------------------------------
def test_slack_one_trigger_one_resolve_through_429_5xx_and_timeouts(receiver, clock, client) -> None:
    rx = receiver(slack_problems)
    rx.script += [(429, {"Retry-After": "2"}, 0.0), (500, {}, 0.0), (200, {}, SLOW)]  # trigger
    rx.script += [(503, {}, 0.0)]  # resolve
    slack = SlackNotifier(rx.url + "/services/T000/B000/XXXX", client=client, clock=clock, sleep=clock.sleep)
    d = AlertDispatcher([retrying(slack, clock)], clock=clock, runbook_url="https://rb.example/brownout")
    incident(d, clock, KEY)
    assert rx.problems() == []
    accepted = rx.accepted()
    assert events(accepted, lambda b: b["blocks"][0]["text"]["text"].split(":")[0]) == ["FIRING", "RESOLVED"]
    assert len(rx.received) == 6
    assert 2.0 in clock.sleeps  # Retry-After honoured
    assert d.pending() == []


def test_slack_message_says_what_where_how_much_since_when_and_the_runbook(receiver, clock, client) -> None:
    rx = receiver(slack_problems)
    slack = SlackNotifier(rx.url + "/hook", client=client, clock=clock, sleep=clock.sleep)
    a = Alert.from_decision(decision(1_700_000_000.0, rule="latency_p95", observed=3.2, baseline=1.1),
                            runbook_url="https://rb.example/brownout", window=300.0)
    assert a is not None and slack.notify([a]).ok
    body = rx.received[0].body
    section = body["blocks"][1]
    text = section["text"]["text"] + " ".join(f["text"] for f in section["fields"])
    for needle in ("latency_p95", "openai", "eastus", "gpt-4o", "3.20 s", "1.10 s", "2023-11-14T22:13:20",
                   "https://rb.example/brownout#latency_p95", "300s"):
        assert needle in text, needle
    resolved = slack.notify([a.resolved(1_700_000_600.0)])
    assert resolved.ok
    assert rx.received[1].body["blocks"][0]["text"]["text"].startswith("RESOLVED")
    assert "Resolved at" in str(rx.received[1].body)


def test_slack_limits_hold_for_huge_groups_and_labels(receiver, clock, client) -> None:
    rx = receiver(slack_problems)
    slack = SlackNotifier(rx.url + "/hook", client=client, clock=clock, sleep=clock.sleep)
    long = "m" * 5000
    alerts = []
    for i in range(80):
        a = Alert.from_decision(decision(clock.now, rule=f"rule_{i}_{'x' * 200}", key=Key("openai", "eastus",
                                f"{long}{i}")), runbook_url="https://rb.example")
        assert a is not None
        alerts.append(a)
    assert slack.notify(alerts).ok
    assert rx.problems() == []
    body = rx.received[0].body
    assert len(body["blocks"]) == 50
    assert body["blocks"][-1]["type"] == "context" and "more" in body["blocks"][-1]["elements"][0]["text"]
    assert any(f["text"].endswith("…") for b in body["blocks"][1:-1] for f in b["fields"])


def test_slack_sends_at_most_one_message_per_second(receiver, clock, client) -> None:
    seen: list[float] = []

    def validate(path: str, body: Any) -> list[str]:
        seen.append(clock.now)
        return slack_problems(path, body)

    rx = receiver(validate)
    slack = SlackNotifier(rx.url + "/hook", client=client, clock=clock, sleep=clock.sleep)
    a = Alert.from_decision(decision(clock.now))
    assert a is not None
    for _ in range(4):
        assert slack.notify([a]).ok
    gaps = [b - a for a, b in itertools.pairwise(seen)]
    assert len(seen) == 4 and all(g >= 1.0 for g in gaps)


def test_slack_rejects_a_non_url() -> None:
    with pytest.raises(ValueError, match="webhook_url"):
        SlackNotifier("hooks.slack.com/services/x")


# --- PagerDuty -----------------------------------------------------------------------------
def test_pagerduty_one_trigger_one_resolve_per_incident_through_failures(receiver, clock, client) -> None:
    rx = receiver(pagerduty_problems, default_status=202)
    rx.script += [(429, {"Retry-After": "3"}, 0.0), (502, {}, 0.0), (202, {}, SLOW),  # trigger, key 1
                  (500, {}, 0.0)]  # trigger, key 2
    pd = PagerDutyNotifier(ROUTING_KEY, url=rx.url + "/v2/enqueue", client=client)
    d = AlertDispatcher([retrying(pd, clock)], clock=clock, runbook_url="https://rb.example/brownout")
    other = Key("openai", "eastus", "gpt-4o-mini")
    incident(d, clock, KEY, other)
    assert rx.problems() == []
    by_key: dict[str, list[str]] = {}
    for r in rx.accepted():
        by_key.setdefault(r.body["dedup_key"], []).append(r.body["event_action"])
    assert sorted(by_key.values()) == [["trigger", "resolve"], ["trigger", "resolve"]]
    assert 3.0 in clock.sleeps
    trigger = next(r.body for r in rx.accepted() if r.body["event_action"] == "trigger")
    details = trigger["payload"]["custom_details"]
    assert details["observed"] == 0.2 and details["baseline"] == 0.01
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["links"][0]["href"].startswith("https://rb.example/brownout")
    assert d.pending() == []


def test_pagerduty_400_is_permanent(receiver, clock, client) -> None:
    rx = receiver(pagerduty_problems, default_status=400)
    pd = PagerDutyNotifier(ROUTING_KEY, url=rx.url + "/v2/enqueue", client=client)
    a = Alert.from_decision(decision(clock.now))
    assert a is not None
    result = retrying(pd, clock).notify([a])
    assert (result.ok, result.retryable, len(rx.received)) == (False, False, 1)


def test_pagerduty_summary_is_cut_to_1024(receiver, clock, client) -> None:
    rx = receiver(pagerduty_problems, default_status=202)
    pd = PagerDutyNotifier(ROUTING_KEY, url=rx.url + "/v2/enqueue", client=client)
    a = Alert.from_decision(decision(clock.now, key=Key("openai", "eastus", "g" * 3000)))
    assert a is not None and pd.notify([a]).ok
    summary = rx.received[0].body["payload"]["summary"]
    assert len(summary) == 1024 and summary.endswith("…")
    assert rx.problems() == []


def test_pagerduty_needs_a_routing_key() -> None:
    with pytest.raises(ValueError, match="routing_key"):
        PagerDutyNotifier("  ")


# --- errors without a status ---------------------------------------------------------------
def test_connection_refused_is_retryable_and_kept(clock, client) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    pd = PagerDutyNotifier(ROUTING_KEY, url=f"http://127.0.0.1:{port}/v2/enqueue", client=client)
    d = AlertDispatcher([RetryingNotifier(pd, deadline=5.0, sleep=clock.sleep, clock=clock)], clock=clock)
    d.observe(decision(clock.now))
    clock.now += 30
    d.advance()
    d.deliver()
    assert len(d.pending()) == 1


def test_webhook_posts_alertmanager_format(receiver, clock, client) -> None:
    def validate(path: str, body: Any) -> list[str]:
        ok = (body.get("version") == "4" and body.get("status") in ("firing", "resolved")
              and all(re.fullmatch(r"[0-9a-f]{16}", a["fingerprint"]) for a in body["alerts"]))
        return [] if ok else ["not Alertmanager webhook v4"]

    rx = receiver(validate)
    hook = WebhookNotifier(rx.url + "/alerts", client=client, headers={"Authorization": "Bearer t"})
    d = AlertDispatcher([retrying(hook, clock)], clock=clock)
    incident(d, clock, KEY)
    assert [r.body["status"] for r in rx.accepted()] == ["firing", "resolved"]
    assert rx.received[0].headers["Authorization"] == "Bearer t"
    assert rx.problems() == []
