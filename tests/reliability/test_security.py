"""Security on the real broker: TLS (a throwaway CA made for the test) plus SASL SCRAM-SHA-512.

- `brownout collect` reads its Kafka settings from a config file and the password from
  ``BROWNOUT_KAFKA_SASL_PASSWORD``, creates its topics, consumes the hooks' events and
  publishes signed control records; the password appears in no log, output or metric.
- A wrong password stops it without showing the password (one clear line instead of a traceback
  is a known collector bug, marked xfail).
- Key rotation: the collector signs with key B; a router board holding keys A and B accepts its
  records, a board holding only A refuses (and counts) them, and a forged record is refused.
- Secrets are not accepted from the config file; the hooks capture no prompt, reply or API key.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
from support import ServiceUnavailable, collector_topics, free_port, kafka_broker_module, wait_for

import brownout.hooks as hooks
from brownout import semconv as sc
from brownout.breakers import AsyncBreakerBoard, ControlRecord
from brownout.breakers.record import Signer, default_key_id
from brownout.collector.settings import SettingsError, load_settings
from brownout.model import Key
from brownout.transport import KafkaSettings, KafkaTransport

PASSWORD = "pw-Zq8-" + os.urandom(6).hex()  # never printed by anything under test
USER = "brownout-collector"
KEY_A = b"old-signing-key-A-" + os.urandom(8).hex().encode()
KEY_B = b"new-signing-key-B-" + os.urandom(8).hex().encode()
DEGRADED = Key("openai", "eastus", "gpt-4o")
SIBLING = Key("openai", "westus", "gpt-4o")


def http_get(port: int, path: str) -> str:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3).read().decode()
    except OSError:
        return ""


@pytest.fixture(scope="module")
def secure_broker() -> Iterator[Any]:
    kb = kafka_broker_module()
    broker = kb.KafkaBroker(sasl_ssl=True, scram_users={USER: PASSWORD})
    try:
        broker.start()
    except kb.BrokerError as exc:
        pytest.fail(f"the SASL_SSL broker did not start: {exc}", pytrace=False)
    yield broker
    broker.stop()


def settings_for(broker: Any, password: str = PASSWORD) -> KafkaSettings:
    return KafkaSettings(broker.bootstrap_servers, security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                         sasl_username=USER, sasl_password=password, ssl_cafile=str(broker.ca_file))


def write_config(path: Path, broker: Any, topics: dict[str, str], group: str, metrics_port: int,
                 key_file: Path | None) -> Path:
    config = {
        "kafka": {"bootstrap_servers": broker.bootstrap_servers, "security_protocol": "SASL_SSL",
                  "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": USER, "ssl_cafile": str(broker.ca_file),
                  "partitions": 2},
        "topics": topics,
        "group_id": group,
        "metrics": {"host": "127.0.0.1", "port": metrics_port},
        "log_level": "DEBUG",  # the most talkative level: still no secret
    }
    if key_file is not None:
        config["signing"] = {"key_file": str(key_file)}
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def collector_env(password: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROWNOUT_")}
    env["BROWNOUT_KAFKA_SASL_PASSWORD"] = password
    return env


def call(key: Key, fail: bool) -> None:
    try:
        with hooks.observe(provider=key.provider, region=key.region, model=key.model, stream=True) as obs:
            if fail:
                raise ServiceUnavailable("503 from the stand-in provider")
            for _ in range(5):
                obs.chunk()
            obs.usage(input_tokens=20, output_tokens=5)
    except ServiceUnavailable:
        pass


async def read_topic(settings: KafkaSettings, topic: str) -> list[Any]:
    c = KafkaTransport(settings).consumer([topic], from_beginning=True)
    await c.start()
    try:
        out, quiet = [], 0
        while quiet < 2:
            batch = await c.getmany(timeout=1.0)
            quiet = 0 if batch else quiet + 1
            out += batch
        return out
    finally:
        await c.stop()


async def board_view(settings: KafkaSettings, topic: str, keys: list[bytes]) -> tuple[dict[Key, str], dict[str, int]]:
    results: dict[str, int] = {}

    def count(rec: Any, result: str, raw: Any) -> None:
        results[result] = results.get(result, 0) + 1

    board = AsyncBreakerBoard(KafkaTransport(settings), topic, verify_keys=keys, registry=None, on_record=count)
    await board.start(strict=True)
    try:
        return {k: board.state(k) for k in (DEGRADED, SIBLING)}, results
    finally:
        await board.stop()


async def publish(settings: KafkaSettings, topic: str, value: bytes, key: bytes,
                  headers: tuple[tuple[str, bytes], ...]) -> None:
    p = KafkaTransport(settings).producer()
    await p.start()
    try:
        await p.send(topic, value, key=key, headers=headers)
        await p.flush()
    finally:
        await p.stop()


@pytest.mark.integration
def test_collect_over_sasl_ssl_with_signed_records_and_key_rotation(secure_broker, topic_name, tmp_path, caplog):
    caplog.set_level("DEBUG")
    topics = collector_topics(topic_name)
    key_file = tmp_path / "signing.key"
    key_file.write_bytes(KEY_B + b"\n")
    port = free_port()
    cfg = write_config(tmp_path / "brownout.yaml", secure_broker, topics, topic_name("group"), port, key_file)
    log_path = tmp_path / "collector.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "brownout.cli", "collect", "--config", str(cfg)],
                            stdout=log, stderr=subprocess.STDOUT, env=collector_env(PASSWORD))
    settings = settings_for(secure_broker)
    try:
        wait_for(lambda: proc.poll() is not None or http_get(port, "/readyz"), 90, "the collector's /readyz")
        assert proc.poll() is None, log_path.read_text()[-3000:]
        hooks.configure(kafka=settings, topic=topics["events"])
        emitted = 0
        t_start = time.monotonic()
        i = 0
        while time.monotonic() - t_start < 20:
            for key in (DEGRADED, SIBLING):
                call(key, fail=key == DEGRADED and i % 5 < 3)
                emitted += 1
            i += 1
            time.sleep(0.1)
        assert hooks.flush(30)
        stats = hooks.stats()
        assert stats["sent"] == emitted and stats["errors"] == 0, stats

        def signed_open() -> list[Any]:
            recs = asyncio.run(read_topic(settings, topics["control"]))
            return [r for r in recs if r.value and ControlRecord.from_bytes(r.value).state == "open"]
        opens = wait_for(signed_open, 60, "a signed open record on the control topic", interval=2)
        assert all(r.header(sc.HEADER_KEY_ID) == default_key_id(KEY_B).encode() for r in opens)

        # Rotation: A and B during the switch accepts B's records; A alone refuses and counts them.
        both, both_results = asyncio.run(board_view(settings, topics["control"], [KEY_A, KEY_B]))
        assert both[DEGRADED] in ("open", "half_open") and both[SIBLING] == "closed"
        assert both_results.get("refused", 0) == 0 and both_results["accepted"] >= 1
        old_only, old_results = asyncio.run(board_view(settings, topics["control"], [KEY_A]))
        assert old_only[DEGRADED] == "closed"  # refused records leave the key failing open
        assert old_results["refused"] >= 1 and "accepted" not in old_results

        # Forgeries: a "closed" for the degraded key with a newer seq, signed with a key nobody
        # trusts but naming B's key id; and one with no signature at all.
        latest = ControlRecord.from_bytes(opens[-1].value)
        forged = ControlRecord(DEGRADED, "closed", since=time.time(), seq=latest.seq + 10, issued_at=time.time(),
                               expires_at=time.time() + 3600).to_bytes()
        bad_sig = Signer(b"attacker-key", key_id=default_key_id(KEY_B)).headers(forged)
        asyncio.run(publish(settings, topics["control"], forged, str(DEGRADED).encode(), bad_sig))
        asyncio.run(publish(settings, topics["control"], forged, str(DEGRADED).encode(), ()))
        after, after_results = asyncio.run(board_view(settings, topics["control"], [KEY_A, KEY_B]))
        assert after[DEGRADED] in ("open", "half_open"), "a forged record must not close the breaker"
        assert after_results["refused"] == 2

        # Secrets: the password is nowhere the collector writes or serves.
        metrics = http_get(port, "/metrics")
        assert "brownout_events_total" in metrics
        assert PASSWORD not in metrics
    finally:
        hooks.configure()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        log.close()
    output = log_path.read_text()
    print(output[-2000:])
    assert code == 0
    assert "collector started" in output
    for secret in (PASSWORD, KEY_A.decode(), KEY_B.decode()):
        assert secret not in output
        assert secret not in caplog.text


WRONG = "wrong-" + os.urandom(6).hex()


@pytest.fixture(scope="module")
def wrong_password_run(secure_broker: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str]:
    """`brownout collect` run once with a wrong password: (exit code, everything it printed)."""
    tmp = tmp_path_factory.mktemp("wrong-password")
    topics = {n: f"test.wrong-password.{n}" for n in ("events", "control", "state", "dead_letter")}
    cfg = write_config(tmp / "brownout.yaml", secure_broker, topics, "wrong-password", free_port(), None)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "brownout.cli", "collect", "--config", str(cfg)],
                          capture_output=True, text=True, env=collector_env(WRONG), timeout=120)
    output = proc.stdout + proc.stderr
    print(f"\nwrong password: exit {proc.returncode} after {time.monotonic() - t0:.1f} s; last lines:\n"
          + "\n".join(output.splitlines()[-6:]))
    return proc.returncode, output


@pytest.mark.integration
def test_a_wrong_password_stops_the_collector_without_showing_it(wrong_password_run):
    code, output = wrong_password_run
    assert code != 0
    assert WRONG not in output and PASSWORD not in output
    assert "SaslAuthenticationFailed" in output  # aiokafka's own log line says why


@pytest.mark.integration
def test_a_wrong_password_is_reported_in_one_clear_line(wrong_password_run):
    code, output = wrong_password_run
    assert "Traceback" not in output
    last = output.strip().splitlines()[-1]
    assert "authentication" in last.lower(), f"the last line should say authentication failed: {last!r}"


def test_kafka_password_is_not_accepted_from_the_config_file(tmp_path):
    cfg = tmp_path / "brownout.yaml"
    cfg.write_text("kafka:\n  sasl_password: hunter2\n")
    with pytest.raises(SettingsError, match=r"kafka\.sasl_password .*unknown setting") as err:
        load_settings(str(cfg), env={})
    assert "hunter2" not in str(err.value)


def test_kafka_password_comes_from_env_or_a_file(tmp_path):
    secret = tmp_path / "kafka-password"
    secret.write_text("from-a-file\n")
    base = {"BROWNOUT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "BROWNOUT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"}
    s = load_settings(env=base)
    assert s.kafka_settings({**base, "BROWNOUT_KAFKA_SASL_PASSWORD": "from-env"}).sasl_password == "from-env"
    from_file = s.kafka_settings({**base, "BROWNOUT_KAFKA_SASL_PASSWORD_FILE": str(secret)})
    assert from_file.sasl_password == "from-a-file"
    assert "from-a-file" not in repr(from_file)


def test_hooks_capture_no_prompt_response_or_api_key_by_default():
    import openai

    from brownout.hooks import instrument_openai, uninstrument_openai
    from brownout.hooks.testing import FakeLLMServer, Plan
    from brownout.transport import MemoryTransport

    prompt = "PROMPT-" + os.urandom(6).hex()
    api_key = "sk-test-" + os.urandom(8).hex()
    t = MemoryTransport()
    hooks.configure(transport=t)
    try:
        with FakeLLMServer() as server:
            server.plan(Plan(chunks=4), Plan(chunks=2), Plan(status=503))
            client = openai.OpenAI(base_url=server.url + "/v1", api_key=api_key, max_retries=0)
            instrument_openai(client, region="eastus")
            try:
                messages = [{"role": "user", "content": prompt}]
                for _chunk in client.chat.completions.create(model="gpt-4o", messages=messages, stream=True):
                    pass
                client.chat.completions.create(model="gpt-4o", messages=messages)
                with pytest.raises(openai.InternalServerError):
                    client.chat.completions.create(model="gpt-4o", messages=messages)
            finally:
                uninstrument_openai(client)
                client.close()
            answers = [b'"t0"', b'"t1"', b'"t2"', b'"t3"', b'"hi"']  # the fake server's replies
        assert hooks.flush(10)
        assert hooks.stats()["sent"] == 3
        records = t.records(sc.TOPIC_EVENTS)
        wire = b"".join((r.value or b"") + (r.key or b"") + b"".join(k.encode() + v for k, v in r.headers)
                        for r in records)
        assert prompt.encode() not in wire and api_key.encode() not in wire
        from brownout.codec import decode
        events = [e for r in records for e in decode(r.value)]
        flat = json.dumps([e.to_flat() for e in events]).encode()
        assert not any(a in flat for a in answers), flat
    finally:
        hooks.configure()
