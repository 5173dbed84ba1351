"""In-flight stall reports and cancellations: real SDKs against a server that holds the first chunk."""

from __future__ import annotations

import asyncio
import threading
import time

import anthropic
import boto3
import openai
import pytest
from botocore.config import Config
from google import genai
from google.genai import types
from hooks_support import Captured

import brownout.hooks as hooks
from brownout.hooks import _observation, observe
from brownout.hooks._stalls import StallWatch
from brownout.hooks.testing import Plan
from brownout.model import Key
from brownout.transport import MemoryTransport

MESSAGES = [{"role": "user", "content": "hello"}]
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


def _captured(**settings) -> Captured:
    t = MemoryTransport()
    hooks.configure(transport=t, interval=0.02, **settings)
    return Captured(t)


@pytest.fixture
def configure():
    yield _captured
    hooks.configure()


def _wait_for_a_stall() -> None:
    deadline = time.monotonic() + 20
    while hooks.stats()["stalls"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)


def _held_call(server, call, **plan) -> None:
    """``call()`` while the server holds its first chunk until the exporter has reported a stall
    (or 20 s have passed): no timing assumption about the machine."""
    hold = threading.Event()
    server.plan(Plan(hold=hold, **plan))
    releaser = threading.Thread(target=lambda: (_wait_for_a_stall(), hold.set()), daemon=True)
    releaser.start()
    try:
        call()
    finally:
        hold.set()
        releaser.join()


def _openai(server):
    c = openai.OpenAI(base_url=server.url + "/v1", api_key="t", max_retries=0)
    hooks.instrument_openai(c, region="eastus")
    return Key("openai", "eastus", "gpt-4o"), lambda: list(
        c.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                  stream_options={"include_usage": True})), c.close


def _anthropic(server):
    c = anthropic.Anthropic(base_url=server.url, api_key="t", max_retries=0)
    hooks.instrument_anthropic(c, region="eastus")

    def call():
        with c.messages.stream(model="claude-sonnet-4", max_tokens=9, messages=MESSAGES) as s:
            return s.get_final_message()
    return Key("anthropic", "eastus", "claude-sonnet-4"), call, c.close


def _genai(server):
    c = genai.Client(api_key="t", http_options=types.HttpOptions(base_url=server.url))
    hooks.instrument_genai(c, region="europe-west1")
    return Key("gcp.gemini", "europe-west1", "gemini-2.0-flash"), lambda: list(
        c.models.generate_content_stream(model="gemini-2.0-flash", contents="hello")), c.close


def _bedrock(server):
    c = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=server.url,
                     aws_access_key_id="t", aws_secret_access_key="t", config=Config(retries={"total_max_attempts": 1}))
    hooks.instrument_bedrock(c)
    return Key("aws.bedrock", "us-east-1", "amazon.nova-pro-v1:0"), lambda: list(c.converse_stream(
        modelId="amazon.nova-pro-v1:0", messages=[{"role": "user", "content": [{"text": "hi"}]}])["stream"]), c.close


@pytest.mark.parametrize("sdk", [_openai, _anthropic, _genai, _bedrock])
def test_a_held_stream_is_reported_once_as_a_stall_then_as_usual(configure, server, sdk):
    captured = configure(stall_after=0.1)
    key, call, close = sdk(server)
    try:
        _held_call(server, call, chunks=4)
    finally:
        close()
    stall, done = captured.events()
    assert hooks.stats()["stalls"] == 1
    assert stall.key == key and stall.stall is True and stall.stream is True
    assert stall.ttft is None and stall.error_type is None and stall.output_tokens is None
    assert stall.ttft_at_least >= 0.1 and stall.duration == stall.ttft_at_least
    assert done.key == key and done.stall is None and done.ttft_at_least is None
    assert abs(done.start - stall.start) < 1e-3  # both start when the call did
    assert done.ttft >= stall.ttft_at_least and done.output_tokens == 4


def test_fast_calls_are_not_reported(configure, server):
    captured = configure(stall_after=5.0)
    key, call, close = _openai(server)
    for _ in range(5):
        call()
    close()
    assert len(captured.events()) == 5 and hooks.stats()["stalls"] == 0
    assert not _observation.waiting  # the exporter's thread dropped the finished calls


def test_threshold_from_the_callable_wins(configure, server):
    asked = []

    def threshold(key):
        asked.append(key)
        return 0.05 if key.model == "gpt-4o" else None

    captured = configure(stall_threshold=threshold)
    key, call, close = _openai(server)
    _held_call(server, call)
    close()
    assert [e.stall for e in captured.events()] == [True, None] and key in asked


def test_a_learned_threshold(configure, server):
    captured = configure()  # stall_after="auto"
    watch = hooks.exporter().stalls
    watch.FLOOR = 0.05  # so that the test need not wait 2 s; the rule is the same
    key, call, close = _openai(server)
    for _ in range(watch.MIN_SAMPLES):
        call()
    assert hooks.flush(10.0)
    limit = watch.limit(key)  # (the held call's own TTFT is learned once it completes)
    assert limit is not None and watch.limit(Key("openai", "eastus", "other")) is None
    _held_call(server, call)
    close()
    stalls = [e for e in captured.events() if e.stall]
    assert len(stalls) == 1 and stalls[0].ttft_at_least >= limit


def test_stall_reports_off(configure, server):
    captured = configure(stall_after=None)
    key, call, close = _openai(server)
    server.plan(Plan(first_delay=0.2))
    call()
    close()
    assert [e.stall for e in captured.events()] == [None] and hooks.stats()["stalls"] == 0


