"""The real google-genai SDK (Gemini Developer API and Vertex AI) against the local server."""

from __future__ import annotations

import gc

import pytest
from google import genai
from google.genai import errors, types

import brownout.hooks as hooks
from brownout.hooks import instrument_genai, uninstrument_genai
from brownout.hooks.testing import Plan
from brownout.model import Key

MODEL = "gemini-2.0-flash"

# the SDK's async client subclasses aiohttp's ClientSession, which aiohttp frowns upon: not ours
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


def _client(server, **kw):
    return genai.Client(api_key="test", http_options=types.HttpOptions(base_url=server.url, **kw))


@pytest.fixture
def client(server):
    c = _client(server)
    instrument_genai(c, region="europe-west1")
    yield c
    uninstrument_genai(c)
    c.close()


def test_not_streamed(captured, client, server):
    out = client.models.generate_content(model=MODEL, contents="hello")
    assert out.text == "t0t1t2"
    ev = captured.one()
    assert ev.key == Key("gcp.gemini", "europe-west1", MODEL)
    assert ev.operation == "generate_content" and ev.stream is False and ev.ttft is None
    assert ev.response_model == "gemini-2.0-flash-2025-01-01"
    assert (ev.input_tokens, ev.output_tokens) == (11, 3)
    assert ev.finish_reasons == ("stop",)
    assert ev.server_address == "127.0.0.1" and ev.server_port == server.port
    assert server.requests[-1][0].endswith(f"models/{MODEL}:generateContent")


def test_streamed_with_a_slow_first_chunk(captured, client, server):
    server.plan(Plan(chunks=5, first_delay=0.05))
    texts = [c.text for c in client.models.generate_content_stream(model=MODEL, contents="hello")]
    assert texts == ["t0", "t1", "t2", "t3", "t4"]
    ev = captured.one()
    assert ev.stream is True and ev.ttft >= 0.05 and ev.duration >= ev.ttft
    assert (ev.input_tokens, ev.output_tokens) == (11, 5)
    assert ev.finish_reasons == ("stop",) and ev.response_model == "gemini-2.0-flash-2025-01-01"
    assert 0 <= ev.itl_p50 <= ev.itl_p95 <= ev.itl_max
    assert server.requests[-1][0].endswith(":streamGenerateContent")


def test_max_tokens_finish_reason(captured, client, server):
    server.plan(Plan(finish="MAX_TOKENS"))
    list(client.models.generate_content_stream(model=MODEL, contents="hello"))
    assert captured.one().finish_reasons == ("max_tokens",)


async def test_async(captured, client, server):
    await client.aio.models.generate_content(model=MODEL, contents="hello")
    server.plan(Plan(chunks=4, first_delay=0.02))
    n = 0
    async for _ in await client.aio.models.generate_content_stream(model=MODEL, contents="hello"):
        n += 1
    assert n == 4
    plain, streamed = captured.events()
    assert plain.stream is False and (plain.input_tokens, plain.output_tokens) == (11, 3)
    assert streamed.stream is True and streamed.ttft >= 0.02 and streamed.output_tokens == 4
    assert streamed.finish_reasons == ("stop",)
    await client.aio.aclose()


@pytest.mark.parametrize("status", [429, 503, 400])
def test_status_errors(captured, client, server, status):
    server.plan(Plan(status=status))
    with pytest.raises(errors.APIError) as info:
        client.models.generate_content(model=MODEL, contents="hello")
    assert info.value.code == status
    ev = captured.one()
    assert ev.error_type == str(status) and ev.status_code == status and ev.ttft_at_least is None


def test_status_error_on_a_stream(captured, client, server):
    server.plan(Plan(status=503))
    with pytest.raises(errors.ServerError):
        list(client.models.generate_content_stream(model=MODEL, contents="hello"))
    ev = captured.one()
    assert ev.error_type == "503" and ev.stream is True and ev.finish_reasons == ()


