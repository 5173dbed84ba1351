"""Amazon Bedrock runtime (boto3 ``bedrock-runtime``) integration: ``converse``,
``converse_stream``, ``invoke_model`` and ``invoke_model_with_response_stream``.

Two lines::

    import brownout.hooks
    brownout.hooks.instrument_bedrock()          # every bedrock-runtime client; or instrument_bedrock(client)

Provider ``aws.bedrock``; region = ``instrument_bedrock(region=...)``, else the client's
``meta.region_name``; model = ``modelId`` as given (an inference profile or ARN included).
Tokens come from ``usage`` (converse), the ``metadata`` stream event (converse_stream),
the ``x-amzn-bedrock-*-token-count`` headers (invoke_model: its body is the app's to read) and
``amazon-bedrock-invocationMetrics`` (invoke_model_with_response_stream). Errors map to HTTP
statuses: ThrottlingException ``"429"``, ServiceUnavailableException ``"503"``,
ModelTimeoutException ``"timeout"``, also when they arrive inside an event stream. TTFT is the
first ``contentBlockDelta`` (converse_stream) or the first chunk that is not a preamble event
(``message_start``, ``messageStart``, ...). Only the shape of a chunk is read, never kept.
"""

from __future__ import annotations

import functools
import json
import logging
from time import perf_counter
from typing import Any, Callable

from brownout.hooks._observation import Observation, emit
from brownout.hooks._streams import SyncStreamProxy
from brownout.hooks._targets import Target, target_from_url
from brownout.hooks._wrap import MARK, Integration, failed, waiting_observation

log = logging.getLogger("brownout.hooks")

__all__ = ["instrument_bedrock", "uninstrument_bedrock"]


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


class ConverseAdapter:
    """``converse`` results and ``converse_stream`` events (one-key dicts)."""

    def is_content(self, e: Any) -> bool:
        return "contentBlockDelta" in e

    def note(self, obs: Observation, e: Any) -> None:
        pass

    def finish(self, obs: Observation, prev: Any, last: Any) -> None:
        for e in (prev, last):
            if e is None:
                continue
            stop = e.get("messageStop")
            if stop is not None and stop.get("stopReason"):
                obs.finish_reasons = (stop["stopReason"],)
            usage = (e.get("metadata") or {}).get("usage")
            if usage is not None:
                obs.usage(usage.get("inputTokens"), usage.get("outputTokens"))

    def response(self, obs: Observation, r: Any) -> None:
        usage = r.get("usage")
        if usage is not None:
            obs.usage(usage.get("inputTokens"), usage.get("outputTokens"))
        if r.get("stopReason"):
            obs.finish_reasons = (r["stopReason"],)


_PREAMBLE_TYPES = frozenset({"message_start", "content_block_start", "ping", "content_block_stop",
                             "message_delta", "message_stop"})
_PREAMBLE_KEYS = frozenset({"messageStart", "contentBlockStart", "contentBlockStop", "messageStop", "metadata"})


