"""bench/routing.py: deterministic, and its measures mean what its docstring says."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "routing.py"


@pytest.fixture(scope="module")
def routing():
    spec = importlib.util.spec_from_file_location("routing_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["routing_bench"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("routing_bench", None)


@pytest.fixture(scope="module")
def quick(routing):
    from brownout.rules import load_rules

    timeline = routing.Timeline(warmup=660.0, incident=180.0, after=30.0)
    return routing.run(["slow_first_token"], ["random", "brownout", "+timeout", "oracle"], rate=10.0,
                       timeline=timeline, rules=load_rules(), seed=3)


def by_strategy(results):
    return {r["strategy"]: r for r in results}


def test_the_oracle_never_sends_to_the_bad_deployment_and_random_sends_a_third(quick):
    r = by_strategy(quick)
    assert r["oracle"]["to_bad"] == 0.0 and r["oracle"]["shed_s"] == 0.0
    assert 0.28 < r["random"]["to_bad"] < 0.39 and r["random"]["shed_s"] is None
    assert r["oracle"]["goodput"] > r["random"]["goodput"]
    assert r["random"]["records"] == 0 and r["brownout"]["records"] > 0  # only brownout routers follow a collector


def test_routers_following_the_collector_move_off_the_bad_deployment(quick):
    """+timeout turns the stuck calls into capacity errors the default error breaker acts on."""
    r = by_strategy(quick)
    assert r["+timeout"]["shed_s"] is not None and r["+timeout"]["to_bad"] < r["random"]["to_bad"] / 2
    assert r["+timeout"]["goodput"] > r["random"]["goodput"]


def test_the_bench_is_deterministic_and_prints_json(routing, capsys):
    argv = ["--json", "--quick", "--only", "error_burst", "--strategy", "brownout", "--rate", "6"]
    runs = []
    for _ in range(2):
        routing.main(argv)
        runs.append([json.loads(line) for line in capsys.readouterr().out.splitlines()])
    for run in runs:
        for line in run:
            line.pop("seconds")  # wall time: the only thing that may differ
    assert runs[0] == runs[1] and len(runs[0]) == 1
    assert runs[0][0]["scenario"] == "error_burst" and 0.0 <= runs[0][0]["goodput"] <= 1.0
