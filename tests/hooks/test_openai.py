"""The real openai SDK against a local server: what the hook emits, exactly."""

from __future__ import annotations

import gc

import openai
import pytest

import brownout.hooks as hooks
from brownout.hooks import instrument_openai, uninstrument_openai
from brownout.hooks.testing import Plan
from brownout.model import Key

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def client(server):
    c = openai.OpenAI(base_url=server.url + "/v1", api_key="test", max_retries=0)
    instrument_openai(c, region="eastus")
    yield c
    uninstrument_openai(c)
    c.close()


@pytest.fixture
async def aclient(server):
    c = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="test", max_retries=0)
    instrument_openai(c, region="eastus")
    yield c
    uninstrument_openai(c)
    await c.close()


def test_chat_not_streamed(captured, client, server):
    out = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert out.choices[0].message.content == "hi"
    ev = captured.one()
    assert ev.key == Key("openai", "eastus", "gpt-4o")
    assert ev.response_model == "gpt-4o-2025-01-01"
    assert (ev.input_tokens, ev.output_tokens) == (11, 3)
    assert ev.finish_reasons == ("stop",)
    assert ev.stream is False and ev.ttft is None and ev.itl_p50 is None
    assert ev.server_address == "127.0.0.1" and ev.server_port == server.port
    assert ev.error_type is None and ev.operation == "chat"


def test_chat_streamed_with_usage_and_slow_first_byte(captured, client, server):
    server.plan(Plan(delay=0.05, chunks=5))
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True})
    texts = [c.choices[0].delta.content for c in stream if c.choices]
    assert texts == ["", "t0", "t1", "t2", "t3", "t4", None]
    ev = captured.one()
    assert ev.stream is True
    assert ev.ttft >= 0.05 and ev.duration >= ev.ttft
    assert (ev.input_tokens, ev.output_tokens) == (11, 5)
    assert ev.finish_reasons == ("stop",)
    assert ev.response_model == "gpt-4o-2025-01-01"
    assert 0 <= ev.itl_p50 <= ev.itl_p95 <= ev.itl_max


def test_chat_streamed_gaps_show_in_itl(captured, client, server):
    server.plan(Plan(chunks=4, gap=0.03))
    for _ in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
        pass
    ev = captured.one()
    assert ev.duration >= 3 * 0.03  # the server cannot send faster than its gaps
    assert 0 <= ev.itl_p50 <= ev.itl_p95 <= ev.itl_max
    assert ev.itl_max > 0
    assert ev.input_tokens is None and ev.output_tokens is None  # usage not asked for
    assert ev.finish_reasons == ("stop",)


@pytest.mark.parametrize("status", [429, 500, 503, 400])
def test_status_errors(captured, client, server, status):
    server.plan(Plan(status=status))
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert info.value.status_code == status
    ev = captured.one()
    assert ev.error_type == str(status) and ev.status_code == status


def test_status_error_on_stream_request(captured, client, server):
    server.plan(Plan(status=503))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    ev = captured.one()
    assert ev.error_type == "503" and ev.stream is True and ev.finish_reasons == ()


def test_timeout(captured, server):
    c = openai.OpenAI(base_url=server.url + "/v1", api_key="test", max_retries=0, timeout=0.05)
    instrument_openai(c, region="eastus")
    server.plan(Plan(delay=0.3))
    with pytest.raises(openai.APITimeoutError):
        c.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    ev = captured.one()
    assert ev.error_type == "timeout" and ev.status_code is None
    c.close()


def test_stream_cut_midway(captured, client, server):
    server.plan(Plan(chunks=6, cut_after=2))
    seen = []
    with pytest.raises(openai.APIConnectionError):
        for c in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
            seen.append(c)
    ev = captured.one()
    assert ev.finish_reasons == ("error",)
    assert ev.error_type == "APIConnectionError"
    assert ev.ttft is not None


def test_stream_ending_without_finish_reason_is_marked_cut(captured, client, server):
    server.plan(Plan(chunks=3, end_without_finish=True))
    list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    ev = captured.one()
    assert ev.finish_reasons == ("error",) and ev.error_type is None


def test_break_finalises_once(captured, client, server):
    server.plan(Plan(chunks=10))
    for i, _ in enumerate(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)):
        if i == 2:
            break
    gc.collect()
    ev = captured.one()
    assert ev.ttft is not None and ev.finish_reasons == ()


