"""Delivering logging callbacks off the request path: a bounded queue drained by the app's nursery.

The rules, and why:

* **Never on the request path.** Observers call :meth:`LoggingSink.submit`, which appends a small
  :class:`~trioproxy.logging_payload.LogEvent` to a deque and wakes a worker: O(1), never awaits,
  never raises. Payloads (``kwargs``, the structured record) are built later by the workers.
* **Bounded, never blocking.** A full queue drops its *oldest* event (the newest tells more about
  the present), counts it (``dropped``, exported as a metric) and warns, at most once per
  :data:`DROP_WARNING_INTERVAL` seconds so that an overload does not also flood the log.
* **Isolated callbacks.** Each callback runs under its own time limit
  (``general_settings.callback_timeout_seconds``). One that raises or overruns is counted, every
  time, and logged with its name and the event — rate-limited per callback
  (:class:`~trioproxy.error_throttle.ErrorThrottle`): the first error with its traceback, then at
  most one line per ``general_settings.callback_error_log_interval`` seconds (60) with the number of
  errors not logged since. A callback that raises on every request would otherwise flood the log and
  cost every request the formatting of its traceback; that formatting (and scrubbing) runs in a
  worker thread, never on the Trio thread. The other callbacks of the same event run concurrently
  and are unaffected. Sync callbacks run in worker threads (``trio.to_thread.run_sync``) behind a
  :class:`trio.CapacityLimiter`; a sync callback that hangs is abandoned at its time limit, but its
  thread keeps running and keeps one of the limiter's tokens until it returns (Python cannot kill a
  thread): ``threads`` hung callbacks leave every later sync callback to time out waiting for a
  token. The proxy's own thread work (estimating tokens) has a limiter of its own, so that hung
  callbacks cannot stall the workers.
* **In order per request.** Events of one request are delivered in the order they happened (each
  ``pre_api_call``, then ``post_api_call``, then success or failure), even with many workers: an
  event waits for its predecessor (``LogEvent.after``) before it is delivered. An event dropped from
  a full queue hands its own predecessor on to its successor, which then waits for that one.
* **Drained on shutdown.** :meth:`drain` (called at ``after_serving``) stops the workers from taking
  new events, delivers what is queued, lets deliveries in progress finish, all within the graceful
  shutdown deadline; whatever is left then is reported in a warning. Deliveries are shielded from
  the app nursery's own shutdown cancellation (quart-trio cancels background tasks before
  ``after_serving``), so an event is not lost half-delivered; their time limits still apply.
"""

from __future__ import annotations

import functools
import logging
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import trio

from ..config import GeneralSettings
from ..context import RequestContext
from ..masking import SecretScrubber
from .callbacks import Callback
from .cost import CostCalculator, Tokens
from .error_throttle import Admitted, ErrorThrottle
from .payload import (
    FAILURE,
    POST_API_CALL,
    PRE_API_CALL,
    SUCCESS,
    LogEvent,
    build_kwargs,
    standard_logging_object,
    traceback_text,
)

__all__ = ["DROP_WARNING_INTERVAL", "LoggingSink"]

log = logging.getLogger("trioproxy.logging")

DROP_WARNING_INTERVAL = 10.0
# The defaults of general_settings.logging_queue_size, callback_timeout_seconds and
# callback_error_log_interval are written once, in config/model.py. Each queued event holds its
# request's context (prompt, answer) until delivered: the queue's size bounds memory as much as it
# bounds latency. A failing callback is logged at most once per interval (after its first error).
_GENERAL = GeneralSettings()
DEFAULT_QUEUE_SIZE = _GENERAL.logging_queue_size
DEFAULT_CALLBACK_TIMEOUT = _GENERAL.callback_timeout_seconds
DEFAULT_CALLBACK_ERROR_LOG_INTERVAL = _GENERAL.callback_error_log_interval
DEFAULT_WORKERS = 16
DEFAULT_THREADS = 8
#: the most of a failing callback's exception text put into a one-line log entry
_MAX_ERROR_TEXT = 500


