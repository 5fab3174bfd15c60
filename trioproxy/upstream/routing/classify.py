"""What kind of failure an upstream error is, decided once, for cooldowns, strategies and fallbacks.

========================  =====================================================================
kind                      an error is of this kind when (first row that applies wins)
========================  =====================================================================
``CONTEXT_WINDOW``        ``ContextWindowExceededError``, ``code: context_length_exceeded``, or a
                          400/413/422 whose message says the prompt is too long (vLLM, Ollama and
                          others answer so without a code): :data:`CONTEXT_WINDOW_MESSAGE`
``CONTENT_POLICY``        ``ContentPolicyViolationError``, ``code`` ``content_filter`` /
                          ``content_policy_violation``, or a 400 whose message names a content
                          (management / filtering) policy
``CONNECTION``            ``APIConnectionError`` (unreachable, reset, garbage before an answer)
``TIMEOUT``               ``Timeout``, or status 408
``RATE_LIMITED``          status 429
``AUTH``                  status 401 or 403: the deployment's credentials or permissions
``PAYMENT``               status 402: the deployment's account is out of credit
``NOT_FOUND``             status 404
``SERVER``                any other 5xx
``BAD_REQUEST``           any other 4xx: the request's own fault
``OTHER``                 anything else (not a :class:`~trioproxy.errors.ProxyError`)
========================  =====================================================================

The status read is the upstream's own (``upstream_status``) when the error carries one.
"""

from __future__ import annotations

import enum
import re

from ...errors import (
    APIConnectionError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    ProxyError,
    Timeout,
)

__all__ = ["CONTEXT_WINDOW_MESSAGE", "ErrorKind", "FallbackKind", "classify", "fallback_kind", "status_of"]


class ErrorKind(enum.Enum):
    CONTEXT_WINDOW = "context_window"
    CONTENT_POLICY = "content_policy"
    CONNECTION = "connection"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    PAYMENT = "payment"
    NOT_FOUND = "not_found"
    SERVER = "server"
    BAD_REQUEST = "bad_request"
    OTHER = "other"


class FallbackKind(enum.Enum):
    """Which fallback list a failure consults (``fallbacks.FallbackPlanner``)."""

    CONTEXT_WINDOW = "context_window_fallbacks"
    CONTENT_POLICY = "content_policy_fallbacks"
    GENERAL = "fallbacks"


#: messages of a too-long prompt from servers that send no ``code`` (LiteLLM matches the same way)
CONTEXT_WINDOW_MESSAGE = re.compile(
    r"context length|context window|maximum context|prompt is too long|input is too long"
    r"|too many tokens|exceeds the maximum number of tokens|reduce the length of the (?:messages|prompt)",
    re.IGNORECASE,
)
_CONTENT_POLICY_MESSAGE = re.compile(r"content (?:management |filtering )?policy|content[_ ]filter", re.IGNORECASE)
_CONTEXT_CODES = frozenset({"context_length_exceeded", "context_window_exceeded", "string_above_max_length"})
_POLICY_CODES = frozenset({"content_filter", "content_policy_violation"})


def status_of(error: BaseException) -> int | None:
    """The upstream's status when known, else the error's own."""
    upstream = getattr(error, "upstream_status", None)
    if isinstance(upstream, int):
        return upstream
    status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else None


def classify(error: BaseException) -> ErrorKind:
    if not isinstance(error, ProxyError):
        return ErrorKind.OTHER
    code = str(error.code or "")
    status = status_of(error) or 500
    message = error.message or ""
    if isinstance(error, ContextWindowExceededError) or code in _CONTEXT_CODES:
        return ErrorKind.CONTEXT_WINDOW
    if isinstance(error, ContentPolicyViolationError) or code in _POLICY_CODES:
        return ErrorKind.CONTENT_POLICY
    if isinstance(error, APIConnectionError):
        return ErrorKind.CONNECTION
    if isinstance(error, Timeout) or status == 408:
        return ErrorKind.TIMEOUT
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 402:
        return ErrorKind.PAYMENT
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status >= 500:
        return ErrorKind.SERVER
    if status in (400, 413, 422) and CONTEXT_WINDOW_MESSAGE.search(message):
        return ErrorKind.CONTEXT_WINDOW
    if status == 400 and _CONTENT_POLICY_MESSAGE.search(message):
        return ErrorKind.CONTENT_POLICY
    if 400 <= status < 500:
        return ErrorKind.BAD_REQUEST
    return ErrorKind.OTHER


def fallback_kind(kind: ErrorKind) -> FallbackKind:
    if kind is ErrorKind.CONTEXT_WINDOW:
        return FallbackKind.CONTEXT_WINDOW
    if kind is ErrorKind.CONTENT_POLICY:
        return FallbackKind.CONTENT_POLICY
    return FallbackKind.GENERAL
