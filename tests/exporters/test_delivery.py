"""classify_http over every status code, Retry-After parsing, and the retry wrapper's policy."""

from __future__ import annotations

import random
from http import HTTPStatus

import pytest
from exporters_support import FakeClock

from brownout.exporters.delivery import (
    Delivery,
    RecordingNotifier,
    RetryingNotifier,
    classify_http,
    parse_retry_after,
)

RETRYABLE_4XX = {408, 425, 429}


@pytest.mark.parametrize("status", range(100, 600))
def test_classify_http_every_status(status: int) -> None:
    d = classify_http(status, {"Retry-After": "7"})
    assert d.status == status
    if 200 <= status < 300:
        assert (d.ok, d.retryable, d.retry_after) == (True, False, None)
    elif status in RETRYABLE_4XX or status >= 500:
        assert (d.ok, d.retryable, d.retry_after) == (False, True, 7.0)
    else:
        assert (d.ok, d.retryable, d.retry_after) == (False, False, None)
        assert str(status) in d.detail


@pytest.mark.parametrize("status", [s.value for s in HTTPStatus if s.value >= 400])
def test_named_error_statuses_are_failures(status: int) -> None:
    assert not classify_http(status, {}).ok


def test_retry_after_header_is_case_insensitive_and_optional() -> None:
    assert classify_http(429, {"retry-after": "2"}).retry_after == 2.0
    assert classify_http(429, {"RETRY-AFTER": "3"}).retry_after == 3.0
    assert classify_http(503, {}).retry_after is None
    assert classify_http(503, {"Retry-After": "garbage"}).retry_after is None


@pytest.mark.parametrize("value,now,expected", [
    ("0", None, 0.0),
    ("30", None, 30.0),
    (" 5 ", None, 5.0),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0, 10.0),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490.0, 0.0),  # already past
    ("-1", None, None),
    ("1.5", None, None),
    ("", None, None),
    ("tomorrow", None, None),
])
def test_parse_retry_after(value: str, now: float | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=now) == expected


def _retrying(rec: RecordingNotifier, clock: FakeClock, **kw: float) -> RetryingNotifier:
    return RetryingNotifier(rec, sleep=clock.sleep, clock=clock, rng=random.Random(42), **kw)


def test_retries_transient_failures_with_full_jitter_until_delivered(clock: FakeClock) -> None:
    fails = [Delivery.transient("timeout")] * 6
    rec = RecordingNotifier(fail=fails)
    r = _retrying(rec, clock, initial_backoff=0.5, max_backoff=4.0, deadline=600)
    assert r.notify([]).ok
    assert len(rec.calls) == 7
    caps = [min(4.0, 0.5 * 2**n) for n in range(6)]
    assert all(0 <= w <= cap for w, cap in zip(clock.sleeps, caps, strict=True))
    # Full jitter draws below the cap, not at it.
    assert any(w < cap * 0.99 for w, cap in zip(clock.sleeps, caps))


def test_honours_retry_after_over_backoff(clock: FakeClock) -> None:
    rec = RecordingNotifier(fail=[Delivery(False, True, 12.0, 429, "HTTP 429")])
    r = _retrying(rec, clock, initial_backoff=0.1, max_backoff=1.0)
    assert r.notify([]).ok
    assert clock.sleeps == [12.0]


def test_permanent_failure_is_not_retried(clock: FakeClock) -> None:
    rec = RecordingNotifier(fail=[Delivery.permanent("HTTP 400", 400)])
    r = _retrying(rec, clock)
    result = r.notify([])
    assert (result.ok, result.retryable, len(rec.calls), clock.sleeps) == (False, False, 1, [])


def test_gives_up_only_at_the_deadline(clock: FakeClock) -> None:
    rec = RecordingNotifier(fail=[Delivery.transient("503")] * 1000)
    r = _retrying(rec, clock, initial_backoff=1.0, max_backoff=8.0, deadline=60.0)
    start = clock.now
    result = r.notify([])
    assert not result.ok and result.retryable
    assert clock.now - start <= 60.0
    # It stopped only because the next wait (at most max_backoff) no longer fitted.
    assert clock.now - start > 60.0 - 8.0


def test_a_retry_after_past_the_deadline_gives_up_without_waiting(clock: FakeClock) -> None:
    rec = RecordingNotifier(fail=[Delivery(False, True, 3600.0, 429, "HTTP 429")])
    r = _retrying(rec, clock, deadline=60.0)
    assert r.notify([]).retryable
    assert clock.sleeps == []


def test_a_raising_notifier_is_a_retryable_failure(clock: FakeClock) -> None:
    class Broken(RecordingNotifier):
        def notify(self, alerts):  # type: ignore[no-untyped-def]
            raise RuntimeError("bug")

    r = _retrying(Broken(), clock, deadline=5.0)
    result = r.notify([])
    assert not result.ok and result.retryable and "bug" in result.detail


def test_close_stops_retrying() -> None:
    rec = RecordingNotifier(fail=[Delivery.transient("x")] * 100)
    r = RetryingNotifier(rec, deadline=3600.0, initial_backoff=30.0, max_backoff=30.0,
                         rng=random.Random(0))
    r.close()
    assert r.notify([]).retryable
    assert len(rec.calls) == 1


def test_bad_retry_settings_are_named() -> None:
    with pytest.raises(ValueError, match="deadline"):
        RetryingNotifier(RecordingNotifier(), deadline=0)


def test_wrapper_passes_the_notifier_traits_through() -> None:
    rec = RecordingNotifier("pd", per_alert=True, repeat_interval=9.0)
    r = RetryingNotifier(rec)
    assert (r.name, r.per_alert, r.repeat_interval) == ("pd", True, 9.0)
