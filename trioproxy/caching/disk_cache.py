"""The disk response cache (LiteLLM's ``cache_params.type: disk``): answers kept in a directory.

``litellm_settings.cache: true`` with ``cache_params: {type: disk, disk_cache_dir, ttl}`` puts this
backend behind the same :class:`~.response_cache.ResponseCache` as the others (same key, controls,
stream replay, hooks on a hit).

Why it is built like this:

* **The library is LiteLLM's own**: `diskcache <https://grantjenks.com/docs/diskcache/>`_ (SQLite
  plus files, process-safe, expiry and size-bounded eviction built in), which LiteLLM's
  ``DiskCache`` uses too. Measured against a hand-written SQLite table (``bench/disk_cache_bench.py``,
  2 KB answers, CPU per operation, medians of 5 rounds on a shared machine): diskcache 63 µs per
  store and 7 µs per lookup, plain ``sqlite3`` 22 µs and 4.5 µs. Both are noise next to an upstream
  call, and diskcache brings eviction, culling and multi-process safety that the table would have
  to grow; so the library, not our own.
* **Never on the Trio thread.** Every SQLite call runs in a worker thread
  (``trio.to_thread.run_sync``) behind a :class:`trio.CapacityLimiter` of :data:`THREADS` (diskcache
  keeps one SQLite connection per thread; SQLite in WAL mode serves concurrent readers and one
  writer). :meth:`set` only queues the write (bounded, like the Redis backend's: a full queue drops
  the write and counts it); a writer task of this service stores it.
* **Shared by the worker processes of one machine** (``--workers N``: one directory, SQLite's
  locking), and kept across restarts. Not shared between machines: that is ``type: redis``.
* **Entries**: the value is ``<stored at, epoch seconds>:`` + the answer, stored as bytes (never
  pickled: nothing in the directory is executed when read), with diskcache's ``expire`` = the
  entry's ttl. ``s-maxage`` compares the stored time with now. Bounded at :data:`DEFAULT_SIZE_LIMIT`
  bytes (diskcache's default), least recently stored evicted first.
* **Lookups never fail a request**: a disk error is a miss (logged once per outage).
* **Starting does not touch the disk**: ``trioproxy check`` and building the app open nothing; the
  directory is created (with its parents) when the service starts.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import trio

__all__ = ["DEFAULT_SIZE_LIMIT", "THREADS", "DiskResponseCache"]

log = logging.getLogger("trioproxy.cache")

#: bytes kept before the least recently stored entries are evicted (diskcache's default, 1 GiB)
DEFAULT_SIZE_LIMIT = 2**30
#: worker threads doing SQLite work at once (each has its own connection)
THREADS = 4
#: writes waiting for the writer before new ones are dropped
DEFAULT_QUEUE_SIZE = 1_000


class DiskResponseCache:
    """A :class:`~.response_cache.CacheBackend` in a directory, and the service that writes to it."""

    def __init__(self, directory: Path, *, size_limit: int = DEFAULT_SIZE_LIMIT,
                 queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.directory = directory
        self.size_limit = size_limit
        self._cache: Any = None           # diskcache.Cache, opened when the service starts
        self._limiter = trio.CapacityLimiter(THREADS)
        self._send, self._receive = trio.open_memory_channel[tuple[str, bytes, float]](queue_size)
        #: writes dropped (queue full or a disk error); for tests and operators
        self.dropped = 0
        #: writes stored
        self.stored = 0
        self._failing = False
        self._writer_done = trio.Event()

    def __repr__(self) -> str:
        return f"DiskResponseCache({str(self.directory)!r})"

    # -- the backend ----------------------------------------------------------------------------
    async def get(self, key: str, max_age: float | None = None) -> bytes | None:
        if self._cache is None:
            return None
        try:
            found = await trio.to_thread.run_sync(self._cache.get, key, None, limiter=self._limiter)
        except Exception as exc:   # sqlite3.Error, OSError, a timeout: a miss, never a failed request
            self._failed("lookup", exc)
            return None
        self._recovered()
        if not isinstance(found, bytes):
            return None
        stored_at, sep, answer = found.partition(b":")
        try:
            stored = float(stored_at)
        except ValueError:
            return None            # not written by this cache: a miss, never a wrong answer
        if not sep or (max_age is not None and time.time() - stored > max_age):
            return None
        return answer

    def set(self, key: str, value: bytes, ttl: float) -> None:
        if ttl <= 0:
            return
        try:
            self._send.send_nowait((key, value, ttl))
        except (trio.WouldBlock, trio.ClosedResourceError):
            self.dropped += 1

    # -- the service ----------------------------------------------------------------------------
    def _open(self) -> Any:
        import diskcache

        self.directory.mkdir(parents=True, exist_ok=True)
        return diskcache.Cache(str(self.directory), size_limit=self.size_limit,
                               eviction_policy="least-recently-stored")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the directory (a worker thread), then store what :meth:`set` queued."""
        try:
            self._cache = await trio.to_thread.run_sync(self._open, limiter=self._limiter)
        except Exception as exc:   # not writable, not a directory…: the proxy serves, uncached
            log.error("response cache: cannot open the disk cache in %s (%s); every lookup misses",
                      self.directory, exc)
            self._writer_done.set()
            task_status.started()
            return
        task_status.started()
        try:
            async with self._receive:
                async for key, value, ttl in self._receive:
                    stamped = b"%.6f:" % time.time() + value
                    try:
                        await trio.to_thread.run_sync(self._store, key, stamped, ttl, limiter=self._limiter)
                    except Exception as exc:
                        self.dropped += 1
                        self._failed("store", exc)
                        continue
                    self.stored += 1
                    self._recovered()
        finally:
            self._writer_done.set()

    def _store(self, key: str, value: bytes, ttl: float) -> None:
        self._cache.set(key, value, expire=ttl)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - the services interface
        """Store the writes already queued (up to ``timeout``), then close the directory."""
        self._send.close()
        with trio.move_on_after(timeout):
            await self._writer_done.wait()
        if self._cache is not None:
            cache, self._cache = self._cache, None
            await trio.to_thread.run_sync(cache.close, limiter=self._limiter)

    # -- one log line per outage ----------------------------------------------------------------
    def _failed(self, what: str, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            log.warning("response cache: disk %s failed (%s); lookups miss and stores are dropped until it "
                        "works again", what, exc)

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.warning("response cache: the disk cache works again")
