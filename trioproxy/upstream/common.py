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
  ``PoolTimeout`` (see ``router.is_retryable``), i.e. when the request never reached the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from ..errors import APIConnectionError, ProxyError, Timeout, for_status

if TYPE_CHECKING:
    from ..config import Deployment
    from ..masking import SecretScrubber

__all__ = ["MAX_ERROR_BODY", "connection_error", "failure_error", "timeout_error", "upstream_error"]

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
