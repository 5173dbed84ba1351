"""Google Gen AI SDK (``google-genai``) integration: ``models.generate_content`` and
``models.generate_content_stream``, sync (``client.models``) and async (``client.aio.models``);
chats go through them too.

Two lines::

    import brownout.hooks
    brownout.hooks.instrument_genai()            # every client; or instrument_genai(client)

Provider ``gcp.gemini`` (Gemini Developer API) or ``gcp.vertex_ai`` (``Client(vertexai=True)``,
region = its ``location``). Region otherwise: ``instrument_genai(region=...)``, else
``configure(regions={host: region})``, else ``configure(region=...)``, else ``"global"``. The
model is the ``model`` argument as given. Usage comes from ``usage_metadata``
(``prompt_token_count``; output = ``candidates_token_count``: thinking tokens are spent before
the first chunk and would inflate decode speed); ``google.genai.errors.APIError`` gives its
HTTP ``code`` (``"429"``, ``"503"``). ``gen_ai.operation.name`` is ``generate_content``. A call
that runs automatic function calling is one event.
No content is read.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from brownout.hooks._observation import Observation
from brownout.hooks._targets import Target, target_from_url
from brownout.hooks._wrap import Integration, async_create, sync_create

log = logging.getLogger("brownout.hooks")

__all__ = ["instrument_genai", "uninstrument_genai"]


def _reasons(r: Any) -> tuple[str, ...]:
    out = []
    for c in r.candidates or ():
        fr = c.finish_reason
        if fr:
            out.append(str(getattr(fr, "value", fr)).lower())
    return tuple(out)


class ContentAdapter:
    """``GenerateContentResponse`` items: content once a candidate has parts; usage on every
    chunk (the last one is complete), the finish reason on the last."""

    def is_content(self, r: Any) -> bool:
        cands = r.candidates
        if not cands:
            return False
        content = cands[0].content
        return content is not None and bool(content.parts)

    def note(self, obs: Observation, r: Any) -> None:
        if obs.response_model is None:
            obs.response_model = r.model_version or None

    def finish(self, obs: Observation, prev: Any, last: Any) -> None:
        for r in (prev, last):
            if r is not None:
                self.response(obs, r)

    def response(self, obs: Observation, r: Any) -> None:
        obs.response_model = getattr(r, "model_version", None) or obs.response_model
        u = getattr(r, "usage_metadata", None)
        if u is not None:
            obs.usage(u.prompt_token_count, u.candidates_token_count)
        reasons = _reasons(r) if getattr(r, "candidates", None) else ()
        if reasons:
            obs.finish_reasons = reasons


CONTENT = ContentAdapter()


def _target(resource: Any) -> Target:
    api = resource._api_client
    base = api._http_options.base_url
    cached = api.__dict__.get("_brownout_target")
    if cached is not None and cached[0] == base:
        target: Target = cached[1]
        return target
    region, deadline = GENAI.settings(api)
    vertex = bool(api.vertexai)
    if region is None and vertex:
        location = getattr(api, "location", None)
        region = location if isinstance(location, str) and location else None
    target = target_from_url(base, "gcp.gemini", region, "gcp.vertex_ai" if vertex else "gcp.gemini", deadline,
                             "generate_content")
    api.__dict__["_brownout_target"] = (base, target)
    return target


def _methods() -> list[tuple[type, str, Callable[..., Any]]]:
    from google.genai.models import AsyncModels, Models

    return [
        (Models, "generate_content", lambda f: sync_create(f, _target, None, CONTENT)),
        (Models, "generate_content_stream", lambda f: sync_create(f, _target, None, CONTENT, streamed=True)),
        (AsyncModels, "generate_content", lambda f: async_create(f, _target, None, CONTENT)),
        (AsyncModels, "generate_content_stream", lambda f: async_create(f, _target, None, CONTENT, streamed=True)),
    ]


def _resources(client: Any) -> list[Any]:
    return [client.models, client.aio.models]


GENAI = Integration(_methods, _resources, holder=lambda client: client._api_client)


def instrument_genai(client: Any = None, *, region: str | None = None, deadline: float | None = None) -> None:
    """Instrument one ``google.genai.Client`` (its sync and async models), or the whole SDK.

    Calling it again is harmless; ``region`` overrides the region found from the client;
    ``deadline`` (seconds) is the SLO every call is judged against (``brownout.deadline``).
    """
    GENAI.instrument(client, region, deadline)


def uninstrument_genai(client: Any = None) -> None:
    """Undo :func:`instrument_genai` for one client, or for the SDK when ``client`` is None."""
    GENAI.uninstrument(client)