def test_observe_by_hand_is_watched_too(configure):
    captured = configure(stall_after=0.05)
    with observe(provider="mistral_ai", region="eu-west-1", model="mistral-large", stream=True) as call:
        _wait_for_a_stall()
        call.chunk()
    stall, done = captured.events()
    assert stall.stall and stall.key == Key("mistral_ai", "eu-west-1", "mistral-large")
    assert done.ttft >= stall.ttft_at_least


@pytest.mark.parametrize("after, field", [(-1, "stall_after"), ("soon", "stall_after"), (float("nan"), "stall_after"),
                                          (True, "stall_after")])
def test_bad_stall_after_names_the_field(after, field):
    with pytest.raises(ValueError, match=field):
        hooks.configure(stall_after=after)


def test_bad_stall_threshold_names_the_field():
    with pytest.raises(ValueError, match="stall_threshold"):
        hooks.configure(stall_threshold=2.0)


# --- the learned threshold, on its own -------------------------------------------------------------
K = Key("openai", "eastus", "gpt-4o")


def test_learned_threshold_is_a_multiple_of_p95_with_a_floor():
    watch = StallWatch()
    for i in range(19):
        watch.learn(K, 1.0 + i / 100)
    assert watch.limit(K) is None  # warming
    watch.learn(K, 5.0)
    ttfts = sorted([1.0 + i / 100 for i in range(19)] + [5.0])
    assert watch.limit(K) == pytest.approx(watch.MULTIPLE * ttfts[18])  # nearest-rank p95 of 20
    fast = StallWatch()
    for _ in range(20):
        fast.learn(K, 0.1)
    assert fast.limit(K) == watch.FLOOR


def test_learned_threshold_follows_recent_calls_only():
    watch = StallWatch()
    for _ in range(watch.WINDOW):
        watch.learn(K, 10.0)
    for _ in range(watch.WINDOW):
        watch.learn(K, 1.0)
    assert watch.limit(K) == max(watch.FLOOR, watch.MULTIPLE * 1.0)


def test_fixed_threshold_and_off():
    assert StallWatch(after=7).limit(K) == 7.0
    assert StallWatch(after=0).limit(K) is None and StallWatch(after=None).limit(K) is None


def test_a_failing_callable_falls_back():
    def broken(key):
        raise RuntimeError("router bug")

    assert StallWatch(after=4, threshold=broken).limit(K) == 4.0


def test_keys_are_bounded():
    watch = StallWatch()
    for i in range(watch.MAX_KEYS + 10):
        watch.learn(Key("p", "r", f"m{i}"), 1.0)
    assert len(watch._ttfts) == watch.MAX_KEYS


# --- cancellation ------------------------------------------------------------------------------------
async def test_async_call_cancelled_before_its_answer(captured, server):
    c = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="t", max_retries=0)
    hooks.instrument_openai(c, region="eastus")
    server.plan(Plan(delay=0.5))
    task = asyncio.create_task(c.chat.completions.create(model="gpt-4o", messages=MESSAGES))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    ev = captured.one()
    assert ev.error_type == "cancelled" and ev.error_class == "cancelled" and ev.status_code is None
    assert ev.ttft is None and ev.ttft_at_least == pytest.approx(ev.duration, abs=1e-6)
    await c.close()


async def test_hedged_stream_that_lost_the_race(captured, server):
    c = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="t", max_retries=0)
    hooks.instrument_openai(c, region="eastus")
    server.plan(Plan(chunks=3, first_delay=1.0), Plan(chunks=3))

    async def first_chunk() -> str:
        stream = await c.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                await stream.close()
                return chunk.choices[0].delta.content
        return ""

    slow = asyncio.create_task(first_chunk())
    await asyncio.sleep(0.05)
    fast = asyncio.create_task(first_chunk())
    done, pending = await asyncio.wait({slow, fast}, return_when=asyncio.FIRST_COMPLETED)
    assert fast in done
    slow.cancel()
    await asyncio.gather(slow, return_exceptions=True)
    events = sorted(captured.events(), key=lambda e: e.start)
    assert [e.error_type for e in events] == ["cancelled", None]
    assert events[0].ttft is None and events[0].ttft_at_least > 0 and events[1].ttft is not None
    await c.close()


@pytest.mark.parametrize("chunks", [0, 1])
async def test_observe_cancelled_before_and_after_the_first_chunk(captured, chunks):
    async def call() -> None:
        async with observe(provider="openai", region="eastus", model="gpt-4o", stream=True) as obs:
            for _ in range(chunks):
                obs.chunk()
            await asyncio.sleep(10)

    task = asyncio.create_task(call())
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    ev = captured.one()
    if chunks:  # the caller stopped reading, as with a break
        assert ev.error_type is None and ev.ttft is not None and ev.ttft_at_least is None
    else:
        assert ev.error_type == "cancelled" and ev.ttft_at_least == pytest.approx(ev.duration, abs=1e-6)


def test_anthropic_stream_left_before_its_first_chunk(captured, server):
    c = anthropic.Anthropic(base_url=server.url, api_key="t", max_retries=0)
    hooks.instrument_anthropic(c, region="eastus")
    with c.messages.stream(model="claude-sonnet-4", max_tokens=9, messages=MESSAGES) as stream:
        next(iter(stream))  # message_start
    ev = captured.one()
    assert ev.error_type == "cancelled" and ev.ttft is None and ev.ttft_at_least is not None
    c.close()
