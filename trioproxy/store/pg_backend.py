"""The PostgreSQL backend: psycopg 3's sync API and ``psycopg_pool`` in worker threads.

Every call is one ``trio.to_thread.run_sync`` with a ``CapacityLimiter`` equal to the pool size
(state-layer.md §1: more threads than connections only adds GIL contention and tail latency).
Connections are in autocommit mode: a read is its statements and nothing else (no BEGIN/ROLLBACK
round trips: a key-cache miss is one SELECT), a write opens an explicit transaction
(``conn.transaction()``). PostgreSQL does its own group commit across connections.

Why not psycopg's async API: it waits through asyncio and has no Trio support (psycopg#29); the
measured Trio shim is an optional later fast path (state-layer.md §2b).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import trio

from .errors import StoreClosed, StoreError, StoreUnavailable
from .sql import Conn
from .url import DatabaseURL

__all__ = ["PostgresDatabase"]

T = TypeVar("T")


#: SQLSTATE classes of an OperationalError that say the server may answer later: connection
#: exceptions (08), insufficient resources (53: disk full, too many connections), operator
#: intervention (57: shutdown, cannot connect now). Others in psycopg's OperationalError family
#: (54 program limit exceeded: an index row too large, …) refuse the statement for good: retrying
#: them forever would stall a spend writer behind one record, so they are a plain StoreError.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57")


def is_transient(exc: BaseException) -> bool:
    """Whether a driver error means "unavailable, try again" (no SQLSTATE: the connection failed)."""
    sqlstate = getattr(exc, "sqlstate", None)
    return sqlstate is None or sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES


@contextmanager
def _unavailable(url: DatabaseURL) -> Iterator[None]:
    """Connection-level failures (server gone, pool exhausted) → ``StoreUnavailable``; an
    OperationalError that refuses the statement itself → ``StoreError`` (see ``is_transient``)."""
    import psycopg
    from psycopg_pool import PoolTimeout

    try:
        yield
    except PoolTimeout as exc:
        raise StoreUnavailable(f"database {url.redacted()} unavailable: {str(exc).splitlines()[0]}") from None
    except psycopg.OperationalError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if is_transient(exc):
            raise StoreUnavailable(f"database {url.redacted()} unavailable: {first_line}") from None
        raise StoreError(f"database {url.redacted()} refused the statement "
                         f"(SQLSTATE {getattr(exc, 'sqlstate', None)}): {first_line}") from None


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, url: DatabaseURL, *, pool_size: int = 4, open_timeout: float = 30.0,
                 checkout_timeout: float = 10.0):
        self.url = url
        self.pool_size = pool_size
        self.open_timeout = open_timeout
        #: how long a call waits for a pool connection before the store counts as unavailable (a
        #: key-cache miss waits on it in a request; psycopg_pool's own default is 30 s)
        self.checkout_timeout = checkout_timeout
        self._limiter = trio.CapacityLimiter(pool_size)
        self._pool: Any = None
        self._outstanding = 0
        self._idle = trio.Event()
        self._idle.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool, PoolTimeout

        pool = ConnectionPool(self.url.target, min_size=self.pool_size, max_size=self.pool_size,
                              kwargs={"autocommit": True, "row_factory": dict_row,
                                      "connect_timeout": max(1, round(self.checkout_timeout))},
                              timeout=self.checkout_timeout,
                              open=False, name="trioproxy-store")
        try:
            await trio.to_thread.run_sync(lambda: pool.open(wait=True, timeout=self.open_timeout))
        except PoolTimeout:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(pool.close)
            raise StoreUnavailable(f"cannot connect to {self.url.redacted()} within {self.open_timeout:g} s") from None
        self._pool = pool
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            self._pool = None
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(pool.close)

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109 - the services interface
        with trio.move_on_after(timeout):
            while self._outstanding:
                await self._idle.wait()
            return True
        return False

    def _checkout(self) -> Any:
        pool = self._pool
        if pool is None:
            raise StoreClosed("the store is not running")
        return pool

    async def read(self, fn: Callable[[Conn], T]) -> T:
        pool = self._checkout()

        def run() -> T:
            with _unavailable(self.url), pool.connection() as raw:
                return fn(Conn(raw, "postgresql"))

        return await trio.to_thread.run_sync(run, limiter=self._limiter)

    async def write(self, fn: Callable[[Conn], T]) -> T:
        pool = self._checkout()

        def run() -> T:
            with _unavailable(self.url), pool.connection() as raw, raw.transaction():
                return fn(Conn(raw, "postgresql"))

        self._outstanding += 1
        if self._idle.is_set():
            self._idle = trio.Event()
        try:
            # like the SQLite writer queue: a write asked for is carried out, even if the caller is
            # cancelled while it waits for a connection (a spend record must not vanish that way)
            with trio.CancelScope(shield=True):
                return await trio.to_thread.run_sync(run, limiter=self._limiter)
        finally:
            self._outstanding -= 1
            if self._outstanding == 0:
                self._idle.set()
