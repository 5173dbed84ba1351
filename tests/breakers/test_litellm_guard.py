"""BrownoutRouterGuard with a real litellm.Router, OpenAI-protocol servers and a board fed from a
MemoryTransport: filtering, LiteLLM's own fallbacks when a whole group is open, the least
degraded deployment when nothing is left."""

import asyncio
import random

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger
from prometheus_client import CollectorRegistry

from brownout import semconv as sc
from brownout.breakers import AsyncBreakerBoard, BreakerBoard, ControlRecord, Readings
from brownout.breakers.litellm import BreakersOpen, BrownoutRouterGuard, deployment_key
from brownout.model import Key
from brownout.transport import MemoryTransport

# litellm's own models trip pydantic's warnings; they are not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")

N = 100
EAST = Key("openai", "eastus", "gpt-4o")
WEST = Key("openai", "westus", "gpt-4o")


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


def publish(t, key, state, seq, probe_fraction=0.1, readings=None):
    rec = ControlRecord(key, state, since=1000.0, until=1030.0 if state == "open" else None, reason="tripped",
                        rule="error_breaker", probe_fraction=probe_fraction, seq=seq, issued_at=1000.0,
                        expires_at=1030.0, readings=readings)
    t.append(sc.TOPIC_CONTROL, rec.to_bytes(), rec.kafka_key())


async def eventually(cond, timeout=5.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


_CALLBACK_LISTS = ("callbacks", "input_callback", "success_callback", "failure_callback",
                   "_async_success_callback", "_async_failure_callback")


@pytest.fixture
def callbacks():
    """litellm.callbacks, emptied for the test and restored after (litellm copies its entries into
    its other lists, de-duplicated by class, so those are reset too)."""
    saved = {name: list(getattr(litellm, name)) for name in _CALLBACK_LISTS}
    for name in _CALLBACK_LISTS:
        setattr(litellm, name, [])
    yield litellm.callbacks
    for name, value in saved.items():
        setattr(litellm, name, value)


def router_for(east, west):
    return litellm.Router(model_list=[
        {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "api_base": east.api_base,
                                                     "api_key": "sk-test", "region_name": "eastus"}},
        {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "api_base": west.api_base,
                                                     "api_key": "sk-test", "region_name": "westus"}},
    ], num_retries=0)


async def send(router, n, **kwargs):
    for _ in range(n):
        await router.acompletion(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], **kwargs)
    # litellm logs successes in a background task; left pending, it runs on the next test's loop
    from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

    await GLOBAL_LOGGING_WORKER.flush()


async def test_router_moves_traffic_off_an_open_key_and_back(servers, callbacks):
    east, west = servers
    t, clock = MemoryTransport(), Clock()
    board = AsyncBreakerBoard(t, clock=clock, registry=CollectorRegistry(), poll_timeout=0.05,
                              rng=random.Random(1))
    await board.start(timeout=5.0)
    guard = BrownoutRouterGuard(board)
    callbacks.append(guard)
    router = router_for(east, west)
    try:
        await send(router, 20)
        assert east.hits > 0 and west.hits > 0  # both in use while closed

        publish(t, EAST, "open", seq=1)
        await eventually(lambda: board.state(EAST) == "open")
        e0, w0 = east.hits, west.hits
        await send(router, N)
        assert west.hits - w0 >= 0.95 * N
        assert east.hits == e0
        assert guard.filtered == N and guard.removed == N

        publish(t, EAST, "half_open", seq=2, probe_fraction=0.2)
        await eventually(lambda: board.state(EAST) == "half_open")
        e1 = east.hits
        await send(router, N)
        assert 0 < east.hits - e1 < 0.3 * N  # probes only

        publish(t, EAST, "closed", seq=3)
        await eventually(lambda: board.state(EAST) == "closed")
        e2 = east.hits
        await send(router, N)
        assert east.hits - e2 >= 0.25 * N  # traffic returns
    finally:
        await board.stop()


