"""One error hierarchy, mapped in one place to the OpenAI error envelope.

Every failure a client can see is a :class:`ProxyError` by the time it leaves the pipeline; the
single function :func:`to_envelope` turns it into ``(status, body)``. Anything else that reaches that
function (a bug, a crashing handler that slipped through) becomes a 500 with a generic message, never
a traceback.

Hierarchy (status in brackets)::

    ProxyError [500]
    ├── BadRequestError [400]                 invalid_request_error
    │   ├── ContextWindowExceededError [400]  code context_length_exceeded
    │   ├── ContentPolicyViolationError [400]
    │   ├── GuardrailViolationError [400]     type guardrail_violation
    │   └── RejectedByHookError [400]         a pre-call hook's string on a non-chat endpoint
    ├── AuthenticationError [401]
    ├── PermissionDeniedError [403]
    ├── NotFoundError [404]
    ├── RequestTimeoutError [408]             headers or body not received within their deadline
    ├── RequestTooLargeError [413]
    ├── RequestHeadersTooLargeError [431]     header block over its size or count limit
    ├── UnprocessableEntityError [422]
    ├── RateLimitError [429]
    ├── ClientDisconnectedError [499]         never sent: the client is gone; for hooks and logs
    ├── InternalServerError [500]
    │   └── HookCrashedError [500]            names the handler and the phase
    │       └── HookTimeoutError [500]        a hook exceeded hook_timeout_seconds
    ├── ResponseTooLargeError [502]           the upstream's answer exceeds max_response_size_mb
    ├── APIConnectionError [502]              upstream unreachable / connection reset
    ├── BadUpstreamResponseError [502]        type server_error: an empty 200, a redirect
    │   └── UpstreamStreamInterruptedError    a stream that ended without its end marker
    ├── ServiceUnavailableError [503]
    │   ├── ProxyOverloadedError [503]        over max_in_flight_requests (with Retry-After)
    │   └── ShuttingDownError [503]           type server_error, code shutdown: a stream cut at SIGTERM
    ├── Timeout [504]                         upstream (or hook) deadline passed
    │   └── StreamDurationExceededError [504] a stream ran longer than max_stream_duration
    ├── ProxyException [its code]             LiteLLM's: message, type, param and code given directly
    └── APIError [any]                        an upstream error status relayed as is

The OpenAI-style class names are the ones the seeds' handler files use (``litellm.RateLimitError``
and friends), so a failure hook ported from the seeds can ``isinstance``-check them unchanged.
Their constructors accept the seeds' keyword arguments (``model``, ``llm_provider``, …).

``HTTPException`` mirrors FastAPI's: handlers raise or return it to choose the status and detail
themselves. Any object with ``status_code`` and ``detail`` attributes is treated the same way.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "ConfigError",
    "APIConnectionError",
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "BadUpstreamResponseError",
    "ClientDisconnectedError",
    "ContentPolicyViolationError",
    "ContextWindowExceededError",
    "GuardrailViolationError",
    "HTTPException",
    "HookCrashedError",
    "HookTimeoutError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProxyError",
    "ProxyException",
    "RateLimitError",
    "RejectedByHookError",
    "ProxyOverloadedError",
    "RequestHeadersTooLargeError",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "ResponseTooLargeError",
    "ServiceUnavailableError",
    "ShuttingDownError",
    "StreamDurationExceededError",
    "Timeout",
    "UnprocessableEntityError",
    "UpstreamStreamInterruptedError",
    "error_body",
    "to_envelope",
    "to_proxy_error",
]


class ConfigError(Exception):
    """All problems found in one config (or a handler it names), each ``file: key.path: message``.

    Not a :class:`ProxyError`: it stops startup, it is never an answer. Here, in the leaf module,
    so that what the config loads (secret managers) can raise it without importing the config.
    """

    def __init__(self, problems: list[str], partial: Any = None) -> None:
        self.problems = problems
        #: what could be built from the valid parts (the config, or the handlers), so that a later
        #: stage can still report its own problems in the same run; None when nothing could
        self.partial = partial
        super().__init__("\n".join(problems))


class ProxyError(Exception):
    """Base of every error the proxy answers with.

    ``message`` is what the client reads; ``type``/``code``/``param`` fill the envelope.
    ``retryable`` is recorded where an upstream error is made (``upstream/errors.py``): whether
    the request may not have reached the model, so the router may try another deployment
    (``None``: not said; the router decides by class and status, ``upstream/router.py``).
    """

    status_code: int = 500
    error_type: str = "internal_server_error"
    default_code: str | None = None
    retryable: bool | None = None

    def __init__(
        self,
        message: str = "",
        *args: Any,
        param: str | None = None,
        code: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
        model: str | None = None,
        llm_provider: str | None = None,
        **_compat: Any,
    ) -> None:
        # ``*args`` and ``**_compat`` swallow the seeds' positional/keyword extras
        # (``litellm.RateLimitError(message, llm_provider, model, response=...)``).
        if args and llm_provider is None and isinstance(args[0], str):
            llm_provider = args[0]
        if len(args) > 1 and model is None and isinstance(args[1], str):
            model = args[1]
        if not isinstance(message, str):  # handler files pass numbers or None too: the envelope wants text
            message = "" if message is None else str(message)
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code
        if status_code is not None:
            self.status_code = status_code
        self.headers = dict(headers or {})
        self.model = model
        self.llm_provider = llm_provider

    def __str__(self) -> str:
        return self.message


class BadRequestError(ProxyError):
    status_code = 400
    error_type = "invalid_request_error"


class ContextWindowExceededError(BadRequestError):
    default_code = "context_length_exceeded"


class ContentPolicyViolationError(BadRequestError):
    default_code = "content_policy_violation"


class GuardrailViolationError(BadRequestError):
    """A guardrail said no. ``guardrail`` names it; the message says so too."""

    error_type = "guardrail_violation"
    default_code = "guardrail_violation"

    def __init__(self, message: str = "", *args: Any, guardrail: str | None = None, **kw: Any):
        super().__init__(message, *args, **kw)
        self.guardrail = guardrail


class RejectedByHookError(BadRequestError):
    """A pre-call hook returned a string on an endpoint that cannot carry it as an answer."""

    default_code = "rejected_by_hook"


class AuthenticationError(ProxyError):
    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(ProxyError):
    status_code = 403
    error_type = "permission_denied"


class NotFoundError(ProxyError):
    status_code = 404
    error_type = "invalid_request_error"
    default_code = "model_not_found"


class RequestTimeoutError(ProxyError):
    """The client did not send its request head or body within ``request_header_timeout`` /
    ``request_body_timeout``. Answered with ``Connection: close``: the rest of the request is not read."""

    status_code = 408
    error_type = "invalid_request_error"
    default_code = "request_timeout"


class RequestTooLargeError(ProxyError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class RequestHeadersTooLargeError(ProxyError):
    """The header block is over ``max_request_header_size_kb`` or has more than ``max_request_headers`` fields."""

    status_code = 431
    error_type = "invalid_request_error"
    default_code = "request_headers_too_large"


class UnprocessableEntityError(ProxyError):
    status_code = 422
    error_type = "invalid_request_error"


class RateLimitError(ProxyError):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class ClientDisconnectedError(ProxyError):
    """The client hung up. Given to failure hooks and logging; never sent (nobody is listening)."""

    status_code = 499
    error_type = "client_disconnected"
    default_code = "client_disconnected"


class InternalServerError(ProxyError):
    status_code = 500
    error_type = "internal_server_error"


class HookCrashedError(InternalServerError):
    """A handler raised something that is not an error meant for the client.

    The message names the handler and the phase; the original exception is ``__cause__`` and is
    logged server-side, never sent.
    """

    default_code = "hook_error"

    def __init__(self, handler: str, phase: str, original: BaseException):
        super().__init__(
            f"Handler {handler!r} failed in {phase}: {type(original).__name__}",
        )
        self.handler = handler
        self.phase = phase
        self.original = original


class HookTimeoutError(HookCrashedError):
    """A handler did not finish within ``general_settings.hook_timeout_seconds``."""

    default_code = "hook_timeout"

    def __init__(self, handler: str, phase: str, seconds: float):
        super().__init__(handler, phase, TimeoutError())
        self.message = f"Handler {handler!r} did not finish {phase} within {seconds:g} s"
        self.args = (self.message,)


class ResponseTooLargeError(ProxyError):
    """The upstream's answer is larger than ``general_settings.max_response_size_mb``."""

    status_code = 502
    error_type = "response_too_large"
    default_code = "response_too_large"


