"""What the store raises, independent of the driver underneath.

Repositories raise these; the admin layer turns them into LiteLLM-shaped HTTP errors. Driver
exceptions (``sqlite3.IntegrityError``, ``psycopg.errors.UniqueViolation``) never leave the store.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "ForeignKeyViolation",
    "MissingReference",
    "NotFound",
    "StoreClosed",
    "StoreError",
    "StoreUnavailable",
    "UniqueViolation",
]


class StoreError(Exception):
    pass


class StoreUnavailable(StoreError):
    """The database cannot be reached or opened (the message names it, password hidden)."""


class StoreClosed(StoreError):
    """The store is not running (not started yet, or shut down): nothing was written."""


class UniqueViolation(StoreError):
    """A UNIQUE or PRIMARY KEY constraint refused a row. ``column`` names it when known."""

    def __init__(self, table: str | None, column: str | None, detail: str = ""):
        super().__init__(detail or f"duplicate value for {table}.{column}")
        self.table = table
        self.column = column


class ForeignKeyViolation(StoreError):
    pass


class NotFound(StoreError):
    """``entity`` with these ids does not exist (``ids``: the ones missing, as the caller named them)."""

    def __init__(self, entity: str, ids: list[str]):
        super().__init__(f"{entity} not found: {', '.join(ids)}")
        self.entity = entity
        self.ids = ids


class MissingReference(StoreError):
    """A row names another that does not exist (a key's ``team_id``, a customer's ``budget_id``)."""

    def __init__(self, entity: str, id: str):
        super().__init__(f"{entity} {id!r} does not exist")
        self.entity = entity
        self.id = id


class Conflict(StoreError):
    """The value is taken: a custom key that exists, a duplicate alias, an existing id."""

    def __init__(self, entity: str, field: str, value: str):
        super().__init__(f"{entity} with {field} {value!r} already exists")
        self.entity = entity
        self.field = field
        self.value = value
