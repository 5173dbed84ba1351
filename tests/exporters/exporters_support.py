"""Plain helpers for the exporters tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil

import pytest

from brownout.model import Decision, Key


class FakeClock:
    """Time that moves only when something sleeps or the test says so."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.sleeps.append(seconds)
        self.now += seconds


KEY = Key("openai", "eastus", "gpt-4o")


def decision(t: float, rule: str = "error_rate", state: str = "firing", key: Key = KEY, kind: str = "alert",
             severity: str | None = "critical", observed: float | None = 0.2,
             baseline: float | None = 0.01) -> Decision:
    return Decision(t, kind, rule, key, state, observed, baseline, severity)


def need_binary(*names: str) -> str:
    """The first binary found; otherwise fail when CI=true, skip elsewhere."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    msg = (f"{' or '.join(names)} not found: install the Debian packages prometheus and "
           f"prometheus-alertmanager (apt-get install -y prometheus prometheus-alertmanager)")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)
