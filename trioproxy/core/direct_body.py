"""A streamed body's chunks written by the server's connection itself, past the ASGI send path.

Why: every ``http.response.body`` message of a stream went ASGI ``send`` → Hypercorn's
``HTTPStream.app_send`` → ``H11Protocol.stream_send`` → an ``h11.Data`` event through h11's state
machine → a ``RawData`` event → the connection's write: ~10 µs of the proxy's CPU per relayed delta
on the 2-core machine, for bytes that are always ``<size in hex>\\r\\n<data>\\r\\n`` once the
response head of an HTTP/1.1 chunked answer is out (bench/README.md, "Many concurrent streams";
measured figures in the README, "Benchmark").

The server's connection class (``cli/server_connection.py``) publishes, in :data:`DIRECT_BODY`, a
function that returns a chunk writer for the response being sent — only while that response is an
HTTP/1.1 chunked body in progress on a plain connection served by h11 (``None`` otherwise: HTTP/1.0,
HTTP/2, a ``Content-Length`` answer, another server). The writer frames the chunk exactly as h11
would and writes it the connection's way (the same bytes, in the same order, the same handling of a
slow client and of a graceful shutdown); the response's end still goes through ASGI, so Hypercorn
and h11 end the message (``0\\r\\n\\r\\n``) and recycle the connection as before. A connection that
broke or closed drops the chunk (its request is being cancelled: ``core/disconnect.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar

__all__ = ["DIRECT_BODY", "ChunkWriter"]

#: writes one non-empty chunk of the response body being sent (framed as HTTP/1.1 chunked)
ChunkWriter = Callable[[bytes], Awaitable[None]]

#: the current connection's "chunk writer for the response in progress, if it can have one"
DIRECT_BODY: ContextVar[Callable[[], ChunkWriter | None] | None] = ContextVar("trioproxy_direct_body", default=None)
