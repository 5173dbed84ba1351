"""Where an LLM endpoint is: its provider and region, from its host name.

Shared by the hooks (a client's base URL) and the collector (``server.address`` on spans from
other instrumentations, which set no ``cloud.region``), so both name a key the same way.
Standard library only: the hooks import it.

>>> provider_for_host("myres.openai.azure.com", "openai")
'azure.ai.openai'
>>> host_region("bedrock-runtime.us-west-2.amazonaws.com", {})
'us-west-2'
>>> host_region("myres.openai.azure.com", {"myres": "swedencentral"})
'swedencentral'
>>> RegionMap({"llm.internal": "eastus"}, default="global")("api.openai.com")
'global'
"""

from __future__ import annotations

import re
from typing import Mapping

__all__ = ["AZURE_SUFFIXES", "RegionMap", "azure_resource", "host_region", "provider_for_host"]

AZURE_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")
_URL_REGIONS = (
    re.compile(r"bedrock(?:-runtime)?(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com$"),
    re.compile(r"^([a-z]+-[a-z]+\d+)-aiplatform\.googleapis\.com$"),
    re.compile(r"^([a-z]+)\.api\.cognitive\.microsoft\.com$"),
)


def provider_for_host(host: str, default: str) -> str:
    """The GenAI provider name of an endpoint host (``azure.ai.openai`` for Azure OpenAI)."""
    if host.endswith(AZURE_SUFFIXES) or host.endswith(".api.cognitive.microsoft.com"):
        return "azure.ai.openai"
    if "bedrock" in host and host.endswith(".amazonaws.com"):
        return "aws.bedrock"
    if host.endswith("aiplatform.googleapis.com"):
        return "gcp.vertex_ai"
    return default


def azure_resource(host: str) -> str | None:
    """The Azure resource name of an Azure OpenAI host (``myres`` of ``myres.openai.azure.com``)."""
    return host.split(".", 1)[0] if host.endswith(AZURE_SUFFIXES) else None


def host_region(host: str, regions: Mapping[str, str]) -> str | None:
    """The region of a (lower-case) host: ``regions`` by host, then by Azure resource name, then
    the region written in the host name (Bedrock, Vertex AI, Azure Cognitive Services); else None."""
    mapped = regions.get(host)
    if mapped:
        return mapped
    resource = azure_resource(host)
    if resource is not None:
        mapped = regions.get(resource)
        if mapped:
            return mapped
    for rx in _URL_REGIONS:
        m = rx.search(host)
        if m:
            return m.group(1)
    return None


class RegionMap:
    """The region of a span that names none: from its ``server.address`` (see :func:`host_region`),
    else ``default`` (None: no region, and the span is invalid).

    Answers are cached per host (a few thousand hosts at most; the cache starts over when full).

    >>> m = RegionMap({"myres": "swedencentral"}, default=None)
    >>> m("MyRes.openai.azure.com"), m("europe-west4-aiplatform.googleapis.com"), m(None)
    ('swedencentral', 'europe-west4', None)
    """

    __slots__ = ("regions", "default", "_cache")
    _MAX_CACHED = 4096

    def __init__(self, regions: Mapping[str, str] | None = None, default: str | None = "global") -> None:
        self.regions = {str(k).lower(): str(v) for k, v in (regions or {}).items()}
        self.default = default or None
        self._cache: dict[str, str | None] = {}

    def __call__(self, host: object) -> str | None:
        if not isinstance(host, str) or not host:
            return self.default
        try:
            return self._cache[host]
        except KeyError:
            pass
        if len(self._cache) >= self._MAX_CACHED:
            self._cache.clear()
        region = self._cache[host] = host_region(host.lower(), self.regions) or self.default
        return region

    def __repr__(self) -> str:
        return f"RegionMap({self.regions!r}, default={self.default!r})"
