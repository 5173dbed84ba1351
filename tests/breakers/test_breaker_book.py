"""BreakerBook: the state machine per key, cooldowns, probes (stalls, cancellations), records and
readings, restart."""

import pytest

from brownout.breakers import BreakerBook, BreakerConfig, ControlRecord
from brownout.model import Event, Finding, Key

A = Key("openai", "eastus", "gpt-4o")
B = Key("azure.ai.openai", "swedencentral", "gpt-4o")
C = Key("openai", "westus", "gpt-4o")
D = Key("openai", "eastus", "gpt-4o-mini")


def trip(key, t, rule="error_breaker", observed=0.4, baseline=0.01):
    return Finding(t, rule, key, "trip", observed, baseline, severity="critical", action="breaker")


def ok(key, t, duration=0.5, error=None):
    return Event(key, t, duration, error_type=error)


def book_with(*keys, **cfg):
    cfg.setdefault("jitter", 0.0)
    book = BreakerBook(BreakerConfig(**cfg))
    for k in keys:
        book.observe(ok(k, 0.0))
    return book


def states(decisions):
    return [(d.key, d.state, d.reason) for d in decisions]


def test_trip_opens_then_half_open_after_cooldown_then_closes_on_healthy_probes():
    book = book_with(A, B, probes_needed=3)
    book.on_finding(trip(A, 100.0))
    opened = book.advance(100.0)
    assert states(opened) == [(A, "open", "tripped")]
    assert (opened[0].kind, opened[0].rule, opened[0].observed, opened[0].baseline) == (
        "breaker", "error_breaker", 0.4, 0.01)
    assert book.advance(129.0) == [] and book.states()[A] == "open"
    half = book.advance(130.0)
    assert states(half) == [(A, "half_open", "cooldown_elapsed")] and half[0].time == 130.0
    for t in (131.0, 132.0, 133.0):
        book.observe(ok(A, t))
    closed = book.advance(134.0)
    assert states(closed) == [(A, "closed", "probes_healthy")]
    assert closed[0].time == 133.5  # the end of the probe that made the count
    assert book.states() == {A: "closed", B: "closed"}


@pytest.mark.parametrize("state_name, finding, expected", [
    ("closed", trip(A, 10.0), "open"),
    ("closed", Finding(10.0, "error_breaker", A, "healthy", action="breaker"), "closed"),
    ("closed", Finding(10.0, "error_rate", A, "firing", action="alert"), "closed"),
    ("open", trip(A, 10.0), "open"),
    ("half_open", trip(A, 10.0), "half_open"),
])
def test_findings_table(state_name, finding, expected):
    book = book_with(A, B)
    book.restore_from_records([ControlRecord(A, state_name, since=5.0, until=500.0 if state_name == "open" else None,
                                             seq=1, issued_at=5.0, expires_at=35.0)])
    book.on_finding(finding)
    book.advance(10.0)
    assert book.states()[A] == expected


def test_only_probes_started_after_half_open_count():
    book = book_with(A, B, probes_needed=2)
    book.on_finding(trip(A, 0.0))
    book.advance(0.0)
    book.observe(ok(A, 29.0))  # started while open: not a probe
    book.observe(ok(A, 30.0))  # due half-open at 30: a probe, even before advance
    assert [d.state for d in book.advance(31.0)] == ["half_open"]
    book.observe(ok(A, 31.0))
    assert [d.state for d in book.advance(32.0)] == ["closed"]


def test_client_errors_are_healthy_probes_capacity_errors_are_not():
    book = book_with(A, B, probes_needed=2, probe_failures=2)
    book.on_finding(trip(A, 0.0))
    book.advance(30.0)
    book.observe(ok(A, 31.0, error="400"))
    book.observe(ok(A, 31.0, error="503"))
    book.observe(ok(A, 32.0, error="401"))
    assert [d.state for d in book.advance(33.0)] == ["closed"]


