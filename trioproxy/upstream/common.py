"""What every HTTP provider shares: turning upstream failures into proxy errors.

Both transports (``openai_compat`` over httpx, ``http11`` over bare Trio streams) map failures to
the same proxy errors with the same messages, so a client, a failure hook or the router cannot tell
which transport ran:

* an error status → :func:`upstream_error`: the upstream's status and message (secrets scrubbed),
  with ``upstream_status`` set;
* could not connect, connection reset, EOF or garbage before a complete response →
  :func:`connection_error` (``APIConnectionError``, 502);
* a timeout → :func:`timeout_error` (``Timeout``, 504). Raise it ``from`` the transport's exception:
  the router retries a timeout only when the cause's class is named ``ConnectTimeout`` or
  ``PoolTimeout`` (see ``router.is_retryable``), i.e. when the request never reached the model;
* a status that is neither an answer nor an error (a 3xx: redirects are not followed) →
  :func:`redirect_error` (502, not retried);
* a 2xx whose body is not an answer → :func:`check_answer_body`: an empty body is a 502
  (``BadUpstreamResponseError``, retried like a 5xx), and an OpenAI error envelope
  (``{"error": {...}}`` without ``choices``/``data``) is the error it names, with the status
  :func:`envelope_status` reads from its ``code``/``type`` (default 502). The same mapping serves an
  error envelope sent as a stream event (:func:`envelope_error`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from ..errors import APIConnectionError, BadUpstreamResponseError, ProxyError, Timeout, for_status
from ..streaming import is_error_envelope

if TYPE_CHECKING:
    from ..config import Deployment
    from ..masking import SecretScrubber

__all__ = [
    "MAX_ERROR_BODY",
    "check_answer_body",
    "connection_error",
    "envelope_error",
    "envelope_status",
    "failure_error",
    "redirect_error",
    "timeout_error",
    "upstream_error",
]

#: an upstream error body larger than this is cut: it only feeds an error message
MAX_ERROR_BODY = 64 * 1024


def timeout_error(deployment: Deployment, *, connecting: bool) -> Timeout:
    """A deadline passed: while connecting (or waiting for a pooled connection), or for an answer."""
    kind = "connecting to" if connecting else "waiting for"
    return Timeout(f"Timed out {kind} the upstream {deployment.label} for model {deployment.model_name!r}")


def connection_error(deployment: Deployment, exc: BaseException, detail: str | None = None) -> APIConnectionError:
    """The upstream could not be reached, or the connection broke before a complete answer."""
    suffix = f" ({detail})" if detail else ""
    return APIConnectionError(
        f"Could not reach the upstream {deployment.label} for model {deployment.model_name!r}: "
        f"{type(exc).__name__}{suffix}"
    )


def failure_error(deployment: Deployment, exc: BaseException) -> APIConnectionError:
    """Any other transport failure."""
    return APIConnectionError(f"Upstream {deployment.label} failed: {type(exc).__name__}")


def upstream_error(status: int, body: bytes, deployment: Deployment, scrubber: SecretScrubber) -> ProxyError:
    """The upstream's status with the upstream's message (secrets scrubbed)."""
    message = ""
    code = None
    param = None
    try:
        parsed = orjson.loads(body)
        err = parsed.get("error", parsed) if isinstance(parsed, dict) else None
        if isinstance(err, dict):
            message = str(err.get("message") or "")
            code = err.get("code")
            param = err.get("param")
        elif isinstance(err, str):
            message = err
    except orjson.JSONDecodeError:
        message = body[:1000].decode("utf-8", "replace").strip()
    if not message:
        message = f"upstream answered HTTP {status}"
    message = scrubber.scrub(f"Upstream {deployment.label} error: {message}")
    error = for_status(status, message, param=param if isinstance(param, str) else None,
                       code=str(code) if code is not None else None, model=deployment.model_name)
    error.upstream_status = status  # type: ignore[attr-defined]
    return error


#: what an error envelope's ``code`` or ``type`` (lower-cased) says about the HTTP status. OpenAI's
#: codes and types, Anthropic's types, and Google's ``status`` names (``RESOURCE_EXHAUSTED``…)
_ENVELOPE_STATUS = {
    "invalid_request_error": 400, "context_length_exceeded": 400, "invalid_argument": 400,
    "failed_precondition": 400,
    "authentication_error": 401, "invalid_api_key": 401, "unauthenticated": 401,
    "permission_error": 403, "permission_denied": 403, "insufficient_permissions": 403,
    "not_found_error": 404, "model_not_found": 404, "not_found": 404,
    "request_too_large": 413,
    "rate_limit_exceeded": 429, "rate_limit_error": 429, "insufficient_quota": 429,
    "resource_exhausted": 429,
    "server_error": 500, "internal_server_error": 500, "api_error": 500, "internal": 500,
    "service_unavailable": 503, "overloaded_error": 503, "unavailable": 503,
    "timeout": 504, "deadline_exceeded": 504,
}


def envelope_status(error: object, default: int = 502) -> int:
    """The HTTP status an error envelope's ``error`` object names, else ``default``.

    A numeric ``code`` (``429``, ``"429"``) in 400–599 wins; then ``code``, ``type`` and ``status``
    as names (``rate_limit_exceeded`` → 429, ``invalid_request_error`` → 400, …).
    """
    if not isinstance(error, dict):
        return default
    code = error.get("code")
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        return code
    if isinstance(code, str) and code.isdigit() and 400 <= int(code) <= 599:
        return int(code)
    for key in ("code", "type", "status"):
        name = error.get(key)
        if isinstance(name, str):
            status = _ENVELOPE_STATUS.get(name.lower())
            if status is not None:
                return status
    return default


def envelope_error(body: dict, deployment: Deployment, scrubber: SecretScrubber) -> ProxyError:
    """An error envelope that arrived with a 2xx (as the body, or as a stream event) → its error.

    Its ``code`` is the envelope's (none: the status), never a class default such as
    ``upstream_unreachable``: the upstream was reached, it said this.
    """
    error = upstream_error(envelope_status(body.get("error")), orjson.dumps(body)[:MAX_ERROR_BODY],
                           deployment, scrubber)
    code = body["error"].get("code") if isinstance(body.get("error"), dict) else None
    if code is None:
        error.code = None
    return error


def check_answer_body(body: bytes, deployment: Deployment, scrubber: SecretScrubber) -> None:
    """Raise when a 2xx body is not an answer: empty (502), or an OpenAI error envelope.

    Cheap for real answers: an envelope is only parsed when the bytes contain ``"error"``.
    """
    if not body or body.isspace():
        raise BadUpstreamResponseError(
            f"The upstream for model {deployment.model_name!r} answered with an empty body.",
            code="empty_upstream_response")
    if b'"error"' not in body:
        return
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return      # not JSON: the caller reports that
    if isinstance(parsed, dict) and "error" in parsed and is_error_envelope(parsed):
        raise envelope_error(parsed, deployment, scrubber)


def redirect_error(status: int, deployment: Deployment) -> ProxyError:
    """A 3xx: the proxy does not follow redirects (a moved ``api_base`` is a configuration error)."""
    error = BadUpstreamResponseError(
        f"The upstream for model {deployment.model_name!r} answered HTTP {status} (a redirect); the proxy "
        "does not follow redirects: check the deployment's api_base.", code="upstream_redirect")
    error.upstream_status = status  # type: ignore[attr-defined]  # 3xx: not retried (router.is_retryable)
    return error
