"""End to end in event time: events -> Pipeline decisions -> dispatcher -> notifiers, and the
same run's status on /metrics. An incident reaches each integration as one trigger then one
resolve, and a scrape during the incident shows it."""

from __future__ import annotations

from collections import defaultdict

from exporters_support import FakeClock
from prometheus_client import CollectorRegistry

from brownout.exporters import AlertDispatcher, KeyStatusCollector, RecordingNotifier, StatusBoard
from brownout.model import Event, Key
from brownout.pipeline import Pipeline

EAST, WEST = Key("openai", "eastus", "gpt-4o"), Key("openai", "westus", "gpt-4o")
T0 = 1_700_000_000.0
HEALTHY, BURST, RECOVERY = 660, 180, 900  # seconds


def events_at(i: int) -> list[Event]:
    t = T0 + i
    east_failing = HEALTHY <= i < HEALTHY + BURST and i % 2 == 0
    east = Event(EAST, t, 0.1, error_type="503") if east_failing else Event(EAST, t, 0.8, ttft=0.3)
    return [Event(WEST, t, 0.8, ttft=0.3), east]


def test_an_incident_is_one_trigger_then_one_resolve_per_integration() -> None:
    pipeline = Pipeline()
    clock = FakeClock(T0)
    slack, pd = RecordingNotifier("slack"), RecordingNotifier("pagerduty", per_alert=True)
    dispatcher = AlertDispatcher([slack, pd], clock=clock, group_wait=10, group_interval=60)
    board = StatusBoard()
    registry = CollectorRegistry()
    registry.register(KeyStatusCollector(board))
    peak_breaker, peak_firing = 0.0, 0.0
    for i in range(HEALTHY + BURST + RECOVERY):
        for event in events_at(i):
            pipeline.observe(event)
        if i % 5:
            continue
        clock.now = T0 + i
        for d in pipeline.advance(clock.now):
            dispatcher.observe(d)
        board.update(pipeline.status(), pipeline.breaker_states())
        dispatcher.advance()
        dispatcher.deliver()
        labels = EAST.as_dict()
        peak_breaker = max(peak_breaker, registry.get_sample_value("brownout_breaker_state", labels) or 0.0)
        peak_firing = max(peak_firing, registry.get_sample_value(
            "brownout_alerts_firing", {"rule": "error_rate", **labels}) or 0.0)

    assert (peak_breaker, peak_firing) == (2.0, 1.0)
    for rec in (slack, pd):
        story: dict[str, list[str]] = defaultdict(list)
        for call in rec.delivered:
            for alert in call:
                assert alert.key == EAST, "the healthy region never alerts"
                story[alert.alertname].append(alert.status)
        assert set(story) >= {"error_rate", "breaker_open"}, rec.name
        for alertname, statuses in story.items():
            if not rec.per_alert:  # a grouped message lists every alert still firing in its group
                statuses = [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]
            assert statuses == ["firing", "resolved"], (rec.name, alertname, statuses)
    assert dispatcher.pending() == [] and dispatcher.alerts() == []
