"""Circuit breakers: the state machine (:class:`BreakerBook`), the control record routers read
(:class:`ControlRecord` with its :class:`Readings`), and the router client (:class:`BreakerBoard`,
:class:`AsyncBreakerBoard`: fallback chains, least degraded, timeouts and hedge delays from data;
:class:`HedgeBudget`).

The LiteLLM adapter lives in :mod:`brownout.breakers.litellm` (imported on demand: it loads litellm).
"""

from typing import Any

from brownout.breakers.config import BreakerConfig
from brownout.breakers.machine import BreakerBook
from brownout.breakers.record import ControlRecord, Readings, Signer, load_signing_key, sign, verify

__all__ = ["AsyncBreakerBoard", "BreakerBoard", "BreakerBook", "BreakerConfig", "ControlRecord",
           "HedgeBudget", "Readings", "Signer", "load_signing_key", "sign", "verify"]


def __getattr__(name: str) -> Any:  # lazy: the board loads prometheus_client and asyncio machinery
    if name in ("AsyncBreakerBoard", "BreakerBoard", "HedgeBudget"):
        from brownout.breakers import board

        return getattr(board, name)
    raise AttributeError(name)
