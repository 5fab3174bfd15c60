"""The suite's real PostgreSQL and Redis servers are there (started by ``./scripts/test``)."""

from __future__ import annotations

import socket
import urllib.parse


def _reachable(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5):
        pass


def test_postgresql_is_reachable(pg_dsn: str) -> None:
    _reachable(pg_dsn)


def test_redis_answers_ping(redis_url: str) -> None:
    parts = urllib.parse.urlsplit(redis_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        assert sock.recv(64).startswith(b"+PONG")
