"""Stream proxies: iterate an SDK's stream, time each chunk, finalise the observation exactly once.

Until the first content chunk every item is checked (``adapter.is_content``, ``adapter.note``);
after it the per-chunk work is one ``perf_counter()``, one append and three local stores. Usage,
model and finish reasons are read at the end from the last two items, which is where every SDK
we wrap puts them; the times of up to three trailing non-content items are dropped. The
observation ends on exhaustion, ``break`` (our generator is closed), ``close()``, context exit,
an exception mid-stream, or the proxy being garbage-collected; a stream left before its first
content chunk is ``error.type`` ``"cancelled"`` (the caller abandoned it, the provider did not fail).

>>> class Chunks:
...     def is_content(self, item): return item not in ("role", "stop")
...     def note(self, obs, item): pass
...     def finish(self, obs, prev, last): obs.finish_reasons = (last,)
>>> from brownout.hooks import Observation
>>> obs = Observation("openai", "eastus", "gpt-4o", stream=True).start()
>>> list(SyncStreamProxy(iter(["role", "a", "b", "stop"]), obs, Chunks()))
['role', 'a', 'b', 'stop']
>>> obs.done, len(obs.chunk_times), obs.finish_reasons
(True, 2, ('stop',))
"""

from __future__ import annotations

import logging
from time import perf_counter
from typing import Any, Protocol

from brownout.hooks._observation import Observation
from brownout.semconv import CANCELLED

log = logging.getLogger("brownout.hooks")


class StreamAdapter(Protocol):
    """How to read one SDK's stream items (never their content, only their shape and metadata)."""

    def is_content(self, item: Any) -> bool:
        """True for the first item that carries generated content (TTFT stops here)."""

    def note(self, obs: Observation, item: Any) -> None:
        """Read metadata from an item before the first content (Anthropic's message_start)."""

    def finish(self, obs: Observation, prev: Any, last: Any) -> None:
        """Read usage, response model and finish reasons from the last two items."""


def _finish(obs: Observation, adapter: StreamAdapter, tail: tuple[Any, Any, Any], completed: bool,
            at: float | None = None) -> None:
    if obs.done:
        return
    try:
        adapter.finish(obs, tail[1], tail[2])
        if completed and not obs.finish_reasons and obs.error_type is None:
            obs.finish_reasons = ("error",)  # the stream ended without saying why: it was cut
        elif not completed and not obs.chunk_times and obs.error_type is None:
            obs.error_type = CANCELLED  # closed, broken out of or dropped before its first chunk
        # Items after the last content (finish, usage, stop events) arrive in one burst; their
        # near-zero gaps are not inter-token latency.
        trailing = 0
        for item in reversed(tail):
            if item is None or adapter.is_content(item):
                break
            trailing += 1
        ts = obs.chunk_times
        if trailing and ts is not None and len(ts) > trailing:
            del ts[-trailing:]
    except Exception:
        log.debug("brownout: could not read the end of a stream", exc_info=True)
    obs.end(at)


def _last_time(obs: Observation) -> float | None:
    return obs.chunk_times[-1] if obs.chunk_times else None


class SyncStreamProxy:
    """Wraps a sync stream (an iterator, usually also a context manager with ``close()``)."""

    __slots__ = ("_stream", "_obs", "_adapter", "_it", "_prev2", "_prev", "_last")

    def __init__(self, stream: Any, obs: Observation, adapter: StreamAdapter) -> None:
        if obs.chunk_times is None:
            obs.chunk_times = []
        self._stream = stream
        self._obs = obs
        self._adapter = adapter
        self._it: Any = None
        self._prev2: Any = None
        self._prev: Any = None
        self._last: Any = None

    def __iter__(self) -> Any:
        return self._gen()

    def __next__(self) -> Any:
        if self._it is None:
            self._it = self._gen()
        return next(self._it)

    def _gen(self) -> Any:
        obs = self._obs
        if obs.done:
            yield from self._stream
            return
        times = obs.chunk_times
        if times is None:  # as Observation.chunk does: a stream it did not expect still gets its times
            times = obs.chunk_times = []
        append = times.append
        adapter = self._adapter
        prev2, prev, last = self._prev2, self._prev, self._last
        completed = False
        try:
            it = iter(self._stream)
            if not obs.chunk_times:
                is_content, note = adapter.is_content, adapter.note
                for item in it:
                    if is_content(item):
                        append(perf_counter())
                        last = item
                        yield item
                        break
                    note(obs, item)
                    yield item
            for item in it:
                append(perf_counter())
                prev2 = prev
                prev = last
                last = item
                yield item
            completed = True
        except GeneratorExit:
            raise
        except BaseException as exc:
            obs.fail(exc)
            raise
        finally:
            self._prev2, self._prev, self._last = prev2, prev, last
            _finish(obs, adapter, (prev2, prev, last), completed)

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            _finish(self._obs, self._adapter, (self._prev2, self._prev, self._last), False)

    def __enter__(self) -> "SyncStreamProxy":
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and not self._obs.done:
            self._obs.fail(exc)
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:
        try:
            obs = self._obs
            if not obs.done:
                _finish(obs, self._adapter, (self._prev2, self._prev, self._last), False, _last_time(obs))
        except Exception:
            pass


class AsyncStreamProxy:
    """Wraps an async stream (an async iterator, usually with async ``close()``)."""

    __slots__ = ("_stream", "_obs", "_adapter", "_it", "_prev2", "_prev", "_last")

    def __init__(self, stream: Any, obs: Observation, adapter: StreamAdapter) -> None:
        if obs.chunk_times is None:
            obs.chunk_times = []
        self._stream = stream
        self._obs = obs
        self._adapter = adapter
        self._it: Any = None
        self._prev2: Any = None
        self._prev: Any = None
        self._last: Any = None

    def __aiter__(self) -> Any:
        return self._gen()

    async def __anext__(self) -> Any:
        if self._it is None:
            self._it = self._gen()
        return await self._it.__anext__()

    async def _gen(self) -> Any:
        obs = self._obs
        if obs.done:
            async for item in self._stream:
                yield item
            return
        times = obs.chunk_times
        if times is None:  # as Observation.chunk does: a stream it did not expect still gets its times
            times = obs.chunk_times = []
        append = times.append
        adapter = self._adapter
        prev2, prev, last = self._prev2, self._prev, self._last
        completed = False
        try:
            it = self._stream.__aiter__()
            if not obs.chunk_times:
                is_content, note = adapter.is_content, adapter.note
                async for item in it:
                    if is_content(item):
                        append(perf_counter())
                        last = item
                        yield item
                        break
                    note(obs, item)
                    yield item
            async for item in it:
                append(perf_counter())
                prev2 = prev
                prev = last
                last = item
                yield item
            completed = True
        except GeneratorExit:
            raise
        except BaseException as exc:
            obs.fail(exc)
            raise
        finally:
            self._prev2, self._prev, self._last = prev2, prev, last
            _finish(obs, adapter, (prev2, prev, last), completed)

    async def close(self) -> None:
        try:
            stream = self._stream
            await (stream.close() if hasattr(stream, "close") else stream.aclose())  # an async generator
        finally:
            _finish(self._obs, self._adapter, (self._prev2, self._prev, self._last), False)

    aclose = close

    async def __aenter__(self) -> "AsyncStreamProxy":
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and not self._obs.done:
            self._obs.fail(exc)
        await self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:
        try:
            obs = self._obs
            if not obs.done:
                _finish(obs, self._adapter, (self._prev2, self._prev, self._last), False, _last_time(obs))
        except Exception:
            pass
