"""LiteLLM integration: a ``CustomLogger`` whose success, failure and per-chunk stream hooks
emit one event per LiteLLM call (any provider LiteLLM speaks to).

Two lines::

    import litellm, brownout.hooks
    litellm.callbacks = [brownout.hooks.BrownoutLogger()]

Times come from LiteLLM (``start_time``, ``end_time``, ``completion_start_time`` and the time of
each streamed chunk), so the event matches what LiteLLM measured. A streamed call is watched for a
stall from LiteLLM's pre-call hook to its first chunk; an ``acompletion`` whose task is cancelled
before LiteLLM reports it (a hedged copy that lost) is ``error.type`` ``"cancelled"``, which LiteLLM
itself never reports. Content is never read. Use
this or the SDK integrations for a given call path, not both: LiteLLM calls the OpenAI SDK
itself, and instrumenting both would count those calls twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import OrderedDict
from datetime import datetime
from time import perf_counter
from typing import Any, Callable, Mapping

from litellm.integrations.custom_logger import CustomLogger

from brownout import semconv as sc
from brownout.hooks._observation import Observation, waiting
from brownout.hooks._targets import check_deadline, provider_for_host, target_from_url

log = logging.getLogger("brownout.hooks")

__all__ = ["BrownoutLogger", "PROVIDERS"]

#: LiteLLM's ``custom_llm_provider`` -> ``gen_ai.provider.name``.
PROVIDERS: dict[str, str] = {
    "openai": "openai", "text-completion-openai": "openai", "azure": "azure.ai.openai",
    "azure_text": "azure.ai.openai", "azure_ai": "azure.ai.inference", "anthropic": "anthropic",
    "bedrock": "aws.bedrock", "sagemaker": "aws.sagemaker", "vertex_ai": "gcp.vertex_ai",
    "vertex_ai_beta": "gcp.vertex_ai", "gemini": "gcp.gemini", "groq": "groq", "mistral": "mistral_ai",
    "cohere": "cohere", "cohere_chat": "cohere", "deepseek": "deepseek", "xai": "x_ai",
    "perplexity": "perplexity", "watsonx": "ibm.watsonx.ai",
}

_MAX_OPEN = 10_000  # streams whose chunk times we hold at once; the oldest are forgotten
#: Calls started and not reported yet, by litellm_call_id; shared, because LiteLLM keeps calling
#: the pre-call hook of every logger ever listed in ``litellm.callbacks``.
_pending: OrderedDict[str, Observation] = OrderedDict()


def _ts(t: Any) -> float | None:
    if isinstance(t, datetime):
        return t.timestamp()
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return float(t)
    return None


class BrownoutLogger(CustomLogger):
    """LiteLLM callback: ``litellm.callbacks = [BrownoutLogger()]``.

    ``region`` names the region of every call; otherwise it comes from LiteLLM's
    ``aws_region_name`` / ``vertex_location``, then from ``api_base`` (see ``configure(regions=...)``).
    ``deadline`` (seconds) is the SLO every call is judged against (``brownout.deadline``).
    """

    def __init__(self, region: str | None = None, deadline: float | None = None, *,
                 key_for: Callable[[Mapping[str, Any]], Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: Optional ``key_for(kwargs) -> Key | None``: the breaker key of the deployment that served a
        #: call. ``BrownoutRouterGuard(telemetry=...)`` sets it, so events carry the key the guard
        #: filters on even when regions come from ``region_name``, which LiteLLM keeps from callbacks.
        self.key_for = key_for
        if region is not None and (not isinstance(region, str) or not region):
            raise ValueError(f"region must be a non-empty string, got {region!r}")
        self.region = region
        self.deadline = check_deadline(deadline)
        self._chunks: OrderedDict[str, tuple[list[float], list[float]]] = OrderedDict()
        self._done: OrderedDict[str, None] = OrderedDict()

    # --- start -------------------------------------------------------------------------------------
    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        try:
            call_id = kwargs.get("litellm_call_id")
            if call_id is None or call_id in self._done or call_id in _pending:
                return
            obs = self._observation(kwargs, None, kwargs.get("start_time") or datetime.now(), None, None)
            if obs is None:
                return
            obs.ttft_at, obs.finish_reasons = None, None
            _pending[call_id] = obs
            if len(_pending) > _MAX_OPEN:
                _pending.popitem(last=False)[1].done = True
            if obs.stream:
                obs.chunk_times = []
                waiting[id(obs)] = obs
            try:
                task = asyncio.current_task()
            except RuntimeError:  # no event loop in this thread: a sync call
                task = None
            if task is not None:
                task.add_done_callback(lambda t: self._ended(call_id, t))
        except Exception:
            log.debug("brownout: could not watch a LiteLLM call", exc_info=True)

    def _ended(self, call_id: str, task: Any) -> None:
        """The caller's task ended: a call it was still waiting on was abandoned."""
        try:
            obs = _pending.pop(call_id, None)
            if obs is None or call_id in self._done or not task.cancelled():
                return
            self._done[call_id] = None
            self._chunks.pop(call_id, None)
            if obs.ttft_at is None:  # after a first chunk it is no error: the caller stopped reading
                obs.error_type = sc.CANCELLED
            obs.end()
        except Exception:
            log.debug("brownout: could not report a cancelled LiteLLM call", exc_info=True)

    # --- per-chunk ------------------------------------------------------------------------------
    # LiteLLM calls both the sync and the async chunk hook for one chunk, from a thread pool and
    # an event loop, and may call the success hook before the last of them: chunk times are
    # kept per hook (the longer list wins) and are best effort.
    def log_stream_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._chunk(kwargs, end_time, 0)

    async def async_log_stream_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._chunk(kwargs, end_time, 1)

    def _chunk(self, kwargs: Any, end_time: Any, source: int) -> None:
        try:
            call_id = kwargs.get("litellm_call_id")
            t = _ts(end_time)
            if call_id is None or t is None or call_id in self._done:
                return
            lists = self._chunks.get(call_id)
            if lists is None:
                pending = _pending.get(call_id)
                if pending is not None:
                    pending.ttft_at = perf_counter()  # no longer waiting for a first token
                lists = self._chunks[call_id] = ([], [])
                if len(self._chunks) > _MAX_OPEN:
                    self._chunks.popitem(last=False)
            lists[source].append(t)
        except Exception:
            log.debug("brownout: could not record a LiteLLM chunk", exc_info=True)

    # --- outcome ---------------------------------------------------------------------------------
    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._emit(kwargs, response_obj, start_time, end_time, None)

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        self._emit(kwargs, response_obj, start_time, end_time, None)

    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._emit(kwargs, response_obj, start_time, end_time, kwargs.get("exception"))

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        self._emit(kwargs, response_obj, start_time, end_time, kwargs.get("exception"))

    def _emit(self, kwargs: Mapping[str, Any], response: Any, start_time: Any, end_time: Any,
              exc: BaseException | None) -> None:
        try:
            call_id = kwargs.get("litellm_call_id")
            if call_id is not None:
                # LiteLLM may call both the sync and the async hook for one call: emit once.
                if call_id in self._done:
                    return
                self._done[call_id] = None
                pending = _pending.pop(call_id, None)
                if pending is not None:
                    pending.done = True
                if len(self._done) > _MAX_OPEN:
                    self._done.popitem(last=False)
            obs = self._observation(kwargs, response, start_time, end_time, exc)
            if obs is not None:
                obs.end(obs.t1)
        except Exception:
            log.debug("brownout: could not build an event from LiteLLM", exc_info=True)

    def _observation(self, kwargs: Mapping[str, Any], response: Any, start_time: Any, end_time: Any,
                     exc: BaseException | None) -> Observation | None:
        params = kwargs.get("litellm_params") or {}
        slo = kwargs.get("standard_logging_object") or {}
        llm_provider = params.get("custom_llm_provider") or slo.get("custom_llm_provider") or "unknown"
        api_base = params.get("api_base") or slo.get("api_base") or ""
        host_provider = provider_for_host(_host(api_base), "")
        provider = host_provider or PROVIDERS.get(llm_provider, llm_provider)
        region = self.region or params.get("aws_region_name") or params.get("vertex_location") or None
        target = target_from_url(api_base, provider, region, provider)
        model = kwargs.get("model") or slo.get("model") or "unknown"
        key = self.key_for(kwargs) if self.key_for is not None else None
        if key is not None:
            target = dataclasses.replace(target, provider=key.provider, region=key.region)
            model = key.model
        stream = bool(kwargs.get("stream"))
        offset = time.time() - perf_counter()  # LiteLLM gives wall-clock times
        t0 = _ts(start_time)
        t1 = _ts(end_time)
        if t0 is None:
            return None
        obs = Observation(target.provider, target.region, str(model), "chat", stream, self.deadline,
                          target.server_address, target.server_port)
        obs.t0 = t0 - offset
        obs.t1 = (t1 if t1 is not None and t1 >= t0 else t0) - offset
        call_id = kwargs.get("litellm_call_id")
        lists = self._chunks.pop(call_id, None) if call_id else None
        times = sorted(lists[0] if len(lists[0]) >= len(lists[1]) else lists[1]) if lists else None
        if stream:
            first = _ts(kwargs.get("completion_start_time"))
            if first is not None and t0 <= first <= (t1 or first) and (times or first != t1):
                obs.ttft_at = first - offset
            if times:
                obs.chunk_times = [t - offset for t in times if t >= t0]
        if exc is not None:
            obs.fail(exc)
            if obs.error_type is None:  # fail() could not classify it
                obs.error_type = type(exc).__name__
            return obs
        _read_response(obs, response)
        return obs


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        return (urlsplit(str(url)).hostname or "").lower()
    except ValueError:
        return ""


def _read_response(obs: Observation, r: Any) -> None:
    if r is None:
        return
    get = r.get if isinstance(r, Mapping) else (lambda k, d=None: getattr(r, k, d))
    obs.response_model = get("model") or None
    usage = get("usage")
    if usage is not None:
        ug = usage.get if isinstance(usage, Mapping) else (lambda k, d=None: getattr(usage, k, d))
        obs.usage(ug("prompt_tokens"), ug("completion_tokens"))
    reasons = []
    for ch in get("choices") or ():
        fr = ch.get("finish_reason") if isinstance(ch, Mapping) else getattr(ch, "finish_reason", None)
        if fr:
            reasons.append(str(fr))
    if reasons:
        obs.finish_reasons = tuple(reasons)