def test_failed_probes_reopen_with_a_doubled_cooldown_up_to_the_cap():
    book = book_with(A, B, cooldown_min=30.0, cooldown_max=100.0, growth=2.0, probe_failures=1)
    book.on_finding(trip(A, 0.0))
    book.advance(0.0)
    t, cooldowns = 0.0, []
    for _ in range(4):
        half = book.advance(t + 1000.0)  # far enough: the cooldown has elapsed
        assert [d.state for d in half] == ["half_open"]
        cooldowns.append(half[0].time - t)
        book.observe(ok(A, half[0].time + 1.0, error="503"))
        reopen = book.advance(half[0].time + 2.0)
        assert states(reopen) == [(A, "open", "probes_failed")]
        t = reopen[0].time
    assert cooldowns == [30.0, 60.0, 100.0, 100.0]


def test_jitter_is_bounded_and_deterministic_by_seed():
    cfg = BreakerConfig(jitter=0.5)

    def run(seed):
        book = BreakerBook(cfg, seed=seed)
        for k in (A, B, C, D):
            book.observe(ok(k, 0.0))
        book.on_finding(trip(A, 0.0))
        book.advance(0.0)
        return book.advance(1000.0)[0].time

    assert run(1) == run(1)
    assert len({run(s) for s in range(8)}) > 1
    assert all(30.0 <= run(s) < 45.0 for s in range(8))


def test_every_key_opens_on_its_own_trip_a_single_key_model_included():
    book = book_with(A, B, C, D)  # three keys serve gpt-4o; D is the only gpt-4o-mini key
    for k in (A, B, C, D):
        book.on_finding(trip(k, 10.0))
    assert sorted(states(book.advance(10.0))) == [(k, "open", "tripped") for k in sorted((A, B, C, D))]
    assert book.states() == {A: "open", B: "open", C: "open", D: "open"}
    recs = {r.key: r for r in book.records(10.0)}
    assert {k: (r.state, r.reason) for k, r in recs.items()} == dict.fromkeys((A, B, C, D), ("open", "tripped"))


def test_trips_right_after_a_close_are_ignored_then_rearm_with_a_longer_cooldown():
    book = book_with(A, B, probes_needed=1, rearm_after=60.0, cooldown_max=300.0)
    book.on_finding(trip(A, 0.0))
    book.advance(30.0)
    book.observe(ok(A, 31.0))
    book.advance(32.0)  # closed at 31.5
    book.on_finding(trip(A, 40.0))  # the detector's window still holds old errors
    assert book.advance(40.0) == [] and book.rearm_ignored == 1
    book.on_finding(trip(A, 100.0))  # flapping: re-open within cooldown_max of the close
    assert [d.state for d in book.advance(100.0)] == ["open"]
    assert book.advance(1000.0)[0].time == 160.0  # 30 s x 2


def test_latency_trip_probes_judge_duration_against_threshold_times_baseline():
    book = book_with(A, B, probes_needed=2, probe_failures=2, latency_probe_factor=2.0)
    book.on_finding(trip(A, 0.0, rule="latency_breaker", observed=10.0, baseline=2.0))
    book.advance(30.0)
    book.observe(ok(A, 31.0, duration=4.5))  # >= 2 x 2 s: still slow
    book.observe(ok(A, 31.0, duration=1.0))
    book.observe(ok(A, 32.0, duration=4.0))
    assert states(book.advance(40.0)) == [(A, "open", "probes_failed")]


def test_records_carry_transitions_with_monotonic_seq_and_heartbeats():
    book = book_with(A, B, heartbeat_interval=10.0, record_ttl=30.0)
    assert book.records(0.0) == []  # nothing ever happened: nothing to say
    book.on_finding(trip(A, 100.0))
    book.advance(100.0)
    [r1] = book.records(100.0)
    assert (r1.key, r1.state, r1.since, r1.until, r1.rule) == (A, "open", 100.0, 130.0, "error_breaker")
    assert (r1.issued_at, r1.expires_at) == (100.0, 130.0)
    assert book.records(105.0) == []
    [hb] = book.records(110.0)
    assert (hb.state, hb.seq, hb.since, hb.issued_at, hb.expires_at) == ("open", r1.seq, 100.0, 110.0, 140.0)
    book.advance(130.0)
    [r2] = book.records(130.0)
    assert (r2.state, r2.until) == ("half_open", None) and r2.seq == r1.seq + 1
    assert r2.probe_fraction == book.config.probe_fraction


