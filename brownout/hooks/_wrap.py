"""The wrapper every SDK integration puts around a ``create`` method, sync and async.

The non-streamed success path only takes two clock readings and queues a tuple; the
exporter's thread reads model, usage and finish reasons from the result. A streamed call gets
its Observation before the request (so the exporter's thread can see it wait for its first
token) and its result is handed back inside a proxy that records chunks and ends the
observation exactly once.
"""

from __future__ import annotations

import functools
import logging
from time import perf_counter
from typing import Any, Callable

from brownout.hooks._observation import Observation, emit, waiting
from brownout.hooks._streams import AsyncStreamProxy, SyncStreamProxy
from brownout.hooks._targets import Target, check_deadline

log = logging.getLogger("brownout.hooks")

#: The attribute of a wrapper that holds the original method (for uninstrumenting).
MARK = "__brownout_original__"


def call_observation(t: Target, model: Any, stream: bool, t0: float = 0.0) -> Observation:
    """The observation of one call to ``t`` asking for ``model`` (the SDK's argument, as given)."""
    obs = Observation(t.provider, t.region, model if isinstance(model, str) and model else "unknown", t.operation,
                      stream, t.deadline, t.server_address, t.server_port)
    obs.t0 = t0
    return obs


def waiting_observation(t: Target, model: Any, t0: float) -> Observation:
    """A streamed call's observation, watched for a stall until its first chunk."""
    obs = call_observation(t, model, True, t0)
    waiting[id(obs)] = obs
    return obs


def failed(t: Target, model: Any, t0: float, exc: BaseException, obs: Observation | None) -> None:
    """End the observation of a call that raised ``exc`` (made now when it was not streamed)."""
    if obs is None:
        obs = call_observation(t, model, False, t0)
    obs.fail(exc)
    obs.end()


def streamed_result(result: Any, stream_type: type | None, obs: Observation) -> bool:
    """True when a call that asked to stream got a stream back."""
    if stream_type is None or isinstance(result, stream_type):
        return True
    obs.done = True  # asked to stream but got something else (a raw response): not a stream we read
    return False


def sync_create(original: Callable[..., Any], target: Callable[[Any], Target], stream_type: type | None,
                adapter: Any, streamed: bool = False) -> Callable[..., Any]:
    """Wrap a sync ``create(self, ...)``; ``target(self)`` names where the call goes.

    A call streams when it passes ``stream=True`` (and gets a ``stream_type`` back), or always
    when ``streamed`` (a method of its own, as Gemini's ``generate_content_stream``).
    """

    @functools.wraps(original)
    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            t = target(self)
        except Exception:
            log.debug("brownout: not observing this call", exc_info=True)
            return original(self, *args, **kwargs)
        stream = streamed or kwargs.get("stream") is True
        t0 = perf_counter()
        obs = None
        if stream:
            obs = call_observation(t, kwargs.get("model"), True, t0)
            waiting[id(obs)] = obs  # the exporter's thread watches it for a stall
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            failed(t, kwargs.get("model"), t0, exc, obs)
            raise
        if obs is not None and streamed_result(result, stream_type, obs):
            return SyncStreamProxy(result, obs, adapter)
        emit((t, kwargs.get("model"), stream, t0, perf_counter(), result, adapter))
        return result

    setattr(create, MARK, original)
    return create


def async_create(original: Callable[..., Any], target: Callable[[Any], Target], stream_type: type | None,
                 adapter: Any, streamed: bool = False) -> Callable[..., Any]:
    """Wrap an async ``create(self, ...)``; see :func:`sync_create`."""

    @functools.wraps(original)
    async def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            t = target(self)
        except Exception:
            log.debug("brownout: not observing this call", exc_info=True)
            return await original(self, *args, **kwargs)
        stream = streamed or kwargs.get("stream") is True
        t0 = perf_counter()
        obs = None
        if stream:
            obs = call_observation(t, kwargs.get("model"), True, t0)
            waiting[id(obs)] = obs
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            failed(t, kwargs.get("model"), t0, exc, obs)
            raise
        if obs is not None and streamed_result(result, stream_type, obs):
            return AsyncStreamProxy(result, obs, adapter)
        emit((t, kwargs.get("model"), stream, t0, perf_counter(), result, adapter))
        return result

    setattr(create, MARK, original)
    return create


def original_of(fn: Any) -> Any:
    """The method a wrapper wraps (``fn`` itself when it is not one of ours)."""
    return getattr(fn, MARK, fn)


class Integration:
    """Instruments one SDK: its methods on their classes (every client) or on one client's
    resources, with a region and deadline for the whole SDK or per client.

    ``methods()``: ``(class, method name, factory(original) -> wrapper)``; ``resources(client)``:
    the objects of one client whose methods are wrapped; per-client settings live on
    ``holder(client)``'s ``__dict__`` (the object a ``target`` function caches its Target on).
    """

    def __init__(self, methods: Callable[[], list[tuple[type, str, Callable[[Any], Any]]]],
                 resources: Callable[[Any], list[Any]], holder: Callable[[Any], Any] = lambda c: c) -> None:
        self.methods = methods
        self.resources = resources
        self.holder = holder
        self.region: str | None = None
        self.deadline: float | None = None

    def settings(self, holder: Any) -> tuple[str | None, float | None]:
        """(region, deadline) for calls of the client whose holder this is."""
        d = holder.__dict__
        return d.get("_brownout_region") or self.region, d.get("_brownout_deadline") or self.deadline

    def instrument(self, client: Any, region: str | None, deadline: float | None) -> None:
        if region is not None and (not isinstance(region, str) or not region):
            raise ValueError(f"region must be a non-empty string, got {region!r}")
        deadline = check_deadline(deadline)
        if client is None:
            self.region, self.deadline = region, deadline
            for cls, name, factory in self.methods():
                current = cls.__dict__[name]
                if not hasattr(current, MARK):
                    setattr(cls, name, factory(current))
            return
        d = self.holder(client).__dict__
        d.pop("_brownout_target", None)
        if region is not None:
            d["_brownout_region"] = region
        if deadline is not None:
            d["_brownout_deadline"] = deadline
        for resource in self.resources(client):
            for cls, name, factory in self.methods():
                if isinstance(resource, cls) and not hasattr(resource.__dict__.get(name), MARK):
                    resource.__dict__[name] = factory(original_of(cls.__dict__[name])).__get__(resource, cls)

    def uninstrument(self, client: Any) -> None:
        if client is None:
            self.region = self.deadline = None
            for cls, name, _ in self.methods():
                current = cls.__dict__[name]
                if hasattr(current, MARK):
                    setattr(cls, name, original_of(current))
            return
        d = self.holder(client).__dict__
        for k in ("_brownout_region", "_brownout_deadline", "_brownout_target"):
            d.pop(k, None)
        for resource in self.resources(client):
            for cls, name, _ in self.methods():
                if isinstance(resource, cls):
                    resource.__dict__.pop(name, None)
