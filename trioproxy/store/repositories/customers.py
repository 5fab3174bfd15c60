"""Customers (end users: the ``user`` field of an OpenAI request), stored so that blocking
survives a restart and is the same for every worker.

``block`` upserts: an id never seen before gets a row with ``blocked = true`` (LiteLLM does the
same), so a customer can be blocked before their first request. ``unblock`` of an id without a row
changes nothing and is not an error (the customer is not blocked).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import Conflict, MissingReference, NotFound, UniqueViolation
from ..invalidation import Invalidation
from ..schema import budgets, end_users
from ..sql import Conn
from ..views import customer_view
from .base import (
    Actor,
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
from .budgets import create_budget_tx

__all__ = ["CustomerRepository"]

TABLE = "end_users"
UPDATABLE = frozenset(c.name for c in end_users.columns) - {"user_id", "created_at", "updated_at", "spend"}


def _with_budget(conn: Conn, row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    budget = get_tx(conn, budgets, budget_id=row["budget_id"]) if row.get("budget_id") else None
    return row, budget


def _with_budgets(conn: Conn, rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Each customer with its budget row, the budgets of the whole page in one query (not one per row)."""
    ids = sorted({r["budget_id"] for r in rows if r.get("budget_id")})
    found: dict[str, dict[str, Any]] = {}
    if ids:
        found = {b["budget_id"]: b for b in select_tx(conn, budgets, {"budget_id": ids})}
    return [(r, found.get(r["budget_id"]) if r.get("budget_id") else None) for r in rows]


class CustomerRepository:
    def __init__(self, ctx: RepoContext):
        self.ctx = ctx

    async def get(self, user_id: str) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        def run(conn: Conn) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
            row = get_tx(conn, end_users, user_id=user_id)
            return None if row is None else _with_budget(conn, row)

        return await self.ctx.db.read(run)

    async def list(self, *, page: int = 1, size: int | None = None,
                   blocked: bool | None = None) -> tuple[list[tuple[dict[str, Any], dict[str, Any] | None]], int]:
        def run(conn: Conn) -> tuple[list[tuple[dict[str, Any], dict[str, Any] | None]], int]:
            where = {"blocked": blocked} if blocked is not None else {}
            total = count_tx(conn, end_users, where)
            rows = select_tx(conn, end_users, where, order_by=("created_at", "user_id"), limit=size,
                             offset=(page - 1) * (size or 0))
            return _with_budgets(conn, rows), total

        return await self.ctx.db.read(run)

    async def create(self, values: Mapping[str, Any], actor: Actor, *,
                     new_budget: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A customer; ``new_budget`` (inline ``max_budget`` & co.) becomes its own budget row."""
        user_id = values["user_id"]

        def run(conn: Conn, inv: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
            now = self.ctx.clock()
            row = {"created_at": now, "updated_at": now, **values}
            if new_budget:
                row["budget_id"] = create_budget_tx(conn, self.ctx, new_budget, actor)["budget_id"]
            elif row.get("budget_id") and get_tx(conn, budgets, budget_id=row["budget_id"]) is None:
                raise MissingReference("budget", row["budget_id"])
            try:
                insert_tx(conn, end_users, row)
            except UniqueViolation:
                raise Conflict("customer", "user_id", user_id) from None
            stored, budget = _with_budget(conn, get_tx(conn, end_users, user_id=user_id) or row)
            write_audit_tx(conn, self.ctx, actor, action="created", table=TABLE, object_id=user_id,
                           before=None, updated=customer_view(stored, budget))
            return stored, budget

        return await mutate(self.ctx, run, [Invalidation.customer(user_id)])

    async def update(self, user_id: str, changes: Mapping[str, Any], actor: Actor, *,
                     budget_changes: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Only the fields sent; ``budget_changes`` update the customer's budget row (creating one
        when it has none)."""
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")

        def run(conn: Conn, inv: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
            before = get_tx(conn, end_users, user_id=user_id)
            if before is None:
                raise NotFound("customer", [user_id])
            row = {**changes, "updated_at": self.ctx.clock()}
            if row.get("budget_id") and get_tx(conn, budgets, budget_id=row["budget_id"]) is None:
                raise MissingReference("budget", row["budget_id"])
            if budget_changes:
                budget_id = row.get("budget_id", before.get("budget_id"))
                if budget_id:
                    update_tx(conn, budgets, {"budget_id": budget_id},
                              {**budget_changes, "updated_at": self.ctx.clock()})
                else:
                    row["budget_id"] = create_budget_tx(conn, self.ctx, budget_changes, actor)["budget_id"]
            update_tx(conn, end_users, {"user_id": user_id}, row)
            after, budget = _with_budget(conn, get_tx(conn, end_users, user_id=user_id) or before)
            action = "updated"
            if set(changes) == {"blocked"} and not budget_changes:
                action = "blocked" if changes["blocked"] else "unblocked"
            write_audit_tx(conn, self.ctx, actor, action=action, table=TABLE, object_id=user_id,
                           before=customer_view(*_with_budget(conn, before)),
                           updated=customer_view(dict(changes), None) | (
                               {"litellm_budget_table": dict(budget_changes)} if budget_changes else {}))
            return after, budget

        return await mutate(self.ctx, run, [Invalidation.customer(user_id)])

    async def delete(self, user_ids: list[str], actor: Actor) -> list[dict[str, Any]]:
        def run(conn: Conn, inv: Any) -> list[dict[str, Any]]:
            rows = select_tx(conn, end_users, {"user_id": user_ids})
            found = {r["user_id"] for r in rows}
            missing = [u for u in dict.fromkeys(user_ids) if u not in found]
            if missing:
                raise NotFound("customer", missing)
            for row in rows:
                delete_tx(conn, end_users, {"user_id": row["user_id"]})
                write_audit_tx(conn, self.ctx, actor, action="deleted", table=TABLE, object_id=row["user_id"],
                               before=customer_view(row), updated=None)
            return rows

        return await mutate(self.ctx, run, [Invalidation.customer(u) for u in user_ids])

    async def set_blocked(self, user_ids: list[str], blocked: bool, actor: Actor) -> list[str]:
        """Block (upserting unknown ids) or unblock; returns the ids whose state changed."""
        def run(conn: Conn, inv: Any) -> list[str]:
            changed = []
            now = self.ctx.clock()
            for user_id in dict.fromkeys(user_ids):
                row = get_tx(conn, end_users, user_id=user_id)
                if row is None:
                    if not blocked:
                        continue
                    insert_tx(conn, end_users, {"user_id": user_id, "blocked": True, "created_at": now,
                                                "updated_at": now})
                elif row["blocked"] == blocked:
                    continue
                else:
                    update_tx(conn, end_users, {"user_id": user_id}, {"blocked": blocked, "updated_at": now})
                changed.append(user_id)
                write_audit_tx(conn, self.ctx, actor, action="blocked" if blocked else "unblocked",
                               table=TABLE, object_id=user_id,
                               before=customer_view(row) if row is not None else None,
                               updated={"blocked": blocked})
            return changed

        return await mutate(self.ctx, run, [Invalidation.customer(u) for u in user_ids])

    async def blocked_ids(self) -> list[str]:
        return await self.ctx.db.read(
            lambda conn: [r["user_id"] for r in select_tx(conn, end_users, {"blocked": True}, order_by=("user_id",))])
