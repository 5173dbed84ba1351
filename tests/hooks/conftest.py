"""Fixtures for the hooks: a MemoryTransport the hooks publish to, and its decoded events."""

from __future__ import annotations

from typing import Iterator

import pytest
from hooks_support import Captured

import brownout.hooks as hooks
from brownout.transport import MemoryTransport


@pytest.fixture
def captured() -> Iterator[Captured]:
    t = MemoryTransport()
    hooks.configure(transport=t, interval=0.05)
    try:
        yield Captured(t)
    finally:
        hooks.configure()


@pytest.fixture(scope="session")
def llm_server():
    from brownout.hooks.testing import FakeLLMServer

    server = FakeLLMServer()
    yield server
    server.close()


@pytest.fixture
def server(llm_server):
    from brownout.hooks.testing import Plan

    llm_server.default = Plan()
    llm_server.requests.clear()
    yield llm_server
    llm_server.default = Plan()