def test_break_on_held_stream_then_close(captured, client, server):
    server.plan(Plan(chunks=10))
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    for i, _ in enumerate(stream):
        if i == 2:
            break
    stream.close()
    stream.close()
    del stream
    gc.collect()
    assert len(captured.events()) == 1


def test_close_without_iterating(captured, client, server):
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    stream.close()
    ev = captured.one()
    assert ev.ttft is None and ev.stream is True


def test_context_exit(captured, client, server):
    with client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as stream:
        next(stream)
        next(stream)
    ev = captured.one()
    assert ev.ttft is not None


def test_garbage_collected_stream(captured, client, server):
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    next(stream)
    next(stream)
    del stream
    gc.collect()
    ev = captured.one()
    assert ev.ttft is not None and ev.stream is True


def test_stream_proxy_keeps_the_sdk_surface(captured, client, server):
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert stream.response.status_code == 200
    list(stream)
    assert len(captured.events()) == 1


def test_responses_not_streamed(captured, client, server):
    out = client.responses.create(model="gpt-4.1", input="hello")
    assert out.status == "completed"
    ev = captured.one()
    assert ev.key == Key("openai", "eastus", "gpt-4.1")
    assert (ev.input_tokens, ev.output_tokens) == (11, 3)
    assert ev.response_model == "gpt-4.1-2025-01-01" and ev.finish_reasons == ("stop",)


def test_responses_streamed(captured, client, server):
    server.plan(Plan(chunks=4, delay=0.02))
    kinds = [e.type for e in client.responses.create(model="gpt-4.1", input="hello", stream=True)]
    assert kinds.count("response.output_text.delta") == 4
    ev = captured.one()
    assert ev.stream is True and ev.ttft >= 0.02
    assert (ev.input_tokens, ev.output_tokens) == (11, 4)
    assert ev.finish_reasons == ("stop",) and ev.response_model == "gpt-4.1-2025-01-01"


async def test_async_chat_not_streamed(captured, aclient, server):
    await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    ev = captured.one()
    assert (ev.input_tokens, ev.output_tokens, ev.stream) == (11, 3, False)


async def test_async_chat_streamed(captured, aclient, server):
    server.plan(Plan(delay=0.03, chunks=4))
    stream = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                                   stream_options={"include_usage": True})
    n = 0
    async for _ in stream:
        n += 1
    assert n == 7
    ev = captured.one()
    assert ev.ttft >= 0.03 and (ev.input_tokens, ev.output_tokens) == (11, 4)
    assert ev.finish_reasons == ("stop",)


async def test_async_stream_break_and_close(captured, aclient, server):
    server.plan(Plan(chunks=8))
    async with await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as stream:
        async for c in stream:
            if c.choices and c.choices[0].delta.content == "t1":
                break
    assert len(captured.events()) == 1


async def test_async_status_error(captured, aclient, server):
    server.plan(Plan(status=429))
    with pytest.raises(openai.RateLimitError):
        await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert captured.one().error_type == "429"


async def test_async_responses_streamed(captured, aclient, server):
    stream = await aclient.responses.create(model="gpt-4.1", input="hi", stream=True)
    async for _ in stream:
        pass
    ev = captured.one()
    assert ev.finish_reasons == ("stop",) and ev.output_tokens == 3


def test_azure_is_its_own_provider_with_a_mapped_region(server):
    from hooks_support import Captured

    from brownout.transport import MemoryTransport

    t = MemoryTransport()
    hooks.configure(transport=t, interval=0.05, regions={"127.0.0.1": "swedencentral"})
    try:
        c = openai.AzureOpenAI(azure_endpoint=server.url, api_key="test", api_version="2024-10-21",
                               max_retries=0)
        instrument_openai(c)
        c.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        ev = Captured(t).one()
        assert ev.key == Key("azure.ai.openai", "swedencentral", "gpt-4o")
        assert server.requests[-1][0].startswith("/openai/deployments/gpt-4o/")
        c.close()
    finally:
        hooks.configure()


def test_whole_sdk_idempotent_and_reversible(captured, server):
    c = openai.OpenAI(base_url=server.url + "/v1", api_key="test", max_retries=0)
    try:
        instrument_openai(region="westus")
        instrument_openai(region="westus")
        instrument_openai(c, region="westus")  # client on top of SDK: still one event per call
        c.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert [e.key.region for e in captured.events()] == ["westus"]
        uninstrument_openai(c)
        uninstrument_openai()
        uninstrument_openai()
        c.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert len(captured.events()) == 1
    finally:
        uninstrument_openai()
        c.close()


