"""Instrument every LiteLLM call with one callback.

    python examples/litellm_app.py           # against a local fake OpenAI server, events printed
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402

import brownout.hooks  # noqa: E402
from brownout.hooks.testing import FakeLLMServer, Plan  # noqa: E402
from brownout.transport import MemoryTransport  # noqa: E402

from _events import print_events  # noqa: E402  (examples/_events.py)


def main() -> None:
    server = FakeLLMServer()
    server.plan(Plan(), Plan(status=503))
    topic = MemoryTransport()
    brownout.hooks.configure(transport=topic)
    litellm.callbacks = [brownout.hooks.BrownoutLogger(region="eastus")]   # the one line

    kw = {"model": "openai/gpt-4o", "api_base": server.url + "/v1", "api_key": "fake",
          "messages": [{"role": "user", "content": "hi"}], "num_retries": 0, "max_retries": 0}
    litellm.completion(**kw)
    try:
        litellm.completion(**kw)
    except Exception as exc:  # LiteLLM maps the 503 to its own exception
        print("provider said", getattr(exc, "status_code", exc))
    time.sleep(0.5)  # LiteLLM runs its callbacks on a thread pool

    print_events(topic)
    server.close()


if __name__ == "__main__":
    main()