async def test_expired_record_fails_open_in_the_router(servers, callbacks):
    east, west = servers
    t, clock = MemoryTransport(), Clock()
    publish(t, EAST, "open", seq=1)
    board = AsyncBreakerBoard(t, clock=clock, registry=CollectorRegistry(), poll_timeout=0.05)
    await board.start(timeout=5.0)
    callbacks.append(BrownoutRouterGuard(board))
    router = router_for(east, west)
    try:
        clock.now = 1031.0  # the collector went quiet
        await send(router, 40)
        assert east.hits >= 10
    finally:
        await board.stop()


def test_thread_backed_board_with_mapping(servers, callbacks):
    """The sync board lives on its own thread, so it serves routers on any event loop.
    (LiteLLM runs ``async_filter_deployments`` on the async path only: ``acompletion``.)"""
    east, west = servers
    t = MemoryTransport()
    a, b = Key("openai", "east-dc", "gpt-4o"), Key("openai", "west-dc", "gpt-4o")
    publish(t, b, "open", seq=1)
    with BreakerBoard(t, clock=Clock(), registry=CollectorRegistry(), poll_timeout=0.05) as board:
        callbacks.append(BrownoutRouterGuard(board, mapping={east.api_base: a, west.api_base: b}))
        asyncio.run(send(router_for(east, west), 30))
    assert east.hits == 30 and west.hits == 0


async def test_all_deployments_open_and_no_fallbacks_calls_the_least_degraded(servers, callbacks):
    east, west = servers
    t = MemoryTransport()
    publish(t, EAST, "open", seq=1, readings=Readings(ttft_p50=2.7, ttft_p50_baseline=0.3))  # 9 x slower
    publish(t, WEST, "open", seq=1, readings=Readings(capacity_error_rate=0.5))  # half fail: 2 x
    board = AsyncBreakerBoard(t, clock=Clock(), registry=CollectorRegistry(), poll_timeout=0.05)
    await board.start(timeout=5.0)
    guard = BrownoutRouterGuard(board)
    callbacks.append(guard)
    try:
        await send(router_for(east, west), 20)
        assert (east.hits, west.hits) == (0, 20)
        assert guard.least_degraded == 20 and guard.fell_back == 0
    finally:
        await board.stop()


MINI = Key("openai", "eastus", "gpt-4o-mini")


def chain_router(east, west, mini, **kwargs):
    deployments = [("gpt-4o", "gpt-4o", east, "eastus"), ("gpt-4o", "gpt-4o", west, "westus"),
                   ("gpt-4o-mini", "gpt-4o-mini", mini, "eastus")]
    return litellm.Router(model_list=[
        {"model_name": group, "litellm_params": {"model": f"openai/{model}", "api_base": server.api_base,
                                                 "api_key": "sk-test", "region_name": region}}
        for group, model, server, region in deployments], **kwargs)


async def guarded(t, callbacks, router_kwargs, servers, with_router=True):
    board = AsyncBreakerBoard(t, clock=Clock(), registry=CollectorRegistry(), poll_timeout=0.05)
    await board.start(timeout=5.0)
    router = chain_router(*servers, num_retries=3, **router_kwargs)
    guard = BrownoutRouterGuard(board, router=router if with_router else None)
    callbacks.append(guard)
    return board, router, guard


@pytest.mark.parametrize("router_kwargs", [{"fallbacks": [{"gpt-4o": ["gpt-4o-mini"]}]},
                                           {"default_fallbacks": ["gpt-4o-mini"]}])
async def test_litellm_falls_back_at_once_when_every_deployment_of_the_group_is_open(
        make_server, callbacks, router_kwargs):
    servers = east, west, mini = make_server("east"), make_server("west"), make_server("mini")
    t = MemoryTransport()
    publish(t, EAST, "open", seq=1)
    publish(t, WEST, "open", seq=1)
    board, router, guard = await guarded(t, callbacks, router_kwargs, servers)
    try:
        await send(router, 10)
        assert (east.hits, west.hits, mini.hits) == (0, 0, 10)
        assert guard.fell_back == 10  # one refusal per call: LiteLLM did not retry the open group (num_retries=3)
        publish(t, WEST, "closed", seq=2)
        await eventually(lambda: board.state(WEST) == "closed")
        await send(router, 10)
        assert (west.hits, mini.hits) == (10, 10)
    finally:
        await board.stop()


