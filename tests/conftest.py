"""Shared fixtures. A real Kafka broker for tests marked ``integration``.

``kafka_bootstrap`` is the bootstrap address: ``$KAFKA_BOOTSTRAP_SERVERS`` when set, else a
throwaway KRaft broker started once per session by ``scripts/kafka_broker.py``. If that broker
cannot start, integration tests ERROR with the broker's log tail; they are never skipped.
Unit tests never touch Kafka, Java or Maven: nothing here starts unless asked for.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest
from support import kafka_broker_module

ROOT = Path(__file__).resolve().parent.parent


_broker_report: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _broker_report:
        terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _integration_needs_kafka(request: pytest.FixtureRequest) -> None:
    """Every test marked ``integration`` gets the broker, even one that only reads the env var."""
    if request.node.get_closest_marker("integration"):
        request.getfixturevalue("kafka_bootstrap")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a Kafka broker: ``$KAFKA_BOOTSTRAP_SERVERS`` or one started for the session."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    kb = kafka_broker_module()
    failure = None
    try:
        broker = kb.KafkaBroker()
        broker.start()
    except kb.BrokerError as exc:
        failure = str(exc)
    if failure is not None:
        pytest.fail(f"the Kafka broker for integration tests did not start: {failure}", pytrace=False)
    _broker_report.append(f"Kafka {kb.KAFKA_VERSION} broker {broker.bootstrap_servers} ready in "
                          f"{broker.started_in:.1f} s")
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """A factory of topic names unique to this test (and run): ``topic_name("control")``.

    Kafka allows ``[a-zA-Z0-9._-]`` up to 249 characters; the test's name is kept for reading logs.
    """
    test = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name)[:80].strip("-")
    run = uuid.uuid4().hex[:8]

    def make(purpose: str = "t") -> str:
        clean = re.sub(r"[^a-zA-Z0-9._-]+", "-", purpose)[:60]
        return f"test.{test}.{run}.{clean}"

    return make


@pytest.fixture
def kafka_transport(kafka_bootstrap: str):
    """A :class:`~brownout.transport.KafkaTransport` against ``kafka_bootstrap``."""
    from brownout.transport import KafkaTransport

    return KafkaTransport(kafka_bootstrap)
