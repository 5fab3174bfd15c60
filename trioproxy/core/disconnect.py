"""The client's HTTP/1.x connection ended: cancel the request it was waiting for, without a watcher task.

Why: ASGI tells an app that its client left with an ``http.disconnect`` message, so the fast path
(``http/asgi.py``) used to open a nursery per request with a task that waits for that message and
cancels the request. At 16 clients that nursery and task (spawn, a wake-up to park it, the cancel
delivered at the end) cost ~20–25 µs of the proxy's ~375 µs of CPU per non-streaming request
(bench/README.md, "CPU per request").

Here the server's connection class (``cli/server_connection.py``) owns one :class:`ConnectionEnd`
per connection and publishes it in :data:`CONNECTION_END`, a context variable: Trio gives every
task a copy of its spawner's context, so the task Hypercorn starts for each request of that
connection sees it. The request registers its cancel scope (:meth:`ConnectionEnd.cancel_on_end`);
when the connection's read loop ends (the peer's EOF, a reset, a broken socket: exactly when
Hypercorn sends ``http.disconnect`` to the request), the connection calls :meth:`ConnectionEnd.ended`,
which cancels it. A request registered after the end is cancelled at once, as the watcher would have
been by the ``http.disconnect`` already queued for it.

Only for HTTP/1.x: a connection carries one request at a time there, and its end is the only way
its client leaves. An HTTP/2 client can reset one stream and keep the connection, so on HTTP/2 (and
under any other server, where the variable is unset) the app keeps its watcher task.
"""

from __future__ import annotations

from contextvars import ContextVar

import trio

__all__ = ["CONNECTION_END", "ConnectionEnd"]


class ConnectionEnd:
    """One HTTP/1.x connection's end, and the cancel scope of the request it is serving (if any)."""

    __slots__ = ("is_over", "_scope")

    def __init__(self) -> None:
        #: the read loop ended: the client closed or the connection broke
        self.is_over = False
        self._scope: trio.CancelScope | None = None

    def cancel_on_end(self, scope: trio.CancelScope) -> None:
        """Cancel ``scope`` when the connection ends (at once if it already has)."""
        if self.is_over:
            scope.cancel(reason="client disconnected")
        else:
            self._scope = scope

    def release(self, scope: trio.CancelScope) -> None:
        """The request of ``scope`` is over: the connection's end no longer concerns it."""
        if self._scope is scope:
            self._scope = None

    def ended(self) -> None:
        """The connection's read loop is over: cancel the request being served."""
        self.is_over = True
        scope, self._scope = self._scope, None
        if scope is not None:
            scope.cancel(reason="client disconnected")


#: the connection whose request the current task serves (set by the server's connection class)
CONNECTION_END: ContextVar[ConnectionEnd | None] = ContextVar("trioproxy_connection_end", default=None)
