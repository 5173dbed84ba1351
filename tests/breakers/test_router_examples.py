"""The router examples run offline. examples/hedged_stream.py: the first stream to start is kept,
the other is cancelled, and the hooks report the cancelled copy as an abandoned call, not the
provider's error. examples/litellm_router.py: a real litellm.Router leaves an open deployment
and comes back after healthy probes."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from brownout import semconv as sc

ROOT = Path(__file__).resolve().parents[2]
SWEDEN, EASTUS2 = "azure.ai.openai/swedencentral/gpt-4o", "azure.ai.openai/eastus2/gpt-4o"
HEDGE_DELAY, SLOW_START = 0.25, 2.0  # what the example's records and fake server say


@pytest.fixture(scope="module")
def output():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "hedged_stream.py")], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    calls = [line for line in lines if line.startswith("call ")]
    events = [(k, json.loads(v)) for k, v in (line.split(" ", 1) for line in lines if line.startswith("azure."))]
    return calls, events


def test_the_slow_start_is_hedged_and_the_first_stream_to_start_is_kept(output):
    calls, _ = output
    assert len(calls) == 2
    assert calls[0].startswith(f"call 1: kept {EASTUS2}") and "hedged after 0.25 s" in calls[0]
    assert calls[1].startswith(f"call 2: kept {SWEDEN}") and "no copy needed" in calls[1]
    assert all(line.endswith("'t0t1t2'") for line in calls)  # the whole stream of the copy kept


def test_the_cancelled_copy_is_reported_as_abandoned_not_as_the_providers_error(output):
    _, events = output
    assert [k for k, _ in events].count(SWEDEN) == 2 and [k for k, _ in events].count(EASTUS2) == 1
    lost = next(e for k, e in events if k == SWEDEN and e[sc.ERROR_TYPE])
    kept = next(e for k, e in events if k == EASTUS2)
    assert sc.error_class(lost[sc.ERROR_TYPE]) == "cancelled"
    assert lost[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] is None
    assert HEDGE_DELAY <= lost["duration"] < SLOW_START  # cancelled once the copy started, not after 2 s
    assert kept[sc.ERROR_TYPE] is None and kept[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] < SLOW_START
    assert kept["start"] - lost["start"] >= HEDGE_DELAY  # the copy went out after the hedge delay


def test_the_cancelled_copy_says_how_late_its_first_token_was_at_least(output):
    _, events = output
    lost = next(e for k, e in events if k == SWEDEN and e[sc.ERROR_TYPE])
    assert lost[sc.ERROR_TYPE] == "cancelled"
    assert lost[sc.BROWNOUT_TTFT_AT_LEAST] == pytest.approx(lost["duration"], abs=0.01)
    assert lost[sc.BROWNOUT_TTFT_AT_LEAST] >= HEDGE_DELAY


def test_the_litellm_router_example_moves_traffic_off_the_open_deployment_and_back():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "litellm_router.py"), "-n", "40"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    east = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(.+?):\s+east\s+(\d+)\s+west\s+\d+", out.stdout, re.M)}
    assert east["east open"] == 0 and 0 < east["east half-open (probes)"] < 40
    assert east["all closed"] > 0 and east["east closed again"] > 0
