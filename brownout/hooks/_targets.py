"""Where a call goes: provider, region, server address and port, from a client's base URL.

Region, most specific first: the integration's explicit ``region``; ``configure(regions=...)``
by host or Azure resource name; the region in the URL (``bedrock-runtime.us-east-1.amazonaws.com``,
``europe-west4-aiplatform.googleapis.com``); ``configure(region=...)``; else ``"global"``.

>>> target_from_url("https://bedrock-runtime.us-west-2.amazonaws.com", "anthropic")
Target(provider='aws.bedrock', region='us-west-2', server_address='bedrock-runtime.us-west-2.amazonaws.com', server_port=443, deadline=None, operation='chat')
>>> settings.set(regions={"myres": "swedencentral"})
>>> target_from_url("https://myres.openai.azure.com/openai/", "openai").region
'swedencentral'
>>> settings.set()
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlsplit

from brownout.endpoints import azure_resource, host_region, provider_for_host

__all__ = ["Target", "Settings", "settings", "provider_for_host", "region_for_host", "check_deadline",
           "target_from_url"]

log = logging.getLogger("brownout.hooks")


@dataclass(frozen=True, slots=True)
class Target:
    """Provider, region and server of the endpoint a client calls (and the caller's SLO deadline,
    and the ``gen_ai.operation.name`` of its calls)."""

    provider: str
    region: str
    server_address: str | None = None
    server_port: int | None = None
    deadline: float | None = None
    operation: str = "chat"


class Settings:
    """Region settings from :func:`brownout.hooks.configure`."""

    def __init__(self) -> None:
        self.region: str | None = None
        self.regions: dict[str, str] = {}
        self._warned: set[str] = set()

    def set(self, region: str | None = None, regions: Mapping[str, str] | None = None) -> None:
        if region is not None and (not isinstance(region, str) or not region):
            raise ValueError(f"region must be a non-empty string, got {region!r}")
        for k, v in (regions or {}).items():
            if not isinstance(k, str) or not isinstance(v, str) or not k or not v:
                raise ValueError(f"regions must map strings to non-empty strings, got {k!r}: {v!r}")
        self.region = region
        self.regions = {k.lower(): v for k, v in (regions or {}).items()}

    def warn_once(self, what: str, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning(message)


settings = Settings()


def region_for_host(host: str, explicit: str | None = None) -> str:
    """The region of an endpoint host, per the order in this module's docstring."""
    if explicit:
        return explicit
    mapped = host_region(host, settings.regions)
    if mapped:
        return mapped
    if settings.region:
        return settings.region
    resource = azure_resource(host)
    if resource is not None:
        settings.warn_once(host, f"brownout: no region known for Azure resource {resource!r}; using "
                                 f"'global'. Pass configure(regions={{{resource!r}: 'eastus'}}) or region=...")
    return "global"


def check_deadline(deadline: float | None) -> float | None:
    """``deadline`` if it is None or a positive number of seconds, else a ValueError naming it."""
    if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, (int, float))
                                 or not 0 < deadline < 86_400):
        raise ValueError(f"deadline must be seconds in (0, 86400), got {deadline!r}")
    return None if deadline is None else float(deadline)


def target_from_url(url: object, default_provider: str, region: str | None = None,
                    provider: str | None = None, deadline: float | None = None, operation: str = "chat") -> Target:
    """The Target of a base URL (str or URL object)."""
    parts = urlsplit(str(url))
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = 443 if parts.scheme == "https" else 80 if parts.scheme == "http" else None
    return Target(provider or provider_for_host(host, default_provider), region_for_host(host, region),
                  host or None, port, deadline, operation)
