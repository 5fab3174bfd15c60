"""Graceful shutdown of streams: when to end them, and the worker service that does it for ``--workers N``.

Hypercorn cancels whatever still runs ``graceful_shutdown_timeout`` seconds after SIGTERM, which
cuts a stream at the TCP level (the client cannot tell a cut from a complete answer). So open
streams are ended with a ``shutdown`` error event a little earlier (:func:`streams_stop_after`),
through ``Pipeline.stop_streams`` (:class:`OpenStreams`: the streams open now, and every stream
opened after the stop, which stops at once). In the single-process server the CLI does that itself
(``cli/run.py``); in a worker spawned by Hypercorn's supervisor (``--workers N > 1``), the app is
not told of the shutdown, and :class:`StreamStopper` (a service of the container, ``proxy.py``)
watches the supervisor's event instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from ..errors import ProxyError, ShuttingDownError

if TYPE_CHECKING:
    from .relay import StreamRelay

__all__ = ["OpenStreams", "StreamStopper", "Unanswered", "shutdown_error", "stop_streams", "streams_stop_after"]

log = logging.getLogger("trioproxy")


def shutdown_error() -> ProxyError:
    return ShuttingDownError("The proxy is shutting down; the stream was stopped before its end. Retry the request.")


def unanswered_shutdown_error() -> ProxyError:
    return ShuttingDownError("The proxy is shutting down; the request was stopped before its answer. "
                             "Retry the request.", headers={"retry-after": "1"})


class Unanswered:
    """A request before its status line (non-streaming: before its answer): stopped at shutdown.

    ``Pipeline.handle`` runs the request inside :attr:`scope`; :meth:`stop` cancels it, and the
    pipeline answers with :attr:`error` (a ``503`` ``shutdown``, failure hooks once) instead of
    letting Hypercorn's graceful deadline cut the connection without an answer.
    """

    __slots__ = ("error", "scope")

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.error: ProxyError | None = None

    def stop(self, error: ProxyError) -> None:
        if self.error is None:
            self.error = error
        self.scope.cancel()


class OpenStreams:
    """What graceful shutdown stops: streams between their upstream's status line and their end, and
    requests not answered yet (:class:`Unanswered`)."""

    def __init__(self) -> None:
        self.streams: set[StreamRelay] = set()
        self.unanswered: set[Unanswered] = set()
        #: set by :meth:`stop_all`: streams opened (and requests started) later stop at once
        self._stopping: Callable[[], ProxyError] | None = None
        self._stopping_request: Callable[[], ProxyError] = unanswered_shutdown_error

    def __len__(self) -> int:
        return len(self.streams)

    def add(self, relay: StreamRelay) -> ProxyError | None:
        """Track ``relay``; the error it must stop with at once if shutdown already began."""
        self.streams.add(relay)
        return self._stopping() if self._stopping is not None else None

    def discard(self, relay: StreamRelay) -> None:
        self.streams.discard(relay)

    def add_unanswered(self, request: Unanswered) -> None:
        """Track ``request`` until it is answered; stopped at once if shutdown already began."""
        self.unanswered.add(request)
        if self._stopping is not None:
            request.stop(self._stopping_request())

    def discard_unanswered(self, request: Unanswered) -> None:
        self.unanswered.discard(request)

    def stop_all(self, make_error: Callable[[], ProxyError] | None = None) -> int:
        """End every open stream, and every stream opened from now on, with ``make_error()``; answer
        every request not answered yet with it too. Returns how many streams were open."""
        self._stopping = make_error or shutdown_error
        if make_error is not None:
            self._stopping_request = make_error
        streams = list(self.streams)
        for relay in streams:
            relay.stop(self._stopping())
        requests = list(self.unanswered)
        for request in requests:
            request.stop(self._stopping_request())
        if requests:
            log.warning("graceful shutdown deadline near: answering %d request(s) still waiting for their "
                        "answer with a 503 'shutdown' error", len(requests))
        return len(streams)


def streams_stop_after(graceful_timeout: float) -> float:
    """Seconds after SIGTERM at which open streams are ended with a ``shutdown`` error event.

    ``min(5 s, graceful_timeout / 4)`` before Hypercorn's deadline: time enough for the failure
    hooks (each bounded by ``hook_timeout_seconds``) and the last write.
    """
    return max(0.0, graceful_timeout - min(5.0, graceful_timeout / 4))


def stop_streams(stop: Callable[[], int]) -> None:
    """Call ``stop`` (``Pipeline.stop_streams``) and say how many streams it ended."""
    count = stop()
    if count:
        log.warning("graceful shutdown deadline near: ending %d open stream(s) with a 'shutdown' "
                    "error event", count)


class StreamStopper:
    """A service of a ``--workers > 1`` worker: :func:`streams_stop_after` the supervisor's shutdown
    event is set, end this worker's open streams with a ``shutdown`` error event.

    Polls the event every 0.1 s, as Hypercorn's worker does itself (``is_set`` takes an uncontended
    process-shared lock: microseconds). Runs in the app's nursery, which lives until serving ended.
    """

    def __init__(self, event: Any, graceful_timeout: float, stop: Callable[[], int]) -> None:
        self._event = event
        self._graceful_timeout = graceful_timeout
        self._stop = stop

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        # a multiprocessing event: there is nothing to await on, so it is polled (as Hypercorn does)
        while not self._event.is_set():  # noqa: ASYNC110
            await trio.sleep(0.1)
        # (the supervisor's early SIGTERM to a draining worker is ignored from the worker's start:
        # cli/run.py ``_ignore_terminate_while_draining``, so no poll interval can race it)
        await trio.sleep(streams_stop_after(self._graceful_timeout))
        stop_streams(self._stop)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - the Service interface (proxy.py)
        await trio.lowlevel.checkpoint()
