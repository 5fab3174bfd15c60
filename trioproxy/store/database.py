"""One async interface over both backends: ``read(fn)`` and ``write(fn)`` of a sync function.

``fn`` receives a :class:`~trioproxy.store.sql.Conn` and runs in a worker thread, never on the
Trio thread. ``write`` runs ``fn`` inside a transaction: everything it does commits together or not
at all (an exception from ``fn`` rolls its work back and is re-raised to the caller). ``read`` runs
``fn`` without a write transaction.

Both backends are services: ``await nursery.start(db.run)`` opens them (and keeps them open until
cancelled), ``await db.drain(timeout)`` at shutdown waits for queued writes.

Once queued, a write is carried out even if the task that asked for it is cancelled: the caller
waits for the outcome shielded (as ``trio.to_thread.run_sync`` does), so an invalidation published
in a ``finally`` after ``write`` always follows the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import trio

from .url import DatabaseURL, parse_database_url

__all__ = ["Database", "open_database"]

T = TypeVar("T")


class Database(Protocol):
    url: DatabaseURL
    dialect: str

    async def read(self, fn: Callable[[Any], T]) -> T: ...

    async def write(self, fn: Callable[[Any], T]) -> T: ...

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None: ...

    async def drain(self, timeout: float) -> bool: ...  # noqa: ASYNC109 - the services interface


def open_database(url: str | DatabaseURL, *, readers: int = 4, pool_size: int = 4,
                  max_batch: int = 500, timeout: float = 10.0) -> Database:
    """The backend for ``url`` (not yet running: start its ``run`` in a nursery).

    ``timeout``: how long a call waits for a connection (PostgreSQL: the pool checkout and the
    connect, also when opening) or for another process's lock (SQLite's busy timeout) before the
    store counts as unavailable.
    """
    db_url = parse_database_url(url)
    if db_url.kind == "sqlite":
        from .sqlite_backend import SQLiteDatabase

        return SQLiteDatabase(db_url, readers=readers, max_batch=max_batch, busy_timeout=timeout)
    from .pg_backend import PostgresDatabase

    return PostgresDatabase(db_url, pool_size=pool_size, open_timeout=timeout, checkout_timeout=timeout)
