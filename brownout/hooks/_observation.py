"""One LLM call as the hooks see it: a few numbers recorded cheaply, turned into an Event later.

The hot path is deliberately tiny: ``chunk()`` is one ``perf_counter()`` and one list append;
everything else (TTFT, inter-chunk percentiles, the Event itself) is computed by the exporter's
background thread from the raw timestamps.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
from time import perf_counter
from typing import Any, Callable, Iterable, TypeVar

from brownout.semconv import CANCELLED

log = logging.getLogger("brownout.hooks")

F = TypeVar("F", bound=Callable[..., Any])

#: Where finished observations go; replaced by :func:`brownout.hooks.configure`. Items are
#: Observations, or :data:`Done` tuples from the integrations' fast path.
_sink: list[Callable[[Any], None]] = [lambda obs: None]

#: A finished non-streamed call, recorded at the least cost: (target, model, stream, t0, t1,
#: result, reader). The exporter's thread builds the Observation and lets ``reader.response``
#: read model, usage and finish reasons from ``result`` (never its content), then drops it.
Done = tuple[Any, ...]

#: Streamed calls that may still be waiting for their first content chunk, by ``id()``. Callers
#: only add (one dict store); the exporter's thread scans them for stalls and removes the ones
#: that got a chunk or ended, so an id cannot be reused while its entry is here.
waiting: dict[int, "Observation"] = {}


def emit(item: Any) -> None:
    """Hand a finished Observation or Done tuple to the exporter (never raises)."""
    try:
        _sink[0](item)
    except Exception:
        log.debug("brownout: dropping an event", exc_info=True)


def error_type_of(exc: BaseException) -> str:
    """The low-cardinality ``error.type`` of an exception.

    ``"cancelled"`` when the caller abandoned the call (asyncio's ``CancelledError``: a hedged
    copy that lost the race), ``"timeout"`` for timeouts (first: LiteLLM's Timeout carries a
    made-up 408), ``"connection"`` for botocore's connection failures, the HTTP status as a
    string when the exception carries one (``status_code``, ``status``, ``code`` as in
    google-genai, or botocore's ``response`` dict and error code), else the AWS error code or
    the exception's class name.

    >>> import asyncio
    >>> class RateLimit(Exception):
    ...     status_code = 429
    >>> error_type_of(RateLimit()), error_type_of(TimeoutError()), error_type_of(KeyError("x"))
    ('429', 'timeout', 'KeyError')
    >>> error_type_of(asyncio.CancelledError())
    'cancelled'
    >>> class ClientError(Exception):  # botocore's shape; event-stream errors carry no HTTP status
    ...     def __init__(self, code): self.response = {"Error": {"Code": code}}
    >>> [error_type_of(ClientError(c)) for c in ("throttlingException", "ModelTimeoutException", "Odd")]
    ['429', 'timeout', 'Odd']
    """
    name = type(exc).__name__
    if name in _CANCELLATIONS:
        return CANCELLED
    code = _aws_code(exc)
    if isinstance(exc, TimeoutError) or "Timeout" in name or (code is not None and "Timeout" in code):
        return "timeout"
    if name in _CONNECTION_ERRORS:
        return "connection"
    status = status_code_of(exc)
    if status is not None:
        return str(status)
    return code or name


_CANCELLATIONS = frozenset({"CancelledError", "Cancelled"})  # asyncio / concurrent.futures, trio
_CONNECTION_ERRORS = frozenset({"EndpointConnectionError", "ConnectionClosedError"})  # botocore
#: AWS error codes (Bedrock runtime) -> HTTP status, for errors that arrive inside an event stream
#: (they carry the code alone).
AWS_STATUS = {"ThrottlingException": 429, "ModelNotReadyException": 429, "ServiceUnavailableException": 503,
              "InternalServerException": 500, "ModelErrorException": 424, "ModelStreamErrorException": 424,
              "ValidationException": 400, "AccessDeniedException": 403, "ResourceNotFoundException": 404,
              "ServiceQuotaExceededException": 400, "ConflictException": 400, "ModelTimeoutException": 408}


def _aws_code(exc: BaseException) -> str | None:
    resp = getattr(exc, "response", None)
    if not isinstance(resp, dict):
        return None
    code = (resp.get("Error") or {}).get("Code")
    if not isinstance(code, str) or not code:
        return None
    return code[0].upper() + code[1:]  # event-stream errors spell it throttlingException


def _status(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599 else None


def status_code_of(exc: BaseException) -> int | None:
    """The HTTP status an exception carries: ``status_code``, ``status``, ``code``,
    ``response.status_code``, or botocore's ``response["ResponseMetadata"]["HTTPStatusCode"]``
    (else the status of its AWS error code)."""
    for attr in ("status_code", "status", "code"):
        v = _status(getattr(exc, attr, None))
        if v is not None:
            return v
    resp = getattr(exc, "response", None)
    if isinstance(resp, dict):
        v = _status((resp.get("ResponseMetadata") or {}).get("HTTPStatusCode"))
        code = _aws_code(exc)
        return v if v is not None else AWS_STATUS.get(code) if code else None
    return _status(getattr(resp, "status_code", None))


class Observation:
    """Records one LLM call; a sync and async context manager, and a decorator.

    Use :func:`observe` to make one. Inside the block, call :meth:`chunk` for each streamed
    chunk, :meth:`usage` with token counts, and set ``response_model`` / ``finish_reasons``.
    An exception leaving the block sets ``error.type`` and is re-raised unchanged.

    >>> with observe(provider="openai", region="eastus", model="gpt-4o", stream=True) as call:
    ...     for _ in range(3):
    ...         call.chunk()
    ...     call.usage(12, 3)
    ...     call.finish_reasons = ("stop",)
    >>> call.done, len(call.chunk_times), call.output_tokens
    (True, 3, 3)
    """

    __slots__ = ("provider", "region", "model", "operation", "stream", "deadline", "server_address",
                 "server_port", "response_model", "input_tokens", "output_tokens", "finish_reasons",
                 "error_type", "status_code", "t0", "t1", "chunk_times", "ttft_at", "done")

    def __init__(self, provider: str, region: str, model: str, operation: str = "chat",
                 stream: bool = False, deadline: float | None = None,
                 server_address: str | None = None, server_port: int | None = None) -> None:
        self.provider = provider
        self.region = region
        self.model = model
        self.operation = operation
        self.stream = stream
        self.deadline = deadline
        self.server_address = server_address
        self.server_port = server_port
        self.response_model: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.finish_reasons: tuple[str, ...] | list[str] | None = None
        self.error_type: str | None = None
        self.status_code: int | None = None
        self.t0 = 0.0
        self.t1 = 0.0
        #: perf_counter() of every chunk; the first one is the first content chunk (TTFT).
        self.chunk_times: list[float] | None = [] if stream else None
        #: Set when TTFT is known without chunk times (e.g. LiteLLM's completion_start_time).
        self.ttft_at: float | None = None
        self.done = False

    # --- hot path ---------------------------------------------------------------------------
    def start(self) -> "Observation":
        """Mark the request start (done by the context manager and the integrations); a streamed
        call is watched for a stall until its first chunk."""
        self.t0 = perf_counter()
        if self.stream:
            waiting[id(self)] = self
        return self

    def chunk(self) -> None:
        """Record one streamed chunk: the first sets TTFT, later ones an inter-chunk gap."""
        ts = self.chunk_times
        if ts is None:
            ts = self.chunk_times = []
        ts.append(perf_counter())

    def usage(self, input_tokens: int | None = None, output_tokens: int | None = None) -> None:
        """Record token usage (either may be None when unknown)."""
        if input_tokens is not None:
            self.input_tokens = input_tokens
        if output_tokens is not None:
            self.output_tokens = output_tokens

    def fail(self, exc: BaseException) -> None:
        """Record an exception as this call's error (``error.type``, ``http.response.status_code``).

        A cancellation after the first chunk is no error: the caller stopped reading, as with a
        ``break`` (before the first chunk it is ``"cancelled"``, with ``brownout.ttft.at_least``).
        """
        try:
            error_type = error_type_of(exc)
            if error_type == CANCELLED and (self.chunk_times or self.ttft_at is not None):
                return
            self.error_type = error_type
            self.status_code = status_code_of(exc) if self.error_type != "timeout" else None
            if self.stream and self.chunk_times:
                self.finish_reasons = ("error",)
        except Exception:  # never hurt the host app
            log.debug("brownout: could not classify %r", exc, exc_info=True)

    def end(self, at: float | None = None) -> None:
        """Finish the call (once; later calls do nothing) and hand it to the exporter."""
        if self.done:
            return
        self.done = True
        self.t1 = perf_counter() if at is None else at
        try:
            _sink[0](self)
        except Exception:
            log.debug("brownout: dropping an event", exc_info=True)

    # --- context manager --------------------------------------------------------------------
    def __enter__(self) -> "Observation":
        self.t0 = perf_counter()
        if self.stream:
            waiting[id(self)] = self
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            self.fail(exc)
        self.end()

    async def __aenter__(self) -> "Observation":
        self.t0 = perf_counter()
        if self.stream:
            waiting[id(self)] = self
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            self.fail(exc)
        self.end()

    # --- decorator --------------------------------------------------------------------------
    def _fresh(self) -> "Observation":
        return Observation(self.provider, self.region, self.model, self.operation, self.stream,
                           self.deadline, self.server_address, self.server_port)

    def __call__(self, fn: F) -> F:
        """Use as a decorator: every call of ``fn`` is observed as one LLM call."""
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh():
                    return await fn(*args, **kwargs)
            return awrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return fn(*args, **kwargs)
        return wrapper  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (f"Observation({self.provider}/{self.region}/{self.model}, op={self.operation}, "
                f"stream={self.stream}, done={self.done})")


def observe(provider: str, region: str, model: str, operation: str = "chat", stream: bool = False,
            deadline: float | None = None, server_address: str | None = None,
            server_port: int | None = None) -> Observation:
    """Observe one LLM call: ``with observe(...) as call:`` (or ``async with``, or ``@observe(...)``).

    ``deadline`` is the caller's SLO in seconds (``brownout.deadline``, for goodput).

    >>> @observe(provider="anthropic", region="us-east-1", model="claude-sonnet-4")
    ... def ask():
    ...     return "ok"
    >>> ask()
    'ok'
    """
    if not (provider and region and model and provider.__class__ is str and region.__class__ is str
            and model.__class__ is str):
        # Never raise into the app: the call goes on, its event is dropped as invalid and counted.
        for name, value in (("provider", provider), ("region", region), ("model", model)):
            if not isinstance(value, str) or not value:
                log.warning("brownout: observe(): %s must be a non-empty string, got %r; this call's "
                            "event will be dropped (counted as invalid)", name, value)
        provider, region, model = (v if isinstance(v, str) else "" for v in (provider, region, model))
    return Observation(provider, region, model, operation, bool(stream), deadline, server_address,
                       server_port)


def itl_stats(times: Iterable[float]) -> tuple[float, float, float] | None:
    """Inter-chunk gaps of chunk timestamps: (p50, p95, max), nearest rank; None under 2 chunks.

    >>> itl_stats([0.0, 0.1, 0.3, 0.6])
    (0.2, 0.3, 0.3)
    """
    ts = list(times)
    if len(ts) < 2:
        return None
    gaps = sorted(b - a for a, b in zip(ts, ts[1:]))
    n = len(gaps)

    def rank(q: float) -> float:
        return round(gaps[max(0, min(n - 1, math.ceil(q * n - 1e-9) - 1))], 9)

    return rank(0.5), rank(0.95), round(gaps[-1], 9)
