"""Helpers for the hooks' tests (a module of its own: every test directory has a conftest)."""

from __future__ import annotations

import brownout.hooks as hooks
from brownout import semconv as sc
from brownout.codec import decode
from brownout.model import Event
from brownout.transport import MemoryTransport


class Captured:
    """What the hooks published: records on the events topic and their decoded events."""

    def __init__(self, transport: MemoryTransport) -> None:
        self.transport = transport

    def records(self):
        assert hooks.flush(10.0), "the exporter did not flush in time"
        return self.transport.records(sc.TOPIC_EVENTS)

    def events(self) -> list[Event]:
        out = []
        for rec in self.records():
            for ev in decode(rec.value, rec.header(sc.HEADER_CONTENT_TYPE).decode()):
                assert isinstance(ev, Event), ev
                assert rec.key == str(ev.key).encode()
                out.append(ev)
        return out

    def one(self) -> Event:
        evs = self.events()
        assert len(evs) == 1, evs
        return evs[0]
