"""The wrapper every SDK integration puts around a ``create`` method, sync and async.

The non-streamed success path only takes two clock readings and queues a tuple; the
exporter's thread reads model, usage and finish reasons from the result. A streamed result
is handed back inside a proxy that records chunks and ends the observation exactly once.
"""

from __future__ import annotations

import functools
import logging
from time import perf_counter
from typing import Any, Callable

from brownout.hooks._observation import Observation, emit
from brownout.hooks._streams import AsyncStreamProxy, SyncStreamProxy
from brownout.hooks._targets import Target

log = logging.getLogger("brownout.hooks")

#: The attribute of a wrapper that holds the original method (for uninstrumenting).
MARK = "__brownout_original__"


def call_observation(t: Target, kwargs: dict[str, Any], stream: bool, t0: float = 0.0) -> Observation:
    """The observation of one call to ``t`` with the SDK's ``kwargs`` (only ``model`` is read)."""
    model = kwargs.get("model")
    obs = Observation(t.provider, t.region, model if isinstance(model, str) and model else "unknown", "chat",
                      stream, t.deadline, t.server_address, t.server_port)
    obs.t0 = t0
    return obs


def failed(t: Target, kwargs: dict[str, Any], t0: float, exc: BaseException) -> None:
    obs = call_observation(t, kwargs, kwargs.get("stream") is True, t0)
    obs.fail(exc)
    obs.end()


def sync_create(original: Callable[..., Any], target: Callable[[Any], Target], stream_type: type,
                adapter: Any) -> Callable[..., Any]:
    """Wrap a sync ``create(self, ...)``; ``target(self._client)`` names where the call goes."""

    @functools.wraps(original)
    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            t = target(self._client)
        except Exception:
            log.debug("brownout: not observing this call", exc_info=True)
            return original(self, *args, **kwargs)
        t0 = perf_counter()
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            failed(t, kwargs, t0, exc)
            raise
        if isinstance(result, stream_type):
            return SyncStreamProxy(result, call_observation(t, kwargs, True, t0), adapter)
        emit((t, kwargs.get("model"), kwargs.get("stream") is True, t0, perf_counter(), result, adapter))
        return result

    setattr(create, MARK, original)
    return create


def async_create(original: Callable[..., Any], target: Callable[[Any], Target], stream_type: type,
                 adapter: Any) -> Callable[..., Any]:
    """Wrap an async ``create(self, ...)``; see :func:`sync_create`."""

    @functools.wraps(original)
    async def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            t = target(self._client)
        except Exception:
            log.debug("brownout: not observing this call", exc_info=True)
            return await original(self, *args, **kwargs)
        t0 = perf_counter()
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            failed(t, kwargs, t0, exc)
            raise
        if isinstance(result, stream_type):
            return AsyncStreamProxy(result, call_observation(t, kwargs, True, t0), adapter)
        emit((t, kwargs.get("model"), kwargs.get("stream") is True, t0, perf_counter(), result, adapter))
        return result

    setattr(create, MARK, original)
    return create
