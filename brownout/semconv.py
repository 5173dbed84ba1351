"""Every attribute, topic and metric name brownout reads or writes, in one place.

Attribute names follow the OpenTelemetry GenAI semantic conventions (v1.41). Older
names written by other instrumentations (OTel's genai-openai, OpenLLMetry, OpenLIT,
LiteLLM's OTel callback) are mapped onto the current ones by :data:`LEGACY_ATTRIBUTES`,
and nowhere else.

>>> LEGACY_ATTRIBUTES["gen_ai.system"]
'gen_ai.provider.name'
>>> error_class("429"), error_class("404"), error_class(None)
('capacity', 'client', None)
"""

from __future__ import annotations

# --- span attributes (the event contract) -------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
CLOUD_REGION = "cloud.region"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
ERROR_TYPE = "error.type"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
BROWNOUT_ITL_P50 = "brownout.itl.p50"
BROWNOUT_ITL_P95 = "brownout.itl.p95"
BROWNOUT_ITL_MAX = "brownout.itl.max"
BROWNOUT_DEADLINE = "brownout.deadline"
#: True on an in-flight report: the call is still waiting for its first token (its full event follows).
BROWNOUT_STALL = "brownout.stall"
#: Seconds the first token was at least this late: set when the call ended or was reported without one
#: (a stall report, a cancelled hedge copy, a client-side first-token timeout).
BROWNOUT_TTFT_AT_LEAST = "brownout.ttft.at_least"

#: Older attribute names -> the current GenAI convention. Applied when decoding spans.
LEGACY_ATTRIBUTES: dict[str, str] = {
    "gen_ai.system": GEN_AI_PROVIDER_NAME,
    "gen_ai.is_streaming": GEN_AI_REQUEST_STREAM,
    "gen_ai.server.time_to_first_token": GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    "gen_ai.response.time_to_first_token": GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    "llm.is_streaming": GEN_AI_REQUEST_STREAM,
    "gen_ai.usage.prompt_tokens": GEN_AI_USAGE_INPUT_TOKENS,
    "gen_ai.usage.completion_tokens": GEN_AI_USAGE_OUTPUT_TOKENS,
    "llm.usage.prompt_tokens": GEN_AI_USAGE_INPUT_TOKENS,
    "llm.usage.completion_tokens": GEN_AI_USAGE_OUTPUT_TOKENS,
    "gen_ai.openai.request.model": GEN_AI_REQUEST_MODEL,
    "aws.region": CLOUD_REGION,
    "http.status_code": HTTP_RESPONSE_STATUS_CODE,
}

#: Older provider values -> current ones (``gen_ai.system`` used other spellings).
LEGACY_PROVIDERS: dict[str, str] = {
    "az.ai.openai": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "azure": "azure.ai.openai",
    "aws_bedrock": "aws.bedrock",
    "bedrock": "aws.bedrock",
    "vertex_ai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "Anthropic": "anthropic",
    "OpenAI": "openai",
}

#: Operations that are model inference (other spans on the events topic are skipped).
INFERENCE_OPERATIONS = frozenset(
    {"chat", "text_completion", "generate_content", "embeddings", "completion", "responses"}
)

# --- error classes ----------------------------------------------------------------------
#: ``error.type`` values that mean the provider is out of capacity: they trip breakers.
CAPACITY_ERRORS = frozenset(
    {"429", "529", "timeout", "connection", "ConnectionError", "APIConnectionError",
     "APITimeoutError", "ReadTimeout", "ConnectTimeout", "ConnectError", "RemoteProtocolError",
     "TimeoutError", "ConnectionResetError", "RateLimitError", "InternalServerError",
     "OverloadedError", "ServiceUnavailableError"}
)
#: ``error.type`` values that are the caller's fault: counted, never trip a breaker.
CLIENT_ERRORS = frozenset(
    {"400", "401", "403", "404", "409", "413", "422", "BadRequestError", "AuthenticationError",
     "PermissionDeniedError", "NotFoundError", "UnprocessableEntityError", "ContentPolicyViolationError",
     "ContextWindowExceededError"}
)


#: ``error.type`` of a call the caller abandoned (a hedged copy that lost the race, a user who left):
#: not the provider's fault, never an error of the key; with ``brownout.ttft.at_least`` when no first
#: token had come yet.
CANCELLED = "cancelled"
CANCELLED_ERRORS = frozenset({CANCELLED, "CancelledError"})


def error_class(error_type: str | None) -> str | None:
    """Classify an ``error.type``: ``"capacity"``, ``"client"``, ``"cancelled"``, ``"other"`` or None.

    Any 5xx status is capacity; any other 4xx is client.

    >>> error_class("503"), error_class("cancelled"), error_class("KeyError")
    ('capacity', 'cancelled', 'other')
    """
    if not error_type:
        return None
    if error_type in CANCELLED_ERRORS:
        return "cancelled"
    if error_type in CAPACITY_ERRORS:
        return "capacity"
    if error_type in CLIENT_ERRORS:
        return "client"
    if len(error_type) == 3 and error_type.isdigit():
        return "capacity" if error_type[0] == "5" else "client" if error_type[0] == "4" else "other"
    return "other"


# --- Kafka ------------------------------------------------------------------------------
TOPIC_EVENTS = "brownout.events"
TOPIC_CONTROL = "brownout.control"
TOPIC_STATE = "brownout.state"
TOPIC_DEAD_LETTER = "brownout.dead-letter"

HEADER_CONTENT_TYPE = "content-type"
HEADER_SIGNATURE = "brownout-signature"
HEADER_KEY_ID = "brownout-key-id"
HEADER_REASON = "brownout-reason"
HEADER_SOURCE = "brownout-source"

CONTENT_OTLP_PROTO = "application/x-protobuf"
CONTENT_OTLP_JSON = "application/json+otlp"
CONTENT_FLAT_JSON = "application/json"

# --- metrics (Prometheus naming: namespace_subsystem_name_unit, _total on counters) -----
METRIC_NAMESPACE = "brownout"
