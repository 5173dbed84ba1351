"""Events in, decisions out: the one code path shared by replay, the collector and the demo.

A :class:`Pipeline` feeds every event to the detectors (:class:`~brownout.detectors.Engine`)
and the breakers (:class:`~brownout.breakers.BreakerBook`), and turns what they conclude
into :class:`~brownout.model.Decision` values in event-time order. The caller owns the
clock: replay passes the newest event time it has read, the collector the wall clock.

>>> from brownout.model import Event, Key
>>> p = Pipeline()
>>> east, west = Key("openai", "eastus", "gpt-4o"), Key("openai", "westus", "gpt-4o")
>>> for i in range(660):  # 10 healthy minutes on both, then a hard 503 burst in eastus
...     p.observe(Event(west, 1000.0 + i, 0.8, ttft=0.3))
...     p.observe(Event(east, 1000.0 + i, 0.1, error_type="503") if i >= 600 else Event(east, 1000.0 + i, 0.8))
>>> [(d.time - 1600, d.kind, d.rule, str(d.key), d.state) for d in p.advance(1640.0) if d.state != "pending"]
[(5.0, 'alert', 'error_rate', 'openai/eastus/gpt-4o', 'firing'), (10.0, 'breaker', 'error_breaker', 'openai/eastus/gpt-4o', 'open')]
"""

from __future__ import annotations

from typing import Any

from brownout.model import Decision, Event, Finding, Key

_KIND_ORDER = {"alert": 0, "breaker": 1}


class Pipeline:
    """Detectors then breakers, judged in event time; deterministic for a given input.

    Parameters
    ----------
    rules
        A :class:`brownout.rules.RuleSet`; None loads the default pack.
    seed
        Seeds the breakers' cooldown jitter, so a replay prints the same lines every time.
    """

    def __init__(self, rules: Any = None, *, seed: int = 0, signer: Any = None) -> None:
        from brownout.breakers import BreakerBook
        from brownout.detectors import Engine
        from brownout.rules import load_rules

        self.rules = rules if rules is not None else load_rules()
        self.engine = Engine(self.rules)
        self.book = BreakerBook(self.rules.breaker, seed=seed, signer=signer)
        self.events = 0
        self._readings_minute: int | None = None  # the minute whose readings the breakers have

    def observe(self, event: Event) -> None:
        """Feed one (validated) event to the detectors and the breakers."""
        self.events += 1
        self.engine.observe(event)
        self.book.observe(event)

    def advance(self, now: float, *, final: bool = False) -> list[Decision]:
        """Everything decided up to event time ``now``, in time order (``final``: no event will
        come any more; see :meth:`Engine.advance`)."""
        out: list[Decision] = []
        for f in self.engine.advance(now, final=final):
            if f.action == "breaker":
                self.book.on_finding(f)
            elif f.state in ("pending", "firing", "resolved"):
                out.append(_alert_decision(f))
        out.extend(self.book.advance(now))
        # control records carry each key's TTFT readings: they change once a minute
        watermark = self.engine.watermark
        minute = None if watermark is None else int(watermark // 60.0)
        if minute != self._readings_minute:
            from brownout.breakers.machine import readings_from_status

            self._readings_minute = minute
            self.book.update_readings(readings_from_status(self.engine.status()))
        out.sort(key=lambda d: (d.time, _KIND_ORDER.get(d.kind, 9), str(d.key), d.rule))
        return out

    def status(self) -> dict[Key, Any]:
        """Per-key readings for views and metrics (see :meth:`Engine.status`)."""
        return self.engine.status()

    def breaker_states(self) -> dict[Key, str]:
        return self.book.states()

    @property
    def late_events(self) -> int:
        return int(getattr(self.engine, "late_events", 0))


def _alert_decision(f: Finding) -> Decision:
    return Decision(f.time, "alert", f.rule, f.key, f.state, f.observed, f.baseline, f.severity)
