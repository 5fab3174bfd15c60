"""A small Redis client for Trio: one pipelined, multiplexed connection, hiredis for parsing.

Why our own client (the project's rule is a maintained library unless numbers say otherwise):
``bench/redis_clients.py`` runs the hot-path call — EVALSHA of a small script — from Trio with each
candidate, 6 interleaved rounds, medians, two runs on the shared 2-core machine (load ~2 / ~5):

===============================================  ===========  ===============  ===================
client (under Trio)                              c=1 p50 µs   c=32 calls/s     CPU µs/call, c=32
===============================================  ===========  ===============  ===================
this module + hiredis, one connection            55 / 57      54,284 / 24,657  12 / 14
coredis 6.9 (anyio)                              139 / 145    13,406 / 4,782   70 / 87
redis-py 8.1 sync + hiredis, ``trio.to_thread``  125 / 106    7,324 / 6,522    148 / 93
===============================================  ===========  ===============  ===================

Issue #13 gives coordination ≤ 2 round trips and ≤ 100 µs of the proxy's own CPU per request.
Two calls with coredis would take 140–175 µs, with redis-py in threads 190–300 µs plus a thread hop
of latency each; with this client 25–30 µs, leaving room for the rest of the work (the whole
reserve + settle of six counters measured ~60 µs per request, ``bench/coordination_hotpath.py``).
coredis stays the documented route for Redis Cluster and Sentinel, which this client does not
speak. valkey-glide was not re-measured (``state-layer.md`` §5b: 2.2× this client's cost per call,
Trio support still being fixed upstream, 44 MB installed).

How it works, and why:

* **One connection carries every caller** (Redis answers in order, so replies are matched FIFO).
  :meth:`RedisClient.execute` appends the encoded command *and* its reply slot in one await-free
  step, then parks; a writer task flushes whatever accumulated in one ``send_all`` (natural
  pipelining under load: 32 concurrent callers cost one syscall pair, not 32); a reader task feeds
  ``hiredis.Reader`` and resolves slots in order. A caller that is cancelled or times out leaves its
  slot behind, emptied: the reply is still read, then dropped, so the FIFO stays aligned.
* **Direct write** when the connection is quiet (no reply outstanding, nothing queued): the caller
  writes its command on the socket itself (``os.write`` on the non-blocking descriptor, as the
  server connection does for responses, ``cli/server_connection.py``), and the reader waits for
  readability before its one ``read``. A proxy's requests reach Redis one or two at a time, so the
  writer's hop (wake it, its ``send_all``, the yield after it) was paid per call: instrumented A/B
  of ``bench/coordination_hotpath.py`` at one caller, reserve + settle went from 8 Trio task steps
  and 7.7 scheduler rounds to 4 and 4, and from 167–183 to 108–120 µs of CPU (load average ~7).
  With replies outstanding the command queues for the writer as before (under load the batching
  wins: c=16 unchanged at 65–73 µs). Not for TLS (``trio.SSLStream`` owns its socket). The bytes
  and their order are the same: nothing else is queued or in flight when a caller writes.
* **Every call has a deadline** (``timeout``, default 0.5 s): during an outage a request is answered
  within a second (issue #13). Errors are typed (:mod:`.errors`): :class:`RedisUnavailable` when
  there is no connection or it drops with the call pending, :class:`RedisTimeout` (a subclass) when
  no reply came in time, :class:`RedisReplyError` for ``-ERR`` replies. A call never hangs.
* **Reconnect with backoff** (50 ms doubling to 1 s): pending calls fail at once with
  :class:`RedisUnavailable`; while the last connection attempt failed, new calls fail at once too
  (no 0.5 s wait per request during an outage); while a first attempt is still running they wait
  for it up to their deadline. A watchdog drops a connection whose oldest reply is overdue by
  ``stall_timeout`` (a stopped or partitioned server never closes the socket).
* **Scripts**: :meth:`RedisClient.evalsha` sends EVALSHA and, on ``NOSCRIPT`` (a restarted or
  failed-over server has an empty script cache), EVAL with the source, which caches it again.
* **Pub/sub and blocking commands** get a connection of their own
  (:meth:`RedisClient.open_connection` → :class:`RedisConnection`): a subscribed connection or a
  ``XREADGROUP BLOCK`` would hold up every reply queued behind it.
* URLs: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS through
  ``trio.SSLStream``; ``?ssl_cert_reqs=none`` to skip verification, ``?ssl_ca_certs=PATH``), and
  ``unix:///path/redis.sock?db=N``. Credentials go through ``AUTH [user] password``; ``SELECT`` picks
  the database. The password never appears in a repr, a log line or an error.

Run it as a service in the app nursery: ``await nursery.start(client.run)`` (returns after the
first connection attempt, successful or not), ``await client.drain(timeout)`` at shutdown.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import ssl
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis
import outcome
import trio

from .errors import RedisReplyError, RedisServerUnavailable, RedisTimeout, RedisUnavailable

__all__ = [
    "DEFAULT_TIMEOUT",
    "RedisClient",
    "RedisConnection",
    "RedisURL",
    "Script",
    "StreamEntry",
]

log = logging.getLogger("trioproxy.coordination.redis")

#: seconds a call may take before it fails with RedisTimeout (issue #13: ≤ 0.5 s)
DEFAULT_TIMEOUT = 0.5
RECEIVE_SIZE = 65536
_PACK = hiredis.pack_command


# -- configuration ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RedisURL:
    """Where and how to connect. ``str()``/``repr()`` never show the password."""

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_verify: bool = True
    tls_ca_file: str | None = None
    unix_path: str | None = None

    @classmethod
    def parse(cls, url: str) -> RedisURL:
        """``redis://[[user]:password@]host[:port][/db]``, ``rediss://…``, ``unix:///path?db=N``."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"Redis URL must start with redis://, rediss:// or unix:// "
                             f"(got {scheme + '://' if scheme else 'no scheme'})")
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        try:
            db = int(query.get("db") or (parts.path.strip("/") if scheme != "unix" else "") or 0)
        except ValueError:
            raise ValueError(f"Redis URL: database must be a number, got {parts.path.strip('/')!r}") from None
        if db < 0:
            raise ValueError("Redis URL: database must be ≥ 0")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else query.get("password")
        if scheme == "unix":
            if not parts.path:
                raise ValueError("Redis URL: unix:// needs a socket path (unix:///run/redis.sock)")
            return cls(db=db, username=username, password=password, unix_path=parts.path)
        try:
            port = parts.port or 6379
        except ValueError:
            raise ValueError("Redis URL: port must be a number between 1 and 65535") from None
        reqs = query.get("ssl_cert_reqs", "required").lower()
        if reqs not in ("required", "none", "optional"):
            raise ValueError(f"Redis URL: ssl_cert_reqs must be required or none, got {reqs!r}")
        return cls(host=parts.hostname or "127.0.0.1", port=port, db=db, username=username,
                   password=password, tls=scheme == "rediss", tls_verify=reqs != "none",
                   tls_ca_file=query.get("ssl_ca_certs"))

    @property
    def address(self) -> str:
        """Where, without credentials (for logs and errors)."""
        if self.unix_path:
            return f"unix://{self.unix_path}"
        return f"{'rediss' if self.tls else 'redis'}://{self.host}:{self.port}/{self.db}"

    def __str__(self) -> str:
        return self.address

    def __repr__(self) -> str:
        return f"RedisURL({self.address!r}{', password=***' if self.password else ''})"


