"""Error envelopes as HTTP responses, for the Quart routes and for the ASGI fast path.

Every envelope is the OpenAI one (``errors.error_body``). On the Quart routes every envelope made
from a :class:`~trioproxy.errors.ProxyError` passes the secret scrubber (:func:`error_response`);
the fast path's refusals (:func:`send_refusal`) carry only texts the proxy wrote itself.
"""

from __future__ import annotations

from typing import Any

import orjson
import trio
from quart import Response

from ..errors import InternalServerError, ProxyError, error_body, to_proxy_error
from ..masking import SecretScrubber

__all__ = ["error_response", "json_response", "send_internal_error", "send_refusal"]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, headers=headers, content_type="application/json")


def error_response(exc: BaseException, scrubber: SecretScrubber) -> Response:
    err = to_proxy_error(exc)
    scrubber.scrub_error(err)     # every envelope, on every route, passes the scrubber
    return json_response(err.status_code, error_body(err), err.headers)


async def send_refusal(send: Any, err: ProxyError) -> None:
    """Answer before the body is read: the OpenAI envelope, and ``Connection: close``."""
    payload = orjson.dumps(error_body(err))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
               (b"connection", b"close")]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in err.headers.items()]
    await send({"type": "http.response.start", "status": err.status_code, "headers": headers})
    with trio.CancelScope(shield=True):   # the last body message: see the comment in asgi.ProxyASGI._serve
        await send({"type": "http.response.body", "body": payload, "more_body": False})


async def send_internal_error(send: Any) -> None:
    """A 500 before the status line went out (a bug in the proxy, logged by the caller)."""
    err = InternalServerError("Internal error in the proxy; see the server log.")
    payload = orjson.dumps(error_body(err))
    await send({"type": "http.response.start", "status": 500,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload, "more_body": False})
