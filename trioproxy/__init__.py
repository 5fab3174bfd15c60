"""trioproxy: an OpenAI-compatible LLM proxy on Trio's structured concurrency.

This module is the handler author's API and nothing else: what a handler file imports. Handler
files written for the seeds (the LiteLLM proxy docs) port by changing their imports to these names.
"""

from .auth import UserAPIKeyAuth
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
    RateLimitError,
    ServiceUnavailableError,
    Timeout,
    UnprocessableEntityError,
)
from .hooks.base import CustomGuardrail, CustomLogger, GuardrailEventHooks
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

__all__ = [
    "APIConnectionError",
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "Choices",
    "ContentPolicyViolationError",
    "ContextWindowExceededError",
    "CustomGuardrail",
    "CustomLogger",
    "Delta",
    "DualCache",
    "EmbeddingResponse",
    "GuardrailEventHooks",
    "GuardrailViolationError",
    "HTTPException",
    "InternalServerError",
    "Message",
    "ModelResponse",
    "ModelResponseStream",
    "NotFoundError",
    "PermissionDeniedError",
    "ProxyError",
    "RateLimitError",
    "ServiceUnavailableError",
    "StreamingChoices",
    "TextCompletionResponse",
    "Timeout",
    "UnprocessableEntityError",
    "Usage",
    "UserAPIKeyAuth",
    "__version__",
    "get_formatted_prompt",
]
