"""Circuit breakers for a LiteLLM Router, in a few lines.

In your app::

    import litellm
    from brownout.breakers import BreakerBoard
    from brownout.breakers.litellm import BrownoutRouterGuard
    from brownout.hooks.litellm import BrownoutLogger       # report every call too
    from brownout.transport import KafkaTransport

    board = BreakerBoard(KafkaTransport("kafka:9092")).start()   # follows brownout.control
    router = litellm.Router(model_list=[...], fallbacks=[...])    # unchanged
    litellm.callbacks.append(BrownoutRouterGuard(board, router=router, telemetry=BrownoutLogger()))

With ``router=``, a model group whose deployments are all open falls back at once through
LiteLLM's own ``fallbacks``; with nothing left, the least degraded deployment is called.

The guard and the hooks must name a deployment alike (``provider/region/model``). Both take
the region from the ``api_base`` host (``brownout.hooks.configure(regions={"myres-east":
"eastus"})``, or the region in a Bedrock/Vertex URL). The guard also reads ``region_name``
from ``litellm_params``, which LiteLLM does not pass on to logging callbacks: if you set it,
name the hosts' regions the same way, or pass ``mapping=`` to the guard.

Run this file for a self-contained demo (no network, no Kafka): two local OpenAI-protocol
servers behind one Router; a collector-side BreakerBook opens the breaker of one, the Router
moves its traffic to the other; half-open probes then close it and traffic returns::

    python examples/litellm_router.py [--bootstrap-servers localhost:9092]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline demo

import litellm  # noqa: E402

from brownout.breakers import BreakerBoard, BreakerBook, BreakerConfig  # noqa: E402
from brownout.breakers.litellm import BrownoutRouterGuard, deployment_key  # noqa: E402
from brownout.model import Event, Finding  # noqa: E402
from brownout.transport import MemoryTransport  # noqa: E402


def chat_server(name: str) -> tuple[ThreadingHTTPServer, dict[str, int]]:
    """A local server answering OpenAI chat completions; counts its requests."""
    hits = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            hits["n"] += 1
            out = json.dumps({
                "id": "chatcmpl-demo", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "gpt-4o"),
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": name}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, hits


async def send(router: litellm.Router, n: int) -> None:
    for _ in range(n):
        await router.acompletion(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap-servers", help="use Kafka for the control topic (it must exist)")
    ap.add_argument("-n", type=int, default=100, help="requests per phase")
    args = ap.parse_args()

    if args.bootstrap_servers:
        from brownout.transport import KafkaTransport

        transport = KafkaTransport(args.bootstrap_servers)
    else:
        transport = MemoryTransport()

    (east, east_hits), (west, west_hits) = chat_server("east"), chat_server("west")
    model_list = [
        {"model_name": "gpt-4o", "litellm_params": {
            "model": "openai/gpt-4o", "api_key": "sk-demo", "region_name": region,
            "api_base": f"http://127.0.0.1:{srv.server_port}/v1"}}
        for srv, region in ((east, "eastus"), (west, "westus"))
    ]
    east_key, west_key = (deployment_key(d["litellm_params"]) for d in model_list)

    # --- router side: the few lines an app adds ---------------------------------------------
    board = BreakerBoard(transport).start()
    router = litellm.Router(model_list=model_list, num_retries=0)
    litellm.callbacks.append(BrownoutRouterGuard(board, router=router))

    # --- collector side, simulated: the detectors found east's errors over their threshold -----
    book = BreakerBook(BreakerConfig(cooldown_min=1.0, cooldown_max=10.0, jitter=0.0, probe_fraction=0.2,
                                     probes_needed=3))

    async def collector(now: float) -> None:
        for d in book.advance(now):
            print(f"  collector: {d.key} -> {d.state} ({d.reason})")
        producer = transport.producer()
        await producer.start()
        try:
            await book.publish(producer, now)
        finally:
            await producer.stop()

    def phase(title: str) -> None:
        e0, w0 = east_hits["n"], west_hits["n"]
        asyncio.run(send(router, args.n))
        e, w = east_hits["n"] - e0, west_hits["n"] - w0
        print(f"{title:<34} east {e:>4}   west {w:>4}   (board: east {board.state(east_key)})")

    def wait_for(state: str) -> None:
        deadline = time.monotonic() + 10
        while board.state(east_key) != state:
            if time.monotonic() > deadline:
                raise SystemExit(f"the board did not show east {state} within 10 s")
            time.sleep(0.01)

    phase("all closed:")
    now = time.time()
    for key in (east_key, west_key):
        book.observe(Event(key, now - 1, 0.5))
    book.on_finding(Finding(now, "error_breaker", east_key, "trip", 0.42, 0.01, action="breaker"))
    asyncio.run(collector(now))
    wait_for("open")
    phase("east open:")
    asyncio.run(collector(now + 1.0))  # the cooldown elapsed
    wait_for("half_open")
    phase("east half-open (probes):")
    for i in range(3):  # probe requests came back healthy
        book.observe(Event(east_key, now + 1.1 + i * 0.1, 0.05))
    asyncio.run(collector(now + 2.0))
    wait_for("closed")
    phase("east closed again:")
    board.stop()


if __name__ == "__main__":
    main()
