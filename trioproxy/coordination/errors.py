"""Errors of the coordination layer (shared counters, reservations, the invalidation bus).

Hierarchy::

    CoordinationError
    ├── CoordinationUnavailable        the shared state cannot be reached or did not answer in time
    │   ├── RedisUnavailable           connection down, refused, dropped, or the handshake failed
    │   │   ├── RedisTimeout           no reply within the call's timeout (Redis slow or stalled)
    │   │   └── RedisServerUnavailable the server answered that it cannot serve now (OOM, READONLY,
    │   │                              LOADING, BUSY, MASTERDOWN …): also a RedisReplyError
    │   └── PostgresUnavailable        the LISTEN/NOTIFY bus's connection failed or did not answer
    └── RedisError                     (base of everything the Redis client raises)
        ├── RedisUnavailable           (as above: both a RedisError and a CoordinationUnavailable)
        └── RedisReplyError            Redis answered with an error reply (a bug or a bad argument)

They are deliberately *not* :class:`trioproxy.errors.ProxyError`\\ s: whether "Redis is down" means a
503 (fail closed, the default for limits and budgets) or "admit and log" (fail open) is a policy
decided by the caller (:func:`trioproxy.coordination.limiter.admit`), not by the transport.
"""

from __future__ import annotations

__all__ = [
    "CoordinationError",
    "CoordinationUnavailable",
    "PostgresUnavailable",
    "RedisError",
    "RedisReplyError",
    "RedisServerUnavailable",
    "RedisTimeout",
    "RedisUnavailable",
]


class CoordinationError(Exception):
    """Base of every error of :mod:`trioproxy.coordination`."""


class CoordinationUnavailable(CoordinationError):
    """The shared state could not be reached, or did not answer in time.

    The outcome of the operation is unknown (a reservation may or may not have been applied):
    callers release by request id in a ``finally`` anyway, which is idempotent.
    """


class RedisError(CoordinationError):
    """Base of the errors raised by :mod:`trioproxy.coordination.redis`."""


class RedisUnavailable(RedisError, CoordinationUnavailable):
    """No usable connection to Redis: down, refused, dropped mid-call, or the handshake failed."""


class RedisTimeout(RedisUnavailable):
    """Redis did not reply within the call's timeout (the command may still run later)."""


class RedisReplyError(RedisError):
    """Redis answered with an error reply (``-ERR …``, ``-WRONGTYPE …``, a Lua error …)."""

    @property
    def code(self) -> str:
        """The first word of the error reply (``ERR``, ``NOSCRIPT``, ``WRONGTYPE``, ``BUSYGROUP`` …)."""
        text = str(self)
        return text.split(" ", 1)[0] if text else ""


class PostgresUnavailable(CoordinationUnavailable):
    """The invalidation bus's PostgreSQL connection failed, dropped, or did not answer in time."""


class RedisServerUnavailable(RedisUnavailable, RedisReplyError):
    """An error reply that says the server cannot serve this now rather than that the command is
    wrong: out of memory under ``noeviction`` (``OOM``), a read-only replica after a failover
    (``READONLY``), a server still loading its data (``LOADING``), a script running too long
    (``BUSY``), a replica cut off from its primary (``MASTERDOWN``). For the limiter's failure
    policy that is the shared state being unavailable (503 or fail open), not a bug."""
