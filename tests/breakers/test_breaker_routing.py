"""Routing with the board: fallback chains, the least degraded candidate when all are refused,
first-token timeouts and hedge delays from the records' readings, and the hedge budget."""

import random

import pytest
from prometheus_client import CollectorRegistry

from brownout import semconv as sc
from brownout.breakers import AsyncBreakerBoard, BreakerBoard, ControlRecord, HedgeBudget, Readings
from brownout.model import Key
from brownout.transport import MemoryTransport

EAST = Key("azure.ai.openai", "eastus", "gpt-4o")
SWEDEN = Key("azure.ai.openai", "swedencentral", "gpt-4o")
OPENAI = Key("openai", "global", "gpt-4o")
MINI = Key("openai", "global", "gpt-4o-mini")
UNKNOWN = Key("openai", "global", "o3")
CHAIN = [[EAST, SWEDEN], OPENAI, MINI]  # preferred provider, same model elsewhere, a smaller model


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


def put(t, key, state, *, readings=None, rule="error_breaker", observed=None, baseline=None, seq=1,
        issued_at=1000.0, probe_fraction=0.1):
    rec = ControlRecord(key, state, since=issued_at, until=issued_at + 30 if state == "open" else None,
                        reason="tripped" if state == "open" else None, rule=rule, observed=observed,
                        baseline=baseline, probe_fraction=probe_fraction, seq=seq, issued_at=issued_at,
                        expires_at=issued_at + 30, readings=readings)
    t.append(sc.TOPIC_CONTROL, rec.to_bytes(), rec.kafka_key())


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def transport():
    return MemoryTransport()


@pytest.fixture
async def board(transport, clock):
    """A board over ``transport``; records put before the test's first ``await board.start()``-free read
    are applied directly (no background task needed)."""
    b = AsyncBreakerBoard(transport, clock=clock, registry=CollectorRegistry(), rng=random.Random(7))
    yield b
    await b.stop()


def load(board, transport):
    for raw in transport.records(sc.TOPIC_CONTROL):
        board.apply(raw)


def test_the_chain_is_walked_tier_by_tier(board, transport):
    load(board, transport)
    assert board.candidates(CHAIN) == [EAST, SWEDEN]
    put(transport, SWEDEN, "open")
    load(board, transport)
    assert board.candidates(CHAIN) == [EAST]
    put(transport, EAST, "open")
    load(board, transport)
    assert board.candidates(CHAIN) == [OPENAI]  # the same model elsewhere
    put(transport, OPENAI, "open")
    load(board, transport)
    assert board.candidates(CHAIN) == [MINI] and board.pick(CHAIN) == MINI  # a smaller model anywhere


def test_pick_spreads_calls_over_the_admitted_keys_of_a_tier(board, transport):
    picks = {board.pick(CHAIN) for _ in range(200)}
    assert picks == {EAST, SWEDEN}
    with pytest.raises(ValueError, match="empty"):
        board.pick([])


def test_when_everything_is_refused_the_least_degraded_is_called(board, transport, clock):
    slow = Readings(ttft_p50=2.7, ttft_p50_baseline=0.3, capacity_error_rate=0.0)  # 9 x slower
    flaky = Readings(ttft_p50=0.3, ttft_p50_baseline=0.3, capacity_error_rate=0.5)  # half fail: 2 x
    put(transport, EAST, "open", readings=slow)
    put(transport, SWEDEN, "open", readings=flaky)
    put(transport, OPENAI, "open", observed=0.8, rule="error_breaker")  # no readings: the trip's 80 %
    put(transport, MINI, "open", observed=6.0, baseline=2.0, rule="latency_breaker")  # 3 x
    load(board, transport)
    assert board.degradation(EAST) == (2, pytest.approx(9.0))
    assert board.degradation(SWEDEN) == (2, pytest.approx(2.0))
    assert board.degradation(OPENAI) == (2, pytest.approx(5.0))
    assert board.degradation(MINI) == (2, pytest.approx(3.0))
    assert board.candidates(CHAIN) == [SWEDEN] and board.pick(CHAIN) == SWEDEN
    assert board.healthy([EAST, SWEDEN]) == [SWEDEN]
    put(transport, EAST, "half_open", readings=slow, seq=2, probe_fraction=1e-9)
    load(board, transport)
    assert board.candidates(CHAIN) == [EAST]  # half-open beats open whatever its cost
    assert board.least_degraded([OPENAI, MINI]) == MINI
    clock.now = 1031.0  # every record expired: all closed again, the chain's order decides
    assert board.candidates(CHAIN) == [EAST, SWEDEN] and board.least_degraded([MINI, OPENAI]) == MINI


