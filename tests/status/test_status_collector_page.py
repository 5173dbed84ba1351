"""``brownout collect``'s wiring: the status page on the metrics port, fed by the running collector,
and the settings that shape it (named when wrong)."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from brownout import codec
from brownout import semconv as sc
from brownout.collector.run import run_collector
from brownout.collector.settings import SettingsError, load_settings
from brownout.model import Event, Key
from brownout.rules import load_rules
from brownout.status import key_path
from brownout.transport import MemoryTransport

KEY = Key("openai", "eastus", "gpt-4o")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


async def test_the_running_collector_serves_its_status_page() -> None:
    port = free_port()
    settings = load_settings(env={"BROWNOUT_METRICS_HOST": "127.0.0.1", "BROWNOUT_METRICS_PORT": str(port),
                                  "BROWNOUT_STATUS_REFRESH": "3"})
    transport = MemoryTransport()
    stop = asyncio.Event()
    task = asyncio.create_task(run_collector(settings, load_rules(), transport=transport, stop=stop,
                                             registry=CollectorRegistry(), env={}))
    producer = transport.producer()
    now = time.time()
    events = [Event(KEY, now - 120 + i / 2, 0.8, ttft=0.3, error_type="503" if i % 10 == 0 else None)
              for i in range(200)]
    await producer.send(sc.TOPIC_EVENTS, codec.encode_otlp_proto(events), key=str(KEY).encode(),
                        headers=((sc.HEADER_CONTENT_TYPE, sc.CONTENT_OTLP_PROTO.encode()),))
    base = f"http://127.0.0.1:{port}"
    html = ""
    try:
        for _ in range(100):
            await asyncio.sleep(0.1)
            try:
                html = await asyncio.to_thread(fetch, base + "/status")
            except OSError:
                continue
            if 'data-key="openai/eastus/gpt-4o"' in html:
                break
        assert 'data-key="openai/eastus/gpt-4o"' in html and 'content="3"' in html
        row = html[html.index('data-key="openai/eastus/gpt-4o"'):]
        assert "warming" in row and "<svg" in row  # no baseline yet; its history already has a row
        page = await asyncio.to_thread(fetch, base + key_path(KEY))
        assert page.count('class="chart"') == 4
        assert "brownout_events_total" in await asyncio.to_thread(fetch, base + "/metrics")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_history_minutes_zero_turns_the_page_off() -> None:
    port = free_port()
    settings = load_settings(env={"BROWNOUT_METRICS_HOST": "127.0.0.1", "BROWNOUT_METRICS_PORT": str(port),
                                  "BROWNOUT_STATUS_HISTORY_MINUTES": "0"})
    stop = asyncio.Event()
    task = asyncio.create_task(run_collector(settings, load_rules(), transport=MemoryTransport(), stop=stop,
                                             registry=CollectorRegistry(), env={}))
    try:
        for _ in range(100):
            await asyncio.sleep(0.05)
            try:
                await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                continue
        with pytest.raises(urllib.error.HTTPError) as err:
            await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/status")
        err.value.close()
        assert err.value.code == 404
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def test_status_settings_come_from_the_environment() -> None:
    s = load_settings(env={"BROWNOUT_NOTIFY_PUBLIC_URL": "https://brownout.example.com",
                           "BROWNOUT_STATUS_HISTORY_MINUTES": "360"})
    assert s.notify.public_url == "https://brownout.example.com"
    assert (s.status.history_minutes, s.status.refresh) == (360, 15)


@pytest.mark.parametrize(("env", "message"), [
    ({"BROWNOUT_NOTIFY_PUBLIC_URL": "brownout.example.com"},
     "notify.public_url: 'brownout.example.com' is not an http"),
    ({"BROWNOUT_STATUS_HISTORY_MINUTES": "1"}, "status.history_minutes: 1 is not 0"),
    ({"BROWNOUT_STATUS_HISTORY_MINUTES": "lots"}, "status.history_minutes (from BROWNOUT_STATUS_HISTORY_MINUTES)"),
    ({"BROWNOUT_STATUS_REFRESH": "-1"}, "status.refresh: must be >= 0"),
])
def test_bad_status_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(env=env)
    assert message in str(err.value)
