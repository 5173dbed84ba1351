"""Alerts link to the key's status page when the collector has a public URL: Slack and PagerDuty
messages as their loopback receivers get them (and checked against their contracts), and
Alertmanager's generatorURL; without a public URL nothing changes."""

from __future__ import annotations

import urllib.request

import httpx
from exporters_support import FakeClock, decision
from test_slack_pagerduty import ROUTING_KEY, pagerduty_problems, slack_problems

from brownout.exporters import AlertDispatcher, PagerDutyNotifier, SlackNotifier
from brownout.exporters.alertmanager import alertmanager_alerts
from brownout.model import Key

KEY = Key("azure.ai.openai", "swedencentral", "gpt-4o/2024-08-06")
PAGE = "https://brownout.example.com/status/key/azure.ai.openai/swedencentral/gpt-4o%2F2024-08-06"


def run_incident(d: AlertDispatcher, clock: FakeClock) -> None:
    d.observe(decision(clock.now, key=KEY, rule="error_rate", severity="critical", observed=0.3, baseline=None))
    d.observe(decision(clock.now + 1, key=KEY, kind="breaker", rule="error_breaker", state="open"))
    clock.now += 40
    d.advance()
    d.deliver()


def test_slack_and_pagerduty_carry_the_key_page(receiver) -> None:
    clock = FakeClock()
    slack_rx, pd_rx = receiver(slack_problems), receiver(pagerduty_problems)
    with httpx.Client(timeout=2.0) as client:
        slack = SlackNotifier(slack_rx.url + "/hook", client=client, clock=clock, sleep=clock.sleep)
        pd = PagerDutyNotifier(ROUTING_KEY, url=pd_rx.url + "/v2/enqueue", client=client)
        d = AlertDispatcher([slack, pd], clock=clock, public_url="https://brownout.example.com/",
                            runbook_url="https://rb.example/brownout")
        run_incident(d, clock)
    assert slack_rx.problems() == [] and pd_rx.problems() == []
    sections = [b for b in slack_rx.accepted()[0].body["blocks"] if b["type"] == "section"]
    assert len(sections) == 2
    for s in sections:
        assert f"<{PAGE}|Status page>" in s["text"]["text"]
        assert "<https://rb.example/brownout#" in s["text"]["text"]
    triggers = [r.body for r in pd_rx.accepted()]
    assert len(triggers) == 2
    for body in triggers:
        assert body["client_url"] == PAGE
        assert {"href": PAGE, "text": f"Status of {KEY}"} in body["links"]
    assert [a["generatorURL"] for a in alertmanager_alerts(d.alerts())] == [PAGE, PAGE]


def test_without_a_public_url_there_is_no_status_link(receiver) -> None:
    clock = FakeClock()
    slack_rx, pd_rx = receiver(slack_problems), receiver(pagerduty_problems)
    with httpx.Client(timeout=2.0) as client:
        d = AlertDispatcher([SlackNotifier(slack_rx.url + "/hook", client=client, clock=clock, sleep=clock.sleep),
                             PagerDutyNotifier(ROUTING_KEY, url=pd_rx.url + "/v2/enqueue", client=client)],
                            clock=clock)
        run_incident(d, clock)
    assert "Status page" not in str(slack_rx.accepted()[0].body)
    assert all("client_url" not in r.body and "links" not in r.body for r in pd_rx.accepted())


def test_the_link_opens_that_keys_page_on_the_collector() -> None:
    """The path the alert carries is the one the status page serves."""
    from types import SimpleNamespace

    from prometheus_client import CollectorRegistry

    from brownout.exporters.prometheus import MetricsServer, StatusBoard
    from brownout.status import StatusPage
    from brownout.status.urls import key_url

    board = StatusBoard()
    board.update({KEY: SimpleNamespace(time=60.0, requests=60, warming=False, firing=("ttft_drift",))}, {})
    server = MetricsServer(CollectorRegistry(), host="127.0.0.1", port=0, pages=StatusPage(board).handle)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        d = AlertDispatcher([], public_url=base)
        d.observe(decision(60.0, key=KEY, rule="ttft_drift"))
        link = d.alerts()[0].generator_url
        assert link == key_url(base, KEY)
        with urllib.request.urlopen(link) as r:
            html = r.read().decode()
        assert r.status == 200 and "<h1>azure.ai.openai/swedencentral/gpt-4o/2024-08-06</h1>" in html
    finally:
        server.stop()
