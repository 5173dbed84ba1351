"""The real anthropic SDK against a local server: messages.create and messages.stream."""

from __future__ import annotations

import gc

import anthropic
import pytest

from brownout.hooks import instrument_anthropic, uninstrument_anthropic
from brownout.hooks.testing import Plan
from brownout.model import Key

MESSAGES = [{"role": "user", "content": "hello"}]
MODEL = "claude-sonnet-4"


@pytest.fixture
def client(server):
    c = anthropic.Anthropic(base_url=server.url, api_key="test", max_retries=0)
    instrument_anthropic(c, region="us-east-1")
    yield c
    uninstrument_anthropic(c)
    c.close()


@pytest.fixture
async def aclient(server):
    c = anthropic.AsyncAnthropic(base_url=server.url, api_key="test", max_retries=0)
    instrument_anthropic(c, region="us-east-1")
    yield c
    uninstrument_anthropic(c)
    await c.close()


def test_create_not_streamed(captured, client, server):
    msg = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert msg.content[0].text == "hi"
    ev = captured.one()
    assert ev.key == Key("anthropic", "us-east-1", MODEL)
    assert ev.response_model == MODEL + "-2025-01-01"
    assert (ev.input_tokens, ev.output_tokens) == (11, 3)
    assert ev.finish_reasons == ("end_turn",) and ev.stream is False and ev.ttft is None
    assert ev.server_address == "127.0.0.1" and ev.server_port == server.port


def test_create_streamed(captured, client, server):
    server.plan(Plan(delay=0.04, chunks=5))
    kinds = [e.type for e in client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES,
                                                    stream=True)]
    assert kinds.count("content_block_delta") == 5
    ev = captured.one()
    assert ev.stream is True and ev.ttft >= 0.04
    assert (ev.input_tokens, ev.output_tokens) == (11, 5)
    assert ev.finish_reasons == ("end_turn",)
    assert ev.response_model == MODEL + "-2025-01-01"
    assert 0 <= ev.itl_p50 <= ev.itl_p95 <= ev.itl_max


def test_stream_helper(captured, client, server):
    server.plan(Plan(chunks=4, gap=0.02, finish="max_tokens"))
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
    assert text == "t0t1t2t3"
    ev = captured.one()
    assert (ev.input_tokens, ev.output_tokens) == (11, 4)
    assert ev.finish_reasons == ("max_tokens",)
    # the server cannot send faster than its gaps; this SDK's decoder may hand two events over together
    assert ev.duration >= 3 * 0.02
    assert 0 <= ev.itl_p50 <= ev.itl_p95 <= ev.itl_max


def test_stream_helper_final_message(captured, client, server):
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
        final = stream.get_final_message()
    assert final.usage.output_tokens == 3
    assert captured.one().output_tokens == 3


def test_stream_helper_exit_early(captured, client, server):
    server.plan(Plan(chunks=10))
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
        for e in stream:
            if e.type == "content_block_delta":
                break
    ev = captured.one()
    assert ev.ttft is not None and ev.finish_reasons == ()


@pytest.mark.parametrize("status, exc", [(529, anthropic.APIStatusError), (429, anthropic.RateLimitError),
                                         (500, anthropic.InternalServerError),
                                         (503, anthropic.APIStatusError)])
def test_status_errors(captured, client, server, status, exc):
    server.plan(Plan(status=status))
    with pytest.raises(exc) as info:
        client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert info.value.status_code == status
    ev = captured.one()
    assert ev.error_type == str(status) and ev.status_code == status


def test_overloaded_on_stream_helper(captured, client, server):
    server.plan(Plan(status=529))
    with pytest.raises(anthropic.APIStatusError):
        with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
            stream.until_done()
    ev = captured.one()
    assert ev.error_type == "529" and ev.stream is True


def test_stream_cut_midway(captured, client, server):
    server.plan(Plan(chunks=6, cut_after=3))
    # this SDK lets the transport's error through mid-stream (httpx2.RemoteProtocolError)
    with pytest.raises(Exception) as info:
        for _ in client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True):
            pass
    ev = captured.one()
    assert ev.finish_reasons == ("error",) and ev.error_type == type(info.value).__name__
    assert ev.error_class == "capacity"
    assert ev.input_tokens == 11 and ev.output_tokens is None


def test_garbage_collected_stream(captured, client, server):
    stream = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)
    for e in stream:
        if e.type == "content_block_delta":
            break
    del stream, e
    gc.collect()
    assert captured.one().ttft is not None


async def test_async_create_streamed(captured, aclient, server):
    server.plan(Plan(delay=0.02, chunks=3))
    stream = await aclient.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)
    async for _ in stream:
        pass
    ev = captured.one()
    assert ev.ttft >= 0.02 and (ev.input_tokens, ev.output_tokens) == (11, 3)
    assert ev.finish_reasons == ("end_turn",)


async def test_async_stream_helper(captured, aclient, server):
    async with aclient.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
        parts = [t async for t in stream.text_stream]
    assert parts == ["t0", "t1", "t2"]
    ev = captured.one()
    assert ev.output_tokens == 3 and ev.finish_reasons == ("end_turn",)


async def test_async_overloaded(captured, aclient, server):
    server.plan(Plan(status=529))
    with pytest.raises(anthropic.APIStatusError):
        await aclient.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert captured.one().error_type == "529"


def test_whole_sdk(captured, server):
    c = anthropic.Anthropic(base_url=server.url, api_key="test", max_retries=0)
    try:
        instrument_anthropic()
        instrument_anthropic()
        c.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
        with c.messages.stream(model=MODEL, max_tokens=10, messages=MESSAGES) as s:
            s.until_done()
        evs = captured.events()
        assert [e.stream for e in sorted(evs, key=lambda e: e.stream)] == [False, True]
        assert {e.key for e in evs} == {Key("anthropic", "global", MODEL)}
    finally:
        uninstrument_anthropic()
        c.close()
