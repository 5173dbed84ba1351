"""OpenAI SDK integration: ``chat.completions.create`` and ``responses.create``, sync and async,
streamed and not. Azure OpenAI clients are recognised as provider ``azure.ai.openai``.

Two lines::

    import brownout.hooks
    brownout.hooks.instrument_openai()            # every client; or instrument_openai(client)

Region: ``instrument_openai(region=...)``, else ``configure(regions={host or Azure resource: region})``,
else ``configure(region=...)``, else ``"global"``. Streamed usage is read when the request asks
for it (``stream_options={"include_usage": True}``); no prompt or response content is read.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from brownout.hooks._observation import Observation
from brownout.hooks._targets import Target, target_from_url
from brownout.hooks._wrap import Integration, async_create, sync_create

log = logging.getLogger("brownout.hooks")

__all__ = ["instrument_openai", "uninstrument_openai"]


# --- reading results (shape and metadata only) --------------------------------------------
class ChatAdapter:
    """Chat completions: content deltas, finish_reason on the last choice chunk, usage last."""

    def is_content(self, c: Any) -> bool:
        choices = c.choices
        if not choices:
            return False
        d = choices[0].delta
        return d is not None and bool(d.content or d.tool_calls or d.refusal or d.function_call
                                      or d.audio or (d.model_extra and (d.model_extra.get("reasoning_content")
                                                                        or d.model_extra.get("reasoning"))))

    def note(self, obs: Observation, c: Any) -> None:
        if obs.response_model is None:
            obs.response_model = getattr(c, "model", None) or None

    def finish(self, obs: Observation, prev: Any, last: Any) -> None:
        for c in (prev, last):
            if c is None:
                continue
            if getattr(c, "model", None):
                obs.response_model = c.model
            usage = getattr(c, "usage", None)
            if usage is not None:
                obs.usage(usage.prompt_tokens, usage.completion_tokens)
            reasons = [ch.finish_reason for ch in (c.choices or ()) if ch.finish_reason]
            if reasons:
                obs.finish_reasons = tuple(reasons)

    def response(self, obs: Observation, r: Any) -> None:
        obs.response_model = getattr(r, "model", None) or None
        usage = getattr(r, "usage", None)
        if usage is not None:
            obs.usage(usage.prompt_tokens, usage.completion_tokens)
        reasons = [ch.finish_reason for ch in (getattr(r, "choices", None) or ()) if ch.finish_reason]
        if reasons:
            obs.finish_reasons = tuple(reasons)


def _responses_finish(obs: Observation, r: Any) -> None:
    obs.response_model = getattr(r, "model", None) or obs.response_model
    usage = getattr(r, "usage", None)
    if usage is not None:
        obs.usage(usage.input_tokens, usage.output_tokens)
    status = getattr(r, "status", None)
    if status == "completed":
        obs.finish_reasons = ("stop",)
    elif status == "incomplete":
        details = getattr(r, "incomplete_details", None)
        reason = getattr(details, "reason", None) or "incomplete"
        obs.finish_reasons = ("length" if reason == "max_output_tokens" else reason,)
    elif status in ("failed", "cancelled"):
        obs.finish_reasons = ("error",)


class ResponsesAdapter:
    """Responses API: ``*.delta`` events are content; ``response.completed`` carries the rest."""

    def is_content(self, e: Any) -> bool:
        t = getattr(e, "type", "")
        return isinstance(t, str) and t.endswith(".delta")

    def note(self, obs: Observation, e: Any) -> None:
        r = getattr(e, "response", None)
        if r is not None and obs.response_model is None:
            obs.response_model = getattr(r, "model", None) or None

    def finish(self, obs: Observation, prev: Any, last: Any) -> None:
        for e in (prev, last):
            r = getattr(e, "response", None) if e is not None else None
            if r is not None:
                _responses_finish(obs, r)

    def response(self, obs: Observation, r: Any) -> None:
        _responses_finish(obs, r)


CHAT = ChatAdapter()
RESPONSES = ResponsesAdapter()


# --- targets --------------------------------------------------------------------------------
def _target(resource: Any) -> Target:
    client = resource._client
    cached = client.__dict__.get("_brownout_target")
    base = client._base_url
    if cached is not None and cached[0] is base:
        target: Target = cached[1]
        return target
    region, deadline = OPENAI.settings(client)
    provider = "azure.ai.openai" if type(client).__name__ in ("AzureOpenAI", "AsyncAzureOpenAI") else None
    target = target_from_url(base, "openai", region, provider, deadline)
    client.__dict__["_brownout_target"] = (base, target)
    return target


# --- wrappers -------------------------------------------------------------------------------
def _sync_wrapper(original: Callable[..., Any], adapter: Any) -> Callable[..., Any]:
    from openai import Stream

    return sync_create(original, _target, Stream, adapter)


def _async_wrapper(original: Callable[..., Any], adapter: Any) -> Callable[..., Any]:
    from openai import AsyncStream

    return async_create(original, _target, AsyncStream, adapter)


def _methods() -> list[tuple[type, str, Callable[[Any], Any]]]:
    from openai.resources.chat.completions import AsyncCompletions, Completions
    from openai.resources.responses import AsyncResponses, Responses

    return [
        (Completions, "create", lambda f: _sync_wrapper(f, CHAT)),
        (AsyncCompletions, "create", lambda f: _async_wrapper(f, CHAT)),
        (Responses, "create", lambda f: _sync_wrapper(f, RESPONSES)),
        (AsyncResponses, "create", lambda f: _async_wrapper(f, RESPONSES)),
    ]


OPENAI = Integration(_methods, lambda client: [client.chat.completions, client.responses])


def instrument_openai(client: Any = None, *, region: str | None = None, deadline: float | None = None) -> None:
    """Instrument one OpenAI/AzureOpenAI client (sync or async), or the whole SDK when ``client`` is None.

    Calling it again is harmless; ``region`` overrides the region found from the base URL;
    ``deadline`` (seconds) is the SLO every call is judged against (``brownout.deadline``, goodput).
    A client instrumented on its own and also through the SDK still emits one event per call.
    """
    OPENAI.instrument(client, region, deadline)


def uninstrument_openai(client: Any = None) -> None:
    """Undo :func:`instrument_openai` for one client, or for the SDK when ``client`` is None."""
    OPENAI.uninstrument(client)
