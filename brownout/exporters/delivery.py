"""One delivery attempt, its classification, and the wrapper that retries.

A notifier makes ONE attempt and says how it went with a :class:`Delivery`; whether a failure
is worth retrying comes from :func:`classify_http`. :class:`RetryingNotifier` owns backoff
(exponential, full jitter), ``Retry-After`` and the deadline (Alertmanager's split between
``Integration.Notify`` and ``RetryStage``).

>>> classify_http(202, {})
Delivery(ok=True, retryable=False, retry_after=None, status=202, detail='')
>>> classify_http(429, {"Retry-After": "3"}).retry_after
3.0
>>> classify_http(400, {}).retryable
False
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from brownout.exporters.alerts import Alert

__all__ = [
    "Delivery",
    "Notifier",
    "RecordingNotifier",
    "RetryingNotifier",
    "classify_http",
    "parse_retry_after",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one attempt: delivered, or failed and (not) worth retrying.

    ``retry_after`` is the receiver's own hint in seconds (``Retry-After``), when it gave one.
    """

    ok: bool
    retryable: bool = False
    retry_after: float | None = None
    status: int | None = None
    detail: str = ""

    @classmethod
    def delivered(cls, status: int | None = None) -> Delivery:
        return cls(True, False, None, status)

    @classmethod
    def transient(cls, detail: str, retry_after: float | None = None) -> Delivery:
        """A failure worth retrying that has no HTTP status (timeout, connection reset)."""
        return cls(False, True, retry_after, None, detail)

    @classmethod
    def permanent(cls, detail: str, status: int | None = None) -> Delivery:
        return cls(False, False, None, status, detail)


@runtime_checkable
class Notifier(Protocol):
    """Sends alerts somewhere, once per call.

    ``name`` labels metrics and the outbox; ``per_alert`` asks the dispatcher for one call per
    alert (PagerDuty: one incident per dedup key) instead of one per group (Slack, Alertmanager);
    ``repeat_interval`` (seconds or None) overrides the dispatcher's for this integration.
    """

    @property
    def name(self) -> str: ...

    @property
    def per_alert(self) -> bool: ...

    @property
    def repeat_interval(self) -> float | None: ...

    def notify(self, alerts: Sequence[Alert]) -> Delivery: ...


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP-date; None if absent or bad.

    >>> parse_retry_after("120"), parse_retry_after("soon"), parse_retry_after(None)
    (120.0, None, None)
    >>> parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0)
    60.0
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def classify_http(status: int, headers: Mapping[str, str] | Any, now: float | None = None) -> Delivery:
    """Classify an HTTP response: 2xx delivered; 408, 425, 429 and 5xx retryable; the rest permanent.

    ``Retry-After`` is read for retryable statuses (``headers`` may be any case-insensitive or plain
    mapping).

    >>> [classify_http(s, {}).retryable for s in (408, 429, 500, 503, 400, 404)]
    [True, True, True, True, False, False]
    """
    if 200 <= status < 300:
        return Delivery.delivered(status)
    retryable = status in (408, 425, 429) or 500 <= status < 600
    if not retryable:
        return Delivery.permanent(f"HTTP {status}", status)
    raw = _header(headers, "retry-after")
    return Delivery(False, True, parse_retry_after(raw, now), status, f"HTTP {status}")


def _header(headers: Mapping[str, str] | Any, name: str) -> str | None:
    value = headers.get(name) if hasattr(headers, "get") else None
    if value is not None:
        return str(value)
    for k, v in getattr(headers, "items", list)():
        if str(k).lower() == name:
            return str(v)
    return None


class RetryingNotifier:
    """Retries a notifier with exponential backoff and full jitter until a deadline.

    Waits ``uniform(0, min(max_backoff, initial_backoff * 2**n))`` between attempts, or longer
    when the receiver sent ``Retry-After``; gives up on a permanent failure, or when the next wait
    would pass ``deadline`` seconds after the first attempt (the last :class:`Delivery` is returned,
    still retryable, so an outbox keeps the notification). :meth:`close` cuts a wait short.

    Parameters
    ----------
    notifier: the notifier making one attempt per call.
    deadline: seconds from the first attempt after which no new attempt starts.
    sleep, clock, rng: injectable edges; ``sleep(seconds)`` may return early on :meth:`close`.

    >>> rec = RecordingNotifier(fail=[Delivery.transient("boom")])
    >>> waits = []
    >>> r = RetryingNotifier(rec, sleep=waits.append, rng=random.Random(1))
    >>> r.notify([]).ok, len(rec.calls), len(waits)
    (True, 2, 1)
    """

    def __init__(
        self,
        notifier: Notifier,
        *,
        deadline: float = 120.0,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if deadline <= 0 or initial_backoff <= 0 or max_backoff < initial_backoff:
            raise ValueError("retry: need deadline > 0 and 0 < initial_backoff <= max_backoff")
        self.notifier = notifier
        self.deadline = deadline
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._closed = threading.Event()
        self._sleep = sleep if sleep is not None else self._closed.wait
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self.attempts = 0

    @property
    def name(self) -> str:
        return self.notifier.name

    @property
    def per_alert(self) -> bool:
        return self.notifier.per_alert

    @property
    def repeat_interval(self) -> float | None:
        return self.notifier.repeat_interval

    def close(self) -> None:
        """Stop retrying: a wait in progress returns and no new attempt starts."""
        self._closed.set()

    def notify(self, alerts: Sequence[Alert]) -> Delivery:
        started = self._clock()
        n = 0
        while True:
            self.attempts += 1
            try:
                result = self.notifier.notify(alerts)
            except Exception as exc:  # a notifier bug must not lose the notification
                log.exception("%s: notifier raised", self.name)
                result = Delivery.transient(f"{type(exc).__name__}: {exc}")
            if result.ok or not result.retryable or self._closed.is_set():
                return result
            wait = self._rng.uniform(0.0, min(self.max_backoff, self.initial_backoff * 2**n))
            if result.retry_after is not None:
                wait = max(wait, result.retry_after)
            if self._clock() + wait - started > self.deadline:
                log.warning("%s: giving up after %d attempts: %s", self.name, n + 1, result.detail)
                return result
            self._sleep(wait)
            if self._closed.is_set():
                return result
            n += 1


class RecordingNotifier:
    """The in-memory twin: records every call; answers from ``fail`` first, then delivered.

    >>> rec = RecordingNotifier(name="test")
    >>> rec.notify([]).ok, rec.calls
    (True, [[]])
    """

    def __init__(
        self,
        name: str = "recording",
        *,
        per_alert: bool = False,
        repeat_interval: float | None = None,
        fail: Sequence[Delivery] = (),
    ) -> None:
        self.name = name
        self.per_alert = per_alert
        self.repeat_interval = repeat_interval
        self.fail = list(fail)
        self.calls: list[list[Alert]] = []
        self.delivered: list[list[Alert]] = []

    def notify(self, alerts: Sequence[Alert]) -> Delivery:
        self.calls.append(list(alerts))
        if self.fail:
            return self.fail.pop(0)
        self.delivered.append(list(alerts))
        return Delivery.delivered()
