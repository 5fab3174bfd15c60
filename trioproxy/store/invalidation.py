"""Telling every cache that something changed: a tiny bus with a local implementation.

Every mutation through the repositories publishes what it touched — a key (by its hash), a team
(all its keys), a user (all their keys), a customer — *after* its transaction committed (and also
when its outcome is unknown: a needless reload is cheap, a stale entry is not). The caches
subscribe and drop the affected entries at once.

The protocol is small on purpose so issue #13 can put Redis pub/sub or PostgreSQL NOTIFY behind
it for several processes:

* ``publish(*events)`` is synchronous and never blocks: it delivers to this process's subscribers
  before it returns (so the very next request in this process sees the change) and a remote
  implementation merely queues the message for its sender task.
* ``subscribe(callback)``: ``callback(event)`` is called on the Trio thread, must be quick and
  must not raise (the caches' callbacks are dict operations).
* ``on_reset(callback)``: called when events may have been missed (a remote bus resubscribing
  after a disconnect): the caches then clear everything. The local bus never misses anything, but
  ``reset()`` is there for tests and for an operator's "flush caches".
* ``live``: True while every invalidation is known to arrive. The local bus is always live; the
  shared one (``coordination/shared_bus.py``, Redis pub/sub) is not while its channel is down, and
  the caches then keep entries for about a second only (``loading_cache.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["Invalidation", "InvalidationBus", "LocalInvalidationBus"]

log = logging.getLogger("trioproxy.store")

Kind = Literal["key", "team", "user", "customer", "all"]


@dataclass(frozen=True, slots=True)
class Invalidation:
    """``kind`` of thing that changed and its id: a key's SHA-256 hex, a team/user/customer id."""

    kind: Kind
    id: str = ""

    @classmethod
    def key(cls, token: str) -> Invalidation:
        return cls("key", token)

    @classmethod
    def team(cls, team_id: str) -> Invalidation:
        return cls("team", team_id)

    @classmethod
    def user(cls, user_id: str) -> Invalidation:
        return cls("user", user_id)

    @classmethod
    def customer(cls, user_id: str) -> Invalidation:
        return cls("customer", user_id)


class InvalidationBus(Protocol):
    @property
    def live(self) -> bool: ...

    def publish(self, *events: Invalidation) -> None: ...

    def subscribe(self, callback: Callable[[Invalidation], None]) -> None: ...

    def on_reset(self, callback: Callable[[], None]) -> None: ...


class LocalInvalidationBus:
    """In-process delivery: ``publish`` calls every subscriber before returning."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[Invalidation], None]] = []
        self._reset_callbacks: list[Callable[[], None]] = []
        #: everything published, most recent last (bounded; tests and debugging read it)
        self.published: list[Invalidation] = []

    #: this process is the only one: nothing can be missed
    live = True

    def publish(self, *events: Invalidation) -> None:
        for event in events:
            self.published.append(event)
            for callback in self._subscribers:
                try:
                    callback(event)
                except Exception:  # a broken subscriber must not stop the others
                    log.exception("invalidation subscriber %r failed on %r", callback, event)
        if len(self.published) > 10_000:
            del self.published[:5_000]

    def subscribe(self, callback: Callable[[Invalidation], None]) -> None:
        self._subscribers.append(callback)

    def on_reset(self, callback: Callable[[], None]) -> None:
        self._reset_callbacks.append(callback)

    def reset(self) -> None:
        for callback in self._reset_callbacks:
            callback()
