"""``DualCache``: the process-wide key/value cache handed to every pre-call hook.

The seeds' handlers (the parallel-request limiter above all) call ``cache.get_cache`` /
``set_cache`` synchronously and the ``async_`` forms from coroutines, with TTLs. One instance lives
for the app's lifetime and is shared by every handler. It is in-memory only: all work is a dict
operation, so the async forms never block the Trio thread. A shared backend (Redis) would implement
the same methods.

Expiry is lazy (checked on read) plus a sweep when the store grows past ``max_size``, so no
background task is needed and nothing outlives the app.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["DualCache"]

_MISSING = object()


class DualCache:
    def __init__(self, default_ttl: float | None = None, max_size: int = 100_000) -> None:
        self.default_ttl = default_ttl
        self.max_size = max_size
        self._data: dict[str, tuple[Any, float | None]] = {}

    # -- sync API -------------------------------------------------------------------------------
    def get_cache(self, key: str, local_only: bool = False, **_: Any) -> Any:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= time.monotonic():
            self._data.pop(key, None)
            return None
        return value

    def set_cache(self, key: str, value: Any, local_only: bool = False, ttl: float | None = None, **_: Any) -> None:
        ttl = ttl if ttl is not None else self.default_ttl
        expires = time.monotonic() + ttl if ttl is not None else None
        if len(self._data) >= self.max_size and key not in self._data:
            self._evict()
        self._data[key] = (value, expires)

    def increment_cache(self, key: str, value: float, ttl: float | None = None, **_: Any) -> float:
        current = self.get_cache(key)
        new_value = (current or 0) + value
        entry = self._data.get(key)
        if entry is not None and ttl is None:
            # keep the original expiry: a counter's window does not slide with each increment
            self._data[key] = (new_value, entry[1])
        else:
            self.set_cache(key, new_value, ttl=ttl)
        return new_value

    def delete_cache(self, key: str) -> None:
        self._data.pop(key, None)

    def batch_get_cache(self, keys: list[str], **_: Any) -> list[Any]:
        return [self.get_cache(k) for k in keys]

    def flush_cache(self) -> None:
        self._data.clear()

    # -- async API (same work; kept async for handlers written against the seeds) ---------------
    async def async_get_cache(self, key: str, local_only: bool = False, **kw: Any) -> Any:
        return self.get_cache(key, local_only, **kw)

    async def async_set_cache(self, key: str, value: Any, local_only: bool = False, ttl: float | None = None, **kw: Any) -> None:
        self.set_cache(key, value, local_only, ttl=ttl, **kw)

    async def async_increment_cache(self, key: str, value: float, ttl: float | None = None, **kw: Any) -> float:
        return self.increment_cache(key, value, ttl=ttl, **kw)

    async def async_delete_cache(self, key: str) -> None:
        self.delete_cache(key)

    async def async_batch_get_cache(self, keys: list[str], **kw: Any) -> list[Any]:
        return self.batch_get_cache(keys, **kw)

    async def async_set_cache_pipeline(self, cache_list: list[tuple[str, Any]], ttl: float | None = None, **_: Any) -> None:
        for key, value in cache_list:
            self.set_cache(key, value, ttl=ttl)

    def __len__(self) -> int:
        return len(self._data)

    def _evict(self) -> None:
        now = time.monotonic()
        expired = [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]
        for k in expired:
            del self._data[k]
        while len(self._data) >= self.max_size:
            # dicts keep insertion order: drop the oldest
            self._data.pop(next(iter(self._data)))
