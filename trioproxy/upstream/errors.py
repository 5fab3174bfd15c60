"""What every HTTP provider shares: turning upstream failures into proxy errors.

Both transports (``openai_compat`` over httpx, ``http11`` over bare Trio streams) map failures to
the same proxy errors with the same messages, so a client, a failure hook or the router cannot tell
which transport ran:

* an error status → :func:`upstream_error`: the upstream's status and the ``message`` of its JSON
  error (secrets scrubbed, at most :data:`MAX_ERROR_MESSAGE` characters), with ``upstream_status``
  set. A body that is not a JSON error (an HTML page, a plain-text traceback) is never relayed: the
  client gets a generic message with the status;
* could not connect, connection reset, EOF or garbage before a complete response →
  :func:`connection_error` (``APIConnectionError``, 502);
* a timeout → :func:`timeout_error` (``Timeout``, 504), raised ``from`` the transport's exception.
  It is retryable only while connecting (or waiting for a pooled connection): the request never
  reached the model; a read timeout may have cost tokens;
* a status that is neither an answer nor an error (a 3xx: redirects are not followed) →
  :func:`redirect_error` (502, not retried);
* a 2xx whose body is not an answer → :func:`check_answer_body`: an empty body is a 502
  (``BadUpstreamResponseError``, retried like a 5xx), and an OpenAI error envelope
  (``{"error": {...}}`` without ``choices``/``data``) is the error it names, with the status
  :func:`envelope_status` reads from its ``code``/``type`` (default 502). The same mapping serves an
  error envelope sent as a stream event (:func:`envelope_error`).


Each error records whether the router may retry it (``ProxyError.retryable``), here, where it is
made: a connection error and a 5xx (but 501 and 504) are; a read timeout, a 4xx and a redirect
are not.

Messages name the deployment by :attr:`~trioproxy.config.Deployment.public_label` (provider and
model), never by its ``api_base`` or host: clients have no business knowing where the proxy sends
them. Operators find the (masked) ``api_base`` in the request's log record.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import TYPE_CHECKING

import orjson

from ..errors import APIConnectionError, BadUpstreamResponseError, ProxyError, Timeout, for_status
from ..streaming import is_error_envelope

if TYPE_CHECKING:
    from ..config import Deployment
    from ..masking import SecretScrubber

__all__ = [
    "MAX_ERROR_BODY",
    "MAX_ERROR_MESSAGE",
    "check_answer_body",
    "connection_error",
    "envelope_error",
    "envelope_status",
    "failure_error",
    "redirect_error",
    "relayable_message",
    "status_is_retryable",
    "timeout_error",
    "upstream_error",
]

#: an upstream error body larger than this is cut: it only feeds an error message
MAX_ERROR_BODY = 64 * 1024
#: the most of the upstream's error message a client (and a log) gets
MAX_ERROR_MESSAGE = 1000
#: the most of an upstream's ``param`` or ``code`` kept (they are short identifiers)
_MAX_ERROR_FIELD = 200
#: text that is a stack trace or a web page, not a message meant for a client
_NOT_A_MESSAGE = re.compile(r"Traceback \(most recent call last\)|<!doctype|<html|<body|^\s*File \"", re.IGNORECASE | re.M)


def status_is_retryable(status: int) -> bool:
    """An upstream status worth another deployment: a 5xx, but not 501 (not implemented: the same
    everywhere) nor 504 (the upstream's own timeout: the model may have run)."""
    return status >= 500 and status not in (501, 504)


def timeout_error(deployment: Deployment, *, connecting: bool) -> Timeout:
    """A deadline passed: while connecting (or waiting for a pooled connection), or for an answer."""
    kind = "connecting to" if connecting else "waiting for"
    error = Timeout(f"Timed out {kind} the upstream {deployment.public_label} for model {deployment.model_name!r}")
    # a connect timeout never reached the model; a read timeout may have (and cost tokens)
    error.retryable = connecting
    return error


def connection_error(deployment: Deployment, exc: BaseException, detail: str | None = None) -> APIConnectionError:
    """The upstream could not be reached, or the connection broke before a complete answer."""
    suffix = f" ({detail})" if detail else ""
    error = APIConnectionError(
        f"Could not reach the upstream {deployment.public_label} for model {deployment.model_name!r}: "
        f"{type(exc).__name__}{suffix}"
    )
    error.retryable = True
    return error


def failure_error(deployment: Deployment, exc: BaseException) -> APIConnectionError:
    """Any other transport failure."""
    error = APIConnectionError(f"Upstream {deployment.public_label} failed: {type(exc).__name__}")
    error.retryable = True
    return error


def _bounded(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


def relayable_message(message: object) -> str:
    """An upstream's error message as a client may see it: at most :data:`MAX_ERROR_MESSAGE`
    characters, and ``""`` when it is not a message at all (a traceback, a web page). Not scrubbed:
    the caller scrubs the text it builds around it."""
    if not isinstance(message, str) or _NOT_A_MESSAGE.search(message):
        return ""
    return _bounded(message, MAX_ERROR_MESSAGE)


def _field(value: object, scrubber: SecretScrubber) -> str | None:
    """``param``/``code`` of the upstream's error: a short string, scrubbed, or nothing."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = _bounded(str(value), _MAX_ERROR_FIELD)
    return scrubber.scrub(text) if text else None


def _status_text(status: int) -> str:
    try:
        return f"HTTP {status} ({HTTPStatus(status).phrase})"
    except ValueError:
        return f"HTTP {status}"


def upstream_error(status: int, body: bytes, deployment: Deployment, scrubber: SecretScrubber) -> ProxyError:
    """The upstream's status with the upstream's message: scrubbed, bounded, and only from JSON."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None     # an HTML page, a plain-text traceback, a proxy's banner: never relayed
    return _error_from(status, parsed, deployment, scrubber)


def _error_from(status: int, parsed: object, deployment: Deployment, scrubber: SecretScrubber) -> ProxyError:
    """:func:`upstream_error` once the body is parsed (``None``: not JSON)."""
    message = ""
    code = None
    param = None
    err = parsed.get("error", parsed) if isinstance(parsed, dict) else None
    if isinstance(err, dict):
        raw = err.get("message")
        if not isinstance(raw, str):
            raw = err.get("detail") if isinstance(err.get("detail"), str) else ""
        message = raw
        code = _field(err.get("code"), scrubber)
        param = _field(err.get("param"), scrubber)
    elif isinstance(err, str):
        message = err
    message = relayable_message(message)
    if not message:
        message = f"the upstream answered {_status_text(status)} without an error message"
    message = scrubber.scrub(f"Upstream {deployment.public_label} error: {message}")
    error = for_status(status, message, param=param, code=code, model=deployment.model_name)
    error.upstream_status = status  # type: ignore[attr-defined]
    error.retryable = status_is_retryable(status)
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
    # the parsed envelope as it is: its message is bounded and filtered like any upstream message
    # (relayable_message), its code and param bounded (cutting the re-serialised JSON instead would
    # make a long message unparsable and lose the code with it)
    error = _error_from(envelope_status(body.get("error")), body, deployment, scrubber)
    code = body["error"].get("code") if isinstance(body.get("error"), dict) else None
    if code is None:
        error.code = None
    return error


def check_answer_body(body: bytes, deployment: Deployment, scrubber: SecretScrubber) -> None:
    """Raise when a 2xx body is not an answer: empty (502), or an OpenAI error envelope.

    Cheap for real answers: an envelope is only parsed when the bytes contain ``"error"``.
    """
    if not body or body.isspace():
        error = BadUpstreamResponseError(
            f"The upstream for model {deployment.model_name!r} answered with an empty body.",
            code="empty_upstream_response")
        error.retryable = True    # like a 5xx: another deployment may answer
        raise error
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
    error.upstream_status = status  # type: ignore[attr-defined]
    error.retryable = False   # the same api_base would redirect again
    return error
