"""The invalidation bus: tell every process to drop a cached key/team/user/customer, within 1 s.

A small protocol (:class:`InvalidationBus`) with two implementations here — :class:`RedisBus`
(pub/sub) and :class:`PostgresBus` (LISTEN/NOTIFY, for deployments without Redis) — and an
in-process one in the store for a single process. A mutation anywhere publishes an
:class:`Invalidation`; every process's subscribers get ``on_event(event)`` and drop that entry.

Both channels are at-most-once: a subscriber that was disconnected missed what was published
meanwhile, and a connection can stall without closing. So the bus keeps two promises besides
delivery, which together bound staleness to about a second (issue #13):

* **``on_reset()`` on every (re)subscribe and whenever the channel is known to be down**: the
  subscriber clears everything it cached (what it missed can be anything).
* **``live`` is False while the channel is not confirmed working**: the subscription is PINGed
  every ``ping_interval`` (0.5 s) — Redis allows PING in subscribed mode, PostgreSQL gets
  ``SELECT 1`` on the listening connection — and if no answer comes within ``pong_timeout`` (1 s)
  the bus calls ``on_reset``, sets ``live = False`` and reconnects. While ``live`` is False a cache
  must not serve from memory: read through to the database until the bus is live again.

Callbacks are synchronous and must be quick (drop a dict entry); one that raises is logged and
does not stop the others. Run the bus as a service in the app nursery (``await nursery.start(
bus.run)`` returns after the first subscription attempt) and call ``drain`` at shutdown.

PostgreSQL: LISTEN needs a session connection (not PgBouncer in transaction mode); ``NOTIFY`` is
delivered at COMMIT, so the store sends it *inside the mutation's transaction* with
:func:`notify_sql` — the invalidation is published if and only if the change committed. The
connection is driven with ``psycopg.pq`` in non-blocking mode and ``trio.lowlevel.wait_readable``
on its socket: no thread per listener (``state-layer.md`` §5c). Only the connection start
(DNS resolution in libpq) runs in a worker thread.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import trio
from psycopg import pq

from .errors import CoordinationUnavailable, PostgresUnavailable, RedisUnavailable
from .redis import RedisClient, RedisConnection

__all__ = [
    "DEFAULT_PG_CHANNEL",
    "DEFAULT_REDIS_CHANNEL",
    "Invalidation",
    "InvalidationBus",
    "PostgresBus",
    "RedisBus",
    "Subscription",
    "notify_sql",
]

log = logging.getLogger("trioproxy.coordination.bus")

DEFAULT_REDIS_CHANNEL = "trioproxy:invalidate"
DEFAULT_PG_CHANNEL = "trioproxy_invalidate"
PING_INTERVAL = 0.5
PONG_TIMEOUT = 1.0


@dataclass(frozen=True, slots=True)
class Invalidation:
    """What changed: ``kind`` (``key``, ``team``, ``user``, ``customer``, ``all`` … — the store's
    vocabulary, no ``:`` in it) and the entity's ``id`` (for a key: its SHA-256, never the key)."""

    kind: str
    id: str = ""

    def __post_init__(self) -> None:
        if not self.kind or ":" in self.kind:
            raise ValueError(f"invalidation kind must be non-empty without ':' (got {self.kind!r})")

    def encode(self) -> str:
        return f"{self.kind}:{self.id}"

    @classmethod
    def decode(cls, payload: str | bytes) -> Invalidation:
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        kind, _, ident = text.partition(":")
        return cls(kind or "all", ident)


class Subscription:
    """Handle returned by :meth:`InvalidationBus.subscribe`; :meth:`cancel` unsubscribes."""

    __slots__ = ("_bus", "on_event", "on_reset")

    def __init__(self, bus: _BusBase, on_event: Callable[[Invalidation], None],
                 on_reset: Callable[[], None]) -> None:
        self._bus = bus
        self.on_event = on_event
        self.on_reset = on_reset

    def cancel(self) -> None:
        if self in self._bus._subscriptions:
            self._bus._subscriptions.remove(self)


