"""LiteLLM adapter: a ``CustomLogger`` that keeps a ``litellm.Router`` off open breakers.

Register one object and the Router filters its deployments through the board before each
pick; pass the hooks' LiteLLM telemetry logger as ``telemetry`` and the same object also
reports every call; pass the Router as ``router`` and LiteLLM's own fallbacks take over when
every deployment of a model group is refused::

    board = BreakerBoard(KafkaTransport("kafka:9092")).start()
    router = litellm.Router(model_list=[...], fallbacks=[{"gpt-4o": ["gpt-4o-mini"]}])   # as before
    litellm.callbacks.append(BrownoutRouterGuard(board, router=router))

The collector publishes each key's true state, so every deployment of a group may be open.
Then the guard walks the group's fallback chain as LiteLLM would: while a later group has a
deployment its breaker admits, it raises :class:`BreakersOpen` (a ``NotFoundError``, which
LiteLLM does not retry but falls back on, at once); when nothing is left it calls the least
degraded deployment of the whole chain (in this group, or in the later group that holds it).

A deployment's key is ``(provider, region, model)`` from its ``litellm_params`` (see
:func:`deployment_key`), or from ``mapping`` (deployment id, ``api_base`` or model name ->
Key, or a function of the deployment dict).

>>> deployment_key({"model": "azure/gpt-4o-prod", "region_name": "swedencentral",
...                 "api_base": "https://x.openai.azure.com"})
Key(provider='azure.ai.openai', region='swedencentral', model='gpt-4o-prod')
>>> deployment_key({"model": "bedrock/anthropic.claude-3-5-sonnet",
...                 "api_base": "https://bedrock-runtime.us-west-2.amazonaws.com"})
Key(provider='aws.bedrock', region='us-west-2', model='anthropic.claude-3-5-sonnet')
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Mapping, Protocol
from urllib.parse import urlsplit

from litellm.exceptions import NotFoundError
from litellm.integrations.custom_logger import CustomLogger

from brownout import semconv as sc
from brownout.hooks._targets import provider_for_host, region_for_host
from brownout.model import Key

__all__ = ["BreakersOpen", "BrownoutRouterGuard", "deployment_key"]

log = logging.getLogger(__name__)

#: litellm provider prefixes -> ``gen_ai.provider.name`` values (beyond semconv's legacy map).
_PROVIDERS = {"azure": "azure.ai.openai", "azure_ai": "azure.ai.inference", "bedrock": "aws.bedrock",
              "vertex_ai": "gcp.vertex_ai", "vertex_ai_beta": "gcp.vertex_ai", "gemini": "gcp.gemini",
              "mistral": "mistral_ai", "groq": "groq", "deepseek": "deepseek", "xai": "x_ai"}
_REGION_PARAMS = ("region_name", "aws_region_name", "vertex_location")


class Board(Protocol):
    def admitted(self, keys: Iterable[Key]) -> list[Key]: ...

    def least_degraded(self, keys: Iterable[Key]) -> Key: ...

    def state(self, key: Key) -> str: ...


class BreakersOpen(NotFoundError):
    """Every deployment of a model group is refused by its breaker and a fallback group has
    somewhere to go: LiteLLM falls back on a ``NotFoundError`` without retrying the group."""

    def __init__(self, group: str, fallback: str) -> None:
        super().__init__(message=f"brownout: every deployment of {group!r} is refused by its breaker; "
                                 f"falling back to {fallback!r}", model=group, llm_provider="")
        self.group, self.fallback = group, fallback


KeyMapping = Mapping[str, Key] | Callable[[Mapping[str, Any]], Key | None]


def deployment_key(litellm_params: Mapping[str, Any]) -> Key:
    """The breaker key of a deployment, from its ``litellm_params``; the same key the hooks'
    LiteLLM logger reports for calls to it.

    provider: the ``api_base`` host when it names one (Azure OpenAI, Bedrock, Vertex AI), else
    ``custom_llm_provider`` or the ``provider/`` prefix of ``model`` (default ``openai``), named
    as ``gen_ai.provider.name``; region: ``region_name``, ``aws_region_name`` or
    ``vertex_location``, else from the ``api_base`` host as the hooks resolve it
    (``brownout.hooks.configure(regions=...)``, the region in the URL, else ``global``);
    model: ``model`` without the provider prefix.
    """
    raw_model = str(litellm_params.get("model") or "")
    prefix, _, rest = raw_model.partition("/")
    provider = litellm_params.get("custom_llm_provider")
    model = raw_model
    if rest:
        provider = provider or prefix
        model = rest
    provider = str(provider or "openai")
    host = ""
    if litellm_params.get("api_base"):
        try:
            host = (urlsplit(str(litellm_params["api_base"])).hostname or "").lower()
        except ValueError:
            host = ""
    provider = provider_for_host(host, "") or _PROVIDERS.get(provider) or sc.LEGACY_PROVIDERS.get(provider, provider)
    region = next((str(litellm_params[p]) for p in _REGION_PARAMS if litellm_params.get(p)), None)
    return Key(provider, region or region_for_host(host), model or "unknown")


class BrownoutRouterGuard(CustomLogger):
    """Removes deployments whose breaker is open (or half-open and not admitted) from a Router's pick.

    Parameters
    ----------
    board
        A :class:`~brownout.breakers.BreakerBoard` or ``AsyncBreakerBoard``; the guard never
        leaves the Router with nothing to call.
    router
        The ``litellm.Router`` whose fallbacks (``fallbacks``, ``default_fallbacks``, or a call's
        own ``fallbacks=``) make the chain walked when a whole group is refused. Without it,
        the least degraded deployment of the group is called.
    mapping
        Deployment -> Key when :func:`deployment_key` does not match what the hooks report:
        a dict keyed by deployment id (``model_info.id``), ``api_base`` or ``litellm_params.model``,
        or a function of the deployment dict (None falls back to :func:`deployment_key`).
    telemetry
        The hooks' LiteLLM logger: its logging callbacks are forwarded so one object does both.

    Counters: ``filtered`` (calls where a deployment was removed), ``removed`` (deployments
    removed), ``fell_back`` (calls handed to LiteLLM's fallbacks: the whole group refused),
    ``least_degraded`` (calls sent to a refused deployment: nothing was left).
    """

    def __init__(self, board: Board, mapping: KeyMapping | None = None,
                 telemetry: CustomLogger | None = None, router: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.board = board
        self.router = router
        self.mapping = mapping
        hooks: Any = telemetry  # untyped litellm callbacks
        self.telemetry = hooks
        if hooks is not None and getattr(hooks, "key_for", False) is None:
            hooks.key_for = self.key_for_call  # events carry the keys this guard filters on
        self.filtered = 0
        self.removed = 0
        self.fell_back = 0
        self.least_degraded = 0
        self._by_id: dict[str, Key] = {}

    def key_of(self, deployment: Mapping[str, Any]) -> Key:
        """The breaker key of one Router deployment dict."""
        key = self._key_of(deployment)
        ident = (deployment.get("model_info") or {}).get("id")
        if ident is not None and len(self._by_id) < 100_000:
            self._by_id[str(ident)] = key
        return key

    def key_for_call(self, kwargs: Mapping[str, Any]) -> Key | None:
        """The key of the deployment that served a call, from a LiteLLM logging callback's
        ``kwargs`` (its deployment id); None if this guard never saw that deployment.

        LiteLLM does not pass ``region_name`` to logging callbacks: telemetry that wants the
        same key as the guard asks it here.
        """
        params = kwargs.get("litellm_params") or {}
        ident = ((params.get("metadata") or {}).get("model_info") or {}).get("id")
        if ident is None:
            ident = (kwargs.get("standard_logging_object") or {}).get("model_id")
        return self._by_id.get(str(ident)) if ident is not None else None

    def _key_of(self, deployment: Mapping[str, Any]) -> Key:
        params = deployment.get("litellm_params") or {}
        if callable(self.mapping):
            found = self.mapping(deployment)
            if found is not None:
                return found
        elif self.mapping:
            ident = (deployment.get("model_info") or {}).get("id")
            for name in (ident, params.get("api_base"), params.get("model")):
                if name is not None and name in self.mapping:
                    return self.mapping[name]
        return deployment_key(params)

    def filter(self, deployments: list[dict[str, Any]], model: str | None = None,
               request_kwargs: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The deployments of ``model``'s group the board admits now. When it admits none:
        raises :class:`BreakersOpen` if a later group of the fallback chain has somewhere to go,
        else returns the least degraded deployment (never empty)."""
        if not deployments:
            return deployments
        try:
            keys = [self.key_of(d) for d in deployments]
            keep = set(self.board.admitted(keys))
            out = [d for d, k in zip(deployments, keys, strict=True) if k in keep]
            if not out:
                out = self._nowhere_to_go(deployments, keys, model, request_kwargs or {})
        except BreakersOpen:
            self.fell_back += 1
            raise
        except Exception:  # a broken mapping, board or router must not break the Router: fail open
            log.exception("brownout guard failed; keeping every deployment")
            return deployments
        if len(out) < len(deployments):
            self.filtered += 1
            self.removed += len(deployments) - len(out)
        return out

    def _nowhere_to_go(self, deployments: list[dict[str, Any]], keys: list[Key], model: str | None,
                       request_kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
        later = [(group, [self.key_of(d) for d in self._deployments_of(group)])
                 for group in self._later_groups(model, request_kwargs)]
        later = [(group, ks) for group, ks in later if ks]
        if later:
            if any(self.board.state(k) == "closed" for _, ks in later for k in ks):
                raise BreakersOpen(str(model), later[0][0])
            best = self.board.least_degraded(keys + [k for _, ks in later for k in ks])
            if best not in keys:
                raise BreakersOpen(str(model), later[0][0])
        else:
            best = self.board.least_degraded(keys)
        self.least_degraded += 1
        return [deployments[keys.index(best)]]

    def _later_groups(self, model: str | None, request_kwargs: Mapping[str, Any]) -> list[str]:
        """The model groups LiteLLM would fall back to after ``model``, in order."""
        if model is None or (self.router is None and not request_kwargs.get("fallbacks")):
            return []
        meta = request_kwargs.get("metadata") or {}
        original = str(meta.get("original_model_group") or model)
        chain = _fallback_names(request_kwargs.get("fallbacks"))
        if not chain and self.router is not None:
            settings = getattr(self.router, "settings", None)
            configured = settings().fallbacks if callable(settings) else getattr(self.router, "fallbacks", None)
            by_group: dict[str, list[str]] = {}
            for entry in configured or ():
                if isinstance(entry, Mapping):
                    for group, targets in entry.items():
                        by_group.setdefault(str(group), _fallback_names(targets))
            chain = by_group.get(original) or by_group.get("*") or []
        chain = [original] + [g for g in chain if g != original]
        return chain[chain.index(model) + 1:] if model in chain else []

    def _deployments_of(self, group: str) -> list[Mapping[str, Any]]:
        if self.router is None:
            return []
        registry = getattr(self.router, "registry", None)
        if callable(registry):
            return list(registry().deployments(group))
        return list(self.router.get_model_list(model_name=group) or [])

    async def async_filter_deployments(self, model: str, healthy_deployments: list[Any],
                                       messages: list[Any] | None, request_kwargs: dict[str, Any] | None = None,
                                       parent_otel_span: Any | None = None) -> list[dict[str, Any]]:
        return self.filter(healthy_deployments, model, request_kwargs)

    # --- telemetry: forwarded to the hooks' logger so one callback does both -----------------
    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        if self.telemetry is not None:
            self.telemetry.log_pre_api_call(model, messages, kwargs)

    def log_post_api_call(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        if self.telemetry is not None:
            self.telemetry.log_post_api_call(kwargs, response_obj, start_time, end_time)

    def log_stream_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        if self.telemetry is not None:
            self.telemetry.log_stream_event(kwargs, response_obj, start_time, end_time)

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        if self.telemetry is not None:
            self.telemetry.log_success_event(kwargs, response_obj, start_time, end_time)

    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        if self.telemetry is not None:
            self.telemetry.log_failure_event(kwargs, response_obj, start_time, end_time)

    async def async_log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        if self.telemetry is not None:
            await self.telemetry.async_log_pre_api_call(model, messages, kwargs)

    async def async_log_stream_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        if self.telemetry is not None:
            await self.telemetry.async_log_stream_event(kwargs, response_obj, start_time, end_time)

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        if self.telemetry is not None:
            await self.telemetry.async_log_success_event(kwargs, response_obj, start_time, end_time)

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        if self.telemetry is not None:
            await self.telemetry.async_log_failure_event(kwargs, response_obj, start_time, end_time)


def _fallback_names(targets: Any) -> list[str]:
    """Group names from a fallback list: names, or ``{"model": name, ...}`` entries."""
    if not isinstance(targets, (list, tuple)):
        return []
    out = []
    for t in targets:
        name = t.get("model") if isinstance(t, Mapping) else t
        if isinstance(name, str) and name:
            out.append(name)
    return out
