"""Instrument an Anthropic app (messages.create and the messages.stream helper).

    python examples/anthropic_app.py         # against a local fake server, events printed
"""

from __future__ import annotations

import anthropic

import brownout.hooks
from brownout.hooks.testing import FakeLLMServer, Plan
from brownout.transport import MemoryTransport

from _events import print_events  # noqa: E402  (examples/_events.py)


def main() -> None:
    server = FakeLLMServer()
    server.plan(Plan(), Plan(delay=0.1, chunks=6, gap=0.01), Plan(status=529))
    topic = MemoryTransport()
    brownout.hooks.configure(transport=topic)
    brownout.hooks.instrument_anthropic(region="us-east-1")   # or instrument_anthropic(client)

    client = anthropic.Anthropic(base_url=server.url, api_key="fake", max_retries=0)
    messages = [{"role": "user", "content": "Say hello"}]
    client.messages.create(model="claude-sonnet-4", max_tokens=64, messages=messages)
    with client.messages.stream(model="claude-sonnet-4", max_tokens=64, messages=messages) as stream:
        for _ in stream.text_stream:
            pass
    try:
        client.messages.create(model="claude-sonnet-4", max_tokens=64, messages=messages)
    except anthropic.APIStatusError as exc:
        print("provider said", exc.status_code)

    print_events(topic)
    server.close()


if __name__ == "__main__":
    main()
