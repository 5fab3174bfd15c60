"""Any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp, Groq, …) over one pooled httpx client.

One ``httpx.AsyncClient`` per process, opened and closed with the app's serving lifetime (see
``app.py``); its pool limits are raised from httpx's defaults (100 connections, 20 kept alive) to
what a proxy under load needs. Transport errors are mapped to proxy errors in one place,
:func:`_map_transport_errors`, chained with ``from``: connection refused/reset → 502, timeouts → 504.
Upstream error statuses are relayed with the upstream's own message, known secrets scrubbed. The
messages and the mapping of error bodies are shared with the built-in client (``common.py``).

Since the built-in HTTP/1.1 client (``http11.py``) became the default transport, this provider is
the fallback, selected with ``general_settings.http_client: httpx``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from ..config import HttpPoolSettings
from ..masking import SecretScrubber
from .base import UpstreamResponse
from .errors import MAX_ERROR_BODY as _MAX_ERROR_BODY
from .errors import (
    check_answer_body,
    connection_error,
    failure_error,
    redirect_error,
    timeout_error,
)
from .errors import upstream_error as _upstream_error

if TYPE_CHECKING:
    from ..config import Deployment

__all__ = ["OpenAICompatProvider", "make_http_client"]


def make_http_client(pool: HttpPoolSettings | None = None) -> httpx.AsyncClient:
    """The process's pooled httpx client (``general_settings.http_pool``; defaults: the config's)."""
    pool = pool or HttpPoolSettings()
    limits = httpx.Limits(
        max_connections=pool.max_connections,
        max_keepalive_connections=pool.max_keepalive_connections,
        keepalive_expiry=pool.keepalive_expiry,
    )
    # per-request timeouts are set on each request from the deployment; this is the fallback
    timeout = httpx.Timeout(600.0, connect=pool.connect_timeout)
    return httpx.AsyncClient(limits=limits, timeout=timeout, follow_redirects=False, trust_env=False)


def _forget_request(exc: httpx.HTTPError) -> None:
    """Drop the ``httpx.Request`` an httpx error carries: its URL (with an ``api_base``'s query, e.g.
    ``?key=``) and its headers (the provider's ``Authorization``) are objects, not text, so scrubbing
    the error's strings cannot clean them, and the error stays reachable as the ``__cause__`` of the
    error that failure hooks and logging callbacks receive. Without it ``exc.request`` raises, as
    httpx documents for an error that has no request."""
    if isinstance(exc, httpx.RequestError):
        try:
            exc._request = None
        except AttributeError:  # pragma: no cover - another httpx layout
            pass


@contextmanager
def _map_transport_errors(deployment: Deployment) -> Iterator[None]:
    try:
        yield
    except httpx.HTTPError as exc:
        _forget_request(exc)
        if isinstance(exc, httpx.TimeoutException):
            connecting = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            raise timeout_error(deployment, connecting=connecting) from exc
        if isinstance(exc, httpx.ConnectError | httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError
                      | httpx.CloseError):
            raise connection_error(deployment, exc) from exc
        raise failure_error(deployment, exc) from exc


class _HttpxStream:
    """An open streamed response; closing it returns (or abandons) the pooled connection."""

    #: OpenAI-compatible servers end every stream with ``data: [DONE]`` (see ``base.UpstreamStream``)
    sends_done_marker = True

    def __init__(self, response: httpx.Response, deployment: Deployment) -> None:
        self._response = response
        self._deployment = deployment
        self.status = response.status_code
        self.headers = dict(response.headers)
        self._closed = False

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        with _map_transport_errors(self._deployment):
            async for piece in self._response.aiter_bytes():
                yield piece

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._response.aclose()


class OpenAICompatProvider:
    def __init__(self, client: httpx.AsyncClient, scrubber: SecretScrubber) -> None:
        self._client = client
        self._scrubber = scrubber

    def _request(self, deployment: Deployment, endpoint: str, body: dict[str, Any], stream: bool) -> httpx.Request:
        headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}
        if deployment.api_key:
            headers["authorization"] = f"Bearer {deployment.api_key}"
        headers.update(deployment.extra_headers)
        read = deployment.stream_timeout if stream else deployment.timeout
        return self._client.build_request(
            "POST",
            deployment.url(endpoint),
            content=orjson.dumps(body),
            headers=headers,
            timeout=httpx.Timeout(read, connect=min(read, 10.0)),
        )

    async def send(self, deployment: Deployment, endpoint: str, body: dict[str, Any]) -> UpstreamResponse:
        request = self._request(deployment, endpoint, body, stream=False)
        with _map_transport_errors(deployment):
            response = await self._client.send(request)
        if response.status_code >= 400:
            raise _upstream_error(response.status_code, response.content[:_MAX_ERROR_BODY], deployment, self._scrubber)
        if response.status_code >= 300:
            raise redirect_error(response.status_code, deployment)
        check_answer_body(response.content, deployment, self._scrubber)
        return UpstreamResponse(response.status_code, dict(response.headers), response.content)

    async def open_stream(self, deployment: Deployment, endpoint: str, body: dict[str, Any]) -> _HttpxStream:
        request = self._request(deployment, endpoint, body, stream=True)
        with _map_transport_errors(deployment):
            response = await self._client.send(request, stream=True)
        if response.status_code >= 400:
            try:
                with _map_transport_errors(deployment):
                    content = b""
                    async for piece in response.aiter_bytes():
                        content += piece
                        if len(content) > _MAX_ERROR_BODY:
                            break
            finally:
                await response.aclose()
            raise _upstream_error(response.status_code, content, deployment, self._scrubber)
        if response.status_code >= 300:
            await response.aclose()
            raise redirect_error(response.status_code, deployment)
        return _HttpxStream(response, deployment)