async def test_a_calls_own_fallbacks_are_walked_too(make_server, callbacks):
    servers = east, west, mini = make_server("east"), make_server("west"), make_server("mini")
    t = MemoryTransport()
    publish(t, EAST, "open", seq=1)
    publish(t, WEST, "open", seq=1)
    board, router, guard = await guarded(t, callbacks, {}, servers)
    try:
        await send(router, 5, fallbacks=["gpt-4o-mini"])
        assert (east.hits, west.hits, mini.hits) == (0, 0, 5) and guard.fell_back == 5
    finally:
        await board.stop()


@pytest.mark.parametrize("slowest, called", [("mini", "east"), ("east", "mini")])
async def test_nothing_left_calls_the_least_degraded_of_the_whole_chain(make_server, callbacks, slowest, called):
    servers = east, west, mini = make_server("east"), make_server("west"), make_server("mini")
    by_name = {"east": east, "west": west, "mini": mini}
    slow, mild = Readings(ttft_p50=3.0, ttft_p50_baseline=0.3), Readings(ttft_p50=0.6, ttft_p50_baseline=0.3)
    t = MemoryTransport()
    publish(t, EAST, "open", seq=1, readings=slow if slowest == "east" else mild)
    publish(t, WEST, "open", seq=1, readings=Readings(capacity_error_rate=0.95))  # 20 x
    publish(t, MINI, "open", seq=1, readings=slow if slowest == "mini" else mild)
    board, router, guard = await guarded(t, callbacks, {"fallbacks": [{"gpt-4o": ["gpt-4o-mini"]}]}, servers)
    try:
        await send(router, 10)
        assert by_name[called].hits == 10 and east.hits + west.hits + mini.hits == 10
        assert guard.least_degraded == 10
    finally:
        await board.stop()


def test_breakers_open_is_what_litellm_falls_back_on_without_retrying():
    exc = BreakersOpen("gpt-4o", "gpt-4o-mini")
    assert isinstance(exc, litellm.NotFoundError) and exc.status_code == 404
    assert "every deployment of 'gpt-4o' is refused" in str(exc) and exc.fallback == "gpt-4o-mini"


async def test_a_broken_mapping_fails_open(servers, callbacks):
    east, west = servers
    t = MemoryTransport()
    publish(t, EAST, "open", seq=1)
    board = AsyncBreakerBoard(t, clock=Clock(), registry=CollectorRegistry(), poll_timeout=0.05)
    await board.start(timeout=5.0)

    def mapping(deployment):
        raise KeyError("no such deployment")

    guard = BrownoutRouterGuard(board, mapping=mapping)
    try:
        deployments = [{"litellm_params": {"model": "openai/gpt-4o", "region_name": "eastus"}}]
        assert guard.filter(deployments, "gpt-4o") == deployments
    finally:
        await board.stop()


async def test_telemetry_callbacks_are_forwarded_and_learn_the_guards_key(servers, callbacks):
    east, west = servers

    class Recorder(CustomLogger):
        def __init__(self):
            super().__init__()
            self.calls = []

        async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
            # litellm's callbacks are global: a late log of an earlier test's call is not ours
            params = kwargs.get("litellm_params") or {}
            if str(params.get("api_base") or kwargs.get("api_base")).rstrip("/") in ours:
                self.calls.append((response_obj.choices[0].message.content, guard.key_for_call(kwargs)))

    ours = {east.api_base.rstrip("/"), west.api_base.rstrip("/")}
    # earlier tests' calls may still have success callbacks queued in litellm's logging worker; run
    # them now, while no callback is registered, or they reach this recorder (a "mini" answer)
    from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

    await GLOBAL_LOGGING_WORKER.flush()
    recorder = Recorder()
    board = AsyncBreakerBoard(MemoryTransport(), clock=Clock(), registry=CollectorRegistry(), poll_timeout=0.05)
    await board.start(timeout=5.0)
    guard = BrownoutRouterGuard(board, telemetry=recorder)
    callbacks.append(guard)
    try:
        await send(router_for(east, west), 10)
        await eventually(lambda: len(recorder.calls) == 10)
        assert {(server, key) for server, key in recorder.calls} <= {("east", EAST), ("west", WEST)}
        assert guard.key_for_call({}) is None
    finally:
        await board.stop()


