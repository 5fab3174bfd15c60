"""The seam between the pipeline and the providers.

A provider does two things: send a request and return the whole answer, or open a stream and
return once the upstream's status line and headers are in (the body not yet read). That is all
the pipeline needs, and it lets the transport (httpx today, perhaps a leaner h11 client tomorrow)
and the fake provider be swapped without the pipeline noticing.

Contract for streams: :meth:`Provider.open_stream` returns an :class:`UpstreamStream` only for a 2xx
answer (an error status raises, with the body read and the connection released; a 3xx raises too:
redirects are not followed). The caller owns the returned stream and must ``aclose()`` it on every
path; closing before the end abandons the connection, so the provider stops generating.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..config import Deployment

__all__ = ["Provider", "UpstreamResponse", "UpstreamStream"]


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class UpstreamStream(Protocol):
    status: int
    headers: dict[str, str]
    #: Whether this upstream ends a complete stream with ``data: [DONE]``. When True (OpenAI and every
    #: OpenAI-compatible server, the built-in ``fake``), a body that ends without it (connection
    #: closed, or a clean end) is an interrupted answer: the client gets an
    #: ``upstream_stream_interrupted`` error event, not ``[DONE]``. An adapter for a provider with
    #: its own terminator (Anthropic's ``message_stop``, Gemini's last chunk) sets False and
    #: translates that terminator into ``data: [DONE]`` itself, or relies on the body's clean end.
    #: A stream object without the attribute counts as True.
    sends_done_marker: bool

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The raw body (SSE bytes), in whatever pieces the transport delivers."""
        ...

    async def aclose(self) -> None:
        """Release the connection; idempotent. Before the end of the body: abandon it."""
        ...


class Provider(Protocol):
    async def send(self, deployment: Deployment, endpoint: str, body: dict[str, Any]) -> UpstreamResponse:
        """POST ``endpoint`` and return a 2xx answer in full; raise a ProxyError otherwise."""
        ...

    async def open_stream(self, deployment: Deployment, endpoint: str, body: dict[str, Any]) -> UpstreamStream:
        """POST ``endpoint`` with ``stream: true``; return once status and headers are in."""
        ...
