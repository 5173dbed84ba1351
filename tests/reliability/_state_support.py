"""Helpers for the reliability tests that run `brownout collect` processes on the real broker."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

from support import free_port

from brownout import codec
from brownout import semconv as sc
from brownout.model import Event, Key
from brownout.transport import KafkaTransport

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(port: int) -> list[tuple[str, dict[str, str], float]]:
    """Samples of ``/metrics``: (name, labels, value); [] while the server is not up."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3).read().decode()
    except OSError:
        return []
    out = []
    for line in body.splitlines():
        m = _SAMPLE.match(line)
        if m:
            out.append((m.group(1), dict(_LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def sample(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float | None:
    for n, lab, v in samples:
        if n == name and all(lab.get(k) == want for k, want in labels.items()):
            return v
    return None


def key_labels(key: Key) -> dict[str, str]:
    return {"provider": key.provider, "region": key.region, "model": key.model}


class CollectProcess:
    """One `brownout collect` process with its own metrics port and log file."""

    def __init__(self, bootstrap: str, topics: dict[str, str], group: str, log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log_path = log
        self._log = open(log, "w")
        full_env = dict(os.environ, BROWNOUT_TOPICS_STATE=topics["state"],
                        BROWNOUT_TOPICS_DEAD_LETTER=topics["dead_letter"], BROWNOUT_LOG_LEVEL="INFO",
                        **(env or {}))
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "brownout.cli", "collect", "--bootstrap-servers", bootstrap,
             "--events-topic", topics["events"], "--control-topic", topics["control"], "--group-id", group,
             "--metrics-port", str(self.port), "--no-create-topics"],
            stdout=self._log, stderr=subprocess.STDOUT, env=full_env)

    def metrics(self) -> list[tuple[str, dict[str, str], float]]:
        return scrape(self.port)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text()


async def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.3) -> Any:
    """Poll ``predicate`` (sync, run in a thread) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class EventWriter:
    """Publishes events straight to the events topic (flat JSON, keyed like the hooks)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.producer = KafkaTransport(bootstrap).producer()
        self.sent = 0

    async def start(self) -> None:
        await self.producer.start()

    async def send(self, events: list[Event]) -> None:
        for e in events:
            await self.producer.send(self.topic, codec.encode_flat([e]), key=str(e.key).encode(),
                                     headers=((sc.HEADER_CONTENT_TYPE, sc.CONTENT_FLAT_JSON.encode()),))
        await self.producer.flush()
        self.sent += len(events)

    async def stop(self) -> None:
        await self.producer.stop()


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` now."""
    from brownout.transport.base import caught_up

    c = KafkaTransport(bootstrap).consumer([topic], from_beginning=True)
    await c.start()
    try:
        ends = await c.end_offsets()
        out: list[Any] = []
        deadline = time.monotonic() + 30
        while not await caught_up(c, ends) and time.monotonic() < deadline:
            out += await c.getmany(timeout=0.5, max_records=10000)
        return out
    finally:
        await c.stop()
