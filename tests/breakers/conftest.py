"""Shared fixtures: offline litellm, and OpenAI-protocol servers (the shipped FakeLLMServer, each
answering its own name) for a real litellm.Router."""

import os

import pytest

from brownout.hooks.testing import FakeLLMServer

# litellm fetches its model cost map from GitHub at import; tests run offline
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture
def servers():
    """Two chat servers, answering ``east`` and ``west``."""
    with FakeLLMServer(text="east") as east, FakeLLMServer(text="west") as west:
        yield east, west


@pytest.fixture
def make_server():
    """A factory of started chat servers answering their name, stopped after the test."""
    started = []

    def make(name: str) -> FakeLLMServer:
        server = FakeLLMServer(text=name)
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()
