"""The store: virtual keys, teams, users, customers, budgets, audit and spend on SQLite or PostgreSQL.

Public surface (what the HTTP layer and issue #11/#13 use):

* :class:`Store` / :func:`open_store` — open a store from a URL; a service with ``run``/``drain``.
* ``store.keys``, ``.teams``, ``.users``, ``.customers``, ``.budgets``, ``.audit`` — repositories.
* ``store.key_cache.authenticate(api_key)`` → :class:`AuthRecord`; ``store.customer_cache.find(user)``
  → :class:`CustomerRecord` (a miss the store cannot answer: :class:`StoreUnavailableError`, 503).
* :class:`InvalidationBus` (protocol), :class:`LocalInvalidationBus`, :class:`Invalidation`.
* :func:`upgrade`, :func:`status` — migrations (also ``trioproxy db upgrade|status``).
"""

from .customer_cache import CustomerCache, CustomerRecord
from .errors import (
    Conflict,
    MissingReference,
    NotFound,
    StoreClosed,
    StoreError,
    StoreUnavailable,
)
from .invalidation import Invalidation, InvalidationBus, LocalInvalidationBus
from .key_cache import AuthRecord, KeyCache
from .migrate import MigrationError, MigrationStatus, status, upgrade
from .repositories import Actor
from .store import Store, open_store
from .unavailable import StoreUnavailableError
from .url import DatabaseURL, InvalidDatabaseURL, parse_database_url

__all__ = [
    "Actor",
    "AuthRecord",
    "Conflict",
    "CustomerCache",
    "CustomerRecord",
    "DatabaseURL",
    "InvalidDatabaseURL",
    "Invalidation",
    "InvalidationBus",
    "KeyCache",
    "LocalInvalidationBus",
    "MigrationError",
    "MigrationStatus",
    "MissingReference",
    "NotFound",
    "Store",
    "StoreClosed",
    "StoreError",
    "StoreUnavailable",
    "StoreUnavailableError",
    "open_store",
    "parse_database_url",
    "status",
    "upgrade",
]
