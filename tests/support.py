"""Helpers shared by the tests that run real servers (Kafka, `brownout collect`, HTTP stand-ins)."""

from __future__ import annotations

import importlib.util
import socket
import sys
import time
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent


class ServiceUnavailable(Exception):
    """What an SDK raises for an HTTP 503: the hooks read ``status_code``."""

    status_code = 503


def kafka_broker_module() -> ModuleType:
    """``scripts/kafka_broker.py``, loaded once (it is a script, not a package module)."""
    name = "brownout_kafka_broker"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "kafka_broker.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[str, float]:
    """``/metrics`` of a collector as {"name{labels}": value}; empty while it does not answer."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return {}
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def ready(port: int) -> bool:
    """True once a collector's ``/readyz`` answers 200."""
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200
    except OSError:
        return False


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def collector_topics(topic_name: Callable[[str], str]) -> dict[str, str]:
    """The collector's four topics, named for this test (``topic_name`` is the conftest fixture),
    under the keyword names of :func:`~brownout.transport.base.default_topics`."""
    return {"events": topic_name("events"), "control": topic_name("control"),
            "state": topic_name("state"), "dead_letter": topic_name("dead-letter")}


async def create_collector_topics(bootstrap: str, topic_name: Callable[[str], str], partitions: int,
                                  extra: tuple[Any, ...] = ()) -> dict[str, str]:
    """Create :func:`collector_topics` (events and state with ``partitions``) and ``extra``
    TopicSpecs on the broker at ``bootstrap``; returns the names."""
    from brownout.transport import KafkaTransport
    from brownout.transport.base import default_topics

    topics = collector_topics(topic_name)
    await KafkaTransport(bootstrap).create_topics(default_topics(**topics, partitions=partitions) + list(extra))
    return topics
