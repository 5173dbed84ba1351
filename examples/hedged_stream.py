"""A hedged streaming call: keep the first stream to start, cancel the other.

The board gives each deployment a hedge delay from what the collector measured on it (its TTFT
p95 in normal times, from the control record's readings). A call still without a first token
after that delay gets a copy on the next admitted deployment of the fallback chain, within a
budget (:class:`~brownout.breakers.HedgeBudget`); whichever starts streaming first is kept and
the other is cancelled. The hooks report the cancelled copy as ``error.type="cancelled"`` with
``brownout.ttft.at_least`` (its first token was at least that late), so the collector learns
from it instead of losing it, and never counts it as the provider's error.

Run it offline (two local fake deployments; Sweden Central is slow to start the first time)::

    python examples/hedged_stream.py

The part to copy into an app is :func:`hedged_stream`; ``main`` sets up the fake deployments,
the control records a collector would publish, and prints what the hooks reported.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Mapping, Sequence

import openai

import brownout.hooks
from brownout import semconv as sc
from brownout.breakers import AsyncBreakerBoard, ControlRecord, HedgeBudget, Readings
from brownout.codec import decode
from brownout.hooks.testing import FakeLLMServer, Plan
from brownout.model import Key
from brownout.transport import MemoryTransport

SWEDEN = Key("azure.ai.openai", "swedencentral", "gpt-4o")
EASTUS2 = Key("azure.ai.openai", "eastus2", "gpt-4o")


async def first_chunk(client: openai.AsyncAzureOpenAI, model: str, messages: list[dict[str, str]]) -> tuple[Any, str]:
    """Open a stream and wait for its first content chunk; return the stream and that text."""
    stream = await client.chat.completions.create(model=model, messages=messages, stream=True)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            return stream, chunk.choices[0].delta.content
    return stream, ""


async def hedged_stream(board: AsyncBreakerBoard, budget: HedgeBudget, clients: Mapping[Key, openai.AsyncAzureOpenAI],
                        chain: Sequence[Key], model: str, messages: list[dict[str, str]]) -> tuple[Key, str, bool]:
    """Stream from the first deployment of ``chain`` the board admits; after its hedge delay
    without a first token, also from the next admitted one; keep the first to start, cancel
    the other. Returns the deployment kept, the whole text, and whether a copy was sent."""
    budget.call()
    primary = board.pick(chain)
    tasks = {asyncio.create_task(first_chunk(clients[primary], model, messages)): primary}
    delay = board.hedge_delay(primary)  # None: nothing known about it, do not hedge
    done, _ = await asyncio.wait(tasks, timeout=delay)
    hedged = False
    if not done:
        others = board.admitted([k for k in chain if k != primary])
        if others and budget.try_hedge():
            tasks[asyncio.create_task(first_chunk(clients[others[0]], model, messages))] = others[0]
            hedged = True
    winner = None
    while winner is None:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is None and winner is None:
                winner = task
            elif task.exception() is not None:
                key = tasks.pop(task)
                if not tasks:  # every copy failed: the caller's retry policy takes it from here
                    raise task.exception() from None  # type: ignore[misc]
                print(f"  {key} failed: {task.exception()!r}")
    losers = [t for t in tasks if t is not winner]
    for task in losers:
        task.cancel()  # the hooks report it: error.type "cancelled", ttft_at_least
    await asyncio.gather(*losers, return_exceptions=True)
    stream, text = winner.result()
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    return tasks[winner], text, hedged


async def run(topic: MemoryTransport) -> None:
    slow, fast = FakeLLMServer(), FakeLLMServer()
    slow.plan(Plan(delay=2.0, chunks=4))  # the first call to Sweden Central waits 2 s to start
    clients = {}
    for key, server in ((SWEDEN, slow), (EASTUS2, fast)):
        clients[key] = openai.AsyncAzureOpenAI(azure_endpoint=server.url, api_key="fake", api_version="2024-10-21",
                                               max_retries=0)
        brownout.hooks.instrument_openai(clients[key], region=key.region)
    # what the collector publishes for both keys: closed, with their TTFT readings
    control = MemoryTransport()
    now = time.time()
    for key in (SWEDEN, EASTUS2):
        rec = ControlRecord(key, "closed", since=now, seq=0, issued_at=now, expires_at=now + 30,
                            readings=Readings(ttft_p50=0.1, ttft_p95=0.25, ttft_p50_baseline=0.1, ttft_p95_baseline=0.25))
        control.append(sc.TOPIC_CONTROL, rec.to_bytes(), rec.kafka_key())
    board = AsyncBreakerBoard(control, registry=None)
    await board.start()
    budget = HedgeBudget(ratio=0.1)
    messages = [{"role": "user", "content": "Say hello"}]
    try:
        for n in (1, 2):
            t0 = time.perf_counter()
            key, text, hedged = await hedged_stream(board, budget, clients, [SWEDEN, EASTUS2], "gpt-4o", messages)
            print(f"call {n}: kept {key} after {time.perf_counter() - t0:.2f} s "
                  f"({'hedged after' if hedged else 'no copy needed, hedge delay'} "
                  f"{board.hedge_delay(SWEDEN):.2f} s): {text!r}")
    finally:
        await board.stop()
        for client in clients.values():
            await client.close()
        slow.close()
        fast.close()


def main() -> None:
    topic = MemoryTransport()
    brownout.hooks.configure(transport=topic)  # in-memory instead of Kafka
    asyncio.run(run(topic))
    brownout.hooks.flush()
    print("what the hooks reported:")
    for rec in topic.records(sc.TOPIC_EVENTS):
        for ev in decode(rec.value, (rec.header(sc.HEADER_CONTENT_TYPE) or b"").decode()):
            flat = ev.to_flat()
            print(rec.key.decode(), json.dumps({k: flat.get(k) for k in (
                "start", "duration", sc.ERROR_TYPE, sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, sc.BROWNOUT_TTFT_AT_LEAST)}))


if __name__ == "__main__":
    main()
