"""Reusable budget rows (``/budget/new``), attached to customers by ``budget_id``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from ..errors import Conflict, NotFound, UniqueViolation
from ..invalidation import Invalidation
from ..schema import budgets, end_users
from ..sql import Conn
from ..views import budget_view
from .base import (
    Actor,
    Page,
    RepoContext,
    count_tx,
    delete_tx,
    get_tx,
    insert_tx,
    mutate,
    select_tx,
    update_tx,
    write_audit_tx,
)

__all__ = ["BudgetRepository", "create_budget_tx"]

TABLE = "budgets"
UPDATABLE = frozenset(c.name for c in budgets.columns) - {"budget_id", "created_at", "created_by", "updated_at", "updated_by"}


def create_budget_tx(conn: Conn, ctx: RepoContext, values: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
    now = ctx.clock()
    budget_id = values.get("budget_id") or str(uuid.uuid4())
    row = {"created_at": now, "updated_at": now, "created_by": actor.changed_by or None,
           "updated_by": actor.changed_by or None, **values, "budget_id": budget_id}
    try:
        insert_tx(conn, budgets, row)
    except UniqueViolation:
        raise Conflict("budget", "budget_id", budget_id) from None
    stored = get_tx(conn, budgets, budget_id=budget_id)
    assert stored is not None
    write_audit_tx(conn, ctx, actor, action="created", table=TABLE, object_id=budget_id, before=None,
                   updated=budget_view(stored))
    return stored


def _customers_of(conn: Conn, budget_id: str) -> list[Invalidation]:
    return [Invalidation.customer(r["user_id"]) for r in select_tx(conn, end_users, {"budget_id": budget_id})]


class BudgetRepository:
    def __init__(self, ctx: RepoContext):
        self.ctx = ctx

    async def get(self, budget_id: str) -> dict[str, Any] | None:
        return await self.ctx.db.read(lambda conn: get_tx(conn, budgets, budget_id=budget_id))

    async def list(self, *, page: int = 1, size: int = 100) -> Page:
        def run(conn: Conn) -> Page:
            return Page(select_tx(conn, budgets, order_by=("created_at", "budget_id"), limit=size,
                                  offset=(page - 1) * size), count_tx(conn, budgets), page, size)

        return await self.ctx.db.read(run)

    async def create(self, values: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
        return await mutate(self.ctx, lambda conn, inv: create_budget_tx(conn, self.ctx, values, actor))

    async def update(self, budget_id: str, changes: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")

        def run(conn: Conn, inv: Any) -> dict[str, Any]:
            before = get_tx(conn, budgets, budget_id=budget_id)
            if before is None:
                raise NotFound("budget", [budget_id])
            update_tx(conn, budgets, {"budget_id": budget_id},
                      {**changes, "updated_at": self.ctx.clock(), "updated_by": actor.changed_by or None})
            inv.add(*_customers_of(conn, budget_id))
            after = get_tx(conn, budgets, budget_id=budget_id)
            assert after is not None
            write_audit_tx(conn, self.ctx, actor, action="updated", table=TABLE, object_id=budget_id,
                           before=budget_view(before), updated=budget_view(dict(changes)))
            return after

        return await mutate(self.ctx, run)

    async def delete(self, budget_ids: list[str], actor: Actor) -> list[dict[str, Any]]:
        def run(conn: Conn, inv: Any) -> list[dict[str, Any]]:
            rows = select_tx(conn, budgets, {"budget_id": budget_ids})
            found = {r["budget_id"] for r in rows}
            missing = [b for b in dict.fromkeys(budget_ids) if b not in found]
            if missing:
                raise NotFound("budget", missing)
            for row in rows:
                inv.add(*_customers_of(conn, row["budget_id"]))
                delete_tx(conn, budgets, {"budget_id": row["budget_id"]})
                write_audit_tx(conn, self.ctx, actor, action="deleted", table=TABLE,
                               object_id=row["budget_id"], before=budget_view(row), updated=None)
            return rows

        return await mutate(self.ctx, run)