def test_readings_timeouts_and_hedge_delays_come_from_the_record(board, transport, clock):
    put(transport, EAST, "closed", readings=Readings(ttft_p50=0.4, ttft_p95=0.9, ttft_p95_baseline=0.8))
    put(transport, SWEDEN, "closed", readings=Readings(ttft_p95=1.5))  # baselines still warming
    put(transport, OPENAI, "closed", readings=Readings(ttft_p95_baseline=0.1))
    slowing = Readings(ttft_p50=2.0, ttft_p95=6.0, ttft_p50_baseline=0.3)  # no p95 baseline learned
    put(transport, MINI, "closed", readings=slowing)
    load(board, transport)
    assert board.readings(EAST) == Readings(ttft_p50=0.4, ttft_p95=0.9, ttft_p95_baseline=0.8)
    assert board.first_token_timeout(EAST) == pytest.approx(3.2)  # 4 x the p95 baseline
    assert board.first_token_timeout(SWEDEN) == pytest.approx(6.0)  # 4 x the current p95
    assert board.first_token_timeout(OPENAI) == 1.0  # the floor
    assert board.first_token_timeout(MINI) == pytest.approx(2.4)  # 4 x 2 x the p50 baseline, not the slow p95
    assert board.first_token_timeout(UNKNOWN, 20.0) == 20.0  # nothing known: the caller's default
    assert board.hedge_delay(EAST) == pytest.approx(0.8)
    assert board.hedge_delay(SWEDEN) == pytest.approx(1.5)
    assert board.hedge_delay(MINI) == pytest.approx(0.6)
    assert board.hedge_delay(UNKNOWN) is None and board.hedge_delay(UNKNOWN, 2.0) == 2.0
    assert board.first_token_timeout(EAST, factor=3.0, floor=5.0) == 5.0
    assert board.stall_threshold(EAST) == pytest.approx(6.4) and board.stall_threshold(OPENAI) == 3.0
    assert board.stall_threshold(UNKNOWN) is None  # the hooks use their own estimate
    clock.now = 1030.0  # expired: nothing known any more
    assert board.readings(EAST) is None and board.hedge_delay(EAST) is None


def test_a_revision_1_record_has_no_readings(board, transport):
    v1 = (b'{"v":1,"key":{"provider":"openai","region":"global","model":"gpt-4o"},"state":"closed",'
          b'"since":1000.0,"until":null,"reason":null,"rule":null,"observed":null,"baseline":null,'
          b'"probe_fraction":0.1,"seq":1,"issued_at":1000.0,"expires_at":1030.0}')
    transport.append(sc.TOPIC_CONTROL, v1, b"openai/global/gpt-4o")
    load(board, transport)
    assert board.state(OPENAI) == "closed" and board.readings(OPENAI) is None
    assert board.first_token_timeout(OPENAI, 12.0) == 12.0


