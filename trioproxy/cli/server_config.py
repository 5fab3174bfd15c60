"""Hypercorn's config as trioproxy serves with it, and the one response written past Hypercorn.

Split from :mod:`trioproxy.cli.server_connection` (which uses both) to keep that module under the
450-line rule; ``server_connection`` re-exports them.
"""

from __future__ import annotations

import time

import orjson
from hypercorn.config import Config

from ..config import GeneralSettings
from ..errors import RequestTimeoutError, error_body

__all__ = ["ProxyHypercornConfig", "timeout_response"]


class ProxyHypercornConfig(Config):
    """Hypercorn's config plus the one setting it lacks, and its per-response headers remembered."""

    request_header_timeout: float = GeneralSettings().request_header_timeout
    #: (second, protocol) -> the headers Hypercorn adds to every response in that second
    _response_headers_of: tuple[int, str, list[tuple[bytes, bytes]]] | None = None

    def response_headers(self, protocol: str) -> list[tuple[bytes, bytes]]:
        """Hypercorn's ``date``/``server``/``alt-svc`` headers, rendered once per second and protocol.

        Hypercorn formats the ``date`` header (``wsgiref``'s ``format_date_time``, second
        resolution) for every response: ~0.5 % of the proxy's CPU per request. The same value
        within the same second; a fresh list each call, as Hypercorn's callers may extend it."""
        second = int(time.time())
        known = self._response_headers_of
        if known is None or known[0] != second or known[1] != protocol:
            known = self._response_headers_of = (second, protocol, super().response_headers(protocol))
        return list(known[2])


def timeout_response(message: str) -> bytes:
    """A complete ``408`` HTTP/1.1 response in the OpenAI envelope, closing the connection."""
    body = orjson.dumps(error_body(RequestTimeoutError(message)))
    head = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
    return head + body
