"""Shared state for N processes or machines acting as one proxy (issues #11 and #13).

* :mod:`.redis` — a small Redis client for Trio (one multiplexed connection, typed errors,
  timeouts, reconnect, scripts, streams); why our own is measured in its docstring.
* :mod:`.limiter` — the interface: :class:`Check`, :class:`Admission`, :class:`Limiter`,
  :func:`admit` (the failure policy); :mod:`.limiter_memory` (embedded) and
  :mod:`.limiter_redis` (shared) implement it.
* :mod:`.bus` — the invalidation bus (Redis pub/sub, PostgreSQL LISTEN/NOTIFY).

``docs/deploy.md`` ("Shared state") explains the rules to operators.
"""

from .bus import Invalidation, InvalidationBus, PostgresBus, RedisBus, Subscription, notify_sql
from .errors import (
    CoordinationError,
    CoordinationUnavailable,
    PostgresUnavailable,
    RedisError,
    RedisReplyError,
    RedisServerUnavailable,
    RedisTimeout,
    RedisUnavailable,
)
from .limiter import (
    DEFAULT_MAX_RESERVATION_AGE,
    Admission,
    BudgetWindow,
    Check,
    Kind,
    Limiter,
    admit,
    budget_window,
)
from .limiter_memory import DEFAULT_IDLE_EVICT, InProcessLimiter
from .limiter_redis import RedisLimiter
from .redis import RedisClient, RedisConnection, RedisURL, Script, StreamEntry

__all__ = [
    "DEFAULT_IDLE_EVICT",
    "DEFAULT_MAX_RESERVATION_AGE",
    "Admission",
    "BudgetWindow",
    "Check",
    "CoordinationError",
    "CoordinationUnavailable",
    "InProcessLimiter",
    "Invalidation",
    "InvalidationBus",
    "Kind",
    "Limiter",
    "PostgresBus",
    "PostgresUnavailable",
    "RedisBus",
    "RedisClient",
    "RedisConnection",
    "RedisError",
    "RedisLimiter",
    "RedisReplyError",
    "RedisServerUnavailable",
    "RedisTimeout",
    "RedisURL",
    "RedisUnavailable",
    "Script",
    "StreamEntry",
    "Subscription",
    "admit",
    "budget_window",
    "notify_sql",
]
