"""AlertmanagerNotifier against a real Alertmanager on loopback: post, read back, resolve.

Needs the Debian package ``prometheus-alertmanager`` (binary ``prometheus-alertmanager`` or
``alertmanager``); fails with a clear message when CI=true and it is missing, skips elsewhere.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from exporters_support import KEY, FakeClock, decision, need_binary
from support import free_port

from brownout.exporters import AlertDispatcher, AlertmanagerNotifier, RetryingNotifier

CONFIG = """\
route:
  receiver: blackhole
  group_by: [provider, region]
receivers:
  - name: blackhole
"""


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = need_binary("alertmanager", "prometheus-alertmanager")
    tmp: Path = tmp_path_factory.mktemp("alertmanager")
    (tmp / "am.yml").write_text(CONFIG)
    port = free_port()
    log = (tmp / "am.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp / 'am.yml'}", f"--storage.path={tmp / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"alertmanager did not start: {(tmp / 'am.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_alert_round_trips_through_a_real_alertmanager(alertmanager: str) -> None:
    # Decision times are event times, close to the wall clock; keep the whole story in the past.
    clock = FakeClock(time.time() - 400)
    with httpx.Client(timeout=5) as client:
        am = AlertmanagerNotifier(alertmanager, client=client)
        d = AlertDispatcher([RetryingNotifier(am, sleep=clock.sleep, clock=clock, rng=random.Random(0))],
                            clock=clock, runbook_url="https://rb.example/brownout",
                            generator_url="http://brownout.example/")
        d.observe(decision(clock.now))
        clock.now += 30
        d.advance()
        d.deliver()
        assert d.pending() == []

        got = client.get(alertmanager + "/api/v2/alerts", params={"filter": 'alertname="error_rate"'}).json()
        assert len(got) == 1
        alert = got[0]
        assert alert["labels"] == {"alertname": "error_rate", "rule": "error_rate", "provider": KEY.provider,
                                   "region": KEY.region, "model": KEY.model, "severity": "critical"}
        assert alert["annotations"]["runbook_url"] == "https://rb.example/brownout#error_rate"
        assert alert["status"]["state"] == "active"
        assert alert["generatorURL"] == "http://brownout.example/"
        groups = client.get(alertmanager + "/api/v2/alerts/groups").json()
        assert any(g["labels"] == {"provider": KEY.provider, "region": KEY.region} for g in groups)

        d.observe(decision(time.time() - 1, state="resolved"))
        clock.now += 300
        d.advance()
        d.deliver()
        assert d.pending() == []
        active = client.get(alertmanager + "/api/v2/alerts",
                            params={"filter": 'alertname="error_rate"', "active": "true"}).json()
        # Alertmanager keeps a resolved alert until garbage collection, with its endsAt in the past.
        assert [a for a in active if _ends_in_future(a["endsAt"])] == []
        assert all(a["fingerprint"] == alert["fingerprint"] for a in active)


def test_alertmanager_rejects_garbage_permanently(alertmanager: str) -> None:
    with httpx.Client(timeout=5) as client:
        resp = client.post(alertmanager + "/api/v2/alerts", json=[{"labels": {}}])
    from brownout.exporters import classify_http

    verdict = classify_http(resp.status_code, resp.headers)
    assert not verdict.ok and not verdict.retryable


def _ends_in_future(ends_at: str) -> bool:
    from datetime import datetime

    return datetime.fromisoformat(ends_at).timestamp() > time.time()
