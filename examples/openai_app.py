"""Instrument an OpenAI app in two lines, and look at what brownout publishes.

    python examples/openai_app.py            # against a local fake server, events printed
    OPENAI_API_KEY=... BROWNOUT_KAFKA_BOOTSTRAP_SERVERS=kafka:9092 python examples/openai_app.py --real

Without ``--real`` it needs no network: a fake OpenAI server on loopback answers, and the
events land in an in-memory topic that is decoded and printed.
"""

from __future__ import annotations

import argparse
import json

import openai

import brownout.hooks
from brownout.codec import decode
from brownout.transport import MemoryTransport


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--real", action="store_true", help="call api.openai.com and publish to Kafka")
    args = ap.parse_args()

    if args.real:
        brownout.hooks.configure()                       # BROWNOUT_KAFKA_BOOTSTRAP_SERVERS
        brownout.hooks.instrument_openai()               # the two lines
        client = openai.OpenAI()
    else:
        from brownout.hooks.testing import FakeLLMServer, Plan

        server = FakeLLMServer()
        server.plan(Plan(), Plan(delay=0.2, chunks=8, gap=0.01), Plan(status=429))
        topic = MemoryTransport()
        brownout.hooks.configure(transport=topic)        # in-memory instead of Kafka
        brownout.hooks.instrument_openai(region="eastus")
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="fake", max_retries=0)

    messages = [{"role": "user", "content": "Say hello"}]
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True,
                                            stream_options={"include_usage": True}):
        pass
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    except openai.RateLimitError:
        pass

    brownout.hooks.flush()
    print(json.dumps(brownout.hooks.stats()))
    if not args.real:
        for rec in topic.records("brownout.events"):
            for ev in decode(rec.value, rec.header("content-type").decode()):
                print(rec.key.decode(), json.dumps(ev.to_flat()))
        server.close()


if __name__ == "__main__":
    main()
