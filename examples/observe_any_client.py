"""Any other client: wrap the call in ``brownout.hooks.observe`` (context manager or decorator).

    python examples/observe_any_client.py
"""

from __future__ import annotations

import time

import brownout.hooks
from brownout.transport import MemoryTransport

from _events import print_events  # noqa: E402  (examples/_events.py)


def fake_stream(n: int):
    time.sleep(0.05)  # time to first token
    for i in range(n):
        yield f"token{i}"
        time.sleep(0.005)


def main() -> None:
    topic = MemoryTransport()
    brownout.hooks.configure(transport=topic)

    with brownout.hooks.observe(provider="aws.bedrock", region="us-west-2", model="mistral-large",
                                stream=True, deadline=2.0) as call:
        for _ in fake_stream(20):
            call.chunk()
        call.usage(input_tokens=40, output_tokens=20)
        call.finish_reasons = ("stop",)

    @brownout.hooks.observe(provider="gcp.vertex_ai", region="europe-west4", model="gemini-2.5-pro")
    def ask() -> str:
        raise TimeoutError("the provider did not answer")

    try:
        ask()
    except TimeoutError:
        pass

    print_events(topic)


if __name__ == "__main__":
    main()
