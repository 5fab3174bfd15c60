"""The composition root of the store: database, repositories, invalidation bus and caches.

Lifecycle (a service like the logging sink)::

    store = Store("sqlite:///proxy.db", audit=True)
    await nursery.start(store.run)     # migrates (unless migrate=False), opens the backend
    ...                                 # store.keys.create(...), await store.key_cache.authenticate(key)
    await store.drain(timeout)          # at shutdown: queued writes committed
    nursery.cancel_scope.cancel()       # run() closes connections / the writer thread

or, for scripts and tests, ``async with open_store(url) as store: ...``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import trio

from . import migrate
from .customer_cache import CustomerCache
from .database import open_database
from .errors import StoreUnavailable
from .invalidation import InvalidationBus, LocalInvalidationBus
from .key_cache import KeyCache
from .repositories import (
    AuditRepository,
    BudgetRepository,
    CustomerRepository,
    KeyRepository,
    RepoContext,
    SpendRepository,
    TeamRepository,
    UserRepository,
)
from .repositories.base import utcnow
from .url import DatabaseURL, parse_database_url

__all__ = ["Store", "open_store"]


class Store:
    def __init__(self, url: str | DatabaseURL, *, audit: bool = False, migrate: bool = True,
                 bus: InvalidationBus | None = None, clock: Callable[[], datetime] = utcnow,
                 monotonic: Callable[[], float] = time.monotonic, readers: int = 4, pool_size: int = 4,
                 max_batch: int = 500, key_cache_ttl: float = 60.0, negative_ttl: float = 10.0,
                 timeout: float = 10.0):
        self.url = parse_database_url(url)
        self.migrate = migrate
        self.db = open_database(self.url, readers=readers, pool_size=pool_size, max_batch=max_batch,
                                timeout=timeout)
        self.bus: InvalidationBus = bus if bus is not None else LocalInvalidationBus()
        self.ctx = RepoContext(self.db, self.bus, audit=audit, clock=clock)
        self.keys = KeyRepository(self.ctx)
        self.teams = TeamRepository(self.ctx)
        self.users = UserRepository(self.ctx)
        self.customers = CustomerRepository(self.ctx)
        self.budgets = BudgetRepository(self.ctx)
        self.audit = AuditRepository(self.ctx)
        self.spend = SpendRepository(self.ctx)
        self.key_cache = KeyCache(self.db, self.bus, ttl=key_cache_ttl, negative_ttl=negative_ttl,
                                  clock=lambda: clock().timestamp(), monotonic=monotonic)
        # customers: "no such row" is the common case, kept as long as a row (the TTL bounds how long a
        # block made by another process goes unseen)
        self.customer_cache = CustomerCache(self.db, self.bus, ttl=key_cache_ttl, negative_ttl=key_cache_ttl,
                                            monotonic=monotonic)

    @property
    def audit_enabled(self) -> bool:
        return self.ctx.audit

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self.migrate:
            try:
                await trio.to_thread.run_sync(migrate.upgrade, self.url)
            except migrate.MigrationError as exc:
                raise StoreUnavailable(str(exc)) from None
        await self.db.run(task_status=task_status)   # started once the backend is open

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109 - the services interface
        """Wait up to ``timeout`` s for queued writes; ``False`` if some were still pending."""
        return await self.db.drain(timeout)


@asynccontextmanager
async def open_store(url: str | DatabaseURL, *, drain_timeout: float = 10.0, **options: Any) -> AsyncIterator[Store]:
    """A running store for the duration of the block (scripts, tests, the CLI)."""
    store = Store(url, **options)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            try:
                yield store
            finally:
                with trio.CancelScope(shield=True):
                    await store.drain(drain_timeout)
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # one failure (the store could not open, or the block raised): raise it as itself
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
