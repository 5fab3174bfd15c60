"""Repositories: the async API over the store's tables, one module per entity.

Every mutation runs as one transaction (``Database.write``) that also writes its audit row when
audit is on, and publishes its invalidations after the transaction (see ``base.mutate``).
"""

from .audit import AuditRepository
from .base import Actor, Page, RepoContext
from .budgets import BudgetRepository
from .customers import CustomerRepository
from .keys import KeyRepository
from .spend import SpendRepository
from .teams import TeamRepository
from .users import UserRepository

__all__ = [
    "Actor",
    "AuditRepository",
    "BudgetRepository",
    "CustomerRepository",
    "KeyRepository",
    "Page",
    "RepoContext",
    "SpendRepository",
    "TeamRepository",
    "UserRepository",
]
