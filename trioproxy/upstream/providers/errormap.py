"""Native error answers → the proxy's errors (status, OpenAI envelope type and code).

Each adapter extracts its provider's message and kind; these helpers pick the proxy error class
the way ``errors.for_status`` does for OpenAI-compatible upstreams, so a failure hook or the router
sees the same classes whatever the provider (``RateLimitError`` for a 429, retryable
``ServiceUnavailableError`` for an overloaded provider, ``ContentPolicyViolationError`` for a
content filter, ``ContextWindowExceededError`` for a prompt that is too long).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ...errors import (
    ContentPolicyViolationError,
    ContextWindowExceededError,
    ProxyError,
    RateLimitError,
    ServiceUnavailableError,
    for_status,
)

__all__ = ["error_for", "json_or_none", "openai_error", "text_message"]

_CONTEXT_WINDOW = re.compile(
    r"prompt is too long|context length|context window|maximum context|too many tokens|input is too long"
    r"|exceeds the maximum number of tokens|reduce the length", re.I)


def json_or_none(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


def text_message(body: bytes, status: int) -> str:
    text = body[:1000].decode("utf-8", "replace").strip()
    return text or f"upstream answered HTTP {status}"


def error_for(status: int, message: str, *, kind: str | None = None, param: str | None = None,
              rate_limited: bool = False, overloaded: bool = False, content_filter: bool = False) -> ProxyError:
    """The proxy error for a native failure. ``kind`` becomes the envelope's ``code``."""
    if content_filter:
        error: ProxyError = ContentPolicyViolationError(message, status_code=status if status < 500 else 400,
                                                        param=param, code=kind or "content_filter")
    elif rate_limited or status == 429:
        error = RateLimitError(message, status_code=429, param=param, code=kind or "rate_limit_exceeded")
    elif overloaded:
        error = ServiceUnavailableError(message, status_code=status if status >= 500 else 503, param=param,
                                        code=kind or "overloaded")
    elif status == 400 and _CONTEXT_WINDOW.search(message):
        error = ContextWindowExceededError(message, param=param, code="context_length_exceeded")
    else:
        error = for_status(status, message, param=param, code=kind)
    error.upstream_status = status  # type: ignore[attr-defined]
    return error


def openai_error(status: int, body: bytes) -> ProxyError:
    """An OpenAI-shaped error body (``{"error": {"message", "type", "code", "param"}}``)."""
    parsed = json_or_none(body)
    message, code, param = "", None, None
    err = parsed.get("error", parsed) if isinstance(parsed, dict) else None
    if isinstance(err, dict):
        message = str(err.get("message") or err.get("detail") or "")
        code = err.get("code") if err.get("code") is not None else err.get("type")
        param = err.get("param")
    elif isinstance(err, str):
        message = err
    if not message:
        message = text_message(body, status) if parsed is None else f"upstream answered HTTP {status}"
    code_text = str(code) if code is not None else None
    return error_for(status, message, kind=code_text, param=param if isinstance(param, str) else None,
                     content_filter=code_text in ("content_filter", "content_policy_violation"))