def test_the_sync_board_answers_the_same(transport, clock):
    put(transport, EAST, "open", readings=Readings(ttft_p95_baseline=0.5))
    put(transport, SWEDEN, "closed", readings=Readings(ttft_p95_baseline=0.7))
    with BreakerBoard(transport, clock=clock, registry=CollectorRegistry(), poll_timeout=0.05) as board:
        assert board.candidates(CHAIN) == [SWEDEN] and board.pick(CHAIN) == SWEDEN
        assert board.admitted([EAST, SWEDEN]) == [SWEDEN]
        assert board.least_degraded([EAST, SWEDEN]) == SWEDEN and board.degradation(EAST)[0] == 2
        assert board.readings(SWEDEN) == Readings(ttft_p95_baseline=0.7)
        assert board.hedge_delay(SWEDEN) == pytest.approx(0.7)
        assert board.first_token_timeout(SWEDEN) == pytest.approx(2.8)
        assert board.stall_threshold(SWEDEN) == pytest.approx(5.6)


def test_the_hedge_budget_caps_hedges_at_its_share_of_calls():
    greedy, modest = HedgeBudget(ratio=0.1, burst=5.0), HedgeBudget(ratio=0.1, burst=5.0)
    greedy_hedges = modest_hedges = 0
    for i in range(10_000):
        greedy.call()
        greedy_hedges += greedy.try_hedge()  # would hedge every call
        modest.call()
        if i % 20 == 0:  # hedges 5 % of calls: the budget never says no
            modest_hedges += modest.try_hedge()
    assert greedy_hedges == greedy.hedges <= 0.1 * 10_000 + 5
    assert greedy_hedges >= 0.1 * 10_000 - 1
    assert modest_hedges == 500


@pytest.mark.parametrize("kwargs, field", [({"ratio": 0}, "ratio"), ({"ratio": 1.5}, "ratio"),
                                           ({"burst": 0.5}, "burst")])
def test_hedge_budget_names_a_bad_setting(kwargs, field):
    with pytest.raises(ValueError, match=rf"HedgeBudget\.{field}"):
        HedgeBudget(**kwargs)


async def test_keys_with_readings_only_are_not_exported_per_key(transport, clock):
    put(transport, EAST, "closed", readings=Readings(ttft_p50=0.4), seq=0)  # never tripped
    put(transport, SWEDEN, "open", readings=Readings(ttft_p50=4.0))
    registry = CollectorRegistry()
    board = AsyncBreakerBoard(transport, clock=clock, registry=registry)
    await board.start(timeout=5.0)
    try:
        def gauge(key):
            return registry.get_sample_value("brownout_router_breaker_state",
                                             {"provider": key.provider, "region": key.region, "model": key.model})

        assert gauge(SWEDEN) == 2 and gauge(EAST) is None and board.readings(EAST) == Readings(ttft_p50=0.4)
    finally:
        await board.stop()


def test_when_most_of_a_tier_is_open_its_nearly_as_good_keys_share_the_calls(board, transport, clock):
    # a cascade in the making: east browns out (9 x); sweden opened because it queued east's load
    # (1.6 x); only openai is admitted and would take the whole tier's load alone
    tier = [EAST, SWEDEN, OPENAI]
    put(transport, EAST, "open", readings=Readings(ttft_p50=2.7, ttft_p50_baseline=0.3))
    put(transport, SWEDEN, "open", readings=Readings(ttft_p50=0.48, ttft_p50_baseline=0.3))
    put(transport, OPENAI, "closed", readings=Readings(ttft_p50=0.33, ttft_p50_baseline=0.3))
    load(board, transport)
    assert board.refused_share(tier) == pytest.approx(2 / 3)
    assert board.candidates([tier]) == [OPENAI, SWEDEN]  # east, 9 x its baseline, stays out
    put(transport, SWEDEN, "closed", readings=Readings(ttft_p50=0.48, ttft_p50_baseline=0.3), seq=2)
    load(board, transport)
    assert board.candidates([tier]) == [SWEDEN, OPENAI]  # a third refused: no panic
    with pytest.raises(ValueError):
        type(board)(transport, registry=None, panic_share=0.0)
