"""Waiting for a Redis key to be written, without sleeping: keyspace notifications.

A proxy stores a cache entry after it answered (the write is queued to a service), so a test that
asks a second instance at once would race that write. :class:`KeyspaceWatcher` subscribes to the
server's keyspace events before the first request and :meth:`wait_set` returns when the ``set``
event arrives (the timeout only turns a bug into a failure, it is not a speed assertion). A blocking
socket and ``hiredis``: the tests using it are synchronous (real processes, the OpenAI SDK).
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import hiredis

__all__ = ["KeyspaceWatcher", "redis_command"]


def _encode(*args: Any) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Connection:
    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.db = int(parts.path.lstrip("/") or 0)
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=timeout)
        self.reader = hiredis.Reader()
        if parts.password:
            self.call("AUTH", parts.password)

    def send(self, *args: Any) -> None:
        self.sock.sendall(_encode(*args))

    def reply(self) -> Any:
        while True:
            reply = self.reader.gets()
            if reply is not False:
                if isinstance(reply, hiredis.ReplyError):
                    raise RuntimeError(str(reply))
                return reply
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("Redis closed the connection")
            self.reader.feed(data)

    def call(self, *args: Any) -> Any:
        self.send(*args)
        return self.reply()

    def close(self) -> None:
        self.sock.close()


def redis_command(url: str, *args: Any) -> Any:
    """One command on a connection of its own (tests: PTTL, PEXPIRE, KEYS …)."""
    conn = _Connection(url, 10.0)
    try:
        if conn.db:
            conn.call("SELECT", conn.db)
        return conn.call(*args)
    finally:
        conn.close()


class KeyspaceWatcher:
    """``with KeyspaceWatcher(url, "trioproxy:cache:ns:*") as w: …; key = w.wait_set()``."""

    def __init__(self, url: str, pattern: str, timeout: float = 30.0) -> None:
        redis_command(url, "CONFIG", "SET", "notify-keyspace-events", "K$g")
        self.conn = _Connection(url, timeout)
        self.channel_prefix = f"__keyspace@{self.conn.db}__:"
        self.conn.call("PSUBSCRIBE", self.channel_prefix + pattern)

    def wait_set(self) -> str:
        """The name of the next key a ``SET`` wrote under the pattern."""
        while True:
            kind, _pattern, channel, event = self.conn.reply()
            if kind == b"pmessage" and event == b"set":
                return channel.decode()[len(self.channel_prefix):]

    def __enter__(self) -> KeyspaceWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()