def _payload(e: Any) -> dict[str, Any]:
    try:
        d = json.loads(e["chunk"]["bytes"])
    except (KeyError, TypeError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def _stop_reason(d: dict[str, Any]) -> Any:
    outputs = d.get("outputs")
    return _first((d.get("delta") or {}).get("stop_reason") if d.get("type") == "message_delta" else None,
                  (d.get("messageStop") or {}).get("stopReason"), d.get("stop_reason"), d.get("completionReason"),
                  d.get("finish_reason"),
                  outputs[0].get("stop_reason") if isinstance(outputs, list) and outputs
                  and isinstance(outputs[0], dict) else None)


class InvokeAdapter:
    """``invoke_model`` results (tokens from headers) and ``invoke_model_with_response_stream``
    chunks: the model's own events as JSON bytes (Anthropic's, Nova's, Llama's, Titan's, ...)."""

    def is_content(self, e: Any) -> bool:
        d = _payload(e)
        kind = d.get("type")
        if kind is not None:
            return kind not in _PREAMBLE_TYPES
        return bool(d) and _PREAMBLE_KEYS.isdisjoint(d)

    def note(self, obs: Observation, e: Any) -> None:
        d = _payload(e)
        if d.get("type") == "message_start" and isinstance(d.get("message"), dict):
            obs.response_model = d["message"].get("model") or None

    def finish(self, obs: Observation, prev: Any, last: Any) -> None:
        for e in (prev, last):
            d = _payload(e) if e is not None else {}
            reason = _stop_reason(d)
            if reason:
                obs.finish_reasons = (str(reason),)
            metrics = d.get("amazon-bedrock-invocationMetrics")
            if isinstance(metrics, dict):
                obs.usage(metrics.get("inputTokenCount"), metrics.get("outputTokenCount"))

    def response(self, obs: Observation, r: Any) -> None:
        headers = (r.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
        counts = [headers.get(f"x-amzn-bedrock-{k}-token-count") for k in ("input", "output")]
        obs.usage(*(int(v) if isinstance(v, str) and v.isdigit() else None for v in counts))


CONVERSE = ConverseAdapter()
INVOKE = InvokeAdapter()
#: operation -> (adapter, the result field holding the event stream, or None when not streamed)
_OPERATIONS: dict[str, tuple[Any, str | None]] = {
    "Converse": (CONVERSE, None), "ConverseStream": (CONVERSE, "stream"),
    "InvokeModel": (INVOKE, None), "InvokeModelWithResponseStream": (INVOKE, "body"),
}


def _target(client: Any) -> Target:
    meta = client.meta
    url = meta.endpoint_url
    cached = client.__dict__.get("_brownout_target")
    if cached is not None and cached[0] == url:
        target: Target = cached[1]
        return target
    region, deadline = BEDROCK.settings(client)
    if region is None and isinstance(meta.region_name, str) and meta.region_name:
        region = meta.region_name
    target = target_from_url(url, "aws.bedrock", region, "aws.bedrock", deadline)
    client.__dict__["_brownout_target"] = (url, target)
    return target


def _wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap botocore's ``_make_api_call(self, operation_name, api_params)``: every operation of
    every AWS client passes here; only the four above of ``bedrock-runtime`` are observed."""

    @functools.wraps(original)
    def _make_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
        op = _OPERATIONS.get(operation_name)
        if op is None:
            return original(self, operation_name, api_params)
        try:
            if self.meta.service_model.service_name != "bedrock-runtime":
                return original(self, operation_name, api_params)
            t = _target(self)
            model = api_params.get("modelId")
        except Exception:
            log.debug("brownout: not observing this call", exc_info=True)
            return original(self, operation_name, api_params)
        adapter, field = op
        t0 = perf_counter()
        obs = waiting_observation(t, model, t0) if field else None
        try:
            result = original(self, operation_name, api_params)
        except BaseException as exc:
            failed(t, model, t0, exc, obs)
            raise
        if obs is not None:
            try:
                result[field] = SyncStreamProxy(result[field], obs, adapter)
            except Exception:
                obs.done = True  # not a stream we can read
                log.debug("brownout: not observing this stream", exc_info=True)
            return result
        emit((t, model, False, t0, perf_counter(), result, adapter))
        return result

    setattr(_make_api_call, MARK, original)
    return _make_api_call


def _methods() -> list[tuple[type, str, Callable[..., Any]]]:
    from botocore.client import BaseClient

    return [(BaseClient, "_make_api_call", _wrapper)]


BEDROCK = Integration(_methods, lambda client: [client])


def instrument_bedrock(client: Any = None, *, region: str | None = None, deadline: float | None = None) -> None:
    """Instrument one boto3 ``bedrock-runtime`` client, or every one (made before or after).

    Calling it again is harmless; ``region`` overrides the client's ``meta.region_name``;
    ``deadline`` (seconds) is the SLO every call is judged against (``brownout.deadline``).
    """
    if client is not None and client.meta.service_model.service_name != "bedrock-runtime":
        raise ValueError(f"instrument_bedrock() takes a bedrock-runtime client, got "
                         f"{client.meta.service_model.service_name!r}")
    BEDROCK.instrument(client, region, deadline)


def uninstrument_bedrock(client: Any = None) -> None:
    """Undo :func:`instrument_bedrock` for one client, or for every client when ``client`` is None."""
    BEDROCK.uninstrument(client)