async def test_async_status_error(captured, client, server):
    server.plan(Plan(status=429))
    with pytest.raises(errors.ClientError):
        await client.aio.models.generate_content(model=MODEL, contents="hello")
    assert captured.one().error_type == "429"
    await client.aio.aclose()


def test_timeout_before_the_first_token(captured, server):
    c = _client(server, timeout=100)  # milliseconds
    instrument_genai(c, region="europe-west1")
    server.plan(Plan(delay=0.5))
    with pytest.raises(Exception) as info:
        c.models.generate_content(model=MODEL, contents="hello")
    assert "Timeout" in type(info.value).__name__
    ev = captured.one()
    assert ev.error_type == "timeout" and ev.ttft is None and ev.ttft_at_least == pytest.approx(ev.duration, abs=1e-6)
    c.close()


def test_vertex_ai_is_its_own_provider_in_its_location(captured, server):
    from google.oauth2.credentials import Credentials

    c = genai.Client(vertexai=True, project="proj", location="europe-west4", credentials=Credentials(token="t"),
                     http_options=types.HttpOptions(base_url=server.url))
    instrument_genai(c)
    try:
        c.models.generate_content(model=MODEL, contents="hello")
        list(c.models.generate_content_stream(model=MODEL, contents="hello"))
        assert [e.key for e in captured.events()] == [Key("gcp.vertex_ai", "europe-west4", MODEL)] * 2
        assert server.requests[-1][0].startswith("/v1beta1/projects/proj/locations/europe-west4/")
    finally:
        uninstrument_genai(c)
        c.close()


def test_break_before_the_first_chunk_is_cancelled(captured, client, server):
    server.plan(Plan(chunks=5))
    stream = client.models.generate_content_stream(model=MODEL, contents="hello")
    del stream  # never iterated: the caller abandoned it
    gc.collect()
    ev = captured.one()
    assert ev.error_type == "cancelled" and ev.ttft is None and ev.ttft_at_least == pytest.approx(ev.duration, abs=1e-6)


def test_break_after_the_first_chunk_is_no_error(captured, client, server):
    server.plan(Plan(chunks=5))
    for i, _ in enumerate(client.models.generate_content_stream(model=MODEL, contents="hello")):
        if i == 1:
            break
    gc.collect()
    ev = captured.one()
    assert ev.error_type is None and ev.ttft is not None and ev.ttft_at_least is None


def test_chats_are_observed(captured, client, server):
    chat = client.chats.create(model=MODEL)
    chat.send_message("hello")
    list(chat.send_message_stream("again"))
    assert [e.stream for e in captured.events()] == [False, True]


def test_whole_sdk_idempotent_and_reversible(captured, server):
    c = _client(server)  # made before instrumenting
    try:
        instrument_genai()
        instrument_genai()
        instrument_genai(c)  # on top of the SDK: still one event per call
        c.models.generate_content(model=MODEL, contents="hello")
        assert [e.key for e in captured.events()] == [Key("gcp.gemini", "global", MODEL)]
        uninstrument_genai(c)
        uninstrument_genai()
        uninstrument_genai()
        c.models.generate_content(model=MODEL, contents="hello")
        list(c.models.generate_content_stream(model=MODEL, contents="hello"))
        assert len(captured.events()) == 1
    finally:
        uninstrument_genai()
        c.close()


def test_region_and_deadline_from_settings(server):
    from hooks_support import Captured

    from brownout.transport import MemoryTransport

    t = MemoryTransport()
    hooks.configure(transport=t, interval=0.05, region="us-central1")
    c = _client(server)
    instrument_genai(c, deadline=4.0)
    try:
        c.models.generate_content(model=MODEL, contents="hello")
        ev = Captured(t).one()
        assert ev.key.region == "us-central1" and ev.deadline == 4.0
        with pytest.raises(ValueError, match="region"):
            instrument_genai(c, region="")
    finally:
        uninstrument_genai(c)
        c.close()
        hooks.configure()