def test_sdk_instrumentation_reaches_clients_made_before(captured, server):
    c = openai.OpenAI(base_url=server.url + "/v1", api_key="test", max_retries=0)
    try:
        instrument_openai()
        c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        ev = captured.one()
        assert ev.key == Key("openai", "global", "gpt-4o-mini")
    finally:
        uninstrument_openai()
        c.close()


def test_exception_in_the_apps_loop_is_not_the_providers(captured, client, server):
    server.plan(Plan(chunks=5))
    with pytest.raises(ValueError):
        for c in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
            if c.choices and c.choices[0].delta.content == "t1":
                raise ValueError("the app's own bug")
    gc.collect()
    ev = captured.one()
    assert ev.error_type is None and ev.ttft is not None


async def test_async_stream_dropped_mid_way_is_finalised(captured, aclient, server):
    server.plan(Plan(chunks=8))
    stream = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    await stream.__anext__()
    await stream.__anext__()
    await stream.close()
    del stream
    gc.collect()
    ev = captured.one()
    assert ev.ttft is not None and ev.stream is True


def test_a_failing_exporter_never_reaches_the_app(server):
    from brownout.hooks import _observation

    def broken(item):
        raise RuntimeError("exporter bug")

    saved = _observation._sink[0]
    _observation._sink[0] = broken
    c = openai.OpenAI(base_url=server.url + "/v1", api_key="test", max_retries=0)
    instrument_openai(c, region="eastus")
    try:
        assert c.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices[0].message.content == "hi"
        assert len(list(c.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))) == 5
        server.plan(Plan(status=429))
        with pytest.raises(openai.RateLimitError):
            c.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    finally:
        _observation._sink[0] = saved
        uninstrument_openai(c)
        c.close()


def test_events_also_reach_an_apps_tracer_provider(server):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    spans = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    hooks.configure(tracer_provider=tp, interval=0.05)
    c = openai.OpenAI(base_url=server.url + "/v1", api_key="test", max_retries=0)
    instrument_openai(c, region="eastus")
    try:
        server.plan(Plan(chunks=4))
        list(c.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                       stream_options={"include_usage": True}))
        assert hooks.flush(10.0)
        (span,) = spans.get_finished_spans()
        a = span.attributes
        assert span.name == "chat gpt-4o"
        assert (a["gen_ai.provider.name"], a["cloud.region"], a["gen_ai.request.model"]) == ("openai", "eastus", "gpt-4o")
        assert a["gen_ai.usage.output_tokens"] == 4 and a["gen_ai.request.stream"] is True
        assert a["gen_ai.response.time_to_first_chunk"] <= (span.end_time - span.start_time) / 1e9
        assert tuple(a["gen_ai.response.finish_reasons"]) == ("stop",)
    finally:
        uninstrument_openai(c)
        c.close()
        hooks.configure()


def test_chat_stream_helper(captured, client, server):
    server.plan(Plan(chunks=4))
    with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES,
                                        stream_options={"include_usage": True}) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "t0t1t2t3"
    ev = captured.one()
    assert ev.stream is True and (ev.input_tokens, ev.output_tokens) == (11, 4)
    assert ev.finish_reasons == ("stop",)


def test_responses_stream_helper(captured, client, server):
    server.plan(Plan(chunks=5))
    with client.responses.stream(model="gpt-4.1", input="hello") as stream:
        final = stream.get_final_response()
    assert final.status == "completed"
    ev = captured.one()
    assert ev.stream is True and (ev.input_tokens, ev.output_tokens) == (11, 5)
    assert ev.finish_reasons == ("stop",) and ev.ttft is not None


def test_raw_response_is_still_one_event(captured, client, server):
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    assert raw.http_response.status_code == 200
    ev = captured.one()
    assert ev.key == Key("openai", "eastus", "gpt-4o") and ev.error_type is None


def test_deadline_per_client_and_bad_deadline(captured, server):
    c = openai.OpenAI(base_url=server.url + "/v1", api_key="test", max_retries=0)
    instrument_openai(c, region="eastus", deadline=2.5)
    try:
        c.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        list(c.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
        assert [e.deadline for e in captured.events()] == [2.5, 2.5]
        with pytest.raises(ValueError, match="deadline"):
            instrument_openai(c, deadline=-1)
    finally:
        uninstrument_openai(c)
        c.close()
