"""Alert lifecycle: inactive -> pending -> firing -> resolved, with hysteresis and a minimum hold.

A rule's condition has two thresholds: ``fire`` (the value must reach it to start or promote
an alert) and ``clear`` (the value must fall past it to end one). Between them the state holds.
An alert promotes to firing after ``for_`` seconds pending, and resolves only after the value
stayed clear for ``keep_firing_for`` seconds, so a signal hovering at the threshold fires once
instead of flapping (Prometheus ``for`` and ``keep_firing_for``, Alertmanager states).

>>> life = AlertLifecycle(for_=10, keep_firing_for=10)
>>> [life.update(t, fire=f, clear=c) for t, f, c in
...  [(0, True, False), (5, True, False), (10, True, False), (15, False, False),
...   (20, False, True), (25, False, True), (30, False, True)]]
['pending', None, 'firing', None, None, None, 'resolved']
>>> life.state
'inactive'
"""

from __future__ import annotations

from typing import Any

__all__ = ["AlertLifecycle", "INACTIVE", "PENDING", "FIRING", "RESOLVED"]

INACTIVE = "inactive"
PENDING = "pending"
FIRING = "firing"
RESOLVED = "resolved"


class AlertLifecycle:
    """State of one rule for one key.

    Parameters
    ----------
    for_
        Seconds an alert stays pending (value not cleared) before it fires.
    keep_firing_for
        Seconds the value must stay cleared before a firing alert resolves.
    """

    __slots__ = ("for_", "keep_firing_for", "state", "since", "_clear_since")

    def __init__(self, for_: float = 0.0, keep_firing_for: float = 0.0) -> None:
        self.for_ = for_
        self.keep_firing_for = keep_firing_for
        self.state = INACTIVE
        self.since: float | None = None
        self._clear_since: float | None = None

    @property
    def active(self) -> bool:
        """Pending or firing: the key's baseline for this rule must not learn now."""
        return self.state != INACTIVE

    def update(self, t: float, *, fire: bool, clear: bool) -> str | None:
        """Judge the value at time ``t``; return the new state on a transition, else None.

        ``fire``: the value reached the firing threshold. ``clear``: it fell past the clear
        threshold (or there is no data). Both False: inside the hysteresis band, hold.
        A pending alert that clears returns ``resolved`` too, so every ``pending`` is closed.
        """
        state = self.state
        if state == INACTIVE:
            if fire:
                self.state, self.since = PENDING, t
                if self.for_ <= 0:
                    self.state = FIRING
                    return FIRING
                return PENDING
            return None
        if state == PENDING:
            if clear:
                self.state, self.since = INACTIVE, t
                return RESOLVED
            if fire and self.since is not None and t - self.since >= self.for_:
                self.state, self.since, self._clear_since = FIRING, t, None
                return FIRING
            return None
        # firing
        if not clear:
            self._clear_since = None
            return None
        if self._clear_since is None:
            self._clear_since = t
        if t - self._clear_since >= self.keep_firing_for:
            self.state, self.since, self._clear_since = INACTIVE, t, None
            return RESOLVED
        return None

    def export(self) -> dict[str, Any]:
        return {"state": self.state, "since": self.since, "clear_since": self._clear_since}

    def install(self, state: dict[str, Any]) -> None:
        if state["state"] not in (INACTIVE, PENDING, FIRING):
            raise ValueError(f"alert state {state['state']!r} is not inactive, pending or firing")
        self.state = state["state"]
        self.since = None if state["since"] is None else float(state["since"])
        self._clear_since = None if state["clear_since"] is None else float(state["clear_since"])