def test_restart_restores_states_without_announcing_old_transitions():
    first = book_with(A, B)
    first.on_finding(trip(A, 100.0))
    first.advance(100.0)
    published = first.records(100.0)

    second = book_with(A, B)
    second.restore_from_records(published)
    assert second.states()[A] == "open"
    second.on_finding(trip(A, 105.0))  # the restarted engine trips again: already open
    assert second.advance(105.0) == []
    assert second.records(105.0) == []  # no duplicate transition, heartbeat not due yet
    half = second.advance(130.0)
    assert states(half) == [(A, "half_open", "cooldown_elapsed")]
    [rec] = second.records(130.0)
    assert rec.seq == published[0].seq + 1


def test_restore_keeps_the_newest_seq():
    book = BreakerBook()
    newer = ControlRecord(A, "open", since=50.0, until=80.0, seq=5, issued_at=50.0, expires_at=80.0)
    older = ControlRecord(A, "closed", since=10.0, seq=2, issued_at=10.0, expires_at=40.0)
    book.restore_from_records([newer, older])
    assert book.states()[A] == "open"


def test_same_input_same_decisions():
    def run():
        book = BreakerBook(BreakerConfig(probes_needed=2), seed=7)
        out = []
        for k in (A, B, C):
            book.observe(ok(k, 0.0))
        for t in range(0, 400, 5):
            if t in (10, 15, 100):
                book.on_finding(trip(A, float(t)))
                book.on_finding(trip(B, float(t)))
            book.observe(ok(A, float(t), error="503" if t < 90 else None))
            out += [d.to_json() for d in book.advance(float(t))]
        return out

    first = run()
    assert first == run() and len(first) >= 3
    assert [d["time"] for d in first] == sorted(d["time"] for d in first)


def test_a_long_incident_keeps_the_cooldown_at_the_cap():
    book = book_with(A, B, cooldown_max=100.0, probe_failures=1)
    book.on_finding(trip(A, 0.0))
    book.advance(0.0)
    t = 0.0
    for _ in range(1200):  # far more re-opens than the exponent could hold
        t = book.advance(t + 1000.0)[0].time
        book.observe(ok(A, t + 1.0, error="503"))
        t = book.advance(t + 2.0)[0].time
    assert book.advance(t + 1000.0)[0].time - t == 100.0


def test_records_and_decisions_say_the_same_reason_at_every_transition():
    """One vocabulary: the record published after each transition carries the decision's reason."""
    from brownout.breakers.record import REASONS

    book = book_with(A, B, probes_needed=1, probe_failures=1)
    script = [(100.0, lambda: book.on_finding(trip(A, 100.0))),
              (130.0, lambda: None),                                    # half-open
              (131.5, lambda: book.observe(ok(A, 131.0, error="503"))),  # probe failed: open again
              (300.0, lambda: None),                                    # half-open again
              (301.5, lambda: book.observe(ok(A, 301.0)))]              # probe healthy: closed
    pairs = []
    for t, act in script:
        act()
        decisions = book.advance(t)
        records = [r for r in book.records(t) if r.key == A]
        assert len(decisions) == len(records) == 1, t
        pairs.append((decisions[0].state, decisions[0].reason, records[0].state, records[0].reason))
    assert [(d_state, d_reason) for d_state, d_reason, _, _ in pairs] == [
        ("open", "tripped"), ("half_open", "cooldown_elapsed"), ("open", "probes_failed"),
        ("half_open", "cooldown_elapsed"), ("closed", "probes_healthy")]
    assert all(d_state == r_state and d_reason == r_reason for d_state, d_reason, r_state, r_reason in pairs)
    assert {p[1] for p in pairs} == set(REASONS)


def half_open_book(rule="error_breaker", baseline=0.01, **cfg):
    cfg.setdefault("probes_needed", 2)
    cfg.setdefault("probe_failures", 2)
    book = book_with(A, B, **cfg)
    book.on_finding(trip(A, 0.0, rule=rule, baseline=baseline))
    assert [d.state for d in book.advance(30.0)] == ["open", "half_open"]
    return book


