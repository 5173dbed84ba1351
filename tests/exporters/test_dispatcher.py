"""The dispatcher's Alertmanager semantics: grouping, timing, dedup, inhibition, outbox and restart."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from exporters_support import KEY, FakeClock, decision

from brownout.exporters import AlertDispatcher, Delivery, Outbox, RecordingNotifier, RetryingNotifier
from brownout.model import Key

WEST = Key("openai", "westus", "gpt-4o")
MINI = Key("openai", "eastus", "gpt-4o-mini")


class Results:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def notification(self, integration: str, result: str) -> None:
        self.counts[(integration, result)] += 1


def make(clock: FakeClock, *notifiers: RecordingNotifier, outbox: Outbox | None = None,
         metrics: Results | None = None, **kw: float) -> AlertDispatcher:
    wrapped = [RetryingNotifier(n, deadline=30.0, sleep=clock.sleep, clock=clock, rng=random.Random(0))
               for n in notifiers]
    opts = {"group_wait": 30.0, "group_interval": 300.0, "repeat_interval": 3600.0, **kw}
    return AlertDispatcher(wrapped, outbox=outbox, clock=clock, metrics=metrics, **opts)


def tick(d: AlertDispatcher, clock: FakeClock, to: float) -> None:
    clock.now = to
    d.advance()
    d.deliver()


def shape(calls: list) -> list[list[tuple[str, str, str]]]:
    return [[(a.alertname, str(a.key), a.status) for a in call] for call in calls]


def test_group_wait_batches_one_provider_region(clock: FakeClock) -> None:
    rec = RecordingNotifier()
    d = make(clock, rec)
    t0 = clock.now
    d.observe(decision(t0, key=KEY))
    clock.now = t0 + 10
    d.observe(decision(t0 + 10, key=MINI, rule="ttft_drift", severity="warning"))
    tick(d, clock, t0 + 29)
    assert rec.calls == []
    tick(d, clock, t0 + 30)
    assert shape(rec.delivered) == [[("error_rate", str(KEY), "firing"),
                                      ("ttft_drift", str(MINI), "firing")]]


def test_regions_are_separate_groups(clock: FakeClock) -> None:
    rec = RecordingNotifier()
    d = make(clock, rec)
    d.observe(decision(clock.now, key=KEY))
    d.observe(decision(clock.now, key=WEST))
    tick(d, clock, clock.now + 30)
    assert sorted(shape(rec.delivered)) == [[("error_rate", str(KEY), "firing")],
                                            [("error_rate", str(WEST), "firing")]]


def test_changes_wait_for_the_group_interval_and_resend_the_group(clock: FakeClock) -> None:
    rec = RecordingNotifier()
    d = make(clock, rec)
    t0 = clock.now
    d.observe(decision(t0, key=KEY))
    tick(d, clock, t0 + 30)
    d.observe(decision(t0 + 40, key=MINI))
    tick(d, clock, t0 + 200)
    assert len(rec.delivered) == 1
    tick(d, clock, t0 + 330)
    assert shape(rec.delivered)[1] == [("error_rate", str(KEY), "firing"), ("error_rate", str(MINI), "firing")]


def test_duplicates_are_not_sent_until_the_repeat_interval(clock: FakeClock) -> None:
    rec = RecordingNotifier()
    d = make(clock, rec, repeat_interval=1200.0)
    t0 = clock.now
    for i in range(5):
        d.observe(decision(t0 + i * 5, observed=0.2 + i / 100))
    for t in (30, 330, 630, 930):
        tick(d, clock, t0 + t)
    assert len(rec.delivered) == 1
    tick(d, clock, t0 + 1230)
    assert len(rec.delivered) == 2
    # The repeat carries the latest figures and the original start.
    again = rec.delivered[1][0]
    assert again.observed == pytest.approx(0.24) and again.starts_at == t0


def test_one_trigger_and_one_resolve_per_incident(clock: FakeClock) -> None:
    rec = RecordingNotifier()
    d = make(clock, rec)
    t0 = clock.now
    d.observe(decision(t0, state="pending"))
    d.observe(decision(t0 + 5))
    tick(d, clock, t0 + 35)
    d.observe(decision(t0 + 100, state="resolved"))
    d.observe(decision(t0 + 101, state="resolved"))  # a duplicate resolve is ignored
    tick(d, clock, t0 + 335)
    tick(d, clock, t0 + 635)
    assert shape(rec.delivered) == [[("error_rate", str(KEY), "firing")], [("error_rate", str(KEY), "resolved")]]
    assert rec.delivered[1][0].ends_at == t0 + 100
    assert d.alerts() == []


def test_an_alert_resolved_before_it_was_sent_is_never_sent(clock: FakeClock) -> None:
    rec = RecordingNotifier()
    d = make(clock, rec)
    d.observe(decision(clock.now))
    d.observe(decision(clock.now + 10, state="resolved"))
    tick(d, clock, clock.now + 30)
    tick(d, clock, clock.now + 400)
    assert rec.calls == [] and d.alerts() == []


def test_an_open_breaker_inhibits_the_keys_lesser_alerts(clock: FakeClock) -> None:
    rec = RecordingNotifier()
    d = make(clock, rec)
    t0 = clock.now
    d.observe(decision(t0, rule="ttft_drift", severity="warning", key=KEY))
    d.observe(decision(t0, rule="ttft_drift", severity="warning", key=MINI))
    d.observe(decision(t0, kind="breaker", rule="error_breaker", state="open", key=KEY))
    tick(d, clock, t0 + 30)
    assert sorted(shape(rec.delivered)[0]) == [("breaker_open", str(KEY), "firing"),
                                               ("ttft_drift", str(MINI), "firing")]
    d.observe(decision(t0 + 60, kind="breaker", rule="error_breaker", state="closed", key=KEY))
    tick(d, clock, t0 + 330)
    # Breaker closed: the lesser alert, still firing, is no longer silenced.
    assert sorted(shape(rec.delivered)[1]) == [("breaker_open", str(KEY), "resolved"),
                                               ("ttft_drift", str(KEY), "firing"),
                                               ("ttft_drift", str(MINI), "firing")]


def test_an_alert_already_sent_still_gets_its_resolve_while_inhibited(clock: FakeClock) -> None:
    rec = RecordingNotifier()
    d = make(clock, rec)
    t0 = clock.now
    d.observe(decision(t0, rule="ttft_drift", severity="warning"))
    tick(d, clock, t0 + 30)
    d.observe(decision(t0 + 40, kind="breaker", state="open"))
    d.observe(decision(t0 + 50, rule="ttft_drift", state="resolved"))
    tick(d, clock, t0 + 330)
    assert shape(rec.delivered)[1] == [("breaker_open", str(KEY), "firing"), ("ttft_drift", str(KEY), "resolved")]


def test_per_alert_notifiers_get_one_alert_per_call(clock: FakeClock) -> None:
    pd = RecordingNotifier("pagerduty", per_alert=True)
    slack = RecordingNotifier("slack")
    d = make(clock, pd, slack)
    d.observe(decision(clock.now, key=KEY))
    d.observe(decision(clock.now, key=MINI))
    tick(d, clock, clock.now + 30)
    assert [len(c) for c in pd.delivered] == [1, 1] and [len(c) for c in slack.delivered] == [2]


def test_a_notifier_can_ask_for_its_own_repeat_interval(clock: FakeClock) -> None:
    am = RecordingNotifier("alertmanager", repeat_interval=60.0)
    slack = RecordingNotifier("slack")
    d = make(clock, am, slack)
    t0 = clock.now
    d.observe(decision(t0))
    for t in range(30, 400, 30):
        tick(d, clock, t0 + t)
    assert len(am.delivered) >= 5 and len(slack.delivered) == 1


def test_repeats_do_not_pile_up_while_the_receiver_is_down(clock: FakeClock) -> None:
    am = RecordingNotifier("alertmanager", repeat_interval=60.0, fail=[Delivery.transient("503")] * 10_000)
    d = make(clock, am)
    t0 = clock.now
    d.observe(decision(t0))
    for t in range(30, 3600, 60):
        tick(d, clock, t0 + t)
    assert len(d.pending()) == 1
    am.fail.clear()
    tick(d, clock, t0 + 3630)
    assert d.pending() == [] and len(am.delivered) >= 1


def test_permanent_refusals_are_dropped_and_counted(clock: FakeClock) -> None:
    rec = RecordingNotifier(fail=[Delivery.permanent("HTTP 400", 400)])
    metrics = Results()
    d = make(clock, rec, metrics=metrics)
    d.observe(decision(clock.now))
    tick(d, clock, clock.now + 30)
    assert d.pending() == [] and rec.delivered == []
    assert metrics.counts[("recording", "failed")] == 1


def test_undelivered_notifications_survive_a_restart_in_order(clock: FakeClock, tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    down = RecordingNotifier("pagerduty", per_alert=True, fail=[Delivery.transient("503")] * 10_000)
    metrics = Results()
    d = make(clock, down, outbox=Outbox(path), metrics=metrics)
    t0 = clock.now
    d.observe(decision(t0))
    tick(d, clock, t0 + 30)
    d.observe(decision(t0 + 100, state="resolved"))
    tick(d, clock, t0 + 400)
    assert [n.alerts[0].status for n in d.pending()] == ["firing", "resolved"]
    assert metrics.counts[("pagerduty", "deferred")] >= 2
    assert all(call[0].status == "firing" for call in down.calls)  # the resolve never overtook
    d.outbox.close()

    # The collector restarts; the receiver is back.
    up = RecordingNotifier("pagerduty", per_alert=True)
    d2 = make(clock, up, outbox=Outbox(path))
    d2.deliver()
    assert shape(up.delivered) == [[("error_rate", str(KEY), "firing")], [("error_rate", str(KEY), "resolved")]]
    assert d2.pending() == []


def test_a_resolve_after_a_restart_still_reaches_who_saw_the_trigger(clock: FakeClock, tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    rec = RecordingNotifier("slack")
    d = make(clock, rec, outbox=Outbox(path))
    t0 = clock.now
    d.observe(decision(t0))
    tick(d, clock, t0 + 30)
    d.outbox.close()

    rec2 = RecordingNotifier("slack")
    d2 = make(clock, rec2, outbox=Outbox(path))
    assert [a.status for a in d2.alerts()] == ["firing"]
    d2.observe(decision(t0 + 500, state="resolved"))
    for t in (530, 600, 900):
        tick(d2, clock, t0 + t)
    assert shape(rec2.delivered) == [[("error_rate", str(KEY), "resolved")]]


def test_unknown_integrations_in_the_outbox_are_dropped(clock: FakeClock) -> None:
    box = Outbox()
    d0 = make(clock, RecordingNotifier("old"), outbox=box)
    d0.observe(decision(clock.now))
    clock.now += 30
    d0.advance()
    metrics = Results()
    d = make(clock, RecordingNotifier("new"), outbox=box, metrics=metrics)
    d.deliver()
    assert box.pending() == [] and metrics.counts[("old", "dropped")] == 1


def test_one_integration_down_does_not_hold_back_another(clock: FakeClock) -> None:
    import threading

    other_delivered = threading.Event()

    class Waits(RecordingNotifier):
        """Delivers only once the other integration has: deadlocks (and fails) if run in series."""

        def notify(self, alerts):  # type: ignore[no-untyped-def]
            seen = other_delivered.wait(10)
            self.calls.append(list(alerts))
            return Delivery.delivered() if seen else Delivery.permanent("ran in series")

    class Signals(RecordingNotifier):
        def notify(self, alerts):  # type: ignore[no-untyped-def]
            result = super().notify(alerts)
            other_delivered.set()
            return result

    a, b = Waits("a-slow"), Signals("b-fast")
    d = AlertDispatcher([a, b], group_wait=0.0, clock=clock)
    d.observe(decision(clock.now))
    d.advance()
    d.deliver()
    assert len(b.delivered) == 1 and len(a.calls) == 1 and d.pending() == []


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="group_interval"):
        AlertDispatcher([], group_interval=0)
    with pytest.raises(ValueError, match="two notifiers"):
        AlertDispatcher([RecordingNotifier("a"), RecordingNotifier("a")])


def test_background_thread_delivers_and_stops() -> None:
    import time

    rec = RecordingNotifier()
    d = AlertDispatcher([rec], group_wait=0.0)
    d.observe(decision(time.time()))
    d.start(interval=0.01)
    try:
        deadline = time.monotonic() + 5
        while not rec.delivered and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        d.stop()
    assert shape(rec.delivered) == [[("error_rate", str(KEY), "firing")]]


def test_a_bad_decision_is_logged_and_counted_not_raised(clock: FakeClock) -> None:
    rec = RecordingNotifier()
    d = make(clock, rec)
    d.observe(decision(clock.now, kind="metric"))
    d.observe(decision(clock.now, state="exploded"))
    assert d.invalid_decisions == 2 and d.alerts() == []


def test_a_corrupt_outbox_file_is_named(tmp_path: Path) -> None:
    from brownout.exporters.outbox import OutboxError

    bad = tmp_path / "outbox.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(OutboxError, match="outbox.db"):
        Outbox(bad)


def test_a_refire_with_other_labels_still_resolves_the_first(clock: FakeClock) -> None:
    rec = RecordingNotifier("pagerduty", per_alert=True)
    d = make(clock, rec)
    t0 = clock.now
    d.observe(decision(t0, severity="warning"))
    tick(d, clock, t0 + 30)
    d.observe(decision(t0 + 100, state="resolved"))
    d.observe(decision(t0 + 110, severity="critical"))
    tick(d, clock, t0 + 330)
    sent = [(a.severity, a.status) for call in rec.delivered for a in call]
    assert sorted(sent) == [("critical", "firing"), ("warning", "firing"), ("warning", "resolved")]
    assert [a.severity for a in d.alerts()] == ["critical"]


def test_after_a_restart_a_resolve_finds_the_live_alert(clock: FakeClock, tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    rec = RecordingNotifier("pagerduty", per_alert=True)
    d = make(clock, rec, outbox=Outbox(path))
    t0 = clock.now
    d.observe(decision(t0, severity="warning"))
    tick(d, clock, t0 + 30)
    d.observe(decision(t0 + 100, state="resolved"))
    d.observe(decision(t0 + 110, severity="critical"))
    d.outbox.close()  # restart before either went out

    rec2 = RecordingNotifier("pagerduty", per_alert=True)
    d2 = make(clock, rec2, outbox=Outbox(path))
    d2.observe(decision(t0 + 200, state="resolved"))
    for t in (230, 530, 830):
        tick(d2, clock, t0 + t)
    sent = [(a.severity, a.status) for call in rec2.delivered for a in call]
    assert ("warning", "resolved") in sent and d2.alerts() == []
