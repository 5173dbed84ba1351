"""A real ``litellm.Router`` moved off a failing or slow deployment by brownout, end to end on the real broker.

Two deployments of ``gpt-4o`` at two local OpenAI-protocol servers (chat completions, streamed
and not), each its own brownout key: ``openai/eastus/gpt-4o`` at 127.0.0.1 and
``openai/westus/gpt-4o`` at 127.0.0.2 (both loopback; ``hooks.configure(regions=...)`` names the
hosts' regions, so the hooks and the guard key a deployment alike; ``region_name`` in
``litellm_params`` would reach the guard but not the hooks, which LiteLLM's logging callbacks do
not pass it to). One
:class:`~brownout.breakers.litellm.BrownoutRouterGuard` does both jobs: it reports every call
through the hooks' :class:`~brownout.hooks.litellm.BrownoutLogger` and filters the Router's
deployments through an :class:`~brownout.breakers.AsyncBreakerBoard` that follows the control
topic written by a ``brownout collect`` subprocess.

LiteLLM's Router has its own cooldown, which also reacts to 503s by benching a deployment. It
is switched off here (``disable_cooldowns=True``, ``num_retries=0``, no fallbacks), so every
request makes exactly one call and whatever moves the traffic is brownout's breaker.

The detector rules are the defaults (error breaker: 25 % errors, tripping early on a 5 s
window's lower confidence bound). Only the rule file's ``breaker:`` section is shortened, so a
few breaker rounds fit in the test: a cooldown of 10-12.5 s (15 s after a failed probe round)
instead of 30-60 s, and half-open admits half of the calls, closes after 3 healthy probes and
re-opens after 2 failed ones. (Cooldowns run in event time from the step that tripped, so a
router sees the breaker open for the cooldown less the detection delay.)

Scenario A: east answers 503s. Scenario B: east's first token comes 5 x later; the latency
breaker needs a baseline and a held p95, so LATENCY_RULES shortens its windows (said in the
output). Scenario C (issue 12): east holds every first token; nothing completes, and the hooks'
in-flight stall reports open the breaker through the default ``stall_breaker`` rule. The hooks
are wired as in a router process (``stall_threshold=board.stall_threshold``). Budgets checked:
the error breaker opens within 15 s of a hard error burst (DESIGN); a stalled deployment loses
its traffic within 30 s of the stall starting, before any of its held requests completes (issue
12); while a breaker is open at least 95 % of new requests go to the healthy deployment (judged
by when the guard filtered each request's pick). Every request makes one event, plus one stall
report per call that waited past its threshold: the hooks' ``sent`` and the collector's
``brownout_events_total{outcome="accepted"}`` both equal that sum. The measured times are
printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

# litellm fetches its model cost map from GitHub at import; tests run offline
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402
from support import free_port, ready, scrape, wait_for

import brownout.hooks as hooks  # noqa: E402
from brownout.breakers import AsyncBreakerBoard  # noqa: E402
from brownout.breakers.litellm import BrownoutRouterGuard  # noqa: E402
from brownout.hooks.litellm import BrownoutLogger  # noqa: E402
from brownout.model import Key  # noqa: E402
from brownout.transport import KafkaTransport  # noqa: E402
from brownout.transport.base import default_topics  # noqa: E402

pytestmark = [pytest.mark.integration,
              # litellm's own models trip pydantic's warnings; they are not ours to fix
              pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")]

EAST = Key("openai", "eastus", "gpt-4o")
WEST = Key("openai", "westus", "gpt-4o")
HOSTS = {"127.0.0.1": "eastus", "127.0.0.2": "westus"}

BREAKER_RULES = """\
# The default detectors; breakers with test-length cooldowns and a quick half-open round.
breaker:
  cooldown_min: 10
  cooldown_max: 15
  jitter: 0.25
  probe_fraction: 0.5
  probes_needed: 3
  probe_failures: 2