class APIConnectionError(ProxyError):
    status_code = 502
    error_type = "api_connection_error"
    default_code = "upstream_unreachable"


class ServiceUnavailableError(ProxyError):
    status_code = 503
    error_type = "service_unavailable"
    default_code = "service_unavailable"


class ProxyOverloadedError(ServiceUnavailableError):
    """More than ``general_settings.max_in_flight_requests`` requests are in flight: refused at
    once, before the body is read, with ``Retry-After`` (the OpenAI SDKs honour it when retrying)."""

    default_code = "proxy_overloaded"


class Timeout(ProxyError):
    status_code = 504
    error_type = "timeout"
    default_code = "timeout"


class APIError(ProxyError):
    """An upstream error status relayed with the upstream's own message."""

    error_type = "api_error"


class ProxyException(ProxyError):
    """LiteLLM's ``ProxyException(message, type, param, code)``: the envelope's fields given directly;
    ``code`` is the HTTP status (``"401"``, ``403``), as in LiteLLM."""

    def __init__(self, message: str = "", type: str = "internal_server_error", param: str | None = None,
                 code: int | str | None = 500, headers: dict[str, str] | None = None, **kw: Any) -> None:
        status = int(code) if str(code).isdigit() else 500
        super().__init__(message, param=param, code=str(code) if code is not None else None, status_code=status,
                         headers=headers, **kw)
        self.type = self.error_type = type


