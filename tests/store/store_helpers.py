"""Helpers shared by the store tests (imported by name: tests/store is on sys.path)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg


class FakeClock:
    """Injected wall clock for the store (expiry, grace periods, audit times)."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def read_all_bytes_and_rows(url: str, backend: str) -> bytes:
    """Everything the database holds, as bytes: the SQLite files (db, WAL) or every PG row as text."""
    if backend == "sqlite":
        path = Path(url.split("sqlite:///", 1)[1])
        data = b""
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(path) + suffix)
            if p.exists():
                data += p.read_bytes()
        return data
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        out = []
        for table in tables:
            for row in conn.execute(f'SELECT t::text FROM "{table}" t').fetchall():
                out.append(row[0])
        return "\n".join(out).encode()