"""
# Scenario B: the latency breaker trips on p95 >= 2 x baseline held 5 min over a 5-min window, after a
# 10-min warm-up, by default. Shortened here (and said so in the output) to fit a test.
LATENCY_RULES = BREAKER_RULES + """\
baseline:
  warmup: 60          # one per-minute sample makes a baseline (default 600 s)
rules:
  latency_p95:
    window: 30        # the latency baseline learns this window's p95 each minute (default 300 s)
    short_windows: [15]   # default [30, 60]: must fit in the window
  latency_breaker:
    window: 15        # default 300 s
    hold: 5           # default 300 s
    min_requests: 10
    fast_windows: [10, 15]  # default [15, 30, 60]: must fit in the window
"""
BREAKER_BUDGET = 15.0  # DESIGN: a breaker opens within 15 s of a hard error burst
STALL_BUDGET = 30.0  # issue 12: a stalled deployment loses its traffic within 30 s of the stall starting


class ChatServer:
    """An OpenAI chat-completions endpoint on ``host``, streamed (SSE) or not; counts hits.

    ``status`` (settable) makes it answer with that HTTP error; ``first_token_delay`` delays the
    first chunk (or the whole answer when not streamed); ``hold`` (an Event) holds it until set
    (at most ``HOLD_LIMIT`` s): ``held`` are the requests waiting on it now, ``holds`` all it held.
    """

    HOLD_LIMIT = 180.0

    def __init__(self, name: str, host: str) -> None:
        self.name = name
        self.hits = 0
        self.status = 200
        self.first_token_delay = 0.0
        self.hold: threading.Event | None = None
        self.held = 0
        self.holds = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body go out in several writes: without this, delayed ACKs cost 40 ms
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                with outer._lock:
                    outer.hits += 1
                status, delay, hold = outer.status, outer.first_token_delay, outer.hold
                if status != 200:
                    self._send_json(status, {"error": {"message": "overloaded", "type": "server_error",
                                                       "code": status}})
                elif body.get("stream"):
                    self._stream(body, delay, hold)
                else:
                    self._wait(delay, hold)
                    self._send_json(200, {
                        "id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
                        "model": body.get("model", "gpt-4o"),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": outer.name}}],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})

            def _send_json(self, status: int, payload: dict) -> None:
                out = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def _wait(self, delay: float, hold: threading.Event | None) -> None:
                time.sleep(delay)
                if hold is None:
                    return
                with outer._lock:
                    outer.held += 1
                    outer.holds += 1
                hold.wait(outer.HOLD_LIMIT)
                with outer._lock:
                    outer.held -= 1

            def _stream(self, body: dict, delay: float, hold: threading.Event | None) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                self._wait(delay, hold)
                base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": int(time.time()),
                        "model": body.get("model", "gpt-4o")}
                deltas = [{"role": "assistant", "content": ""}, {"content": outer.name}, {"content": "."}]
                for i, delta in enumerate(deltas):
                    last = i == len(deltas) - 1
                    self._chunk({**base, "choices": [{"index": 0, "delta": delta,
                                                      "finish_reason": "stop" if last else None}]})
                if (body.get("stream_options") or {}).get("include_usage"):
                    self._chunk({**base, "choices": [],
                                 "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
                self._write(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")

            def _chunk(self, payload: dict) -> None:
                self._write(b"data: " + json.dumps(payload).encode() + b"\n\n")

            def _write(self, data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def api_base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> "ChatServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@dataclass
class Call:
    """One request through the Router: when it started, when the guard filtered its pick (the
    routing decision) and when it ended (monotonic); who answered."""
    start: float
    picked: float
    end: float
    served_by: str  # "east", "west", or "error"
    stream: bool


#: Where the guard notes when it filtered the current request's pick (set per request).
_PICKED: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("picked", default=None)


@dataclass
class Traffic:
    """A steady stream of Router requests (streamed and not, alternately, unless ``stream`` says)
    from a few workers. A worker waits for each answer before its next request; with
    ``open_loop`` it starts one every ``period`` whatever is still in flight (arrivals that a
    held deployment does not slow down, as with many users)."""
    router: litellm.Router
    workers: int = 4
    period: float = 0.2  # per worker: ~20 requests/s in all
    stream: bool | None = None
    open_loop: bool = False
    calls: list[Call] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _in_flight: set[asyncio.Task] = field(default_factory=set)

    async def run(self) -> None:
        """Until :meth:`stop`, then until every request has its answer."""
        await asyncio.gather(*(self._worker(i) for i in range(self.workers)))
        while self._in_flight:
            await asyncio.gather(*self._in_flight)

    def stop(self) -> None:
        self._stop.set()

    async def _worker(self, i: int) -> None:
        n = i
        while not self._stop.is_set():
            n += 1
            t0 = time.monotonic()
            stream = n % 2 == 0 if self.stream is None else self.stream
            if self.open_loop:
                task = asyncio.create_task(self._record(stream))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            else:
                await self._record(stream)
            await asyncio.sleep(max(0.0, self.period - (time.monotonic() - t0)))

    async def _record(self, stream: bool) -> None:
        self.calls.append(await self._one(stream))

    async def _one(self, stream: bool) -> Call:
        t0 = time.monotonic()
        picked: list[float] = []
        _PICKED.set(picked)
        try:
            resp = await self.router.acompletion(model="gpt-4o", messages=[{"role": "user", "content": "hi"}],
                                                 stream=stream)
            if stream:
                text = "".join([c.choices[0].delta.content or "" async for c in resp if c.choices])
            else:
                text = resp.choices[0].message.content
            served_by = text.rstrip(".")
        except Exception:  # a 503 from the failing deployment: the app sees it, brownout counts it
            served_by = "error"
        assert picked, "the guard never saw this request's pick"
        return Call(t0, picked[0], time.monotonic(), served_by, stream)

    def routed_between(self, t0: float, t1: float) -> list[Call]:
        """The calls the Router picked a deployment for in [t0, t1) (and that have ended)."""
        return [c for c in self.calls if t0 <= c.picked < t1]


class BoardLog:
    """``on_record`` for the board: when (monotonic) each key's state first changed, and the rule
    of the record that changed it."""

    def __init__(self) -> None:
        self.changes: list[tuple[float, Key, str, str | None]] = []
        self._last: dict[Key, str] = {}

    def __call__(self, rec, result, raw) -> None:
        if rec is not None and result == "accepted" and self._last.get(rec.key) != rec.state:
            self._last[rec.key] = rec.state
            self.changes.append((time.monotonic(), rec.key, rec.state, rec.rule))

    def first(self, key: Key, state: str, after: float) -> float | None:
        return next((t for t, k, s, _ in self.changes if k == key and s == state and t >= after), None)

    def rule(self, key: Key, state: str, at: float) -> str | None:
        return next((r for t, k, s, r in self.changes if k == key and s == state and t == at), None)


class TimedGuard(BrownoutRouterGuard):
    """The guard, noting (monotonic) when it filters each request's pick (see ``Call.picked``)
    and when it first removed a deployment from one. A request started just before the board
    changed may be routed just after it: windows go by the pick, not the start."""

    routed_away_at: float | None = None

    def filter(self, deployments, model=None, request_kwargs=None):
        picked = _PICKED.get()
        if picked is not None:
            picked.append(time.monotonic())
        out = super().filter(deployments, model, request_kwargs)
        if len(out) < len(deployments) and self.routed_away_at is None:
            self.routed_away_at = time.monotonic()
        return out


_CALLBACK_LISTS = ("callbacks", "input_callback", "success_callback", "failure_callback",
                   "_async_success_callback", "_async_failure_callback")


@pytest.fixture
def callbacks():
    """litellm.callbacks, emptied for the test and restored after (litellm copies its entries
    into its other lists, so those are reset too)."""
    saved = {name: list(getattr(litellm, name)) for name in _CALLBACK_LISTS}
    for name in _CALLBACK_LISTS:
        setattr(litellm, name, [])
    yield litellm.callbacks
    for name, value in saved.items():
        setattr(litellm, name, value)


@pytest.fixture
def servers():
    with ChatServer("east", "127.0.0.1") as east, ChatServer("west", "127.0.0.2") as west:
        yield east, west


@pytest.fixture
def collector(kafka_bootstrap, topic_name, tmp_path):
    """Starts a ``brownout collect`` process with the given rule file text; returns (topics, metrics port).
    One per test; stopped (SIGTERM, exit 0) after it."""
    started = []

    async def start(rules_text: str) -> tuple[dict[str, str], int]:
        topics = {"events": topic_name("events"), "control": topic_name("control"),
                  "state": topic_name("state"), "dead_letter": topic_name("dead-letter")}
        await KafkaTransport(kafka_bootstrap).create_topics(default_topics(**topics, partitions=3))
        rules = tmp_path / "rules.yaml"
        rules.write_text(rules_text)
        port = free_port()
        env = dict(os.environ, BROWNOUT_TOPICS_STATE=topics["state"],
                   BROWNOUT_TOPICS_DEAD_LETTER=topics["dead_letter"], BROWNOUT_LOG_LEVEL="INFO")
        log = open(tmp_path / "collector.log", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "brownout.cli", "collect", "--bootstrap-servers", kafka_bootstrap,
             "--events-topic", topics["events"], "--control-topic", topics["control"],
             "--group-id", topic_name("group"), "--metrics-port", str(port), "--rules", str(rules),
             "--no-create-topics"],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        started.append((proc, log))
        await asyncio.to_thread(wait_for, lambda: proc.poll() is not None or ready(port), 60,
                                "the collector's /readyz")
        assert proc.poll() is None, _tail(tmp_path / "collector.log")
        return topics, port

    yield start
    for proc, log in started:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        log.close()
        print(_tail(tmp_path / "collector.log"))
        assert code == 0


@dataclass
class Round:
    """What one breaker round measured (monotonic seconds)."""
    t_degrade: float
    t_open: float
    open_rule: str | None
    t_routed_away: float  # the guard first removed east from a pick
    last_to_east: float
    to_west: float
    during_open: int
    t_recover: float
    t_half: float
    t_closed: float
    probes_east: int
    probes: int
    back_to_east: float
    after: int
    failed_round: tuple[float, float, int] | None  # (half_open, open again, failed probes) if probed while degraded
    stalls: int  # the hooks' in-flight stall reports
    calls: list[Call] = field(repr=False, default_factory=list)

    def report(self, what: str, budget: float | None) -> str:
        limit = f" (budget {budget:.0f} s)" if budget else ""
        lines = [
            f"{what} -> open record on the router's board: {self.t_open - self.t_degrade:5.1f} s{limit} "
            f"(rule {self.open_rule})",
            f"{what} -> first request routed away: {self.t_routed_away - self.t_degrade:5.1f} s",
            f"{what} -> traffic moved (last request sent to east): {self.last_to_east - self.t_degrade:5.1f} s; "
            f"{self.to_west:.1%} of {self.during_open} requests while open went to {WEST}"]
        t_open = self.t_open
        if self.failed_round is not None:
            half, again, failed = self.failed_round
            lines.append(f"open -> half_open (cooldown less detection delay) {half - t_open:.1f} s; still failing: "
                         f"{failed} probe requests failed, open again {again - half:.1f} s later")
            t_open = again
        return "\n".join(lines + [
            f"open record -> half_open record: {self.t_half - t_open:5.1f} s; "
            f"{self.probes_east} of {self.probes} requests probed east while half-open",
            f"recovery (while open) -> closed record: {self.t_closed - self.t_recover:5.1f} s "
            f"(half_open -> closed {self.t_closed - self.t_half:.1f} s); afterwards {self.back_to_east:.0%} of "
            f"{self.after} requests back on {EAST}"])


async def _breaker_round(kafka_bootstrap, topics, port, east, west, *, healthy, degrade, recover,
                         budget: float | None, probe_while_degraded: bool = False,
                         traffic: dict | None = None, stall_after: float | str = "auto",
                         at_open=None) -> Round:
    """Router + guard + board on the real control topic; healthy traffic (``Traffic(**traffic)``)
    until ``healthy()`` (awaited), then ``degrade()``: the breaker opens (within ``budget``;
    ``at_open()`` runs as soon as the board shows it), >= 95 % of requests go west; with
    ``probe_while_degraded``, the first half-open round fails and re-opens it; ``recover()``:
    probes close it and traffic returns. Then count reconciliation.

    The hooks are wired as in a router process: stall threshold from the board (the collector's
    baselines), else ``stall_after``."""
    seen = BoardLog()
    board = AsyncBreakerBoard(KafkaTransport(kafka_bootstrap), topics["control"], registry=CollectorRegistry(),
                              poll_timeout=0.1, on_record=seen)
    await board.start(timeout=30.0, strict=True)
    hooks.configure(bootstrap_servers=kafka_bootstrap, topic=topics["events"], regions=HOSTS,
                    stall_after=stall_after, stall_threshold=board.stall_threshold)
    try:
        return await _round(board, seen, port, east, west, healthy=healthy, degrade=degrade, recover=recover,
                            budget=budget, probe_while_degraded=probe_while_degraded, traffic=traffic or {},
                            at_open=at_open)
    finally:
        hooks.configure()
        await board.stop()


async def _round(board, seen, port, east, west, *, healthy, degrade, recover, budget, probe_while_degraded,
                 traffic, at_open) -> Round:
    guard = TimedGuard(board, telemetry=BrownoutLogger())
    litellm.callbacks.append(guard)
    model_list = [{"model_name": "gpt-4o", "litellm_params": {
        "model": "openai/gpt-4o", "api_base": server.api_base, "api_key": "sk-test"}} for server in (east, west)]
    router = litellm.Router(model_list=model_list, num_retries=0, disable_cooldowns=True)
    traffic = Traffic(router, **traffic)
    running = asyncio.create_task(traffic.run())
    try:
        assert [guard.key_of(d) for d in model_list] == [EAST, WEST]
        t_begin = time.monotonic()
        await healthy()
        assert {c.served_by for c in traffic.routed_between(t_begin, time.monotonic())} == {"east", "west"}
        assert guard.routed_away_at is None

        degrade()
        t_degrade = time.monotonic()
        await _until(lambda: board.state(EAST) == "open", 120, f"{EAST} open on the router's board")
        t_open = seen.first(EAST, "open", t_degrade)
        if at_open is not None:
            at_open()
        if budget is not None:
            assert t_open - t_degrade <= budget, f"breaker opened {t_open - t_degrade:.1f} s after the degradation"
        assert board.state(WEST) == "closed"

        # while open, new requests go to west (counted once every request has its answer)
        await _until(lambda: board.state(EAST) != "open"
                     or len(traffic.routed_between(t_open, time.monotonic())) >= 60, 30, "requests while open")
        t_moved_until = seen.first(EAST, "half_open", t_open) or time.monotonic()

        failed_round = None
        t_last_open = t_open
        if probe_while_degraded:  # half-open probes meet the same failure: open again, longer
            await _until(lambda: seen.first(EAST, "open", t_open + 1e-6) is not None, 60, f"{EAST} open again")
            t_last_open = seen.first(EAST, "open", t_open + 1e-6)
            failed = sum(c.served_by == "error" for c in traffic.routed_between(t_open, t_last_open))
            assert failed >= 2, "the breaker re-opened without failed probes"  # probe_failures: 2
            failed_round = (seen.first(EAST, "half_open", t_open), t_last_open, failed)

        # east recovers; half-open probes find it healthy and close the breaker
        recover()
        t_recover = time.monotonic()
        await _until(lambda: seen.first(EAST, "closed", t_recover) is not None, 60, f"{EAST} closed again")
        t_half = seen.first(EAST, "half_open", t_last_open)
        t_closed = seen.first(EAST, "closed", t_recover)
        probes = [c for c in traffic.routed_between(t_half, t_closed) if c.end < t_closed]

        # traffic returns to both
        await _until(lambda: len(traffic.routed_between(t_closed, time.monotonic())) >= 60, 30,
                     "requests after the close")
        after = traffic.routed_between(t_closed, time.monotonic())
        back_to_east = sum(c.served_by == "east" for c in after) / len(after)
        assert back_to_east >= 0.2, f"only {back_to_east:.0%} of requests back on {EAST}"
    finally:
        recover()  # whatever the server still holds is answered, so every call in flight ends
        traffic.stop()
        await running
        litellm.callbacks.remove(guard)

    during_open = traffic.routed_between(t_open, t_moved_until)
    assert len(during_open) >= 20, "too few requests while the breaker was open to judge"
    to_west = sum(c.served_by == "west" for c in during_open) / len(during_open)
    assert to_west >= 0.95, f"only {to_west:.0%} of requests went to the healthy deployment"
    last_to_east = max(c.picked for c in traffic.routed_between(t_degrade, t_moved_until)
                       if c.served_by in ("east", "error"))

    # every request made exactly one call, and produced exactly one event (and one stall report
    # per call that waited past its threshold for a first token)
    requests = len(traffic.calls)
    assert east.hits + west.hits == requests
    assert await asyncio.to_thread(hooks.flush, 30), "the hooks could not deliver their events"
    stats = hooks.stats()
    events = requests + stats["stalls"]
    assert stats["dropped"] == 0 and stats["errors"] == 0 and stats["sent"] == events, stats
    accepted = 'brownout_events_total{outcome="accepted"}'
    metrics = await asyncio.to_thread(
        wait_for, lambda: (m := scrape(port)).get(accepted, 0) >= events and m, 30, "every event counted")
    assert metrics[accepted] == events
    assert metrics.get('brownout_events_total{outcome="invalid"}', 0) == 0

    measured = Round(t_degrade, t_open, seen.rule(EAST, "open", t_open), guard.routed_away_at, last_to_east,
                     to_west, len(during_open), t_recover, t_half, t_closed,
                     sum(c.served_by == "east" for c in probes), len(probes), back_to_east, len(after),
                     failed_round, stats["stalls"], list(traffic.calls))
    streamed = sum(c.stream for c in traffic.calls)
    print(f"\n{requests} requests through the Router ({streamed} streamed), {stats['stalls']} stall reports, "
          f"{events} events accepted")
    print(f"board changes: {[(round(t - t_begin, 1), str(k), s) for t, k, s, _ in seen.changes]}")
    return measured


async def test_router_leaves_a_failing_deployment_and_comes_back(kafka_bootstrap, collector, servers,
                                                                 callbacks):
    """Scenario A: east answers 503s; its breaker opens within the budget and the Router sends
    new requests west; the first half-open probes still fail and it opens again; east recovers;
    the next probes close the breaker; traffic returns."""
    topics, port = await collector(BREAKER_RULES)
    east, west = servers
    t0 = time.monotonic()

    async def healthy():
        await _until(lambda: time.monotonic() - t0 > 5, 10, "healthy traffic")

    def fail():
        east.status = 503

    def recover():
        east.status = 200

    measured = await _breaker_round(kafka_bootstrap, topics, port, east, west, healthy=healthy, degrade=fail,
                                    recover=recover, budget=BREAKER_BUDGET, probe_while_degraded=True)
    print(measured.report("503s start", BREAKER_BUDGET))


async def test_router_leaves_a_slow_deployment_and_comes_back(kafka_bootstrap, collector, servers, callbacks):
    """Scenario B: east's first token comes 5 x later (0.1 s -> 0.5 s); once east has a latency
    baseline, the latency breaker opens (LATENCY_RULES: short windows and hold; DESIGN sets no
    seconds budget for it), the Router moves, and when east is fast again probes close it."""
    topics, port = await collector(LATENCY_RULES)
    east, west = servers
    east.first_token_delay = west.first_token_delay = 0.1
    baseline = 'brownout_key_latency_per_token_p95_baseline_seconds{model="gpt-4o",provider="openai",region="eastus"}'
    learned: list[float] = []

    async def healthy():  # the baseline learns at minute boundaries (event time): up to a minute
        def baseline_learned():
            value = scrape(port).get(baseline)
            return value is not None and learned.append(value) is None
        await asyncio.to_thread(wait_for, baseline_learned, 120, "a latency baseline for east", 1.0)

    def slow():
        east.first_token_delay = 0.5

    def recover():
        east.first_token_delay = 0.1

    measured = await _breaker_round(kafka_bootstrap, topics, port, east, west, healthy=healthy, degrade=slow,
                                    recover=recover, budget=None)
    print(f"east's p95 latency baseline {learned[0]:.3f} s; rules shortened for the test "
          f"(latency_breaker window 15 s, hold 5 s, fast windows 10 and 15 s; latency_p95 window 30 s, "
          f"short window 15 s; baseline warmup 60 s)")
    print(measured.report("first token 5 x slower", None))


async def test_router_leaves_a_deployment_whose_first_token_stalls(kafka_bootstrap, collector, servers, callbacks):
    """Scenario C (issue 12): east starts holding every first token (its streams send headers,
    then nothing). Nothing completes, so only the hooks' in-flight stall reports (``stall_after``
    2 s) tell the collector; the default ``stall_breaker`` opens east's breaker within 30 s of
    the stall starting, while the server still holds every request east got since, and the
    Router sends >= 95 % of new requests west. Streamed calls only, arriving open-loop (held
    calls do not slow the arrivals, as with many users). Then east answers again: the held calls
    complete and half-open probes close the breaker."""
    topics, port = await collector(BREAKER_RULES)
    east, west = servers
    hold = threading.Event()
    at_open: dict[str, int] = {}
    t0 = time.monotonic()

    async def healthy():
        await _until(lambda: time.monotonic() - t0 > 5, 10, "healthy traffic")

    def stall():
        east.hold = hold

    def recover():
        east.hold = None
        hold.set()

    def still_held():  # as the board shows east open: every request east got since the stall waits
        at_open.update(held=east.held, holds=east.holds, stalls=hooks.stats()["stalls"])
        assert east.held == east.holds >= 5, at_open
        assert at_open["stalls"] >= 5, at_open  # stall_breaker's min_stalls

    measured = await _breaker_round(kafka_bootstrap, topics, port, east, west, healthy=healthy, degrade=stall,
                                    recover=recover, budget=STALL_BUDGET, stall_after=2.0, at_open=still_held,
                                    traffic={"stream": True, "open_loop": True})
    assert measured.open_rule == "stall_breaker"
    moved = measured.last_to_east - measured.t_degrade
    assert moved <= STALL_BUDGET, f"east still got a request {moved:.1f} s after the stall began"
    held = [c for c in measured.calls if measured.t_degrade <= c.picked < measured.t_open and c.served_by == "east"]
    assert len(held) >= 5 and all(c.end > measured.t_recover for c in held)  # answered once released, not before
    assert all(c.served_by != "error" for c in measured.calls)
    assert measured.stalls <= east.holds
    print(f"at the open record: {at_open['held']} requests held by east, {at_open['stalls']} stall reports sent")
    print(measured.report("first token stalls", STALL_BUDGET))


# --- helpers -----------------------------------------------------------------------------------
async def _until(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        await asyncio.sleep(0.05)


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text()[-n:]
