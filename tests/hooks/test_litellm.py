"""The real litellm package, with BrownoutLogger as its callback, against the local server."""

from __future__ import annotations

import os
import time

import pytest

from brownout.hooks.testing import Plan

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the cost map
import litellm  # noqa: E402

from brownout.hooks import BrownoutLogger  # noqa: E402
from brownout.model import Key  # noqa: E402

MESSAGES = [{"role": "user", "content": "hello"}]

# litellm's own models warn on import and use (pydantic ReadOnly TypedDicts); not ours to fix
# and it leaves event loops of its own unclosed for the garbage collector
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning:pydantic.*"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


@pytest.fixture(autouse=True, scope="module")
def _collect_litellm_leftovers():
    yield
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()


@pytest.fixture
def logger():
    cb = BrownoutLogger(region="eastus")
    old = list(litellm.callbacks)
    litellm.callbacks = [cb]
    yield cb
    litellm.callbacks = old


def _call(server, **kw):
    return litellm.completion(model="openai/gpt-4o", api_base=server.url + "/v1", api_key="test",
                              messages=MESSAGES, num_retries=0, max_retries=0, **kw)


async def _acall(server, **kw):
    return await litellm.acompletion(model="openai/gpt-4o", api_base=server.url + "/v1", api_key="test",
                                     messages=MESSAGES, num_retries=0, max_retries=0, **kw)


def _wait_one(captured):
    import time

    for _ in range(200):  # LiteLLM runs its sync callbacks on a thread pool
        evs = captured.events()
        if evs:
            return evs
        time.sleep(0.02)
    return captured.events()


def test_success_not_streamed(captured, logger, server):
    out = _call(server)
    assert out.choices[0].message.content == "hi"
    (ev,) = _wait_one(captured)
    assert ev.key == Key("openai", "eastus", "gpt-4o")
    assert (ev.input_tokens, ev.output_tokens) == (11, 3)
    assert ev.finish_reasons == ("stop",)
    assert ev.stream is False and ev.error_type is None
    assert ev.server_address == "127.0.0.1" and ev.server_port == server.port


def test_streamed_with_chunk_hook(captured, logger, server):
    server.plan(Plan(delay=0.05, chunks=5, gap=0.01))
    parts = [c.choices[0].delta.content for c in _call(server, stream=True,
                                                       stream_options={"include_usage": True}) if c.choices]
    assert "t4" in parts
    (ev,) = _wait_one(captured)
    assert ev.stream is True
    assert ev.ttft >= 0.05
    assert ev.output_tokens == 5 and ev.input_tokens == 11
    assert ev.finish_reasons == ("stop",)
    # chunk hooks race LiteLLM's success hook, so ITL is best effort; when there, it is consistent
    assert ev.itl_max is None or 0 <= ev.itl_p50 <= ev.itl_p95 <= ev.itl_max


@pytest.mark.parametrize("status", [429, 500, 503])
def test_failure(captured, logger, server, status):
    server.plan(Plan(status=status))
    with pytest.raises(Exception) as info:
        _call(server)
    assert getattr(info.value, "status_code", None) == status
    (ev,) = _wait_one(captured)
    assert ev.error_type == str(status) and ev.status_code == status


def test_timeout(captured, logger, server):
    server.plan(Plan(delay=0.5))
    with pytest.raises(litellm.Timeout):
        _call(server, timeout=0.05)
    (ev,) = _wait_one(captured)
    assert ev.error_type == "timeout" and ev.status_code is None


async def test_async_success_emits_once(captured, logger, server):
    await _acall(server)
    await _acall(server)
    evs = _wait_one(captured)
    import asyncio

    await asyncio.sleep(0.2)
    evs = captured.events()
    assert len(evs) == 2
    assert {(e.input_tokens, e.output_tokens) for e in evs} == {(11, 3)}


async def test_async_failure(captured, logger, server):
    server.plan(Plan(status=503))
    with pytest.raises(litellm.ServiceUnavailableError):
        await _acall(server)
    (ev,) = _wait_one(captured)
    assert ev.error_type == "503"


async def test_cancelled_acompletion_is_reported_cancelled(captured, logger, server):
    import asyncio

    server.plan(Plan(delay=1.0))
    task = asyncio.create_task(_acall(server))
    for _ in range(1000):  # until LiteLLM has started the request (its set-up may take a while)
        if server.requests:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(1.0)  # past the server's answer: LiteLLM reports nothing more for the call
    # (a previous test's late async callback may land here too: look at this call's events only)
    (ev,) = [e for e in _wait_one(captured) if e.error_type == "cancelled" or e.duration >= 0.9]
    assert ev.key == Key("openai", "eastus", "gpt-4o") and ev.error_type == "cancelled"
    assert ev.ttft is None and ev.ttft_at_least == pytest.approx(ev.duration, abs=1e-6)


def test_a_held_stream_is_reported_as_a_stall(server):
    import threading

    from hooks_support import Captured

    import brownout.hooks as hooks
    from brownout.transport import MemoryTransport

    t = MemoryTransport()
    hooks.configure(transport=t, interval=0.02, stall_after=0.1)
    cb = BrownoutLogger(region="eastus")
    old = list(litellm.callbacks)
    litellm.callbacks = [cb]
    hold = threading.Event()
    server.plan(Plan(chunks=3, hold=hold))
    try:
        stream = _call(server, stream=True)
        for _ in range(2000):
            if hooks.stats()["stalls"]:
                break
            time.sleep(0.01)
        hold.set()
        list(stream)
        captured = Captured(t)
        for _ in range(200):
            if len(captured.events()) == 2:
                break
            time.sleep(0.02)
        stall, done = sorted(captured.events(), key=lambda e: (e.stall is None))
        assert stall.stall is True and stall.key == done.key == Key("openai", "eastus", "gpt-4o")
        assert stall.ttft_at_least >= 0.1 and done.ttft is not None and done.stall is None
        assert hooks.stats()["stalls"] == 1
    finally:
        hold.set()
        litellm.callbacks = old
        hooks.configure()