class LoggingSink:
    def __init__(
        self,
        callbacks: Iterable[Callback] = (),
        *,
        scrubber: SecretScrubber | None = None,
        cost: CostCalculator | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT,
        workers: int = DEFAULT_WORKERS,
        threads: int = DEFAULT_THREADS,
        request_log: logging.Logger | None = None,
        on_callback_error: Callable[[str, str], None] | None = None,
        on_estimate: Callable[[RequestContext, Tokens], None] | None = None,
        error_log_interval: float = DEFAULT_CALLBACK_ERROR_LOG_INTERVAL,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.callbacks: dict[str, list[Callback]] = {}
        for callback in callbacks:
            self.callbacks.setdefault(callback.event, []).append(callback)
        self.scrubber = scrubber or SecretScrubber()
        self.cost = cost or CostCalculator()
        self.queue_size = queue_size
        self.callback_timeout = callback_timeout
        self.workers = workers
        self.request_log = request_log
        self.on_callback_error = on_callback_error
        self.on_estimate = on_estimate
        #: which callback errors are logged (the rest are only counted)
        self.error_throttle = ErrorThrottle(error_log_interval, clock)
        self._queue: deque[LogEvent] = deque()
        self._lot = trio.lowlevel.ParkingLot()
        self._limiter = trio.CapacityLimiter(threads)
        #: for the proxy's own thread work (token estimates): user callbacks that hang hold the
        #: tokens of ``_limiter`` for ever, and must not stall the workers with them
        self._own_limiter = trio.CapacityLimiter(max(1, threads))
        #: ordering across dropped events: a dropped event's ``done`` → its predecessor's ``done``
        #: (present only while the dropped event's successor is queued and has not looked it up)
        self._forward: dict[trio.Event, trio.Event | None] = {}
        self._in_flight: set[trio.CancelScope] = set()
        self._in_flight_changed = trio.lowlevel.ParkingLot()
        self._closing = False
        self._last_drop_warning = float("-inf")
        #: events dropped because the queue was full (or left undelivered at shutdown)
        self.dropped = 0
        #: callback calls that raised or overran their time limit
        self.callback_errors = 0
        #: ``async (kwargs, response, ctx) -> (kwargs, response)`` run before the callbacks of every
        #: event (the ``logging_only`` guardrails: policies/guardrails/logging_only.py); one that fails
        #: stops the event's delivery
        self.logging_hooks: list[Callable[..., Any]] = []
        self.delivered = 0

    # -- what observers call (Trio thread, must return at once) ------------------------------------
    @property
    def depth(self) -> int:
        return len(self._queue)

    def wants_pre(self) -> bool:
        return bool(self.callbacks.get(PRE_API_CALL))

    def wants_final(self, ctx: RequestContext) -> bool:
        """Whether a finished request gives the workers anything to do."""
        final = FAILURE if ctx.error is not None else SUCCESS
        return bool(
            self.callbacks.get(final)
            or (final == SUCCESS and self.callbacks.get(POST_API_CALL))
            or (self.request_log is not None and self.request_log.isEnabledFor(logging.INFO))
            or self.cost.needs_estimate(ctx)
        )

    def submit(self, event: LogEvent) -> None:
        """Queue one event. O(1); drops the oldest event when full; never blocks or raises."""
        ctx = event.ctx
        event.after = ctx.log_chain
        event.done = ctx.log_chain = trio.Event()
        if len(self._queue) >= self.queue_size:
            self._drop(self._queue.popleft())
        self._queue.append(event)
        self._lot.unpark()

    def _drop(self, event: LogEvent) -> None:
        """Drop a queued event; its successor (queued, or still to come) waits for its predecessor."""
        before = event.after
        while before is not None and before in self._forward:   # that one was dropped too
            before = self._forward.pop(before)
        if before is not None and before.is_set():
            before = None
        if event.ctx.log_chain is event.done:     # no successor yet: the next one chains to ``before``
            event.ctx.log_chain = before
        elif before is not None:
            self._forward[event.done] = before
        event.done.set()    # wakes a successor that waits; it then looks up ``_forward``
        self._count_drop(1)

    def _count_drop(self, n: int) -> None:
        self.dropped += n
        now = time.monotonic()
        if now - self._last_drop_warning >= DROP_WARNING_INTERVAL:
            self._last_drop_warning = now
            log.warning("logging queue full (%d events): dropped the oldest; %d dropped so far. "
                        "Callbacks are slower than the traffic: make them faster, or raise "
                        "general_settings.logging_queue_size", self.queue_size, self.dropped)

    # -- the service (started in the app nursery) --------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The delivery workers, for the app's lifetime (a ``proxy.Service``)."""
        async with trio.open_nursery() as nursery:
            for _ in range(self.workers):
                nursery.start_soon(self._worker)
            task_status.started()

    async def _worker(self) -> None:
        while True:
            while not self._queue:
                if self._closing:
                    return
                await self._lot.park()
            if self._closing:
                return
            await self._process_shielded(self._queue.popleft())

    async def _process_shielded(self, event: LogEvent, deadline: float = float("inf")) -> None:
        with trio.CancelScope(shield=True, deadline=deadline) as scope:
            self._in_flight.add(scope)
            try:
                await self._process(event)
            finally:
                self._in_flight.discard(scope)
                self._in_flight_changed.unpark_all()
        if scope.cancelled_caught:  # cut off by the shutdown deadline
            self.dropped += 1

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - the services interface (app.py)
        """Deliver what is queued and in progress, for at most ``timeout`` seconds."""
        self._closing = True
        self._lot.unpark_all()
        dropped_before = self.dropped
        deadline = trio.current_time() + timeout
        for scope in self._in_flight:
            scope.deadline = min(scope.deadline, deadline)
        with trio.move_on_after(timeout):
            async with trio.open_nursery() as nursery:
                for _ in range(self.workers):
                    nursery.start_soon(self._drain_worker, deadline)
            while self._in_flight:
                await self._in_flight_changed.park()
        for name, count in self.error_throttle.pending():
            log.error("logging callback %s: %d more errors since the last one logged", name, count)
        left = len(self._queue)
        cut = self.dropped - dropped_before
        if left or cut:
            for event in self._queue:
                event.done.set()
            self._queue.clear()
            self._forward.clear()
            self.dropped += left
            log.warning("shutdown: %d logging events not delivered within %g s (%d cut off mid-delivery)",
                        left + cut, timeout, cut)

    async def _drain_worker(self, deadline: float) -> None:
        while self._queue and trio.current_time() < deadline:
            await self._process_shielded(self._queue.popleft(), deadline)

    # -- one event ---------------------------------------------------------------------------------
    async def _process(self, event: LogEvent) -> None:
        try:
            after = event.after
            while after is not None:
                await after.wait()
                after = self._forward.pop(after, None)   # set because it was dropped: wait for its own
            if event.kind == PRE_API_CALL:
                await self._deliver(PRE_API_CALL, event, None)
                return
            ctx = event.ctx
            tokens = await self._resolve_usage(ctx)
            record = standard_logging_object(ctx, self.scrubber, tokens)
            self._log_request(record)
            if event.kind == "success":
                if ctx.deployment is not None and not ctx.cache_hit:
                    await self._deliver(POST_API_CALL, event, record)
                await self._deliver(SUCCESS, event, record)
            else:
                await self._deliver(FAILURE, event, record)
        except trio.Cancelled:
            raise
        except Exception as exc:  # a bug here must not kill the worker (and with it all logging)
            log.error("building the logging event for %s failed", event.ctx.id, exc_info=exc)
        finally:
            event.done.set()

    async def _resolve_usage(self, ctx: RequestContext) -> Tokens:
        if self.cost.needs_estimate(ctx):
            tokens, final = await trio.to_thread.run_sync(self.cost.estimate, ctx, limiter=self._own_limiter)
            ctx.settle_cost(final.cost, final.source)   # completes the settlement (cost.py)
            if self.on_estimate is not None:
                self.on_estimate(ctx, tokens)
            return tokens
        return self.cost.reported_tokens(ctx)

    def _log_request(self, record: dict[str, Any]) -> None:
        logger = self.request_log
        if logger is None or not logger.isEnabledFor(logging.INFO):
            return
        logger.info("%s %s %s %s %.3fs", record["id"], record["endpoint"], record["model"],
                    record["status_code"], record["timings"]["total"], extra={"trioproxy": record})

    async def _deliver(self, event_type: str, event: LogEvent, record: dict[str, Any] | None) -> None:
        callbacks = self.callbacks.get(event_type)
        if not callbacks:
            return
        ctx = event.ctx
        text = None
        if event.kind not in (PRE_API_CALL, "success") and ctx.error is not None:
            # formatting a traceback reads source files and walks every frame: not on the event loop
            self.scrubber.scrub_error(ctx.error)
            text = await trio.to_thread.run_sync(traceback_text, ctx.error, self.scrubber, limiter=self._own_limiter)
        kwargs = build_kwargs(event, event_type, self.scrubber, record, text)
        response = ctx.response if event_type in (POST_API_CALL, SUCCESS) else None
        for hook in self.logging_hooks:   # logging_only guardrails rewrite what the callbacks receive
            try:
                with trio.fail_after(self.callback_timeout):
                    kwargs, response = await hook(kwargs, response, ctx)
            except Exception as exc:   # never deliver what a masking guardrail could not mask
                log.error("logging hook %s failed for %s (%s); the event is not delivered to the logging "
                          "callbacks", getattr(hook, "__qualname__", hook), ctx.id, _one_line(exc))
                return
        async with trio.open_nursery() as nursery:
            for callback in callbacks:
                own = dict(kwargs)  # top-level keys are each callback's own
                if callback.shape == "pre":
                    args: tuple[Any, ...] = (own["model"], own["messages"], own)
                elif callback.shape == "kwargs":
                    args = (own,)
                else:
                    args = (own, response, own["start_time"], own["end_time"])
                nursery.start_soon(self._call, callback, args, ctx.id)

    async def _call(self, callback: Callback, args: tuple[Any, ...], request_id: str) -> None:
        try:
            with trio.fail_after(self.callback_timeout):
                if callback.is_async:
                    await callback.fn(*args)
                else:
                    await trio.to_thread.run_sync(functools.partial(callback.fn, *args),
                                                  limiter=self._limiter, abandon_on_cancel=True)
            self.delivered += 1
        except trio.TooSlowError:
            self._callback_failed(callback, "timeout")
            admitted = self.error_throttle.admit(callback.name)
            if admitted is not None:
                log.error("logging callback %s did not finish %s for %s within %g s; abandoned%s",
                          callback.name, callback.event, request_id, self.callback_timeout,
                          self._suppressed_note(admitted))
        except Exception as exc:
            self._callback_failed(callback, "error")
            await self._log_callback_error(callback, request_id, exc)

    def _suppressed_note(self, admitted: Admitted) -> str:
        if admitted.first:
            interval = self.error_throttle.interval
            return (f" (later errors of this callback: at most one line every {interval:g} s)"
                    if interval > 0 else "")
        return f" ({admitted.suppressed} more errors not logged in the last {self.error_throttle.interval:g} s)"

    async def _log_callback_error(self, callback: Callback, request_id: str, exc: Exception) -> None:
        """The first error of a callback with its traceback, later ones as rate-limited single lines.

        Formatting a traceback costs about a millisecond of CPU: it runs in a worker thread (the
        proxy's own limiter, not the callbacks'), with the scrubbing, so the Trio thread only
        writes the finished line.
        """
        admitted = self.error_throttle.admit(callback.name)
        if admitted is None:
            return
        if admitted.first:
            text = await trio.to_thread.run_sync(_format_error, exc, self.scrubber, limiter=self._own_limiter)
            log.error("logging callback %s raised on %s for %s (the request is not affected)%s\n%s",
                      callback.name, callback.event, request_id, self._suppressed_note(admitted), text)
            return
        log.error("logging callback %s raised again on %s for %s: %s%s", callback.name, callback.event,
                  request_id, self.scrubber.scrub(_one_line(exc)), self._suppressed_note(admitted))

    def _callback_failed(self, callback: Callback, reason: str) -> None:
        self.callback_errors += 1
        if self.on_callback_error is not None:
            self.on_callback_error(callback.name, reason)


def _one_line(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a user's exception whose __str__ raises: its class still says something
        text = "<unprintable>"
    text = " ".join(text.split())
    if len(text) > _MAX_ERROR_TEXT:
        text = text[:_MAX_ERROR_TEXT] + " …"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _format_error(exc: BaseException, scrubber: SecretScrubber) -> str:
    """The traceback text, scrubbed (runs in a worker thread)."""
    return scrubber.scrub("".join(traceback.format_exception(exc)).rstrip())
