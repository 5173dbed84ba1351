"""Valid but extreme events (every field at its bounds) through the whole pipeline: detectors
and breakers never raise, and every decision they print is finite and serialisable."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brownout.model import MAX_SECONDS, MAX_TOKENS, Event, Key
from brownout.pipeline import Pipeline

KEYS = [Key("openai", "eastus", "gpt-4o"), Key("openai", "westus", "gpt-4o"), Key("anthropic", "us-east-1", "c")]
T0 = 1_767_225_600.0
seconds = st.one_of(st.sampled_from([0.0, 5e-324, 1e-9, MAX_SECONDS]),
                    st.floats(0.0, MAX_SECONDS, allow_nan=False, allow_infinity=False))
maybe_seconds = st.none() | seconds
tokens = st.none() | st.sampled_from([0, 1, 2, MAX_TOKENS]) | st.integers(0, MAX_TOKENS)

events = st.builds(
    lambda key, offset, duration, ttft, out_tok, in_tok, err, itl, deadline: Event(
        key, T0 + offset, duration, ttft=ttft, output_tokens=out_tok, input_tokens=in_tok, error_type=err,
        itl_p50=itl, itl_p95=itl, itl_max=itl, deadline=deadline).validate(),
    st.sampled_from(KEYS), st.floats(0.0, 900.0), seconds, maybe_seconds, tokens, tokens,
    st.sampled_from([None, None, None, "503", "429", "400", "timeout", "weird"]), maybe_seconds, maybe_seconds)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(events, min_size=1, max_size=300))
def test_extreme_valid_events_never_break_the_pipeline(evs):
    pipeline = Pipeline()
    decisions = []
    for ev in sorted(evs, key=lambda e: e.start):
        pipeline.observe(ev)
        decisions += pipeline.advance(ev.start)
    decisions += pipeline.advance(T0 + 900.0 + MAX_SECONDS + 3600.0)
    for d in decisions:
        row = json.dumps(d.to_json(), allow_nan=False)
        assert json.loads(row)["key"]["provider"] in {k.provider for k in KEYS}
        for v in (d.observed, d.baseline):
            assert v is None or math.isfinite(v)
    for status in pipeline.status().values():
        for name in ("error_rate", "ttft_p50", "latency_p95", "tokens_per_s", "itl_p95"):
            v = getattr(status, name, None)
            assert v is None or math.isfinite(v), (name, v)
