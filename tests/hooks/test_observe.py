"""The generic hook: observe() as context manager and decorator, and what it emits."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import brownout.hooks as hooks
from brownout import semconv as sc
from brownout.codec import decode
from brownout.hooks import EventExporter, Observation, error_type_of, event_of, observe
from brownout.model import Event, Key


class StatusError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


def test_streamed_call_emits_one_event_with_ttft_itl_usage(captured):
    with observe(provider="openai", region="eastus", model="gpt-4o", stream=True, deadline=2.0,
                 server_address="api.example.com", server_port=443) as call:
        time.sleep(0.02)
        for _ in range(4):
            call.chunk()
        call.usage(input_tokens=11, output_tokens=4)
        call.response_model = "gpt-4o-2024-08-06"
        call.finish_reasons = ["stop"]
    ev = captured.one()
    assert ev.key == Key("openai", "eastus", "gpt-4o")
    assert ev.stream is True and ev.operation == "chat"
    assert ev.ttft >= 0.02 and ev.duration >= ev.ttft
    assert (ev.input_tokens, ev.output_tokens) == (11, 4)
    assert ev.response_model == "gpt-4o-2024-08-06"
    assert ev.finish_reasons == ("stop",)
    assert ev.itl_p50 is not None and 0 <= ev.itl_p50 <= ev.itl_p95 <= ev.itl_max
    assert ev.deadline == 2.0 and ev.server_address == "api.example.com" and ev.server_port == 443
    assert ev.error_type is None
    assert abs(ev.start - time.time()) < 60


def test_record_is_keyed_and_has_the_protobuf_content_type(captured):
    with observe(provider="anthropic", region="us-east-1", model="claude-sonnet-4"):
        pass
    (rec,) = captured.records()
    assert rec.key == b"anthropic/us-east-1/claude-sonnet-4"
    assert rec.header("content-type") == b"application/x-protobuf"


def test_each_record_holds_one_keys_spans(captured):
    exporter = hooks.exporter()
    for model in ("a", "b", "a", "c", "b", "a"):
        obs = observe(provider="openai", region="eastus", model=model).start()
        obs.end()
    recs = captured.records()
    assert exporter.stats()["sent"] == 6
    by_key = {}
    for rec in recs:
        evs = decode(rec.value, sc.CONTENT_OTLP_PROTO)
        assert {str(e.key).encode() for e in evs} == {rec.key}
        by_key[rec.key] = by_key.get(rec.key, 0) + len(evs)
    assert by_key == {b"openai/eastus/a": 3, b"openai/eastus/b": 2, b"openai/eastus/c": 1}


@pytest.mark.parametrize("exc, error_type, status", [
    (StatusError(429), "429", 429),
    (StatusError(503), "503", 503),
    (StatusError(529), "529", 529),
    (TimeoutError("slow"), "timeout", None),
    (asyncio.TimeoutError(), "timeout", None),
    (KeyError("x"), "KeyError", None),
])
def test_exception_sets_error_type_and_is_reraised_unchanged(captured, exc, error_type, status):
    with pytest.raises(type(exc)) as info:
        with observe(provider="openai", region="eastus", model="gpt-4o"):
            raise exc
    assert info.value is exc
    ev = captured.one()
    assert ev.error_type == error_type
    assert ev.status_code == status


def test_error_type_of_reads_status_attribute_and_response():
    class WithStatus(Exception):
        status = 500

    class Resp:
        status_code = 502

    class WithResponse(Exception):
        response = Resp()

    class ReadTimeout(Exception):
        pass

    assert error_type_of(WithStatus()) == "500"
    assert error_type_of(WithResponse()) == "502"
    assert error_type_of(ReadTimeout()) == "timeout"


def test_stream_cut_midway_finishes_with_error(captured):
    with pytest.raises(ConnectionResetError):
        with observe(provider="openai", region="eastus", model="gpt-4o", stream=True) as call:
            call.chunk()
            call.chunk()
            raise ConnectionResetError("peer reset")
    ev = captured.one()
    assert ev.finish_reasons == ("error",)
    assert ev.error_type == "ConnectionResetError"
    assert ev.ttft is not None


async def test_async_context_manager(captured):
    async with observe(provider="openai", region="eastus", model="gpt-4o", stream=True) as call:
        await asyncio.sleep(0)
        time.sleep(0.01)  # a blocking wait: the TTFT bound below must hold exactly
        call.chunk()
    ev = captured.one()
    assert ev.ttft >= 0.01 and ev.stream is True


def test_decorator_observes_every_call(captured):
    @observe(provider="openai", region="westus", model="gpt-4o-mini")
    def ask(x):
        if x < 0:
            raise StatusError(500)
        return x * 2

    assert ask(2) == 4
    with pytest.raises(StatusError):
        ask(-1)
    evs = sorted(captured.events(), key=lambda e: e.error_type or "")
    assert [e.error_type for e in evs] == [None, "500"]


async def test_async_decorator(captured):
    @observe(provider="openai", region="westus", model="gpt-4o-mini")
    async def ask():
        await asyncio.sleep(0)
        return "ok"

    assert await ask() == "ok"
    assert await ask() == "ok"
    assert len(captured.events()) == 2


def test_observation_ends_once(captured):
    obs = observe(provider="openai", region="eastus", model="gpt-4o").start()
    obs.end()
    obs.end()
    obs.fail(RuntimeError("late"))
    obs.end()
    assert len(captured.events()) == 1


@pytest.mark.parametrize("name, kwargs", [
    ("provider", {"provider": "", "region": "r", "model": "m"}),
    ("region", {"provider": "p", "region": None, "model": "m"}),
    ("model", {"provider": "p", "region": "r", "model": 3}),
])
def test_bad_arguments_never_raise_into_the_app(name, kwargs, captured, caplog):
    with observe(**kwargs) as call:  # the app's call goes on
        call.chunk()
    assert hooks.flush(5.0)
    assert captured.events() == []
    assert hooks.stats()["invalid"] == 1
    assert f"observe(): {name} must be a non-empty string" in caplog.text


def test_itl_percentiles_match_a_batch_oracle():
    rng = np.random.default_rng(7)
    gaps = rng.exponential(0.03, size=57)
    times = list(1.0 + 0.4 + np.cumsum(np.concatenate([[0.0], gaps])))
    obs = Observation("openai", "eastus", "gpt-4o", stream=True)
    obs.t0, obs.chunk_times, obs.t1 = 1.0, times, times[-1] + 0.01
    ev = event_of(obs, 1_000.0)
    real_gaps = np.diff(np.array(times))
    assert ev.ttft == pytest.approx(times[0] - 1.0)
    assert ev.itl_p50 == pytest.approx(np.percentile(real_gaps, 50, method="inverted_cdf"), abs=1e-8)
    assert ev.itl_p95 == pytest.approx(np.percentile(real_gaps, 95, method="inverted_cdf"), abs=1e-8)
    assert ev.itl_max == pytest.approx(real_gaps.max(), abs=1e-8)
    assert ev.start == pytest.approx(1_001.0)


def test_invalid_event_is_counted_not_raised(captured):
    obs = observe(provider="openai", region="eastus", model="gpt-4o").start()
    obs.usage(input_tokens=-5)
    obs.end()
    assert hooks.flush(10.0)
    assert hooks.stats()["invalid"] == 1
    assert captured.records() == []


class BlockingProducer:
    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate

    async def start(self):
        pass

    async def send(self, topic, value, key=None, headers=()):
        while not self.gate.is_set():
            await asyncio.sleep(0.01)

    async def flush(self):
        pass

    async def stop(self):
        pass


class SlowTransport:
    def __init__(self) -> None:
        self.gate = threading.Event()

    def producer(self):
        return BlockingProducer(self.gate)


def test_full_queue_drops_and_counts_without_blocking():
    transport = SlowTransport()
    ex = EventExporter(transport, max_queue=5, batch_size=1, interval=0.01, send_timeout=30.0)
    try:
        for _ in range(50):
            obs = Observation("openai", "eastus", "gpt-4o").start()
            obs.t1 = obs.t0
            ex.submit(obs)
        stats = ex.stats()
        assert stats["dropped"] >= 50 - 5 - 1
        assert stats["queued"] <= 5
    finally:
        transport.gate.set()
        ex.shutdown(10.0)
    stats = ex.stats()
    assert stats["sent"] + stats["dropped"] == 50


class BrokenTransport:
    def producer(self):
        return self

    async def start(self):
        raise ConnectionRefusedError("no broker")


def test_broken_transport_counts_errors_and_never_raises():
    ex = EventExporter(BrokenTransport(), interval=0.01)
    for _ in range(3):
        obs = Observation("openai", "eastus", "gpt-4o").start()
        obs.t1 = obs.t0
        ex.submit(obs)
    assert ex.flush(10.0)
    ex.shutdown(5.0)
    assert ex.stats()["errors"] == 3 and ex.stats()["sent"] == 0


def test_tracer_provider_gets_real_spans_with_explicit_times():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )
    from opentelemetry.trace import SpanKind, StatusCode

    spans = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    ex = EventExporter(tracer_provider=tp, interval=0.01)
    obs = Observation("openai", "eastus", "gpt-4o", stream=True).start()
    obs.chunk()
    obs.fail(StatusError(503))
    obs.t1 = obs.t0 + 1.25
    obs.done = True
    ex.submit(obs)
    assert ex.flush(10.0)
    ex.shutdown()
    (span,) = spans.get_finished_spans()
    assert span.name == "chat gpt-4o" and span.kind == SpanKind.CLIENT
    assert span.end_time - span.start_time == 1_250_000_000
    assert span.attributes["error.type"] == "503"
    assert span.attributes["gen_ai.provider.name"] == "openai"
    assert span.status.status_code == StatusCode.ERROR
    ev = Event.from_attributes(dict(span.attributes), span.start_time / 1e9,
                               (span.end_time - span.start_time) / 1e9)
    assert ev.key == Key("openai", "eastus", "gpt-4o") and ev.ttft is not None


def test_configure_with_unreachable_kafka_never_blocks_or_raises():
    t0 = time.perf_counter()
    ex = hooks.configure(bootstrap_servers="127.0.0.1:1", interval=0.01)
    try:
        with observe(provider="openai", region="eastus", model="gpt-4o"):
            pass
        assert time.perf_counter() - t0 < 5  # generous: only says the caller was not held on Kafka
    finally:
        ex.send_timeout = 1.0
        hooks.configure()


def test_importing_hooks_loads_nothing_heavy():
    code = ("import sys, brownout.hooks; "
            "print(sorted(m for m in ('numpy', 'aiokafka', 'openai', 'anthropic', 'litellm', "
            "'google.genai', 'boto3', 'botocore') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unconfigured_hooks_discard_and_count():
    ex = EventExporter(None, interval=0.01)
    obs = Observation("openai", "eastus", "gpt-4o").start()
    obs.t1 = obs.t0
    ex.submit(obs)
    assert ex.flush(10.0)
    ex.shutdown()
    assert ex.stats()["discarded"] == 1
