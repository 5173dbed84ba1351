"""Instrument a Google Gen AI (Gemini) app: generate_content and generate_content_stream.

    python examples/gemini_app.py            # against a local fake server, events printed
"""

from __future__ import annotations

from google import genai
from google.genai import errors, types

import brownout.hooks
from brownout.hooks.testing import FakeLLMServer, Plan
from brownout.transport import MemoryTransport

from _events import print_events  # noqa: E402  (examples/_events.py)


def main() -> None:
    server = FakeLLMServer()
    server.plan(Plan(), Plan(first_delay=0.1, chunks=6, gap=0.01), Plan(status=429))
    topic = MemoryTransport()
    brownout.hooks.configure(transport=topic)
    brownout.hooks.instrument_genai(region="europe-west1")   # or instrument_genai(client)

    # Vertex AI: genai.Client(vertexai=True, project=..., location="europe-west4") -> gcp.vertex_ai
    client = genai.Client(api_key="fake", http_options=types.HttpOptions(base_url=server.url))
    client.models.generate_content(model="gemini-2.5-flash", contents="Say hello")
    for _ in client.models.generate_content_stream(model="gemini-2.5-flash", contents="Say hello"):
        pass
    try:
        client.models.generate_content(model="gemini-2.5-flash", contents="Say hello")
    except errors.APIError as exc:
        print("provider said", exc.code)

    print_events(topic)
    client.close()
    server.close()


if __name__ == "__main__":
    main()
