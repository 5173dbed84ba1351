"""Alertmanager's routing in miniature: group, wait, deduplicate, inhibit, queue, deliver.

:meth:`AlertDispatcher.observe` takes decisions (no I/O). :meth:`AlertDispatcher.advance` flushes
the provider-region groups that are due into the :class:`~brownout.exporters.outbox.Outbox`
(one transaction per group). :meth:`AlertDispatcher.deliver` drains the outbox through each
integration's :class:`~brownout.exporters.delivery.RetryingNotifier`, in order per integration,
and may block: run it off the event loop (``await asyncio.to_thread(d.deliver)``) or let
:meth:`AlertDispatcher.start` run both in a thread.

>>> from brownout.model import Decision, Key
>>> from brownout.exporters.delivery import RecordingNotifier
>>> now = [0.0]
>>> slack = RecordingNotifier("slack")
>>> d = AlertDispatcher([slack], group_wait=30, clock=lambda: now[0])
>>> k = Key("openai", "eastus", "gpt-4o")
>>> d.observe(Decision(0.0, "alert", "error_rate", k, "firing", 0.2, 0.01, "critical"))
>>> d.advance(); d.deliver(); len(slack.delivered)
0
>>> now[0] = 30.0; d.advance(); d.deliver(); [a.status for a in slack.delivered[0]]
['firing']
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from brownout.exporters.alerts import BREAKER_ALERT, FIRING, SEVERITY_RANK, Alert
from brownout.exporters.delivery import Notifier, RetryingNotifier
from brownout.exporters.outbox import Notification, Outbox
from brownout.model import Decision, Key
from brownout.status.urls import key_url

__all__ = ["AlertDispatcher"]

log = logging.getLogger(__name__)
_EPS = 1e-9


@dataclass
class _Group:
    next_at: float
    last_sent: dict[str, float] = field(default_factory=dict)


class AlertDispatcher:
    """Turns decisions into notifications, Alertmanager-style.

    Parameters
    ----------
    notifiers: the integrations; each is wrapped in a :class:`RetryingNotifier` unless it is one.
    outbox: where queued notifications and the dispatcher's memory survive a restart.
    group_wait: seconds a new provider-region group waits before its first notification.
    group_interval: seconds between notifications about changes to a group.
    repeat_interval: seconds after which still-firing alerts are sent again (a notifier's own
        ``repeat_interval`` overrides it).
    clock: wall-clock seconds for the group timers.
    runbook_url, windows, generator_url: what :meth:`Alert.from_decision` puts in annotations
        (``windows`` maps a rule to its window in seconds).
    public_url: where people reach the collector's status page; each alert's ``generator_url``
        is then its key's page (Slack and PagerDuty link it, Alertmanager gets it as generatorURL).
    metrics: anything with ``notification(integration, result)``, e.g. ``CollectorMetrics``.
    """

    def __init__(
        self,
        notifiers: Sequence[Notifier],
        *,
        outbox: Outbox | None = None,
        group_wait: float = 30.0,
        group_interval: float = 300.0,
        repeat_interval: float = 4 * 3600.0,
        clock: Callable[[], float] = time.time,
        runbook_url: str | None = None,
        windows: Mapping[str, float] | None = None,
        generator_url: str = "",
        metrics: Any = None,
        public_url: str | None = None,
    ) -> None:
        if min(group_wait, group_interval, repeat_interval) < 0 or group_interval <= 0:
            raise ValueError("dispatcher: group_wait and repeat_interval must be >= 0, group_interval > 0")
        self._senders: dict[str, Notifier] = {}
        for n in notifiers:
            if n.name in self._senders:
                raise ValueError(f"dispatcher: two notifiers are named {n.name!r}")
            self._senders[n.name] = n if isinstance(n, RetryingNotifier) else RetryingNotifier(n)
        self.outbox = outbox if outbox is not None else Outbox()
        self.group_wait = group_wait
        self.group_interval = group_interval
        self.repeat_interval = repeat_interval
        self._clock = clock
        self.runbook_url = runbook_url
        self.windows = dict(windows or {})
        self.generator_url = generator_url
        self.public_url = public_url
        self.metrics = metrics
        self._lock = threading.RLock()
        self._deliver_lock = threading.Lock()
        self._alerts: dict[str, Alert] = {}
        self._index: dict[tuple[str, Key], str] = {}
        self._groups: dict[str, _Group] = {}
        self._sent = self.outbox.sent()
        self._worker: threading.Thread | None = None
        self.invalid_decisions = 0
        self._stop = threading.Event()
        now = clock()
        # Firing alerts last, so a key's index points at its live alert.
        for alert in sorted(self.outbox.alerts(), key=lambda a: (a.firing, a.starts_at)):
            self._remember(alert)
            # After a restart the group's history is unknown: let changes go out after group_wait.
            group = self._groups.setdefault(_group_key(alert), _Group(now + group_wait))
            group.last_sent.update((name, now - group_interval) for name in self._senders)

    # --- state changes -----------------------------------------------------------------
    def observe(self, decision: Decision) -> None:
        """Take one decision; alerts change, nothing is sent yet. A decision that cannot become
        an alert is logged and counted in :attr:`invalid_decisions`, never raised into the caller."""
        try:
            link = key_url(self.public_url, decision.key) if self.public_url else self.generator_url
            alert = Alert.from_decision(decision, runbook_url=self.runbook_url,
                                        window=self.windows.get(decision.rule), generator_url=link)
        except (ValueError, TypeError, AttributeError) as exc:
            self.invalid_decisions += 1
            log.error("dispatcher: ignoring decision %r: %s", decision, exc)
            return
        if alert is None:
            return
        with self._lock:
            fp = self._index.get((alert.alertname, alert.key))
            current = self._alerts.get(fp) if fp else None
            if alert.firing:
                if current is not None and current.firing:
                    # Still the same incident: keep startsAt, refresh the figures.
                    alert = Alert(current.labels, alert.annotations, current.starts_at, None, FIRING,
                                  alert.observed, alert.baseline, alert.window, alert.generator_url)
                # A resolved alert with other labels stays until its resolve has gone out.
            elif current is None or not current.firing:
                return  # a resolve for an alert never raised (or already resolved)
            else:
                alert = current.resolved(decision.time)
            self._remember(alert)
            self.outbox.save_alert(alert)
            self._groups.setdefault(_group_key(alert), _Group(self._clock() + self.group_wait))

    def advance(self, now: float | None = None) -> None:
        """Queue a notification for every integration of every group that is due at ``now``."""
        now = self._clock() if now is None else now
        with self._lock:
            for gk in sorted(self._groups):
                group = self._groups[gk]
                if group.next_at <= now + _EPS:
                    self._flush(gk, group, now)

    def deliver(self) -> None:
        """Send what the outbox holds: each integration in its own thread, oldest first; blocks
        while notifiers retry.

        A notification that still fails at its retry deadline stays queued, and later ones for
        the same integration wait behind it (a resolve never overtakes its trigger); one
        integration being down does not hold the others back.
        """
        with self._deliver_lock:
            queues: dict[str, list[Notification]] = {}
            for note in self.outbox.pending():
                queues.setdefault(note.integration, []).append(note)
            if len(queues) <= 1:
                for name, notes in queues.items():
                    self._deliver_queue(name, notes)
                return
            with ThreadPoolExecutor(max_workers=len(queues), thread_name_prefix="brownout-notify") as pool:
                futures = [pool.submit(self._deliver_queue, name, notes) for name, notes in queues.items()]
                for f in futures:
                    f.result()

    def _deliver_queue(self, name: str, notes: list[Notification]) -> None:
        sender = self._senders.get(name)
        for note in notes:
            if sender is None:
                log.warning("outbox: dropping notification %d for unknown integration %r", note.id, name)
                self.outbox.ack(note.id)
                self._count(name, "dropped")
                continue
            result = sender.notify(note.alerts)
            if result.ok:
                self.outbox.ack(note.id)
                self._count(name, "delivered")
            elif not result.retryable:
                log.error("%s refused notification %d: %s", name, note.id, result.detail)
                self.outbox.ack(note.id)
                self._count(name, "failed")
            else:
                self._count(name, "deferred")
                return

    def start(self, interval: float = 1.0) -> None:
        """Run :meth:`advance` and :meth:`deliver` every ``interval`` seconds in a daemon thread."""
        if self._worker is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.advance()
                    self.deliver()
                except Exception:
                    log.exception("alert dispatcher loop")
                self._stop.wait(interval)

        self._worker = threading.Thread(target=loop, name="brownout-alerts", daemon=True)
        self._worker.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread; retries in progress give up at once (the outbox keeps their work)."""
        self._stop.set()
        for sender in self._senders.values():
            close = getattr(sender, "close", None)
            if close is not None:
                close()
        if self._worker is not None:
            self._worker.join(timeout)
            self._worker = None

    # --- readings ----------------------------------------------------------------------
    def alerts(self) -> list[Alert]:
        """Active alerts (firing, or resolved and not yet notified), by start time."""
        with self._lock:
            return sorted(self._alerts.values(), key=lambda a: (a.starts_at, a.fingerprint))

    def pending(self) -> list[Notification]:
        """Queued notifications not yet delivered."""
        return self.outbox.pending()

    def inhibited(self, alert: Alert) -> bool:
        """True when an open breaker on the alert's key silences it (a lesser alert)."""
        if alert.alertname == BREAKER_ALERT:
            return False
        with self._lock:
            fp = self._index.get((BREAKER_ALERT, alert.key))
            breaker = self._alerts.get(fp) if fp else None
        if breaker is None or not breaker.firing:
            return False
        return _rank(alert.severity) < _rank(breaker.severity)

    # --- internals ---------------------------------------------------------------------
    def _remember(self, alert: Alert) -> None:
        self._alerts[alert.fingerprint] = alert
        self._index[(alert.alertname, alert.key)] = alert.fingerprint

    def _forget(self, alert: Alert) -> None:
        self._alerts.pop(alert.fingerprint, None)
        if self._index.get((alert.alertname, alert.key)) == alert.fingerprint:
            del self._index[(alert.alertname, alert.key)]

    def _flush(self, gk: str, group: _Group, now: float) -> None:
        members = sorted((a for a in self._alerts.values() if _group_key(a) == gk),
                         key=lambda a: (a.starts_at, a.fingerprint))
        visible = [a for a in members if a.firing and not self.inhibited(a)]
        with self.outbox.transaction():
            for name, sender in self._senders.items():
                self._flush_one(name, sender, gk, group, members, visible, now)
            for alert in members:
                if not alert.firing and not any(self._sent.get((n, alert.fingerprint)) == FIRING
                                                 for n in self._senders):
                    self._forget(alert)
                    self.outbox.delete_alert(alert.fingerprint)
        if any(_group_key(a) == gk for a in self._alerts.values()):
            repeats = [self._repeat(s) for s in self._senders.values()]
            group.next_at = now + min([self.group_interval, *repeats])
        else:
            del self._groups[gk]

    def _flush_one(self, name: str, sender: Notifier, gk: str, group: _Group,
                   members: list[Alert], visible: list[Alert], now: float) -> None:
        sent = self._sent
        new = [a for a in visible if sent.get((name, a.fingerprint)) != FIRING]
        resolved = [a for a in members if not a.firing and sent.get((name, a.fingerprint)) == FIRING]
        last = group.last_sent.get(name)
        changed = bool(new or resolved) and (last is None or now - last >= self.group_interval - _EPS)
        repeat = bool(visible) and last is not None and now - last >= self._repeat(sender) - _EPS
        if not (changed or repeat):
            return
        if not changed and any(n.group_key == gk for n in self.outbox.pending(name)):
            # The receiver is behind: a repeat would only grow the queue behind the same content.
            group.last_sent[name] = now
            return
        if sender.per_alert:
            batches = [[a] for a in (visible if repeat else new) + resolved]
        else:
            batches = [visible + resolved]
        for batch in batches:
            self.outbox.put(name, gk, batch, created=now)
        for a in visible:
            self._set_sent(name, a.fingerprint, FIRING)
        for a in resolved:
            self._set_sent(name, a.fingerprint, None)
        group.last_sent[name] = now

    def _set_sent(self, name: str, fp: str, status: str | None) -> None:
        if status is None:
            self._sent.pop((name, fp), None)
        else:
            self._sent[(name, fp)] = status
        self.outbox.set_sent(name, fp, status)

    def _repeat(self, sender: Notifier) -> float:
        own = getattr(sender, "repeat_interval", None)
        return self.repeat_interval if own is None else float(own)

    def _count(self, integration: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.notification(integration, result)


def _group_key(alert: Alert) -> str:
    return f"{alert.labels['provider']}/{alert.labels['region']}"


def _rank(severity: str) -> int:
    return SEVERITY_RANK.get(severity, 2)