class BadUpstreamResponseError(ProxyError):
    """The upstream answered, but not with an answer: an empty 200, a redirect.

    ``server_error`` is OpenAI's own type for its 5xx answers and mid-stream failures: clients and
    SDKs treat it as transient, which it is here (another attempt, or another deployment, may work).
    """

    status_code = 502
    error_type = "server_error"
    default_code = "bad_upstream_response"


class UpstreamStreamInterruptedError(BadUpstreamResponseError):
    """An upstream stream ended (connection closed, or a clean end) without its end marker.

    The answer the client holds is incomplete: the stream ends with this error event rather than
    ``[DONE]``, and the request is logged as a failure. Retrying the request is the remedy.
    """

    default_code = "upstream_stream_interrupted"


class ShuttingDownError(ServiceUnavailableError):
    """The proxy is stopping and its graceful-shutdown deadline is near: open streams end with this.

    Retryable (``server_error``): another instance, or this one after its restart, will answer.
    """

    error_type = "server_error"
    default_code = "shutdown"


class StreamDurationExceededError(Timeout):
    """A stream ran longer than its deployment's ``max_stream_duration``."""

    default_code = "stream_duration_exceeded"


class HTTPException(Exception):
    """FastAPI's ``HTTPException``, for handler files ported from the seeds."""

    def __init__(self, status_code: int, detail: Any = None, headers: dict[str, str] | None = None):
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers

    def __repr__(self) -> str:
        return f"HTTPException(status_code={self.status_code!r}, detail={self.detail!r})"

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"


_STATUS_TYPES = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: Timeout,
    413: RequestTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    500: InternalServerError,
    502: APIConnectionError,
    503: ServiceUnavailableError,
    504: Timeout,
}


#: upstream error codes that name a more specific class than their status does
_CODE_TYPES: dict[str, type[ProxyError]] = {
    "context_length_exceeded": ContextWindowExceededError,
    "content_policy_violation": ContentPolicyViolationError,
    "content_filter": ContentPolicyViolationError,
}


def is_http_exception(exc: object) -> bool:
    """FastAPI's, Starlette's, ours, or anything shaped like them."""
    return (
        isinstance(exc, BaseException)
        and not isinstance(exc, ProxyError)
        and isinstance(getattr(exc, "status_code", None), int)
        and hasattr(exc, "detail")
    )


def _detail_message(detail: Any) -> str:
    if detail is None:
        return ""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict):
        for key in ("error", "message", "detail"):
            value = detail.get(key)
            if isinstance(value, str):
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return value["message"]
    try:
        return orjson.dumps(detail, default=str).decode()
    except TypeError:
        return str(detail)


def from_http_exception(exc: BaseException) -> ProxyError:
    """``HTTPException(status, detail)`` → the matching ProxyError, keeping status and detail."""
    status = int(exc.status_code)  # type: ignore[attr-defined]
    cls = _STATUS_TYPES.get(status, APIError)
    err = cls(_detail_message(exc.detail), status_code=status)  # type: ignore[attr-defined]
    err.headers = dict(getattr(exc, "headers", None) or {})
    err.__cause__ = exc
    return err


def for_status(status: int, message: str, **kw: Any) -> ProxyError:
    """The most specific ProxyError for an HTTP status (used for upstream errors)."""
    cls = _CODE_TYPES.get(kw.get("code") or "") or _STATUS_TYPES.get(status, APIError)
    return cls(message, status_code=status, **kw)


def to_proxy_error(exc: BaseException, *, handler: str | None = None, phase: str | None = None) -> ProxyError:
    """The one mapping point: whatever was raised → the ProxyError the client will see.

    A plain exception from a named handler becomes ``HookCrashedError`` naming it; from elsewhere, a
    generic 500 (its text stays in the server log, not in the response).
    """
    if isinstance(exc, ProxyError):
        return exc
    if is_http_exception(exc):
        return from_http_exception(exc)
    if handler is not None:
        err: ProxyError = HookCrashedError(handler, phase or "a hook", exc)
    else:
        err = InternalServerError("Internal error in the proxy; see the server log.")
    err.__cause__ = exc
    return err


def error_body(err: ProxyError) -> dict[str, Any]:
    """The OpenAI envelope. ``type`` and ``code`` are always real strings, never ``"None"``."""
    # handler files pass numbers too (``code=400``, ``param=0``): the envelope carries strings only
    code = err.code if err.code not in (None, "", "None") else err.status_code
    param = err.param if err.param in (None, "") or isinstance(err.param, str) else str(err.param)
    return {
        "error": {
            "message": err.message if isinstance(err.message, str) else str(err.message),
            "type": err.error_type or "api_error",
            "param": param or None,
            "code": str(code),
        }
    }


def to_envelope(exc: BaseException) -> tuple[int, dict[str, Any]]:
    err = to_proxy_error(exc)
    return err.status_code, error_body(err)
