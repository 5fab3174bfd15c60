"""The store's invalidation bus for N processes: this process at once, the others through Redis.

The store and its caches speak a small synchronous protocol (``store/invalidation.py``:
``publish(*events)`` never blocks, ``subscribe(callback)``, ``on_reset(callback)``, ``live``); the
channels of :mod:`.bus` are asynchronous (``await publish(event)``, ``subscribe(on_event,
on_reset)``). :class:`SharedInvalidationBus` is the adapter between them, and adds what the
channel alone does not promise:

* **This process first.** ``publish`` delivers to this process's subscribers before it returns
  (the next request here sees the change), then queues the event for the other processes.
* **A failed publish is retried, never dropped.** A sender task PUBLISHes the queue in order; when
  Redis refuses or times out the event stays at the head and is retried with backoff (50 ms doubling
  to 0.5 s). Nothing is lost while this process is cut off from Redis: the others either were cut
  off too (their subscription dropped: they clear their caches and read through, see below) or
  receive it as soon as this process reaches Redis again. The queue is bounded: past
  ``max_pending`` events it collapses into one ``all`` (every process clears its caches), which is
  cheaper than remembering an unbounded list and loses nothing.
* **Events from the others** go to the same subscribers. A process also receives its own events
  back; dropping an entry twice is harmless, and telling its own echo apart from another process's
  identical event would be unsafe (the other one may follow a change made after ours).
* **Resets**: the channel calls ``on_reset`` when it (re)subscribes and when it is known to be down
  (PING unanswered for 1 s, connection lost); the subscribers clear their caches then, and while
  ``live`` is False keep new entries for about a second only (``store/loading_cache.py``): the
  staleness bound while the channel is down.

Run it as a service (``run``/``drain``); it runs its channel (:class:`~.bus.RedisBus`) itself.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable
from typing import Any

import trio

from .bus import Invalidation, RedisBus
from .errors import CoordinationUnavailable, RedisReplyError

__all__ = ["SharedInvalidationBus"]

log = logging.getLogger("trioproxy.coordination.bus")

#: events queued for the other processes before they collapse into one "clear everything"
MAX_PENDING = 10_000


class SharedInvalidationBus:
    """The store's ``InvalidationBus`` over a :class:`~.bus.RedisBus` (see the module docstring)."""

    def __init__(self, channel: RedisBus, *, max_pending: int = MAX_PENDING, retry_initial: float = 0.05,
                 retry_max: float = 0.5) -> None:
        self.channel = channel
        self.max_pending = max_pending
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._subscribers: list[Callable[[Any], None]] = []
        self._reset_callbacks: list[Callable[[], None]] = []
        self._pending: deque[Invalidation] = deque()
        #: the queue overflowed: one "all" goes out before anything else
        self._overflowed = False
        self._in_flight = False
        self._wake = trio.Event()
        self._sent = trio.lowlevel.ParkingLot()
        #: counters for tests and logs
        self.published = 0
        self.publish_failures = 0
        channel.subscribe(self._deliver, self._reset)

    # -- the store's protocol ---------------------------------------------------------------------
    @property
    def live(self) -> bool:
        """The channel is confirmed working (see :mod:`.bus`)."""
        return self.channel.live

    def publish(self, *events: Any) -> None:
        """Deliver here now; queue for the other processes (never blocks, never raises)."""
        for event in events:
            self._deliver(event)
            if self._overflowed:
                continue
            if len(self._pending) >= self.max_pending:
                log.warning("more than %d invalidations waiting for Redis: the other processes will clear "
                            "their caches instead", self.max_pending)
                self._pending.clear()
                self._overflowed = True
                continue
            self._pending.append(Invalidation(event.kind, event.id))
        self._wake.set()

    def subscribe(self, callback: Callable[[Any], None]) -> None:
        self._subscribers.append(callback)

    def on_reset(self, callback: Callable[[], None]) -> None:
        self._reset_callbacks.append(callback)

    def reset(self) -> None:
        """Clear this process's caches (what the channel does on a resubscription)."""
        self._reset()

    @property
    def pending(self) -> int:
        """Events not yet accepted by Redis (the one being sent included)."""
        return len(self._pending) + self._overflowed + self._in_flight

    async def wait_sent(self) -> None:
        """Until every queued event was accepted by Redis (tests; ``drain``)."""
        while self.pending:
            await self._sent.park()

    # -- delivery ---------------------------------------------------------------------------------
    def _deliver(self, event: Any) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:   # a broken subscriber must not stop the others
                log.exception("invalidation subscriber %r failed on %r", callback, event)

    def _reset(self) -> None:
        for callback in list(self._reset_callbacks):
            try:
                callback()
            except Exception:
                log.exception("invalidation reset callback %r failed", callback)

    # -- the service ------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the channel (started after its first subscription attempt) and the sender."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.channel.run)
            nursery.start_soon(self._send_forever)
            task_status.started()

    async def _send_forever(self) -> None:
        backoff = self.retry_initial
        failing = False
        while True:
            if not (self._pending or self._overflowed):
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            overflow = self._overflowed
            if overflow:        # events published from now on go out after this "all"
                self._overflowed = False
                event = Invalidation("all")
            else:
                event = self._pending.popleft()
            self._in_flight = True
            try:
                await self.channel.publish(event)
            except (CoordinationUnavailable, RedisReplyError) as exc:
                self._in_flight = False
                self.publish_failures += 1
                if overflow:
                    self._overflowed = True         # still to send; it covers whatever queued meanwhile
                    self._pending.clear()
                elif not self._overflowed:
                    self._pending.appendleft(event)     # retried first: order is kept
                if not failing:
                    log.warning("cannot publish invalidations to Redis (%s); %d waiting, retrying", exc, self.pending)
                    failing = True
                await trio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, self.retry_max)
                continue
            self._in_flight = False
            if failing:
                log.warning("invalidations reach Redis again")
                failing = False
            backoff = self.retry_initial
            self.published += 1
            self._sent.unpark_all()

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - the services interface
        """Give the queue up to ``timeout`` (at most 1 s) to reach Redis, then stop the channel."""
        with trio.move_on_after(min(timeout, 1.0)):
            await self.wait_sent()
        if self.pending:
            log.warning("%d invalidations not published at shutdown (the other processes' caches expire them)",
                        self.pending)
        await self.channel.drain(timeout)
