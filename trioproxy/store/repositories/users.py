"""Internal users (people and services with ``user_role``), with their team memberships.

``/user/new`` answers with a key for the user: :meth:`UserRepository.create` takes the key's row
and writes user, memberships and key in one transaction. Deleting a user deletes their keys (as
LiteLLM does) and memberships.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from ..errors import Conflict, NotFound, UniqueViolation
from ..invalidation import Invalidation
from ..schema import internal_users, team_memberships, teams, virtual_keys
from ..sql import Conn
from ..views import user_view
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
from .keys import create_key_tx, delete_keys_tx
from .teams import add_members_tx

__all__ = ["UserRepository"]

TABLE = "internal_users"
UPDATABLE = frozenset(c.name for c in internal_users.columns) - {
    "user_id", "created_at", "created_by", "updated_at", "updated_by", "spend"}


def _unique(exc: UniqueViolation, values: Mapping[str, Any]) -> Conflict:
    if exc.column == "user_email":
        return Conflict("user", "user_email", str(values.get("user_email")))
    return Conflict("user", "user_id", str(values.get("user_id")))


class UserRepository:
    def __init__(self, ctx: RepoContext):
        self.ctx = ctx

    async def get(self, user_id: str) -> dict[str, Any] | None:
        return await self.ctx.db.read(lambda conn: get_tx(conn, internal_users, user_id=user_id))

    async def get_many(self, user_ids: list[str]) -> list[dict[str, Any]]:
        return await self.ctx.db.read(lambda conn: select_tx(conn, internal_users, {"user_id": user_ids}))

    async def list(self, *, role: str | None = None, user_ids: list[str] | None = None,
                   team_id: str | None = None, page: int = 1, size: int = 25) -> Page:
        def run(conn: Conn) -> Page:
            where: dict[str, Any] = {}
            if role is not None:
                where["user_role"] = role
            if user_ids is not None:
                where["user_id"] = user_ids
            extra = None
            if team_id is not None:
                extra = ('"user_id" IN (SELECT "user_id" FROM "team_memberships" WHERE "team_id" = :team)',
                         {"team": team_id})
            total = count_tx(conn, internal_users, where, extra)
            rows = select_tx(conn, internal_users, where, order_by=("created_at", "user_id"),
                             limit=size, offset=(page - 1) * size, extra=extra)
            return Page(rows, total, page, size)

        return await self.ctx.db.read(run)

    async def create(self, values: Mapping[str, Any], actor: Actor, *, teams_to_join: list[str] = (),
                     key: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The user (and, when ``key`` is given, its first key) in one transaction."""
        user_id = values.get("user_id") or str(uuid.uuid4())

        def run(conn: Conn, inv: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
            now = self.ctx.clock()
            row = {"created_at": now, "updated_at": now, "created_by": actor.changed_by or None,
                   "updated_by": actor.changed_by or None, **values, "user_id": user_id}
            try:
                insert_tx(conn, internal_users, row)
            except UniqueViolation as exc:
                raise _unique(exc, row) from None
            stored = get_tx(conn, internal_users, user_id=user_id)
            assert stored is not None
            write_audit_tx(conn, self.ctx, actor, action="created", table=TABLE, object_id=user_id,
                           before=None, updated=user_view(stored))
            for team_id in teams_to_join:
                if get_tx(conn, teams, team_id=team_id) is None:
                    raise NotFound("team", [team_id])
                add_members_tx(conn, self.ctx, team_id, [{"user_id": user_id, "role": "user"}], actor)
                inv.add(Invalidation.team(team_id))
            key_row = None
            if key is not None:
                key_row = create_key_tx(conn, self.ctx, {**key, "user_id": user_id}, actor)
                inv.add(Invalidation.key(key_row["token"]))
            return stored, key_row

        return await mutate(self.ctx, run, [Invalidation.user(user_id)])

    async def update(self, user_id: str, changes: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")

        def run(conn: Conn, inv: Any) -> dict[str, Any]:
            before = get_tx(conn, internal_users, user_id=user_id)
            if before is None:
                raise NotFound("user", [user_id])
            try:
                update_tx(conn, internal_users, {"user_id": user_id},
                          {**changes, "updated_at": self.ctx.clock(), "updated_by": actor.changed_by or None})
            except UniqueViolation as exc:
                raise _unique(exc, changes) from None
            after = get_tx(conn, internal_users, user_id=user_id)
            assert after is not None
            write_audit_tx(conn, self.ctx, actor, action="updated", table=TABLE, object_id=user_id,
                           before=user_view(before), updated=user_view(dict(changes)))
            return after

        return await mutate(self.ctx, run, [Invalidation.user(user_id)])

    async def delete(self, user_ids: list[str], actor: Actor) -> list[dict[str, Any]]:
        def run(conn: Conn, inv: Any) -> list[dict[str, Any]]:
            rows = select_tx(conn, internal_users, {"user_id": user_ids})
            found = {r["user_id"] for r in rows}
            missing = [u for u in dict.fromkeys(user_ids) if u not in found]
            if missing:
                raise NotFound("user", missing)
            for user in rows:
                keys = select_tx(conn, virtual_keys, {"user_id": user["user_id"]})
                delete_keys_tx(conn, self.ctx, keys, actor)
                inv.add(*(Invalidation.key(k["token"]) for k in keys))
                memberships = select_tx(conn, team_memberships, {"user_id": user["user_id"]})
                inv.add(*(Invalidation.team(m["team_id"]) for m in memberships))
                delete_tx(conn, team_memberships, {"user_id": user["user_id"]})
                delete_tx(conn, internal_users, {"user_id": user["user_id"]})
                write_audit_tx(conn, self.ctx, actor, action="deleted", table=TABLE, object_id=user["user_id"],
                               before=user_view(user), updated=None)
            return rows

        return await mutate(self.ctx, run, [Invalidation.user(u) for u in user_ids])
