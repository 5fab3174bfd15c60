"""The built-in HTTP/1.1 client: the default transport of the ``openai`` provider.

``parser.py`` parses a response with no I/O (``on_done(reusable)`` at the end of a body);
``pool.py`` owns connections and reads responses off them; ``provider.py`` is the provider on top
(the interface of ``upstream/base.py``); ``errors.py`` names the transport errors. The names below
are the package's public ones (the native providers of ``upstream/providers/`` use the pool too);
the modules are private by convention.
"""

from .errors import (
    ConnectError,
    ConnectTimeout,
    LocalProtocolError,
    PoolTimeout,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    TransportError,
    UnsupportedProtocol,
    WriteError,
)
from .pool import Http11Pool
from .provider import Http11Provider, Http11Stream
from .response import Http11Response

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "Http11Pool",
    "Http11Provider",
    "Http11Response",
    "Http11Stream",
    "LocalProtocolError",
    "PoolTimeout",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "TransportError",
    "UnsupportedProtocol",
    "WriteError",
]
