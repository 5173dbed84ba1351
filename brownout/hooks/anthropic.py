"""Anthropic SDK integration: ``messages.create`` (streamed and not) and the ``messages.stream``
helper, sync and async. Bedrock and Vertex clients are recognised (``aws.bedrock``,
``gcp.vertex_ai``) with the region of their endpoint.

Two lines::

    import brownout.hooks
    brownout.hooks.instrument_anthropic()          # every client; or instrument_anthropic(client)

Usage comes from ``message_start`` (input, cache tokens included) and ``message_delta``
(output); a 529 ``overloaded_error`` becomes ``error.type`` ``"529"``. No content is read.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable

from brownout.hooks._observation import Observation
from brownout.hooks._streams import AsyncStreamProxy, SyncStreamProxy
from brownout.hooks._targets import Target, target_from_url
from brownout.hooks._wrap import MARK as _MARK
from brownout.hooks._wrap import Integration, async_create, call_observation, sync_create

log = logging.getLogger("brownout.hooks")

__all__ = ["instrument_anthropic", "uninstrument_anthropic"]

_PROVIDERS = {"AnthropicBedrock": "aws.bedrock", "AsyncAnthropicBedrock": "aws.bedrock",
              "AnthropicVertex": "gcp.vertex_ai", "AsyncAnthropicVertex": "gcp.vertex_ai"}


def _input_tokens(usage: Any) -> int | None:
    total = None
    for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        v = getattr(usage, name, None)
        if isinstance(v, int):
            total = (total or 0) + v
    return total


class MessagesAdapter:
    """Raw message stream events: ``content_block_delta`` is content; ``message_delta`` ends it."""

    def is_content(self, e: Any) -> bool:
        kind: str = e.type
        return kind == "content_block_delta"

    def note(self, obs: Observation, e: Any) -> None:
        if e.type == "message_start":
            m = e.message
            obs.response_model = getattr(m, "model", None) or None
            usage = getattr(m, "usage", None)
            if usage is not None:
                obs.usage(_input_tokens(usage), None)

    def finish(self, obs: Observation, prev: Any, last: Any) -> None:
        for e in (prev, last):
            if e is not None and getattr(e, "type", None) == "message_delta":
                reason = getattr(e.delta, "stop_reason", None)
                if reason:
                    obs.finish_reasons = (reason,)
                usage = getattr(e, "usage", None)
                if usage is not None:
                    obs.usage(None, getattr(usage, "output_tokens", None))

    def response(self, obs: Observation, m: Any) -> None:
        obs.response_model = getattr(m, "model", None) or None
        usage = getattr(m, "usage", None)
        if usage is not None:
            obs.usage(_input_tokens(usage), getattr(usage, "output_tokens", None))
        reason = getattr(m, "stop_reason", None)
        if reason:
            obs.finish_reasons = (reason,)


MESSAGES = MessagesAdapter()


def _target(resource: Any) -> Target:
    client = resource._client
    cached = client.__dict__.get("_brownout_target")
    base = client._base_url
    if cached is not None and cached[0] is base:
        target: Target = cached[1]
        return target
    name = type(client).__name__
    region, deadline = ANTHROPIC.settings(client)
    if region is None and name in _PROVIDERS:
        region = getattr(client, "aws_region", None) or getattr(client, "region", None)
    if not isinstance(region, str) or not region:
        region = None
    target = target_from_url(base, "anthropic", region, _PROVIDERS.get(name), deadline)
    client.__dict__["_brownout_target"] = (base, target)
    return target


def _sync_create(original: Callable[..., Any]) -> Callable[..., Any]:
    from anthropic import Stream

    return sync_create(original, _target, Stream, MESSAGES)


def _async_create(original: Callable[..., Any]) -> Callable[..., Any]:
    from anthropic import AsyncStream

    return async_create(original, _target, AsyncStream, MESSAGES)


def _sync_stream(original: Callable[..., Any]) -> Callable[..., Any]:
    attr = "_MessageStreamManager__api_request"

    @functools.wraps(original)
    def stream(self: Any, *args: Any, **kwargs: Any) -> Any:
        manager = original(self, *args, **kwargs)
        try:
            obs = call_observation(_target(self), kwargs.get("model"), True)
            api_request = getattr(manager, attr)
        except Exception:
            log.debug("brownout: not observing this stream", exc_info=True)
            return manager

        def request() -> Any:
            obs.start()
            try:
                raw = api_request()
            except BaseException as exc:
                obs.fail(exc)
                obs.end()
                raise
            return SyncStreamProxy(raw, obs, MESSAGES)

        setattr(manager, attr, request)
        return manager

    setattr(stream, _MARK, original)
    return stream


def _async_stream(original: Callable[..., Any]) -> Callable[..., Any]:
    attr = "_AsyncMessageStreamManager__api_request"

    @functools.wraps(original)
    def stream(self: Any, *args: Any, **kwargs: Any) -> Any:
        manager = original(self, *args, **kwargs)
        try:
            obs = call_observation(_target(self), kwargs.get("model"), True)
            api_request = getattr(manager, attr)
        except Exception:
            log.debug("brownout: not observing this stream", exc_info=True)
            return manager

        async def request() -> Any:
            obs.start()
            try:
                raw = await api_request
            except BaseException as exc:
                obs.fail(exc)
                obs.end()
                raise
            return AsyncStreamProxy(raw, obs, MESSAGES)

        setattr(manager, attr, request())
        return manager

    setattr(stream, _MARK, original)
    return stream


def _methods() -> list[tuple[type, str, Callable[..., Any]]]:
    from anthropic.resources.messages import AsyncMessages, Messages

    return [(Messages, "create", _sync_create), (AsyncMessages, "create", _async_create),
            (Messages, "stream", _sync_stream), (AsyncMessages, "stream", _async_stream)]


ANTHROPIC = Integration(_methods, lambda client: [client.messages])


def instrument_anthropic(client: Any = None, *, region: str | None = None, deadline: float | None = None) -> None:
    """Instrument one Anthropic client (sync or async, Bedrock, Vertex), or the whole SDK.

    Calling it again is harmless; ``region`` overrides the region found from the client;
    ``deadline`` (seconds) is the SLO every call is judged against (``brownout.deadline``, goodput).
    """
    ANTHROPIC.instrument(client, region, deadline)


def uninstrument_anthropic(client: Any = None) -> None:
    """Undo :func:`instrument_anthropic` for one client, or for the SDK when ``client`` is None."""
    ANTHROPIC.uninstrument(client)
