"""Alembic migrations of the store, shipped inside the package (applied by ``trioproxy.store.migrate``)."""
