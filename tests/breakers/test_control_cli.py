"""`brownout control tail`: the board as a table, then one line per change."""

import asyncio
import json

from click.testing import CliRunner

from brownout import semconv as sc
from brownout.breakers import ControlRecord, Signer
from brownout.breakers.cli import control_group, tail_board
from brownout.model import Key
from brownout.transport import MemoryTransport

A = Key("openai", "eastus", "gpt-4o")
B = Key("azure.ai.openai", "swedencentral", "gpt-4o")


def put(t, key, state, seq, issued_at=2e9, signer=None):
    rec = ControlRecord(key, state, since=issued_at, until=None, reason="tripped", rule="error_breaker",
                        seq=seq, issued_at=issued_at, expires_at=issued_at + 30)
    value = rec.to_bytes()
    t.append(sc.TOPIC_CONTROL, value, rec.kafka_key(), signer.headers(value) if signer else ())


def test_once_prints_the_board():
    t = MemoryTransport()
    put(t, A, "open", 1)
    put(t, B, "half_open", 2)
    result = CliRunner().invoke(control_group(lambda ctx: t), ["tail", "--once"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["KEY", "STATE", "SINCE", "UNTIL", "REASON", "RULE", "SEQ", "EXPIRES"]
    assert [ln.split()[:2] for ln in lines[1:]] == [[str(B), "half_open"], [str(A), "open"]]


def test_empty_topic_says_everything_is_closed():
    result = CliRunner().invoke(control_group(lambda ctx: MemoryTransport()), ["tail", "--once"])
    assert result.exit_code == 0 and "every key is closed" in result.output


def test_json_lines_and_verify_key_file(tmp_path):
    t = MemoryTransport()
    signer = Signer(b"secret")
    put(t, A, "open", 1, signer=signer)
    put(t, B, "open", 1)  # unsigned: refused
    (tmp_path / "key").write_bytes(b"secret\n")
    result = CliRunner().invoke(control_group(lambda ctx: t),
                                ["tail", "--once", "--json", "--verify-key-file", str(tmp_path / "key")])
    assert result.exit_code == 0, result.output
    assert [json.loads(ln)["key"] for ln in result.output.splitlines()] == [A.as_dict()]


def test_transport_factory_from_context_or_a_usage_error():
    t = MemoryTransport()
    group = control_group()
    ok = CliRunner().invoke(group, ["tail", "--once"], obj={"transport_factory": lambda ctx: t})
    assert ok.exit_code == 0
    missing = CliRunner().invoke(group, ["tail", "--once"])
    assert missing.exit_code == 2 and "--bootstrap-servers" in missing.output


async def test_follows_changes_but_not_heartbeats():
    t = MemoryTransport()
    put(t, A, "open", 1, issued_at=2e9)
    lines = []
    task = asyncio.create_task(tail_board(t, lines.append))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while len(lines) < 2:
            assert loop.time() < deadline
            await asyncio.sleep(0.01)
        put(t, A, "open", 1, issued_at=2e9 + 10)  # heartbeat: same state and seq
        put(t, A, "half_open", 2, issued_at=2e9 + 30)
        t.append(sc.TOPIC_CONTROL, b"garbage", b"x/y/z")
        while len(lines) < 4:
            assert loop.time() < deadline
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert "half_open" in lines[2] and "seq=2" in lines[2]
    assert lines[3].endswith("x/y/z  invalid")
