"""What the examples share: print the events the hooks published, one line each."""

from __future__ import annotations

import json
from typing import Any

import brownout.hooks
from brownout.codec import decode


def print_events(topic: Any) -> None:
    """Flush the hooks, then print ``key flat-json`` for every event on ``topic``'s events topic."""
    brownout.hooks.flush()
    for rec in topic.records("brownout.events"):
        for ev in decode(rec.value, rec.header("content-type").decode()):
            print(rec.key.decode(), json.dumps(ev.to_flat()))