@pytest.mark.parametrize("params, key", [
    ({"model": "openai/gpt-4o", "region_name": "eastus"}, Key("openai", "eastus", "gpt-4o")),
    ({"model": "gpt-4o", "custom_llm_provider": "azure", "api_base": "https://a.openai.azure.com/"},
     Key("azure.ai.openai", "global", "gpt-4o")),
    ({"model": "azure/prod", "api_base": "https://res.openai.azure.com/", "region_name": "swedencentral"},
     Key("azure.ai.openai", "swedencentral", "prod")),
    ({"model": "gpt-4o", "api_base": "http://127.0.0.1:8001/v1"}, Key("openai", "global", "gpt-4o")),
    ({"model": "bedrock/anthropic.claude-3", "aws_region_name": "us-east-1"},
     Key("aws.bedrock", "us-east-1", "anthropic.claude-3")),
    ({"model": "vertex_ai/gemini-2.0", "vertex_location": "europe-west4"},
     Key("gcp.vertex_ai", "europe-west4", "gemini-2.0")),
    ({"model": "anthropic/claude-sonnet-4"}, Key("anthropic", "global", "claude-sonnet-4")),
])
def test_deployment_key(params, key):
    assert deployment_key(params) == key


def reported_events(t):
    from brownout.codec import decode
    from brownout.model import Event

    return [e for r in t.records(sc.TOPIC_EVENTS)
            for e in decode(r.value, (r.header("content-type") or b"").decode()) if isinstance(e, Event)]


async def test_the_guard_and_the_hooks_name_a_deployment_alike(callbacks, make_server):
    """What the hooks report for a call is what the guard filters on, when regions come from hosts."""
    import brownout.hooks as hooks
    from brownout.hooks.litellm import BrownoutLogger

    east, west = make_server("east"), make_server("west")
    model_list = [
        {"model_name": "gpt-4o", "litellm_params": {
            "model": "openai/gpt-4o", "api_key": "sk-test", "api_base": server.api_base.replace("127.0.0.1", host)}}
        for server, host in ((east, "localhost"), (west, "127.0.0.1"))
    ]
    t = MemoryTransport()
    board = AsyncBreakerBoard(MemoryTransport(), clock=Clock(), registry=CollectorRegistry())
    await board.start(timeout=5.0)
    guard = BrownoutRouterGuard(board, telemetry=BrownoutLogger())
    callbacks.append(guard)
    hooks.configure(transport=t, regions={"localhost": "eastus", "127.0.0.1": "westus"})
    try:
        await send(litellm.Router(model_list=model_list, num_retries=0), 20)
        await eventually(lambda: hooks.flush(timeout=0.1) and len(reported_events(t)) >= 20)
        filtered_on = {guard.key_of(d) for d in model_list}
    finally:
        hooks.configure()
        await board.stop()
    assert {e.key for e in reported_events(t)} == filtered_on == {EAST, WEST}
    assert east.hits > 0 and west.hits > 0


async def test_the_hooks_report_the_guards_key_when_regions_come_from_region_name(servers, callbacks):
    """LiteLLM keeps ``region_name`` from logging callbacks; the guard hands its keys to its telemetry."""
    import brownout.hooks as hooks
    from brownout.hooks.litellm import BrownoutLogger

    east, west = servers
    t = MemoryTransport()
    board = AsyncBreakerBoard(MemoryTransport(), clock=Clock(), registry=CollectorRegistry())
    await board.start(timeout=5.0)
    logger = BrownoutLogger()
    guard = BrownoutRouterGuard(board, telemetry=logger)
    assert logger.key_for == guard.key_for_call
    callbacks.append(guard)
    hooks.configure(transport=t)  # no region mapping at all: only region_name names the regions
    try:
        await send(router_for(east, west), 20)
        await eventually(lambda: hooks.flush(timeout=0.1) and len(reported_events(t)) >= 20)
    finally:
        hooks.configure()
        await board.stop()
    assert {e.key for e in reported_events(t)} == {EAST, WEST}