class Script:
    """A Lua script called by SHA-1 (EVALSHA), reloaded transparently after ``NOSCRIPT``."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"Script({self.sha[:12]}…)"


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One Redis Stream entry. ``fields`` is None for an entry deleted while it was pending."""

    id: bytes
    fields: dict[bytes, bytes] | None


#: error-reply codes that mean "the server cannot serve now" (see RedisServerUnavailable)
_UNAVAILABLE_CODES = frozenset({"OOM", "READONLY", "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "NOREPLICAS"})


def _reply_error(reply: Any) -> RedisReplyError:
    text = str(reply)
    if text.split(" ", 1)[0] in _UNAVAILABLE_CODES:
        return RedisServerUnavailable(text)
    return RedisReplyError(text)


_IO_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, hiredis.ProtocolError,
              ssl.SSLError)


# -- stream commands (shared by the multiplexed client and dedicated connections) ------------------
class _StreamCommands:
    """Redis Stream primitives for the spend outbox (XADD, consumer groups, XACK, XAUTOCLAIM)."""

    async def execute(self, *args: Any, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        raise NotImplementedError

    async def xadd(self, stream: str | bytes, fields: Mapping[str | bytes, Any], *,
                   id: str = "*", maxlen: int | None = None, approximate: bool = True,
                   timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        """Append an entry; returns its id. ``maxlen`` trims (``~`` unless ``approximate=False``)."""
        args: list[Any] = ["XADD", stream]
        if maxlen is not None:
            args += ["MAXLEN", "~" if approximate else "=", maxlen]
        args.append(id)
        for name, value in fields.items():
            args += [name, value]
        return await self.execute(*args, timeout=timeout)

    async def xgroup_create(self, stream: str | bytes, group: str, *, start: str = "0",
                            mkstream: bool = True, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Create a consumer group; False if it already exists (idempotent, for every instance)."""
        args: list[Any] = ["XGROUP", "CREATE", stream, group, start]
        if mkstream:
            args.append("MKSTREAM")
        try:
            await self.execute(*args, timeout=timeout)
        except RedisReplyError as exc:
            if exc.code == "BUSYGROUP":
                return False
            raise
        return True

    async def xreadgroup(self, group: str, consumer: str, stream: str | bytes, *, start: str = ">",
                         count: int = 100, block_ms: int | None = None, noack: bool = False,
                         timeout: float | None = None) -> list[StreamEntry]:  # noqa: ASYNC109
        """New entries for this consumer (``start=">"``) or its own pending ones (``start="0"``).

        ``block_ms`` only on a dedicated :class:`RedisConnection` (it would stall the shared one);
        give a ``timeout`` above it.
        """
        args: list[Any] = ["XREADGROUP", "GROUP", group, consumer, "COUNT", count]
        if block_ms is not None:
            if isinstance(self, RedisClient):
                raise ValueError("XREADGROUP BLOCK would stall the shared connection: "
                                 "use client.open_connection() for blocking reads")
            args += ["BLOCK", block_ms]
        if noack:
            args.append("NOACK")
        args += ["STREAMS", stream, start]
        reply = await self.execute(*args, timeout=timeout)
        if not reply:
            return []
        return [_entry(item) for item in reply[0][1]]

    async def xack(self, stream: str | bytes, group: str, *ids: bytes | str,
                   timeout: float | None = None) -> int:  # noqa: ASYNC109
        """Acknowledge entries (after they are durable elsewhere); returns how many were pending."""
        if not ids:
            return 0
        return await self.execute("XACK", stream, group, *ids, timeout=timeout)

    async def xautoclaim(self, stream: str | bytes, group: str, consumer: str, min_idle_ms: int, *,
                         start: str | bytes = "0-0", count: int = 100,
                         timeout: float | None = None,  # noqa: ASYNC109
                         ) -> tuple[bytes, list[StreamEntry], list[bytes]]:
        """Take over entries pending for ≥ ``min_idle_ms`` in other consumers (a dead instance).

        Returns ``(next_start, entries, deleted_ids)``; ``next_start == b"0-0"`` when the scan is done.
        """
        reply = await self.execute("XAUTOCLAIM", stream, group, consumer, min_idle_ms, start,
                                   "COUNT", count, timeout=timeout)
        deleted = list(reply[2]) if len(reply) > 2 else []
        return reply[0], [_entry(item) for item in reply[1] if item is not None], deleted

    async def xdel(self, stream: str | bytes, *ids: bytes | str,
                   timeout: float | None = None) -> int:  # noqa: ASYNC109
        if not ids:
            return 0
        return await self.execute("XDEL", stream, *ids, timeout=timeout)

    async def xpending_count(self, stream: str | bytes, group: str,
                             timeout: float | None = None) -> int:  # noqa: ASYNC109
        """How many entries the group has delivered and not yet acknowledged."""
        reply = await self.execute("XPENDING", stream, group, timeout=timeout)
        return int(reply[0])


def _entry(item: Sequence[Any]) -> StreamEntry:
    entry_id, flat = item[0], item[1]
    if flat is None:
        return StreamEntry(entry_id, None)
    return StreamEntry(entry_id, dict(zip(flat[::2], flat[1::2], strict=True)))


# -- one plain connection ---------------------------------------------------------------------------
async def _open_stream(url: RedisURL) -> trio.abc.Stream:
    if url.unix_path:
        return await trio.open_unix_socket(url.unix_path)
    if not url.tls:
        return await trio.open_tcp_stream(url.host, url.port)
    context = ssl.create_default_context(cafile=url.tls_ca_file)
    if not url.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    stream = await trio.open_ssl_over_tcp_stream(url.host, url.port, ssl_context=context)
    await stream.do_handshake()
    return stream


def _handshake_commands(url: RedisURL, name: str | None) -> list[tuple[Any, ...]]:
    commands: list[tuple[Any, ...]] = []
    if url.password is not None:
        commands.append(("AUTH", url.username, url.password) if url.username else ("AUTH", url.password))
    if url.db:
        commands.append(("SELECT", url.db))
    if name:
        commands.append(("CLIENT", "SETNAME", name))
    return commands


class RedisConnection(_StreamCommands):
    """One connection used by one task at a time: pub/sub, blocking reads, the handshake.

    Not multiplexed: :meth:`execute` sends and waits for its own reply. Open with
    :meth:`RedisClient.open_connection` or :meth:`open`; close with :meth:`aclose`
    (or ``async with``).
    """

    def __init__(self, stream: trio.abc.Stream, url: RedisURL) -> None:
        self.stream = stream
        self.url = url
        self._reader = hiredis.Reader()
        self._out = bytearray()

    @classmethod
    async def open(cls, url: RedisURL | str, *, timeout: float = 2 * DEFAULT_TIMEOUT,  # noqa: ASYNC109
                   name: str | None = "trioproxy") -> RedisConnection:
        """Connect and authenticate/select within ``timeout``; :class:`RedisUnavailable` if not."""
        url = RedisURL.parse(url) if isinstance(url, str) else url
        stream = None
        try:
            with trio.fail_after(timeout):
                stream = await _open_stream(url)
                conn = cls(stream, url)
                commands = _handshake_commands(url, name)
                for command in commands:
                    conn.send(*command)
                await conn.flush()
                for command in commands:
                    reply = await conn.read_reply()
                    if isinstance(reply, hiredis.ReplyError) and command[0] != "CLIENT":
                        raise RedisUnavailable(f"Redis at {url.address} refused {command[0]}: {reply}")
                return conn
        except trio.TooSlowError:
            error: RedisUnavailable = RedisTimeout(f"Redis at {url.address}: no connection within {timeout:g} s")
        except RedisUnavailable as exc:
            error = exc
        except _IO_ERRORS as exc:
            error = RedisUnavailable(f"cannot connect to Redis at {url.address}: {_describe(exc)}")
        if stream is not None:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)
        raise error

    def send(self, *args: Any) -> None:
        """Buffer one command (sent by the next :meth:`flush`)."""
        self._out += _PACK(args)

    async def flush(self) -> None:
        if self._out:
            data, self._out = self._out, bytearray()
            try:
                await self.stream.send_all(data)
            except _IO_ERRORS as exc:
                raise RedisUnavailable(f"connection to Redis at {self.url.address} lost: {_describe(exc)}") from None

    async def read_reply(self) -> Any:
        """The next reply; an error reply is *returned* as ``hiredis.ReplyError`` (see :meth:`execute`)."""
        reader = self._reader
        try:
            while (reply := reader.gets()) is False:
                data = await self.stream.receive_some(RECEIVE_SIZE)
                if not data:
                    raise RedisUnavailable(f"Redis at {self.url.address} closed the connection")
                reader.feed(data)
        except _IO_ERRORS as exc:
            raise RedisUnavailable(f"connection to Redis at {self.url.address} lost: {_describe(exc)}") from None
        return reply

    async def execute(self, *args: Any, timeout: float | None = DEFAULT_TIMEOUT) -> Any:  # noqa: ASYNC109
        """Send one command and wait for its reply. ``timeout=None`` waits for ever (pub/sub)."""
        self.send(*args)
        try:
            with trio.CancelScope(deadline=trio.current_time() + timeout if timeout is not None else float("inf")) as scope:
                await self.flush()
                reply = await self.read_reply()
        except BaseException:
            # cancelled by the caller's own scope, or the connection failed: a reply may still come,
            # and would answer the next command; this connection's FIFO is broken, close it
            await self.aclose()
            raise
        if scope.cancelled_caught:
            # the reply may still come: this connection's FIFO is broken, so it cannot be reused
            await self.aclose()
            raise RedisTimeout(f"Redis at {self.url.address}: no reply to {_name(args)} within {timeout:g} s")
        if isinstance(reply, hiredis.ReplyError):
            raise _reply_error(reply)
        return reply

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(self.stream)

    async def __aenter__(self) -> RedisConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, trio.BrokenResourceError) and cause is not None:
        exc = cause
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _name(args: Sequence[Any]) -> str:
    first = args[0] if args else "?"
    return first.decode() if isinstance(first, bytes) else str(first)


# -- the multiplexed connection ---------------------------------------------------------------------
class _Slot:
    """Where one caller waits for its reply. ``task is None``: the caller left; drop the reply."""

    __slots__ = ("sent_at", "task")

    def __init__(self, task: trio.lowlevel.Task | None, sent_at: float) -> None:
        self.task = task
        self.sent_at = sent_at

    def abort(self, _raise_cancel: Any) -> trio.lowlevel.Abort:
        self.task = None
        return trio.lowlevel.Abort.SUCCEEDED

    def resolve(self, reply: Any) -> None:
        task = self.task
        if task is not None:
            self.task = None
            trio.lowlevel.reschedule(task, outcome.Value(reply))

    def fail(self, error: BaseException) -> None:
        task = self.task
        if task is not None:
            self.task = None
            trio.lowlevel.reschedule(task, outcome.Error(error))


class _Batch:
    """One caller waiting for several replies (:meth:`RedisClient.execute_many`)."""

    __slots__ = ("left", "replies", "task")

    def __init__(self, task: trio.lowlevel.Task, n: int) -> None:
        self.task: trio.lowlevel.Task | None = task
        self.replies: list[Any] = [None] * n
        self.left = n

    def abort(self, _raise_cancel: Any) -> trio.lowlevel.Abort:
        self.task = None
        return trio.lowlevel.Abort.SUCCEEDED


class _BatchSlot:
    __slots__ = ("batch", "index", "sent_at")

    def __init__(self, batch: _Batch, index: int, sent_at: float) -> None:
        self.batch = batch
        self.index = index
        self.sent_at = sent_at

    def resolve(self, reply: Any) -> None:
        batch = self.batch
        batch.replies[self.index] = reply
        batch.left -= 1
        if batch.left == 0 and batch.task is not None:
            task, batch.task = batch.task, None
            trio.lowlevel.reschedule(task, outcome.Value(None))

    def fail(self, error: BaseException) -> None:
        batch = self.batch
        if batch.task is not None:
            task, batch.task = batch.task, None
            trio.lowlevel.reschedule(task, outcome.Error(error))


class _Multiplexed:
    """The live state of one connection while it is up: out buffer, reply slots, its tasks."""

    def __init__(self, conn: RedisConnection, stall_timeout: float) -> None:
        self.conn = conn
        self.stall_timeout = stall_timeout
        self.pending: deque[_Slot | _BatchSlot] = deque()
        self.out = bytearray()
        self.wake_writer = trio.lowlevel.ParkingLot()
        self.idle = trio.lowlevel.ParkingLot()   # unparked whenever ``pending`` becomes empty
        self.scope: trio.CancelScope | None = None
        self.lost_reason: str | None = None
        #: the plain (TCP or Unix) socket under the stream, for direct writes and reads; None for TLS
        self.sock: Any = conn.stream.socket if isinstance(conn.stream, trio.SocketStream) else None
        self.writing = False     # the writer task is inside send_all: its bytes are not all out yet

    def send(self, data: bytes, slot: _Slot | _BatchSlot) -> None:
        pending = self.pending
        # The connection is quiet (no reply outstanding, nothing queued or being written): write from
        # the caller at once (module docstring: "Direct write"); otherwise queue for the writer.
        direct = self.sock is not None and not pending and not self.out and not self.writing
        pending.append(slot)
        if direct and self.lost_reason is None:
            fd = self.sock.fileno()
            try:
                sent = os.write(fd, data) if fd >= 0 else 0
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:      # the slot is pending: losing the connection fails it
                self.lose(_describe(exc))
                return
            if sent == len(data):
                return
            data = data[sent:]
        self.out += data
        self.wake_writer.unpark()

    def lose(self, reason: str) -> None:
        if self.lost_reason is None:
            self.lost_reason = reason
        if self.scope is not None:
            self.scope.cancel()

    def fail_all(self, address: str) -> None:
        reason = self.lost_reason or "connection closed"
        while self.pending:
            self.pending.popleft().fail(RedisUnavailable(f"connection to Redis at {address} lost: {reason}"))
        self.idle.unpark_all()

    async def serve(self) -> None:
        async with trio.open_nursery() as nursery:
            self.scope = nursery.cancel_scope
            nursery.start_soon(self._write_loop)
            nursery.start_soon(self._read_loop)
            nursery.start_soon(self._watchdog)

    async def _write_loop(self) -> None:
        stream = self.conn.stream
        try:
            while True:
                if not self.out:
                    await self.wake_writer.park()
                    continue
                data, self.out = self.out, bytearray()
                self.writing = True
                try:
                    await stream.send_all(data)
                finally:
                    self.writing = False
        except _IO_ERRORS as exc:
            self.lose(_describe(exc))

    async def _receive(self) -> bytes:
        """The next bytes from the server. On a plain socket: wait until readable, then one ``read``
        (``receive_some`` first tries a read that finds nothing, then waits, then reads again)."""
        sock = self.sock
        if sock is None:
            return await self.conn.stream.receive_some(RECEIVE_SIZE)
        while True:
            await trio.lowlevel.wait_readable(sock)
            fd = sock.fileno()
            if fd < 0:
                raise trio.ClosedResourceError("the Redis connection was closed")
            try:
                return os.read(fd, RECEIVE_SIZE)
            except (BlockingIOError, InterruptedError):
                continue

    async def _read_loop(self) -> None:
        reader = self.conn._reader
        pending = self.pending
        try:
            while True:
                data = await self._receive()
                if not data:
                    self.lose("closed by the server")
                    return
                reader.feed(data)
                while (reply := reader.gets()) is not False:
                    pending.popleft().resolve(reply)
                if not pending:
                    self.idle.unpark_all()
        except IndexError:
            self.lose("a reply arrived that nobody asked for")
        except _IO_ERRORS as exc:
            self.lose(_describe(exc))

    async def _watchdog(self) -> None:
        """Drop the connection when the oldest reply is ``stall_timeout`` late (stopped server)."""
        while True:
            await trio.sleep(self.stall_timeout / 4)
            if self.pending and trio.current_time() - self.pending[0].sent_at > self.stall_timeout:
                self.lose(f"no reply for {self.stall_timeout:g} s")
                return


class RedisClient(_StreamCommands):
    """The process's Redis client: one multiplexed command connection, run as a service.

    ``timeout`` bounds every call (override per call); ``connect_timeout`` bounds connect +
    handshake; ``stall_timeout`` (default ``max(1 s, 2 × timeout)``) drops a connection whose
    oldest reply is that late.
    """

    def __init__(self, url: str | RedisURL, *, timeout: float = DEFAULT_TIMEOUT,
                 connect_timeout: float | None = None, stall_timeout: float | None = None,
                 backoff_initial: float = 0.05, backoff_max: float = 1.0,
                 name: str | None = "trioproxy") -> None:
        self.url = RedisURL.parse(url) if isinstance(url, str) else url
        self.timeout = timeout
        self.connect_timeout = connect_timeout if connect_timeout is not None else max(1.0, 2 * timeout)
        self.stall_timeout = stall_timeout if stall_timeout is not None else max(1.0, 2 * timeout)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.name = name
        self._mux: _Multiplexed | None = None
        #: the last connection attempt failed: calls fail at once instead of waiting
        self._down = False
        self._down_reason = "not connected yet"
        self._closing = False
        self._state_changed = trio.lowlevel.ParkingLot()
        self._run_scope: trio.CancelScope | None = None
        #: how many connections were made (1 + reconnects); for tests and metrics
        self.connections = 0

    def __repr__(self) -> str:
        return f"RedisClient({self.url.address!r}, connected={self.connected})"

    # -- state ------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._mux is not None

    async def wait_connected(self) -> None:
        """Wait until a connection is up (for start-up and tests; requests never wait like this)."""
        while self._mux is None:
            await self._state_changed.park()

    async def wait_unavailable(self) -> None:
        """Wait until a connection attempt has failed (calls now fail at once); for tests."""
        while not self._down:
            await self._state_changed.park()

    # -- the service --------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, serve, reconnect with backoff until :meth:`drain`/:meth:`aclose` or cancellation.

        ``task_status.started()`` after the first attempt, whether it succeeded or not: the proxy
        starts with Redis down and answers by its failure policy meanwhile.
        """
        started = False
        backoff = self.backoff_initial
        with trio.CancelScope() as self._run_scope:
            try:
                while not self._closing:
                    try:
                        conn = await RedisConnection.open(self.url, timeout=self.connect_timeout, name=self.name)
                    except RedisUnavailable as exc:
                        if not self._down or self._down_reason != str(exc):
                            log.warning("Redis unavailable (%s); retrying", exc)
                        self._set_down(str(exc))
                        if not started:
                            task_status.started()
                            started = True
                        await trio.sleep(backoff * random.uniform(0.8, 1.2))
                        backoff = min(backoff * 2, self.backoff_max)
                        continue
                    if self._down and self.connections:
                        log.warning("Redis at %s is back", self.url.address)
                    up_since = trio.current_time()
                    mux = _Multiplexed(conn, self.stall_timeout)
                    self.connections += 1
                    self._down = False
                    self._mux = mux
                    self._state_changed.unpark_all()
                    if not started:
                        task_status.started()
                        started = True
                    try:
                        await mux.serve()
                    finally:
                        self._mux = None
                        mux.fail_all(self.url.address)
                        await conn.aclose()
                    if not self._closing:
                        log.warning("connection to Redis at %s lost (%s); reconnecting",
                                    self.url.address, mux.lost_reason)
                        # the next attempt decides whether calls wait (it is running) or fail (down)
                        if trio.current_time() - up_since >= self.backoff_max:
                            backoff = self.backoff_initial     # it had served: reconnect at once
                        else:   # dropped right after the handshake (maxclients, a proxy with no Redis
                            # behind it): back off as after a refused connection, never spin
                            await trio.sleep(backoff * random.uniform(0.8, 1.2))
                            backoff = min(backoff * 2, self.backoff_max)
            finally:
                self._closing = True
                self._set_down("client closed")

    def _set_down(self, reason: str) -> None:
        self._down = True
        self._down_reason = reason
        self._state_changed.unpark_all()

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - the services interface
        """Stop taking calls, let the replies already asked for arrive (≤ ``timeout``), then close."""
        self._closing = True
        self._state_changed.unpark_all()
        mux = self._mux
        with trio.move_on_after(timeout):
            while mux is not None and mux.pending:
                await mux.idle.park()
        await self.aclose()

    async def aclose(self) -> None:
        self._closing = True
        if self._mux is not None:
            self._mux.lose("client closed")
        if self._run_scope is not None:
            self._run_scope.cancel()
        self._set_down("client closed")
        await trio.lowlevel.checkpoint()

    # -- calls ----------------------------------------------------------------------------------------
    async def _connection(self, deadline: float) -> _Multiplexed:
        while True:
            mux = self._mux
            if mux is not None and not self._closing:
                return mux
            if self._closing:
                raise RedisUnavailable(f"Redis client for {self.url.address} is closed")
            if self._down:
                raise RedisUnavailable(f"Redis unavailable at {self.url.address}: {self._down_reason}")
            with trio.CancelScope(deadline=deadline) as scope:
                await self._state_changed.park()
            if scope.cancelled_caught:
                raise RedisTimeout(f"Redis at {self.url.address}: not connected within the call's timeout")

    async def execute(self, *args: Any, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Run one command; its reply (bytes, int, list, None). See the module docstring for errors."""
        now = trio.current_time()
        return await self._call(_PACK(args), now + (self.timeout if timeout is None else timeout), args)

    async def _call(self, data: bytes, deadline: float, args: Sequence[Any]) -> Any:
        mux = self._mux
        if mux is None or self._closing:
            mux = await self._connection(deadline)
        slot = _Slot(trio.lowlevel.current_task(), trio.current_time())
        mux.send(data, slot)
        with trio.CancelScope(deadline=deadline) as scope:
            reply = await trio.lowlevel.wait_task_rescheduled(slot.abort)
        if scope.cancelled_caught:
            raise RedisTimeout(f"Redis at {self.url.address}: no reply to {_name(args)} in time")
        if type(reply) is hiredis.ReplyError:
            raise _reply_error(reply)
        return reply

    async def execute_many(self, commands: Iterable[Sequence[Any]], *,
                           timeout: float | None = None) -> list[Any]:  # noqa: ASYNC109
        """Several commands written together, in order (a pipeline: one round trip); their replies,
        error replies included as :class:`RedisReplyError` values. Not atomic: use a script."""
        deadline = trio.current_time() + (self.timeout if timeout is None else timeout)
        commands = [tuple(c) for c in commands]
        if not commands:
            return []
        mux = self._mux
        if mux is None or self._closing:
            mux = await self._connection(deadline)
        batch = _Batch(trio.lowlevel.current_task(), len(commands))
        now = trio.current_time()
        for i, command in enumerate(commands):
            mux.send(_PACK(command), _BatchSlot(batch, i, now))
        with trio.CancelScope(deadline=deadline) as scope:
            await trio.lowlevel.wait_task_rescheduled(batch.abort)
        if scope.cancelled_caught:
            raise RedisTimeout(f"Redis at {self.url.address}: no reply to a pipeline of "
                               f"{len(commands)} commands in time")
        return [_reply_error(r) if type(r) is hiredis.ReplyError else r for r in batch.replies]

    async def evalsha(self, script: Script, keys: Sequence[Any] = (), args: Sequence[Any] = (), *,
                      timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """EVALSHA; on ``NOSCRIPT`` (restarted server) EVAL with the source, within the same deadline."""
        deadline = trio.current_time() + (self.timeout if timeout is None else timeout)
        call = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self._call(_PACK(call), deadline, call)
        except RedisReplyError as exc:
            if exc.code != "NOSCRIPT":
                raise
        call = ("EVAL", script.source, len(keys), *keys, *args)
        return await self._call(_PACK(call), deadline, call)

    async def open_connection(self, *, timeout: float | None = None) -> RedisConnection:  # noqa: ASYNC109
        """A dedicated connection (pub/sub, XREADGROUP BLOCK) to the same server, same credentials."""
        return await RedisConnection.open(self.url, timeout=timeout or self.connect_timeout, name=self.name)
