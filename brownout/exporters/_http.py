"""One JSON POST, classified: the single attempt every HTTP notifier makes."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from brownout.exporters.delivery import Delivery, classify_http

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT = 10.0


def default_client(timeout: float = DEFAULT_TIMEOUT) -> httpx.Client:
    return httpx.Client(timeout=timeout, follow_redirects=False)


def post_json(client: httpx.Client, url: str, body: Any, headers: Mapping[str, str] | None = None) -> Delivery:
    """POST ``body`` as JSON once; timeouts and connection errors are retryable, bad URLs are not."""
    try:
        resp = client.post(url, json=body, headers=dict(headers or {}))
    except httpx.TimeoutException as exc:
        return Delivery.transient(f"timeout: {type(exc).__name__}")
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        return Delivery.permanent(f"bad url: {exc}")
    except httpx.TransportError as exc:
        return Delivery.transient(f"{type(exc).__name__}: {exc}")
    result = classify_http(resp.status_code, resp.headers)
    if not result.ok:
        text = resp.text[:200]
        log.warning("POST %s -> %d %s", _redact(url), resp.status_code, text)
        return Delivery(result.ok, result.retryable, result.retry_after, result.status, f"{result.detail}: {text}")
    return result


def _redact(url: str) -> str:
    """Webhook URLs carry their secret in the path: log the host only."""
    try:
        u = httpx.URL(url)
        return f"{u.scheme}://{u.host}/..."
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<url>"


def clip(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, ending with an ellipsis when cut.

    >>> clip("abcdef", 4), clip("abc", 4)
    ('abc…', 'abc')
    """
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"
