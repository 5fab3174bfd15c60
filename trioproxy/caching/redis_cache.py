"""The shared response cache: answers stored in Redis, so every worker and instance hits them.

``litellm_settings.cache: true`` with ``cache_params: {type: redis, host, port, password, ttl,
namespace, supported_call_types}`` (LiteLLM's names) makes :func:`~.response_cache.build_response_cache`
put this backend behind the same :class:`~.response_cache.ResponseCache` as the local one: the key,
the per-request controls, stream replay and the hooks on a hit are the same code.

Why it is built like this:

* **The client is the project's own** (``coordination/redis.py``: Trio, hiredis, one pipelined
  connection, typed errors, a deadline on every call, reconnect). The cache has a client *of its
  own*, not the coordination layer's: a stored answer can be megabytes, and on one multiplexed
  connection it would queue every rate-limit script behind it.
* **Expiry is Redis's** (``SET … PX ttl``): an entry disappears on every instance at once, and no
  sweep runs anywhere. ``s-maxage`` (a request accepting only a young enough entry) needs the
  entry's age, which is taken from Redis too, never from the instances' clocks: each value is
  stored as ``<ttl in ms>:`` + the answer, and a lookup asks ``GET`` and ``PTTL`` in one round
  trip: age = stored ttl − remaining ttl.
* **Lookups never fail a request.** Redis down, slow (the client's 0.5 s deadline) or answering an
  error: the lookup is a miss (the upstream answers), logged once per outage, not once per request.
* **Stores never block the request.** :meth:`set` is called by the pipeline's observer on the Trio
  thread after the answer was sent; it only queues the write (bounded: when ``queue_size`` writes
  are waiting, new ones are dropped and counted — a cache may forget, it must not grow without
  bound during an outage). A writer task of this service sends them.
* **Keys**: ``trioproxy:cache:`` + the request's key (``namespace:`` + SHA-256 when a namespace is
  set, so ``SCAN trioproxy:cache:team-a:*`` finds one namespace's entries).

Run as a service (``proxy.py`` puts it in the app's lifetime): :meth:`run` starts the client and
the writer; :meth:`drain` sends the writes already queued (within the shutdown timeout), then
closes the client.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from ..coordination.errors import RedisError
from ..coordination.redis import RedisClient

__all__ = ["DEFAULT_PREFIX", "RedisResponseCache"]

log = logging.getLogger("trioproxy.cache")

DEFAULT_PREFIX = "trioproxy:cache:"
#: writes waiting for the writer before new ones are dropped
DEFAULT_QUEUE_SIZE = 1_000


class RedisResponseCache:
    """A :class:`~.response_cache.CacheBackend` on Redis, and the service that runs its client."""

    def __init__(self, client: RedisClient, *, prefix: str = DEFAULT_PREFIX,
                 queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.client = client
        self.prefix = prefix
        self._send, self._receive = trio.open_memory_channel[tuple[str, bytes, int]](queue_size)
        #: writes dropped (queue full, Redis unavailable, or an error reply); for tests and operators
        self.dropped = 0
        #: writes Redis acknowledged
        self.stored = 0
        self._failing = False
        self._writer_done = trio.Event()
        self._cancel: trio.CancelScope | None = None

    def __repr__(self) -> str:
        return f"RedisResponseCache({self.client.url.address!r})"

    # -- the backend ----------------------------------------------------------------------------
    async def get(self, key: str, max_age: float | None = None) -> bytes | None:
        name = self.prefix + key
        try:
            value, remaining = await self.client.execute_many([("GET", name), ("PTTL", name)])
        except RedisError as exc:
            self._failed("lookup", exc)
            return None
        if isinstance(value, BaseException) or isinstance(remaining, BaseException) or value is None:
            if isinstance(value, BaseException):
                self._failed("lookup", value)
            return None
        self._recovered()
        stored_ttl, sep, answer = value.partition(b":")
        if not sep or not stored_ttl.isdigit():
            return None          # not written by this cache: a miss, never a wrong answer
        if max_age is not None and isinstance(remaining, int) and remaining >= 0:
            age = (int(stored_ttl) - remaining) / 1000
            if age > max_age:
                return None
        return answer

    def set(self, key: str, value: bytes, ttl: float) -> None:
        ttl_ms = int(ttl * 1000)
        if ttl_ms <= 0:
            return
        try:
            self._send.send_nowait((self.prefix + key, value, ttl_ms))
        except (trio.WouldBlock, trio.ClosedResourceError):
            self.dropped += 1

    # -- the service ----------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The client and the writer; started once the client made its first connection attempt
        (the proxy serves with Redis down: lookups miss meanwhile)."""
        with trio.CancelScope() as self._cancel:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.client.run)
                nursery.start_soon(self._write_loop)
                task_status.started()

    async def _write_loop(self) -> None:
        try:
            async with self._receive:
                async for name, value, ttl_ms in self._receive:
                    try:
                        reply = await self.client.execute("SET", name, b"%d:" % ttl_ms + value, "PX", ttl_ms)
                    except RedisError as exc:
                        self.dropped += 1
                        self._failed("store", exc)
                        continue
                    if reply == b"OK":
                        self.stored += 1
                        self._recovered()
        finally:
            self._writer_done.set()

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - the services interface
        """Send the writes already queued (up to ``timeout``), then close the client."""
        self._send.close()
        with trio.move_on_after(timeout):
            await self._writer_done.wait()
        await self.client.aclose()
        if self._cancel is not None:
            self._cancel.cancel()

    # -- one log line per outage ----------------------------------------------------------------------
    def _failed(self, what: str, exc: Any) -> None:
        if not self._failing:
            self._failing = True
            log.warning("response cache: Redis %s failed (%s); lookups miss and stores are dropped until it "
                        "answers again", what, exc)

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.warning("response cache: Redis answers again")