def test_a_stall_report_fails_its_probe_once_and_its_completion_is_not_counted_again():
    book = half_open_book()
    book.observe(Event(A, 31.0, 3.0, stall=True, ttft_at_least=3.0))   # in flight, no first token
    book.observe(Event(A, 31.0, 9.0, ttft=8.5))                          # the same call, completed
    book.observe(Event(A, 31.0, 3.0, stall=True, ttft_at_least=3.0))   # reported twice: still one
    assert book.advance(45.0) == [] and book.states()[A] == "half_open"
    book.observe(Event(A, 32.0, 2.5, stall=True, ttft_at_least=2.5))  # a second stalled probe
    assert states(book.advance(45.0)) == [(A, "open", "probes_failed")]


def test_a_cancelled_copy_is_no_verdict_unless_it_waited_past_the_probe_ceiling():
    book = half_open_book()
    book.update_readings({A: {"ttft_p95_baseline": 0.5}})  # probe ceiling: 2 x 0.5 s
    book.observe(Event(A, 31.0, 0.4, error_type="cancelled", ttft_at_least=0.4))  # lost a race, early
    book.observe(Event(A, 31.0, 0.4, error_type="CancelledError"))
    book.observe(ok(A, 32.0, duration=0.8))
    assert book.advance(40.0) == []  # one healthy probe of two: the cancelled ones said nothing
    book.observe(Event(A, 33.0, 1.5, error_type="cancelled", ttft_at_least=1.5))  # waited past it
    book.observe(Event(A, 33.5, 1.2, error_type="timeout", ttft_at_least=1.2))
    assert states(book.advance(40.0)) == [(A, "open", "probes_failed")]


def test_a_probe_slower_to_its_first_token_than_the_ceiling_fails_an_error_trip_too():
    book = half_open_book()
    book.observe(Event(A, 31.0, 4.0, ttft=3.0))  # no readings yet: an error trip judges errors only
    book.update_readings({A: {"ttft_p95_baseline": 0.5}})
    book.observe(Event(A, 32.0, 4.0, ttft=1.1))  # >= 2 x 0.5 s
    book.observe(Event(A, 33.0, 4.0, ttft=0.9))  # healthy: the second healthy one
    assert states(book.advance(40.0)) == [(A, "closed", "probes_healthy")]
    book2 = half_open_book()
    book2.update_readings({A: {"ttft_p95_baseline": 0.5}})
    for t in (31.0, 32.0):
        book2.observe(Event(A, t, 4.0, ttft=1.2))
    assert states(book2.advance(40.0)) == [(A, "open", "probes_failed")]


def test_latency_trip_probes_fail_on_a_first_token_at_least_past_the_trip_ceiling():
    book = half_open_book(rule="latency_breaker", baseline=2.0)
    book.observe(Event(A, 31.0, 4.2, error_type="timeout", ttft_at_least=4.2))  # a client first-token timeout
    book.observe(Event(A, 31.0, 1.0, ttft=0.5))
    book.observe(Event(A, 32.0, 4.5, stall=True, ttft_at_least=4.5))
    assert states(book.advance(40.0)) == [(A, "open", "probes_failed")]


def test_forget_drops_the_key_everywhere():
    book = book_with(A, B)
    book.on_finding(trip(A, 0.0))
    book.advance(0.0)
    book.forget(A)
    assert A not in book.states() and book.records(0.0) == [] and book.advance(100.0) == []


def test_the_probe_ceiling_falls_back_to_twice_the_p50_baseline_never_to_the_current_p95():
    book = half_open_book()
    book.update_readings({A: {"ttft_p95": 9.0}})  # only the degraded current p95: no ceiling
    book.observe(Event(A, 31.0, 9.5, ttft=9.0))
    book.update_readings({A: {"ttft_p95": 9.0, "ttft_p50_baseline": 0.4}})  # ceiling 2 x 2 x 0.4 s
    book.observe(Event(A, 32.0, 2.0, ttft=1.7))
    book.observe(Event(A, 33.0, 2.0, ttft=1.9))
    assert states(book.advance(40.0)) == [(A, "open", "probes_failed")]
