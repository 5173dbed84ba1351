"""The outbox: notifications not yet delivered, and the dispatcher's memory, on disk (sqlite).

Everything the dispatcher must not forget across a collector restart lives here: the queue of
notifications in the order they were decided, the alerts still active, and the notification log
(what each integration was last told about each fingerprint). Each change is one sqlite
transaction, so a crash leaves either the old state or the new one.

>>> from brownout.exporters.alerts import Alert
>>> box = Outbox()  # in memory; Outbox("/var/lib/brownout/outbox.db") on disk
>>> a = Alert({"alertname": "error_rate", "provider": "p", "region": "r", "model": "m",
...            "severity": "critical"}, {}, 60.0)
>>> with box.transaction():
...     n = box.put("slack", "p/r", [a], created=61.0)
>>> [(x.integration, x.alerts[0].fingerprint == a.fingerprint) for x in box.pending()]
[('slack', True)]
>>> box.ack(n); box.pending()
[]
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from brownout.exporters.alerts import Alert

__all__ = ["Notification", "Outbox", "OutboxError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    integration TEXT NOT NULL,
    group_key TEXT NOT NULL,
    created REAL NOT NULL,
    alerts TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (fp TEXT PRIMARY KEY, alert TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nflog (
    integration TEXT NOT NULL, fp TEXT NOT NULL, status TEXT NOT NULL,
    PRIMARY KEY (integration, fp)
);
"""


class OutboxError(RuntimeError):
    """The outbox file cannot be opened or used (names the path)."""


@dataclass(frozen=True)
class Notification:
    """One queued call to one integration: the alerts to send, in the order decided."""

    id: int
    integration: str
    group_key: str
    alerts: tuple[Alert, ...]
    created: float


class Outbox:
    """Durable queue plus dispatcher state, in one sqlite database (``path=None``: in memory).

    Safe to share between the thread that decides and the thread that delivers.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = ":memory:" if path is None else os.fspath(path)
        if path is not None:
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            if path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox {self.path}: not a usable sqlite database: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group changes into one atomic write (nests: only the outermost commits)."""
        with self._lock:
            if self._depth == 0:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("COMMIT")

    # --- the queue ---------------------------------------------------------------------
    def put(self, integration: str, group_key: str, alerts: Sequence[Alert], created: float) -> int:
        """Queue a notification; returns its id (ids grow in the order of ``put``)."""
        body = json.dumps([a.to_dict() for a in alerts], sort_keys=True)
        with self.transaction():
            cur = self._db.execute(
                "INSERT INTO outbox (integration, group_key, created, alerts) VALUES (?, ?, ?, ?)",
                (integration, group_key, created, body))
        return int(cur.lastrowid or 0)

    def pending(self, integration: str | None = None) -> list[Notification]:
        """Queued notifications, oldest first (optionally for one integration)."""
        sql = "SELECT id, integration, group_key, created, alerts FROM outbox"
        args: tuple[str, ...] = ()
        if integration is not None:
            sql += " WHERE integration = ?"
            args = (integration,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [Notification(int(i), str(n), str(g), tuple(Alert.from_dict(a) for a in json.loads(body)),
                             float(c)) for i, n, g, c, body in rows]

    def ack(self, notification_id: int) -> None:
        """Forget a notification: delivered, or permanently refused."""
        with self.transaction():
            self._db.execute("DELETE FROM outbox WHERE id = ?", (notification_id,))

    # --- dispatcher memory -------------------------------------------------------------
    def save_alert(self, alert: Alert) -> None:
        with self.transaction():
            self._db.execute("INSERT OR REPLACE INTO alerts (fp, alert) VALUES (?, ?)",
                             (alert.fingerprint, json.dumps(alert.to_dict(), sort_keys=True)))

    def delete_alert(self, fp: str) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM alerts WHERE fp = ?", (fp,))

    def alerts(self) -> list[Alert]:
        with self._lock:
            rows = self._db.execute("SELECT alert FROM alerts ORDER BY fp").fetchall()
        return [Alert.from_dict(json.loads(r[0])) for r in rows]

    def set_sent(self, integration: str, fp: str, status: str | None) -> None:
        """Record what ``integration`` was last told about ``fp`` (None forgets it)."""
        with self.transaction():
            if status is None:
                self._db.execute("DELETE FROM nflog WHERE integration = ? AND fp = ?", (integration, fp))
            else:
                self._db.execute("INSERT OR REPLACE INTO nflog (integration, fp, status) VALUES (?, ?, ?)",
                                 (integration, fp, status))

    def sent(self) -> dict[tuple[str, str], str]:
        """The notification log: ``(integration, fingerprint) -> status``."""
        with self._lock:
            rows = self._db.execute("SELECT integration, fp, status FROM nflog").fetchall()
        return {(str(i), str(f)): str(s) for i, f, s in rows}
