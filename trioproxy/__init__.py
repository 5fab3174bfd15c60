"""trioproxy: an OpenAI-compatible LLM proxy on Trio's structured concurrency.

This module is the handler author's API and nothing else: what a handler file imports. Handler
files written for the seeds (the LiteLLM proxy docs) port by changing their imports to these names.
"""

from .auth import LitellmUserRoles, UserAPIKeyAuth
from .auth.key_requests import GenerateKeyRequest, UpdateKeyRequest
from .auth.request import Request
from .auth.team_metadata import (
    TeamMetadataRequester,
    TeamMetadataValidationPayload,
    TeamMetadataValidationResult,
)
from .caching.dual_cache import DualCache
from .errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    GuardrailViolationError,
    HTTPException,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    ProxyError,
    ProxyException,
    RateLimitError,
    ServiceUnavailableError,
    Timeout,
    UnprocessableEntityError,
)
from .hooks.base import CustomGuardrail, CustomLogger, GuardrailEventHooks
from .hooks.litellm_http import AsyncHTTPHandler, get_async_httpx_client, httpxSpecialProvider
from .hooks.litellm_names import (
    CallTypes,
    CallTypesLiteral,
    GenericGuardrailAPIInputs,
    PiiEntityType,
    should_proceed_based_on_metadata,
    verbose_logger,
    verbose_proxy_logger,
    verbose_router_logger,
)
from .observability.completion_cost import completion_cost
from .prompt import get_formatted_prompt
from .types import (
    Choices,
    Delta,
    EmbeddingResponse,
    Message,
    ModelResponse,
    ModelResponseStream,
    StreamingChoices,
    TextCompletionResponse,
    Usage,
)

__version__ = "0.1.0"

#: LiteLLM's ``litellm.set_verbose`` (deprecated there for ``LITELLM_LOG``): read and set by handler
#: files; trioproxy's own verbosity is ``--log-level``, which this flag does not change
set_verbose = False

__all__ = [
    "AsyncHTTPHandler",
    "APIConnectionError",
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "CallTypes",
    "CallTypesLiteral",
    "Choices",
    "ContentPolicyViolationError",
    "ContextWindowExceededError",
    "CustomGuardrail",
    "CustomLogger",
    "Delta",
    "DualCache",
    "EmbeddingResponse",
    "GenerateKeyRequest",
    "GenericGuardrailAPIInputs",
    "GuardrailEventHooks",
    "GuardrailViolationError",
    "HTTPException",
    "InternalServerError",
    "LitellmUserRoles",
    "Message",
    "ModelResponse",
    "ModelResponseStream",
    "NotFoundError",
    "PermissionDeniedError",
    "PiiEntityType",
    "ProxyError",
    "ProxyException",
    "RateLimitError",
    "Request",
    "ServiceUnavailableError",
    "StreamingChoices",
    "TeamMetadataRequester",
    "TeamMetadataValidationPayload",
    "TeamMetadataValidationResult",
    "TextCompletionResponse",
    "Timeout",
    "UnprocessableEntityError",
    "UpdateKeyRequest",
    "Usage",
    "UserAPIKeyAuth",
    "completion_cost",
    "get_async_httpx_client",
    "get_formatted_prompt",
    "httpxSpecialProvider",
    "set_verbose",
    "should_proceed_based_on_metadata",
    "verbose_logger",
    "verbose_proxy_logger",
    "verbose_router_logger",
    "__version__",
]
