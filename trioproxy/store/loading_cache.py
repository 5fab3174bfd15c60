"""A loading cache for the request path: a hit is one dict lookup; a miss loads once.

Rules (each has a test in ``tests/store/test_store_key_cache.py``):

* **Hit**: ``lookup(key)`` is synchronous — a dict lookup and a monotonic-clock comparison — and
  returns the cached record (immutable), ``None`` for a cached "does not exist", or :data:`MISS`.
* **Miss**: ``get(key)`` loads it off the Trio thread (the loader calls ``Database.read``). Loads
  are single-flight: concurrent misses of one key share one query.
* **No stale fill**: every invalidation bumps a generation counter; a load that started before an
  invalidation and finishes after it is *not* stored (it may have read the row before the
  mutation committed) and is retried, so an invalidation can never be undone by a racing load.
  This is LiteLLM #25553's trap (in-flight requests writing the old key object back).
* **Negative entries** ("no such key") are kept for ``negative_ttl`` seconds in a bounded table
  (oldest dropped first), so a client retrying a wrong key does not cost a query per retry; every
  creation publishes an invalidation for its id, which drops the negative entry at once.
* **TTL** on positive entries (``ttl``, default 60 s like LiteLLM's ``user_api_key_cache_ttl``)
  bounds staleness when an invalidation cannot arrive (another process before issue #13's bus).
  In this process invalidations are immediate; the TTL is only the backstop.
* **Bounded staleness while the bus is down** (issue #13): the cache asks ``live()`` (the
  invalidation bus's flag) when it stores an entry. While the bus is not live — invalidations from
  other processes may be lost — entries (positive and negative) live at most ``down_ttl`` seconds
  (1 s), so a revocation elsewhere is enforced here within about a second even without the bus. The
  bus clears the whole cache when it goes down and when it comes back, so no entry stored while it
  was live outlives the outage, and none stored during it outlives the recovery.
* **Stale if the store is down, while the bus is live**: a positive entry past its TTL is kept;
  if reloading it fails with one of ``stale_errors`` (the database is unavailable) and the bus is
  live, the expired entry answers. That is sound because every change to it would have arrived as
  an invalidation (which drops the entry), and it keeps cached keys working through a database
  outage longer than the TTL. Negative entries never do this (an unknown key gets the store's 503).
* **Fail fast while the store is down**: after a load failed with one of ``stale_errors``, misses
  answer at once (the expired entry as above, else the same error: a 503) for ``outage_fail_fast``
  seconds (1 s) and then while a single load probes the store — instead of each waiting for the
  connection timeout (``database_connection_timeout``, 10 s) during an outage.
* Entries are never written from the request path: only loads fill the cache.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import trio

__all__ = ["MISS", "CacheStats", "LoadingCache"]

R = TypeVar("R")


class _Miss:
    def __repr__(self) -> str:
        return "MISS"


MISS: Final = _Miss()

_MAX_ATTEMPTS = 3


@dataclass
class CacheStats:
    hits: int = 0
    negative_hits: int = 0
    loads: int = 0
    stale_loads: int = 0        # loads discarded because an invalidation arrived meanwhile
    stale_served: int = 0       # expired entries answered because the store was down (bus live)
    invalidations: int = 0
    evictions: int = 0


class LoadingCache(Generic[R]):
    def __init__(self, load: Callable[[str], Awaitable[R | None]], *, ttl: float = 60.0,
                 negative_ttl: float = 10.0, max_entries: int = 100_000, max_negative: int = 10_000,
                 monotonic: Callable[[], float] = time.monotonic, live: Callable[[], bool] = lambda: True,
                 down_ttl: float = 1.0, stale_errors: tuple[type[BaseException], ...] = (),
                 outage_fail_fast: float = 1.0):
        self._load = load
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._live = live
        self.down_ttl = down_ttl
        self._stale_errors = stale_errors
        #: seconds after a store failure during which misses fail at once (one probe then tries again)
        self.outage_fail_fast = outage_fail_fast
        self._down_until = 0.0
        self._down_error: BaseException | None = None
        self._probing = False
        self.max_entries = max_entries
        self.max_negative = max_negative
        self._monotonic = monotonic
        self._entries: dict[str, tuple[R, float]] = {}
        self._negative: dict[str, float] = {}
        self._flights: dict[str, trio.Event] = {}
        self.generation = 0
        self.stats = CacheStats()

    # --- the hit path ----------------------------------------------------------------------------

    def lookup(self, key: str) -> R | None | _Miss:
        entry = self._entries.get(key)
        if entry is not None:
            if entry[1] > self._monotonic():
                self.stats.hits += 1
                return entry[0]
            if not self._stale_errors:
                self._drop(key)
            return MISS      # kept (expired) for get(): it may answer while the store is down
        until = self._negative.get(key)
        if until is not None:
            if until > self._monotonic():
                self.stats.negative_hits += 1
                return None
            del self._negative[key]
        return MISS

    # --- the miss path ---------------------------------------------------------------------------

    async def get(self, key: str) -> R | None:
        found = self.lookup(key)
        if found is not MISS:
            return found  # type: ignore[return-value]
        record: R | None = None
        for _ in range(_MAX_ATTEMPTS):
            flight = self._flights.get(key)
            if flight is not None:
                await flight.wait()
                found = self.lookup(key)
                if found is not MISS:
                    return found  # type: ignore[return-value]
                continue
            outage = self._outage_error()
            if outage is not None:          # the store just failed: answer now, do not queue for it
                return self._stale_or_raise(key, outage)
            flight = self._flights[key] = trio.Event()
            generation = self.generation
            probing = self._down_until > 0
            if probing:
                self._probing = True
            try:
                self.stats.loads += 1
                record = await self._load(key)
            except self._stale_errors as exc:
                self._down_until = self._monotonic() + self.outage_fail_fast
                self._down_error = exc
                return self._stale_or_raise(key, exc)
            finally:
                if probing:
                    self._probing = False
                del self._flights[key]
                flight.set()
            self._down_until = 0.0
            if generation == self.generation:
                self._store(key, record)
                return record
            self.stats.stale_loads += 1
        # invalidated during every attempt: answer with a fresh load, cache nothing
        self.stats.loads += 1
        return await self._load(key)

    def _outage_error(self) -> BaseException | None:
        """The store's last failure while misses should fail fast: for ``outage_fail_fast`` seconds
        after it, and afterwards while one load (the probe) is trying the store again."""
        if not self._down_until:
            return None
        if self._probing or self._monotonic() < self._down_until:
            return self._down_error
        return None

    def _stale_or_raise(self, key: str, error: BaseException) -> R:
        expired = self._entries.get(key)
        if expired is None or not self._live():
            raise type(error)(str(error)) from None
        self.stats.stale_served += 1
        return expired[0]

    # --- bookkeeping -----------------------------------------------------------------------------

    def _store(self, key: str, record: R | None) -> None:
        now = self._monotonic()
        live = self._live()
        if record is None:
            if len(self._negative) >= self.max_negative:
                del self._negative[next(iter(self._negative))]
                self.stats.evictions += 1
            self._negative[key] = now + (self.negative_ttl if live else min(self.negative_ttl, self.down_ttl))
            return
        self._negative.pop(key, None)
        previous = self._entries.get(key)
        if previous is not None:        # an expired entry kept for the store's outages: reindexed below
            self._unindex(key, previous[0])
        elif len(self._entries) >= self.max_entries:
            self._drop(next(iter(self._entries)))
            self.stats.evictions += 1
        self._entries[key] = (record, now + (self.ttl if live else min(self.ttl, self.down_ttl)))
        self._index(key, record)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._unindex(key, entry[0])
        self._negative.pop(key, None)

    def _index(self, key: str, record: R) -> None:
        """Subclasses: remember which invalidations concern ``record``."""

    def _unindex(self, key: str, record: R) -> None:
        """Subclasses: forget what ``_index`` remembered."""

    def invalidate(self, keys: Any = ()) -> None:
        """Drop these cache keys; bump the generation so racing loads do not fill them back."""
        self.generation += 1
        self.stats.invalidations += 1
        for key in list(keys):
            self._drop(key)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._negative.clear()
        self._clear_indexes()

    def _clear_indexes(self) -> None:
        pass

    def __len__(self) -> int:
        return len(self._entries)


def _add(index: dict[str, set[str]], owner: Hashable | None, key: str) -> None:
    if owner is not None:
        index.setdefault(owner, set()).add(key)  # type: ignore[arg-type]


def _remove(index: dict[str, set[str]], owner: Hashable | None, key: str) -> None:
    if owner is not None:
        keys = index.get(owner)  # type: ignore[call-overload]
        if keys is not None:
            keys.discard(key)
            if not keys:
                del index[owner]  # type: ignore[arg-type]
