"""Alembic environment of the store: always run through ``trioproxy.store.migrate``.

``migrate.upgrade`` opens the connection, takes the migration lock (a PostgreSQL advisory lock, or
SQLite's write lock through ``BEGIN EXCLUSIVE``) and passes the connection in
``config.attributes["connection"]``; everything here runs inside that one transaction, so several
instances starting at once on an empty database create the schema exactly once.
"""

from __future__ import annotations

from alembic import context

from trioproxy.store.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - a usage error, not a runtime path
    raise RuntimeError("run migrations through trioproxy.store.migrate (trioproxy db upgrade), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,        # SQLite has no general ALTER TABLE: batch mode copies the table
    compare_type=True,
    compare_server_default=True,
)
with context.begin_transaction():
    context.run_migrations()
