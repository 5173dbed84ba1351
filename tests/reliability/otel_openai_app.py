"""An app as a team already runs it: the real openai SDK instrumented by OTel's own
``opentelemetry-instrumentation-openai-v2``, exporting spans over OTLP/gRPC to an OpenTelemetry
Collector. No brownout code and no region anywhere in it.

It calls two deployments served by :class:`~brownout.hooks.testing.FakeLLMServer`: ``gpt-4o``
(healthy) and ``gpt-4.1-mini`` (every other call answers 503), a third of the calls streamed,
for SECONDS, then flushes its spans and prints the outcome counts as JSON.

    python otel_openai_app.py 127.0.0.1:4317 12
"""

from __future__ import annotations

import collections
import json
import sys
import time


def main(endpoint: str, seconds: float) -> dict[str, int]:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "chat-app"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True),
                                                   schedule_delay_millis=200))
    OpenAIInstrumentor().instrument(tracer_provider=provider)

    import openai

    from brownout.hooks.testing import FakeLLMServer, Plan

    healthy, failing = FakeLLMServer(), FakeLLMServer()
    clients = {"gpt-4o": openai.OpenAI(base_url=healthy.url + "/v1", api_key="test", max_retries=0),
               "gpt-4.1-mini": openai.OpenAI(base_url=failing.url + "/v1", api_key="test", max_retries=0)}
    counts: collections.Counter[str] = collections.Counter()
    messages = [{"role": "user", "content": "hi"}]
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        for model, client in clients.items():
            if model == "gpt-4.1-mini" and i % 2 == 0:
                failing.plan(Plan(status=503))
            try:
                if i % 3 == 0:
                    for _ in client.chat.completions.create(model=model, messages=messages, stream=True):
                        pass
                else:
                    client.chat.completions.create(model=model, messages=messages)
                counts[f"{model} ok"] += 1
            except openai.APIStatusError as exc:
                counts[f"{model} {exc.status_code}"] += 1
        i += 1
        time.sleep(0.05)
    provider.force_flush()
    provider.shutdown()
    healthy.close()
    failing.close()
    return dict(counts)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], float(sys.argv[2]))), flush=True)
