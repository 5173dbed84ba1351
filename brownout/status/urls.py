"""Where a key's status page lives: one path per key, the same in the collector and in links.

Stdlib only: the alert exporters import it to put the link in Slack and PagerDuty messages.

>>> from brownout.model import Key
>>> key_path(Key("azure.ai.openai", "swedencentral", "gpt-4o/2024-08-06"))
'/status/key/azure.ai.openai/swedencentral/gpt-4o%2F2024-08-06'
>>> key_url("https://brownout.example.com/", Key("openai", "eastus", "gpt-4o"))
'https://brownout.example.com/status/key/openai/eastus/gpt-4o'
>>> parse_key_path("/status/key/openai/eastus/gpt-4o%2Fmini")
Key(provider='openai', region='eastus', model='gpt-4o/mini')
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from brownout.model import Key

__all__ = ["STATUS_PATH", "KEY_PREFIX", "key_path", "key_url", "parse_key_path"]

STATUS_PATH = "/status"
KEY_PREFIX = "/status/key/"


def key_path(key: Key) -> str:
    """The path of ``key``'s page; each part is percent-encoded (a model name may hold ``/``)."""
    return KEY_PREFIX + "/".join(quote(part, safe="") for part in (key.provider, key.region, key.model))


def key_url(public_url: str, key: Key) -> str:
    """``public_url`` (where people reach the collector) joined with :func:`key_path`."""
    return public_url.rstrip("/") + key_path(key)


def parse_key_path(path: str) -> Key | None:
    """The key a :func:`key_path` names, or None when ``path`` is not one."""
    if not path.startswith(KEY_PREFIX):
        return None
    parts = path[len(KEY_PREFIX):].split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return Key(*(unquote(p) for p in parts))
