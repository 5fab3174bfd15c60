"""Schema migrations: ``upgrade(url)`` at startup (and ``trioproxy db upgrade``), ``status(url)``.

Both are synchronous (Alembic and SQLAlchemy's sync engine); from Trio call them through
``trio.to_thread.run_sync`` — :meth:`Store.run` does. Each opens its own short-lived engine
(``NullPool``): migrations run once per process start, not per request.

**Several instances starting at once on an empty database create the schema once.** The whole
upgrade runs in one transaction that first takes a lock every other migrator waits for:

* PostgreSQL: ``pg_advisory_xact_lock`` (released at COMMIT); DDL is transactional, so a migrator
  that waited finds the version table at head and does nothing.
* SQLite: ``BEGIN EXCLUSIVE`` (the write lock; others wait on the busy timeout); SQLite's DDL is
  transactional too. The file is switched to WAL first, outside the transaction (a journal mode
  cannot change inside one), retrying while another process holds the lock.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from .schema import VERSION_TABLE
from .url import DatabaseURL, parse_database_url

__all__ = ["MigrationError", "MigrationStatus", "status", "upgrade"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: seconds to wait for a PostgreSQL server to accept the migrator's connection
_PG_CONNECT_TIMEOUT = 10

#: an arbitrary constant: "trioproxy" in ASCII, folded into a signed 64-bit advisory lock key
_PG_LOCK_KEY = int.from_bytes(b"trioprox", "big") & 0x7FFF_FFFF_FFFF_FFFF
_SQLITE_LOCK_TIMEOUT = 120.0


class MigrationError(RuntimeError):
    """The database could not be opened or migrated; the message names it (password hidden)."""


@dataclass(frozen=True)
class MigrationStatus:
    url: str                      # redacted
    current: str | None           # None: an empty database
    head: str
    pending: list[str] = field(default_factory=list)   # oldest first

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _engine(url: DatabaseURL) -> sa.Engine:
    if url.kind == "sqlite":
        engine = sa.create_engine(url.sqlalchemy_url, poolclass=sa.NullPool,
                                  connect_args={"timeout": _SQLITE_LOCK_TIMEOUT})

        @sa.event.listens_for(engine, "connect")
        def _autocommit_driver(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # SQLAlchemy's documented recipe: let it (not the sqlite3 module) emit BEGIN
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _exclusive(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN EXCLUSIVE")

        return engine
    # a server that does not answer fails the migration after this long, not after the OS's TCP timeout
    return sa.create_engine(url.sqlalchemy_url, poolclass=sa.NullPool,
                            connect_args={"connect_timeout": _PG_CONNECT_TIMEOUT})


def _enable_wal(path: str) -> None:
    deadline = time.monotonic() + _SQLITE_LOCK_TIMEOUT
    while True:
        try:
            conn = sqlite3.connect(path, timeout=_SQLITE_LOCK_TIMEOUT, isolation_level=None)
        except sqlite3.OperationalError as exc:
            raise MigrationError(f"cannot open SQLite database {path!r}: {exc}") from None
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise MigrationError(f"cannot switch {path!r} to WAL: {exc}") from None
        finally:
            conn.close()
        if time.monotonic() > deadline:
            raise MigrationError(f"cannot switch {path!r} to WAL: the database stayed locked")
        time.sleep(0.01)  # sync code in a worker thread or the CLI, never on the Trio thread


@contextmanager
def _locked_connection(url: DatabaseURL) -> Iterator[sa.Connection]:
    """A connection inside one transaction that holds the migration lock."""
    if url.kind == "sqlite":
        _enable_wal(url.target)
    engine = _engine(url)
    try:
        try:
            conn = engine.connect()
        except sa.exc.OperationalError as exc:
            raise MigrationError(f"cannot connect to {url.redacted()}: {exc.orig}") from None
        with conn, conn.begin():
            if url.kind == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
            yield conn
    finally:
        engine.dispose()


def _status_on(conn: sa.Connection, url: DatabaseURL) -> MigrationStatus:
    script = ScriptDirectory.from_config(_config())
    head = script.get_current_head()
    assert head is not None
    current = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
    if current == head:
        pending: list[str] = []
    else:
        pending = [rev.revision for rev in script.iterate_revisions(head, current)][::-1]
    return MigrationStatus(url=url.redacted(), current=current, head=head, pending=pending)


def upgrade(url: str | DatabaseURL, revision: str = "head") -> MigrationStatus:
    """Bring the database to ``revision`` (default: the newest), creating it if empty. Idempotent
    and safe to call from several processes at once. Returns the status afterwards."""
    db = parse_database_url(url)
    with _locked_connection(db) as conn:
        command.upgrade(_config(conn), revision)
        return _status_on(conn, db)


def downgrade(url: str | DatabaseURL, revision: str) -> MigrationStatus:
    """For tests and operators rolling back a release: migrate down to ``revision`` ("base": empty)."""
    db = parse_database_url(url)
    with _locked_connection(db) as conn:
        command.downgrade(_config(conn), revision)
        return _status_on(conn, db)


def status(url: str | DatabaseURL) -> MigrationStatus:
    """Where the database stands: its revision, the newest one, and the revisions still to apply."""
    db = parse_database_url(url)
    if db.kind == "sqlite" and not Path(db.target).exists():
        script = ScriptDirectory.from_config(_config())
        head = script.get_current_head()
        assert head is not None
        return MigrationStatus(url=db.redacted(), current=None, head=head,
                               pending=[r.revision for r in script.iterate_revisions(head, None)][::-1])
    engine = sa.create_engine(db.sqlalchemy_url, poolclass=sa.NullPool)
    try:
        try:
            with engine.connect() as conn:
                return _status_on(conn, db)
        except sa.exc.OperationalError as exc:
            raise MigrationError(f"cannot connect to {db.redacted()}: {exc.orig}") from None
    finally:
        engine.dispose()
