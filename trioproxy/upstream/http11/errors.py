"""The HTTP/1.1 client's errors (the names are httpx's, so logs read the same whichever transport ran).

The provider (``provider.py``) maps each to a proxy error (``upstream/errors.py``), which records
whether the router may retry it.
"""

from __future__ import annotations

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "LocalProtocolError",
    "PoolTimeout",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "TransportError",
    "UnsupportedProtocol",
    "WriteError",
]


class TransportError(Exception):
    """Base of this client's errors; the provider maps each to a ProxyError."""


class ConnectError(TransportError):
    """Could not open the connection (refused, unreachable, DNS, TLS handshake)."""


class ConnectTimeout(TransportError):
    """Connecting (TLS handshake included) took longer than the connect timeout."""


class PoolTimeout(TransportError):
    """No connection slot became free in time (``max_connections`` in use)."""


class ReadTimeout(TransportError):
    """Nothing arrived for ``timeout`` seconds (or sending the request took that long)."""


class ReadError(TransportError):
    """The connection broke (reset, EOF) before the response was complete."""


class WriteError(TransportError):
    """The connection broke while the request was sent."""


class RemoteProtocolError(TransportError):
    """The upstream's bytes are not valid HTTP/1.1 (or exceed a limit, e.g. the head size)."""


class UnsupportedProtocol(TransportError):
    """The URL is not ``http://`` or ``https://`` with a host."""


class LocalProtocolError(TransportError):
    """The request cannot be sent as given (e.g. a line break in a header value)."""
