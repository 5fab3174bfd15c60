"""A response read off a pooled connection: the body's bytes through the parser, the connection back at the end.

:class:`Http11Response` is what :meth:`~.pool.Http11Pool.request` returns once the head is in. It
reads from its connection and feeds :class:`~.parser.BodyParser`; the parser's
``on_done(reusable)`` returns the connection to the pool (or closes it). Anything that stops the
reading early (an error, a timeout, ``trio.Cancelled``, :meth:`Http11Response.close`) closes the
socket at once: nothing half-read is ever reused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import trio

from .errors import ReadError
from .parser import BodyParser
from .watchdog import WATCHED_MIN_TIMEOUT

if TYPE_CHECKING:
    from .pool import Http11Pool, _Connection

__all__ = ["Http11Response"]


class Http11Response:
    """A response whose head is in; the body is read with :meth:`read_some` / :meth:`aiter_bytes`.

    The connection goes back to the pool as soon as the body was read to its end (if the parser
    says it is reusable). :meth:`close` before that closes the socket. Any error or cancellation
    while reading closes it too.
    """

    __slots__ = ("_body", "_conn", "_pool", "_timeout", "headers", "status", "watched")

    def __init__(self, pool: Http11Pool, conn: _Connection, method: str, status: int,
                 headers: dict[str, str], keep_alive: bool, buf: bytes, timeout: float) -> None:
        self._pool = pool
        self._conn: _Connection | None = conn
        self.status = status
        self.headers = headers
        self._timeout = timeout
        #: reads keep their timeout through the pool's watchdog, not a cancel scope each (a streamed
        #: body read delta by delta: ``provider.Http11Stream``; ``pool._Connection.receive_watched``)
        self.watched = False
        # may complete at once (no body): _finished runs from here
        self._body = BodyParser(method, status, headers, keep_alive, buf, self._finished)

    @property
    def done(self) -> bool:
        """The body was read to its end, or the response was closed."""
        return self._body.done

    async def read_some(self) -> bytes | None:
        """The next piece of the decoded body (never empty), or None at its end."""
        body = self._body
        if body.done:
            if body.aborted:
                raise ReadError("the response was closed before its end")
            return None
        try:
            while True:
                piece = body.decode()
                if body.done:
                    return piece or None
                if piece:
                    return piece
                conn = self._conn
                assert conn is not None
                if self.watched and conn.plain and self._timeout >= WATCHED_MIN_TIMEOUT:
                    received = await conn.receive_watched(self._timeout, self._pool.read_watchdog)
                else:
                    received = await conn.receive(self._timeout)
                if not received:
                    if not body.end_of_input():
                        raise ReadError("the upstream closed the connection before the end of the body")
                    return None
                body.feed(received)
        except BaseException:
            self._abort()
            raise

    async def aread(self, limit: int | None = None) -> bytes:
        """The whole (rest of the) body; with ``limit``, stop (and close) once more than that arrived."""
        pieces = []
        size = 0
        while (piece := await self.read_some()) is not None:
            pieces.append(piece)
            size += len(piece)
            if limit is not None and size > limit:
                self.close()
                break
        if len(pieces) == 1:
            return pieces[0]
        return b"".join(pieces)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The decoded body as it arrives (chunk payloads, not chunk framing)."""
        try:
            while (piece := await self.read_some()) is not None:
                yield piece
        finally:
            if not self._body.done:
                self._abort()

    def close(self) -> None:
        """Abandon the rest of the body (closes the socket); no-op once the body was read."""
        if not self._body.done:
            self._abort()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    def _finished(self, reusable: bool) -> None:
        """The parser's ``on_done``: the connection goes back to the pool, or is closed."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        pool = self._pool
        pool._slots.release()
        if reusable:
            pool._release(conn)
        else:
            conn.close()

    def _abort(self) -> None:
        self._body.abort()
        conn, self._conn = self._conn, None
        if conn is None:
            return
        conn.close()
        self._pool._slots.release()
