"""The provider for OpenAI-compatible upstreams over the built-in HTTP/1.1 pool (the default transport).

It implements the provider interface of ``upstream/base.py`` with the error semantics of the httpx
provider (``upstream/httpx_provider.py``), shared through ``upstream/errors.py``: a client, a
failure hook or the router cannot tell which transport ran.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from ..base import UpstreamResponse
from ..errors import (
    MAX_ERROR_BODY,
    check_answer_body,
    connection_error,
    failure_error,
    redirect_error,
    timeout_error,
    upstream_error,
)
from .errors import (
    ConnectError,
    ConnectTimeout,
    PoolTimeout,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    TransportError,
    WriteError,
)
from .pool import Http11Pool
from .response import Http11Response

if TYPE_CHECKING:
    from ...config import Deployment
    from ...errors import ProxyError
    from ...masking import SecretScrubber

__all__ = ["Http11Provider", "Http11Stream"]


def _map(exc: TransportError, deployment: Deployment) -> ProxyError:
    """This client's errors → the same proxy errors (and messages) as the httpx provider's."""
    if isinstance(exc, ConnectTimeout | PoolTimeout):
        return timeout_error(deployment, connecting=True)
    if isinstance(exc, ReadTimeout):
        return timeout_error(deployment, connecting=False)
    if isinstance(exc, RemoteProtocolError):
        return connection_error(deployment, exc, str(exc))
    if isinstance(exc, ConnectError | ReadError | WriteError):
        return connection_error(deployment, exc)
    return failure_error(deployment, exc)


class Http11Stream:
    """An open streamed answer (2xx). The caller must ``aclose()`` it on every path."""

    __slots__ = ("_deployment", "_response", "headers", "status")

    #: OpenAI-compatible servers end every stream with ``data: [DONE]`` (see ``base.UpstreamStream``)
    sends_done_marker = True

    def __init__(self, response: Http11Response, deployment: Deployment) -> None:
        self._response = response
        response.watched = True     # read delta by delta: timeouts through the pool's watchdog
        self._deployment = deployment
        self.status = response.status
        self.headers = response.headers

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        response = self._response
        try:
            while True:
                try:
                    piece = await response.read_some()
                except TransportError as exc:
                    raise _map(exc, self._deployment) from exc
                if piece is None:
                    return
                yield piece
        finally:
            # abandoned halfway (the generator closed early): the connection cannot be reused
            response.close()

    async def read_piece(self) -> bytes | None:
        """The next piece of the body, or None at its end: :meth:`aiter_bytes` without the async
        generator between the relay and the reads (one hop less per relayed delta)."""
        try:
            return await self._response.read_some()
        except TransportError as exc:
            raise _map(exc, self._deployment) from exc

    async def aclose(self) -> None:
        """Release the connection; idempotent. Before the end of the body: close it."""
        self._response.close()


class Http11Provider:
    """OpenAI-compatible upstreams over :class:`Http11Pool` (the same interface as OpenAICompatProvider)."""

    def __init__(self, pool: Http11Pool, scrubber: SecretScrubber) -> None:
        self._pool = pool
        self._scrubber = scrubber

    async def _open(self, deployment: Deployment, endpoint: str, body: dict[str, Any],
                    stream: bool) -> Http11Response:
        headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}
        if deployment.api_key:
            headers["authorization"] = f"Bearer {deployment.api_key}"
        if deployment.extra_headers:
            for name, value in deployment.extra_headers.items():
                headers[name.lower()] = str(value)
        timeout = deployment.stream_timeout if stream else deployment.timeout
        try:
            response = await self._pool.request("POST", deployment.url(endpoint), headers,
                                                orjson.dumps(body), read_timeout=timeout)
        except TransportError as exc:
            raise _map(exc, deployment) from exc
        if response.status >= 400:
            try:
                content = await response.aread(MAX_ERROR_BODY)
            except TransportError as exc:
                raise _map(exc, deployment) from exc
            finally:
                response.close()
            raise upstream_error(response.status, content[:MAX_ERROR_BODY], deployment, self._scrubber)
        if response.status >= 300:
            response.close()
            raise redirect_error(response.status, deployment)
        return response

    async def send(self, deployment: Deployment, endpoint: str, body: dict[str, Any]) -> UpstreamResponse:
        response = await self._open(deployment, endpoint, body, stream=False)
        try:
            content = await response.aread()
        except TransportError as exc:
            raise _map(exc, deployment) from exc
        check_answer_body(content, deployment, self._scrubber)
        return UpstreamResponse(response.status, response.headers, content)

    async def open_stream(self, deployment: Deployment, endpoint: str, body: dict[str, Any]) -> Http11Stream:
        return Http11Stream(await self._open(deployment, endpoint, body, stream=True), deployment)