@runtime_checkable
class InvalidationBus(Protocol):
    """What caches and admin routes use; the store's in-process bus implements it too."""

    @property
    def live(self) -> bool:
        """True while the channel is confirmed working; False → caches read through."""
        ...

    def subscribe(self, on_event: Callable[[Invalidation], None],
                  on_reset: Callable[[], None]) -> Subscription:
        ...

    async def publish(self, event: Invalidation) -> None:
        ...

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        ...

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109
        ...


class _BusBase:
    """Subscribers, dispatch, the live flag and the reconnect loop shared by both channels."""

    def __init__(self, *, ping_interval: float = PING_INTERVAL, pong_timeout: float = PONG_TIMEOUT,
                 backoff_initial: float = 0.05, backoff_max: float = 1.0) -> None:
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._subscriptions: list[Subscription] = []
        self._live = False
        self._changed = trio.lowlevel.ParkingLot()
        self._scope: trio.CancelScope | None = None
        #: how many times a subscription was confirmed (1 + resubscriptions); for tests and metrics
        self.subscribed = 0
        self.resets = 0
        self.received = 0

    @property
    def live(self) -> bool:
        return self._live

    async def wait_live(self) -> None:
        """Wait until subscribed (start-up and tests)."""
        while not self._live:
            await self._changed.park()

    async def wait_not_live(self) -> None:
        while self._live:
            await self._changed.park()

    def subscribe(self, on_event: Callable[[Invalidation], None],
                  on_reset: Callable[[], None]) -> Subscription:
        subscription = Subscription(self, on_event, on_reset)
        self._subscriptions.append(subscription)
        return subscription

    def _deliver(self, payload: str | bytes) -> None:
        self.received += 1
        event = Invalidation.decode(payload)
        for subscription in list(self._subscriptions):
            try:
                subscription.on_event(event)
            except Exception:
                log.exception("invalidation subscriber %r failed on %s", subscription.on_event, event)

    def _reset(self, live: bool, reason: str) -> None:
        """Tell every subscriber to clear its cache; then flip ``live``."""
        self.resets += 1
        if not live:
            self._live = False
        for subscription in list(self._subscriptions):
            try:
                subscription.on_reset()
            except Exception:
                log.exception("invalidation subscriber %r failed on reset (%s)", subscription.on_reset, reason)
        if live:
            self._live = True
            self.subscribed += 1
        self._changed.unpark_all()

    async def _session(self, task_status: Callable[[], None]) -> None:
        raise NotImplementedError

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Subscribe, dispatch, and resubscribe with backoff for ever (until cancelled/drained)."""
        started = False

        def mark_started() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        backoff = self.backoff_initial
        with trio.CancelScope() as self._scope:
            while True:
                was_live = self.subscribed
                try:
                    await self._session(mark_started)
                    reason = "connection closed"
                except CoordinationUnavailable as exc:
                    reason = str(exc)
                except Exception as exc:    # a bug must not take the proxy down: stay stale, retry
                    log.exception("invalidation bus failed")
                    reason = f"unexpected error: {exc!r}"
                if self._live:
                    self._reset(False, reason)
                if self.subscribed != was_live:      # it had been up: retry at once, then back off
                    backoff = self.backoff_initial
                log.warning("invalidation bus down (%s); caches read through until resubscribed", reason)
                mark_started()
                await trio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, self.backoff_max)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - the services interface
        if self._scope is not None:
            self._scope.cancel()
        self._live = False
        await trio.lowlevel.checkpoint()


# -- Redis pub/sub ------------------------------------------------------------------------------------
class RedisBus(_BusBase):
    """Invalidations over Redis pub/sub: PUBLISH on the client's command connection, SUBSCRIBE on a
    connection of its own."""

    def __init__(self, client: RedisClient, *, channel: str = DEFAULT_REDIS_CHANNEL, **kw: Any) -> None:
        super().__init__(**kw)
        self.client = client
        self.channel = channel

    async def publish(self, event: Invalidation) -> None:
        """PUBLISH; :class:`RedisUnavailable` if Redis is down (the mutation itself is durable in the
        database; other instances recover through their reset-on-resubscribe)."""
        await self.client.execute("PUBLISH", self.channel, event.encode())

    async def _session(self, started: Callable[[], None]) -> None:
        conn = await self.client.open_connection(timeout=self.pong_timeout)
        try:
            conn.send("SUBSCRIBE", self.channel)
            with trio.move_on_after(self.pong_timeout) as scope:
                await conn.flush()
                reply = await conn.read_reply()
            if scope.cancelled_caught:
                raise RedisUnavailable("no SUBSCRIBE confirmation within the PONG timeout")
            if not (isinstance(reply, list) and reply[:1] == [b"subscribe"]):
                raise RedisUnavailable(f"unexpected reply to SUBSCRIBE: {reply!r}")
            self._reset(True, "subscribed")
            started()
            await self._serve(conn)
        finally:
            await conn.aclose()

    async def _serve(self, conn: RedisConnection) -> None:
        pong = trio.Event()
        stale: list[str] = []

        async def reader() -> None:
            nonlocal pong
            while True:
                reply = await conn.read_reply()
                if isinstance(reply, list) and reply:
                    what = reply[0]
                    if what == b"message" and len(reply) == 3:
                        self._deliver(reply[2])
                    elif what == b"pong":
                        pong.set()

        async def pinger() -> None:
            nonlocal pong
            while True:
                await trio.sleep(self.ping_interval)
                pong = trio.Event()
                conn.send("PING")
                with trio.move_on_after(self.pong_timeout):
                    await conn.flush()
                    await pong.wait()
                if not pong.is_set():
                    stale.append(f"no PONG within {self.pong_timeout:g} s")
                    nursery.cancel_scope.cancel()
                    return

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                nursery.start_soon(pinger)
        except* RedisUnavailable as group:
            raise group.exceptions[0] from None
        if stale:
            raise RedisUnavailable(stale[0])


# -- PostgreSQL LISTEN/NOTIFY -------------------------------------------------------------------------
_CHANNEL_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def notify_sql(event: Invalidation, channel: str = DEFAULT_PG_CHANNEL) -> tuple[str, tuple[str, str]]:
    """``(sql, params)`` to run inside a mutation's transaction (psycopg placeholders): delivered to
    every listener at COMMIT, never if the transaction rolls back."""
    return "SELECT pg_notify(%s, %s)", (channel, event.encode())


class _PgSession:
    """One non-blocking libpq connection: LISTEN, notifications, and one query at a time."""

    def __init__(self, pgconn: pq.abc.PGconn, on_notify: Callable[[bytes], None]) -> None:
        self.pgconn = pgconn
        self.on_notify = on_notify
        self._lock = trio.Lock()
        self._results: list[Any] = []
        self._done: trio.Event | None = None

    @classmethod
    async def connect(cls, dsn: str, on_notify: Callable[[bytes], None]) -> _PgSession:
        # connect_start resolves host names synchronously inside libpq: keep that off the Trio thread
        pgconn = await trio.to_thread.run_sync(pq.PGconn.connect_start, dsn.encode())
        try:
            if pgconn.status == pq.ConnStatus.BAD:
                raise PostgresUnavailable(_pg_error(pgconn, "cannot start a connection"))
            while True:
                status = pgconn.connect_poll()
                if status == pq.PollingStatus.OK:
                    break
                if status == pq.PollingStatus.FAILED:
                    raise PostgresUnavailable(_pg_error(pgconn, "connection failed"))
                if status == pq.PollingStatus.READING:
                    await trio.lowlevel.wait_readable(pgconn.socket)
                else:
                    await trio.lowlevel.wait_writable(pgconn.socket)
            pgconn.nonblocking = 1
        except BaseException:
            pgconn.finish()
            raise
        return cls(pgconn, on_notify)

    def close(self) -> None:
        self.pgconn.finish()

    async def query(self, sql: bytes, params: list[bytes | None] | None = None) -> None:
        """Run one statement; raises :class:`PostgresUnavailable` on any failure. The reader task
        (:meth:`pump`) collects the result."""
        async with self._lock:
            pgconn = self.pgconn
            self._results = []
            self._done = done = trio.Event()
            try:
                if params is None:
                    pgconn.send_query(sql)
                else:
                    pgconn.send_query_params(sql, params)
                while pgconn.flush() == 1:
                    await trio.lowlevel.wait_writable(pgconn.socket)
            except Exception as exc:       # psycopg.OperationalError from libpq
                raise PostgresUnavailable(f"PostgreSQL query failed: {exc}") from None
            await done.wait()
            for result in self._results:
                if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
                    message = result.error_message.decode("utf-8", "replace").strip()
                    raise PostgresUnavailable(f"PostgreSQL refused {sql.split()[0].decode()}: {message}")

    async def pump(self) -> None:
        """Read forever: notifications to ``on_notify``, results to the running :meth:`query`."""
        pgconn = self.pgconn
        while True:
            await trio.lowlevel.wait_readable(pgconn.socket)
            try:
                pgconn.consume_input()
                while (notify := pgconn.notifies()) is not None:
                    self.on_notify(notify.extra)
                while self._done is not None and not self._done.is_set() and not pgconn.is_busy():
                    result = pgconn.get_result()
                    if result is None:
                        self._done.set()
                    else:
                        self._results.append(result)
            except PostgresUnavailable:
                raise
            except Exception as exc:       # the server went away: consume_input raised
                raise PostgresUnavailable(f"PostgreSQL connection lost: {exc}") from None
            if pgconn.status == pq.ConnStatus.BAD:
                raise PostgresUnavailable("PostgreSQL connection lost")


def _pg_error(pgconn: pq.abc.PGconn, what: str) -> str:
    message = pgconn.error_message.decode("utf-8", "replace").strip()
    return f"{what}: {message}" if message else what


class PostgresBus(_BusBase):
    """Invalidations over PostgreSQL LISTEN/NOTIFY (one session connection per process).

    ``publish`` sends ``pg_notify`` on that connection (autocommit); mutations should rather send
    :func:`notify_sql` inside their own transaction.
    """

    def __init__(self, dsn: str, *, channel: str = DEFAULT_PG_CHANNEL, **kw: Any) -> None:
        super().__init__(**kw)
        if not _CHANNEL_NAME.match(channel):
            raise ValueError(f"PostgreSQL channel must be a lower-case identifier, got {channel!r}")
        self.dsn = dsn
        self.channel = channel
        self._session_now: _PgSession | None = None

    async def publish(self, event: Invalidation) -> None:
        session = self._session_now
        if session is None:
            raise PostgresUnavailable("the invalidation bus has no PostgreSQL connection right now")
        with trio.move_on_after(self.pong_timeout) as scope:
            await session.query(b"SELECT pg_notify($1, $2)", [self.channel.encode(), event.encode().encode()])
        if scope.cancelled_caught:
            raise PostgresUnavailable(f"NOTIFY not acknowledged within {self.pong_timeout:g} s")

    async def _session(self, started: Callable[[], None]) -> None:
        with trio.move_on_after(self.pong_timeout * 2) as scope:
            session = await _PgSession.connect(self.dsn, self._deliver)
        if scope.cancelled_caught:
            raise PostgresUnavailable(f"no PostgreSQL connection within {self.pong_timeout * 2:g} s")
        stale: list[str] = []
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(session.pump)
                with trio.move_on_after(self.pong_timeout) as scope:
                    await session.query(f'LISTEN "{self.channel}"'.encode())
                if scope.cancelled_caught:
                    raise PostgresUnavailable("LISTEN not confirmed in time")
                self._session_now = session
                self._reset(True, "listening")
                started()
                while True:
                    await trio.sleep(self.ping_interval)
                    with trio.move_on_after(self.pong_timeout) as scope:
                        await session.query(b"SELECT 1")
                    if scope.cancelled_caught:
                        stale.append(f"no answer to the heartbeat within {self.pong_timeout:g} s")
                        nursery.cancel_scope.cancel()
        except* PostgresUnavailable as group:
            raise group.exceptions[0] from None
        finally:
            self._session_now = None
            session.close()
        if stale:
            raise PostgresUnavailable(stale[0])
