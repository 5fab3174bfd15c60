"""Everything one process shares with the others through Redis, built from :class:`RedisSettings`.

One :class:`~.redis.RedisClient` (one multiplexed connection) carries the limiter's scripts and
the bus's PUBLISHes; the bus subscribes on a connection of its own. ``proxy.py`` builds this when
``coordination/settings.py`` finds a Redis, hands ``bus`` to the store (its caches) and ``limiter``
to admission, and runs :attr:`SharedState.services` (the client, then the bus; drained in reverse)
before the store; the limiter runs with the spend services (after the store), so it is drained before
the client it talks through too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .bus import RedisBus
from .limiter import DEFAULT_MAX_RESERVATION_AGE
from .limiter_redis import RedisLimiter
from .redis import RedisClient
from .settings import RedisSettings
from .shared_bus import SharedInvalidationBus

__all__ = ["SharedState", "open_shared_state"]


@dataclass(frozen=True, eq=False)
class SharedState:
    settings: RedisSettings
    client: RedisClient
    bus: SharedInvalidationBus
    limiter: RedisLimiter

    @property
    def services(self) -> tuple[Any, ...]:
        return (self.client, self.bus)

    @property
    def fail_open(self) -> bool:
        return self.settings.fail_open


def open_shared_state(settings: RedisSettings, *,
                      max_reservation_age: float = DEFAULT_MAX_RESERVATION_AGE) -> SharedState:
    """The client, bus and limiter for ``settings`` (not running yet: start :attr:`services`).
    ``max_reservation_age``: a reservation open longer was leaked; its lease is no longer renewed."""
    client = RedisClient(settings.url, timeout=settings.timeout, name="trioproxy")
    bus = SharedInvalidationBus(RedisBus(client))
    limiter = RedisLimiter(client, timeout=settings.timeout, max_age=max_reservation_age)
    return SharedState(settings=settings, client=client, bus=bus, limiter=limiter)
