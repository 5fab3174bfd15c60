"""Virtual keys: create, read, update (only the fields sent), block, delete, list, rotate.

Rows are dicts of ``virtual_keys`` columns (money in micro-USD, aware datetimes). The clear key
never reaches this module: callers pass ``token`` = SHA-256 hex and ``key_name`` = ``sk-...abcd``.

Rotation keeps the row (identity, spend, limits, alias, team, metadata) and swaps its primary key
to the new hash; ``deprecated_keys`` rows follow through ``ON UPDATE CASCADE``. With a grace
period the old hash gets a ``deprecated_keys`` row valid until ``revoke_at``; without one it is
refused from the next request on (the invalidation drops every cache entry of the row).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..errors import Conflict, MissingReference, NotFound, UniqueViolation
from ..invalidation import Invalidation
from ..schema import deprecated_keys, teams, virtual_keys
from ..sql import Conn
from ..views import key_view
from .base import (
    Actor,
    Page,
    RepoContext,
    count_tx,
    delete_tx,
    exists_tx,
    get_tx,
    insert_tx,
    mutate,
    select_tx,
    time_param,
    update_tx,
    write_audit_tx,
)

__all__ = ["KeyRepository", "create_key_tx", "delete_keys_tx"]

TABLE = "virtual_keys"
#: what an update may change (identity, bookkeeping and spend are not fields of an update)
UPDATABLE = frozenset(c.name for c in virtual_keys.columns) - {
    "token", "key_name", "created_at", "created_by", "updated_at", "updated_by", "rotation_count",
    "last_rotation_at", "last_active",
}


def _translate_unique(exc: UniqueViolation, values: Mapping[str, Any]) -> Conflict:
    if exc.column == "key_alias":
        return Conflict("key", "key_alias", str(values.get("key_alias")))
    return Conflict("key", "token", str(values.get("token")))


def _check_team(conn: Conn, team_id: str | None) -> None:
    if team_id is not None and not exists_tx(conn, teams, team_id=team_id):
        raise MissingReference("team", team_id)


def create_key_tx(conn: Conn, ctx: RepoContext, values: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
    now = ctx.clock()
    row = {"created_at": now, "updated_at": now, "created_by": actor.changed_by or None,
           "updated_by": actor.changed_by or None, **values}
    _check_team(conn, row.get("team_id"))
    try:
        insert_tx(conn, virtual_keys, row)
    except UniqueViolation as exc:
        raise _translate_unique(exc, row) from None
    stored = get_tx(conn, virtual_keys, token=row["token"])
    assert stored is not None
    write_audit_tx(conn, ctx, actor, action="created", table=TABLE, object_id=stored["token"],
                   before=None, updated=key_view(stored))
    return stored


def delete_keys_tx(conn: Conn, ctx: RepoContext, rows: list[dict[str, Any]], actor: Actor) -> None:
    for row in rows:
        delete_tx(conn, virtual_keys, {"token": row["token"]})
        write_audit_tx(conn, ctx, actor, action="deleted", table=TABLE, object_id=row["token"],
                       before=key_view(row), updated=None)


class KeyRepository:
    def __init__(self, ctx: RepoContext):
        self.ctx = ctx

    # --- reads -----------------------------------------------------------------------------------

    async def get(self, token: str) -> dict[str, Any] | None:
        return await self.ctx.db.read(lambda conn: get_tx(conn, virtual_keys, token=token))

    async def get_many(self, tokens: list[str]) -> list[dict[str, Any]]:
        return await self.ctx.db.read(lambda conn: select_tx(conn, virtual_keys, {"token": tokens}))

    async def get_by_alias(self, aliases: list[str]) -> list[dict[str, Any]]:
        return await self.ctx.db.read(lambda conn: select_tx(conn, virtual_keys, {"key_alias": aliases}))

    async def list(self, *, user_id: str | None = None, team_id: str | None = None,
                   key_alias: str | None = None, page: int = 1, size: int = 10) -> Page:
        where = {k: v for k, v in (("user_id", user_id), ("team_id", team_id), ("key_alias", key_alias))
                 if v is not None}

        def run(conn: Conn) -> Page:
            total = count_tx(conn, virtual_keys, where)
            rows = select_tx(conn, virtual_keys, where, order_by=("created_at", "token"),
                             limit=size, offset=(page - 1) * size)
            return Page(rows, total, page, size)

        return await self.ctx.db.read(run)

    async def for_owner(self, *, team_id: str | None = None, user_id: str | None = None) -> list[dict[str, Any]]:
        where = {"team_id": team_id} if team_id is not None else {"user_id": user_id}
        return await self.ctx.db.read(lambda conn: select_tx(conn, virtual_keys, where, order_by=("created_at",)))

    # --- mutations -------------------------------------------------------------------------------

    async def create(self, values: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
        return await mutate(self.ctx, lambda conn, inv: create_key_tx(conn, self.ctx, values, actor),
                            [Invalidation.key(values["token"])])   # drops a cached "unknown key"

    async def update(self, token: str, changes: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")

        def run(conn: Conn, inv: Any) -> dict[str, Any]:
            before = get_tx(conn, virtual_keys, token=token)
            if before is None:
                raise NotFound("key", [token])
            if "team_id" in changes:
                _check_team(conn, changes["team_id"])
            row = {**changes, "updated_at": self.ctx.clock(), "updated_by": actor.changed_by or None}
            try:
                update_tx(conn, virtual_keys, {"token": token}, row)
            except UniqueViolation as exc:
                raise _translate_unique(exc, changes) from None
            after = get_tx(conn, virtual_keys, token=token)
            assert after is not None
            write_audit_tx(conn, self.ctx, actor, action="updated", table=TABLE, object_id=token,
                           before=key_view(before), updated=key_view(dict(changes)))
            return after

        return await mutate(self.ctx, run, [Invalidation.key(token)])

    async def set_blocked(self, token: str, blocked: bool, actor: Actor) -> dict[str, Any]:
        def run(conn: Conn, inv: Any) -> dict[str, Any]:
            before = get_tx(conn, virtual_keys, token=token)
            if before is None:
                raise NotFound("key", [token])
            update_tx(conn, virtual_keys, {"token": token},
                      {"blocked": blocked, "updated_at": self.ctx.clock(), "updated_by": actor.changed_by or None})
            after = get_tx(conn, virtual_keys, token=token)
            assert after is not None
            write_audit_tx(conn, self.ctx, actor, action="blocked" if blocked else "unblocked", table=TABLE,
                           object_id=token, before=key_view(before), updated={"blocked": blocked})
            return after

        return await mutate(self.ctx, run, [Invalidation.key(token)])

    async def delete(self, tokens: list[str], actor: Actor) -> list[dict[str, Any]]:
        """Delete every key in ``tokens`` or none: ``NotFound`` names the hashes that do not exist."""
        def run(conn: Conn, inv: Any) -> list[dict[str, Any]]:
            rows = select_tx(conn, virtual_keys, {"token": tokens})
            found = {r["token"] for r in rows}
            missing = [t for t in dict.fromkeys(tokens) if t not in found]
            if missing:
                raise NotFound("key", missing)
            delete_keys_tx(conn, self.ctx, rows, actor)
            return rows

        return await mutate(self.ctx, run, [Invalidation.key(t) for t in tokens])

    async def rotate(self, token: str, *, new_token: str, new_key_name: str, grace_until: datetime | None,
                     changes: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
        """The same row under a new secret; ``grace_until`` keeps the old hash valid until then."""
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")

        def run(conn: Conn, inv: Any) -> dict[str, Any]:
            before = get_tx(conn, virtual_keys, token=token)
            if before is None:
                raise NotFound("key", [token])
            if "team_id" in changes:
                _check_team(conn, changes["team_id"])
            now = self.ctx.clock()
            row = {**changes, "token": new_token, "key_name": new_key_name,
                   "rotation_count": int(before["rotation_count"] or 0) + 1, "last_rotation_at": now,
                   "updated_at": now, "updated_by": actor.changed_by or None}
            try:
                update_tx(conn, virtual_keys, {"token": token}, row)
            except UniqueViolation as exc:
                raise _translate_unique(exc, {"token": new_token, **changes}) from None
            # old hashes whose grace ended are dead weight; the one being rotated away is added back
            conn.execute('DELETE FROM "deprecated_keys" WHERE "revoke_at" <= :now OR "token" = :old',
                         {"now": time_param(conn, now), "old": token})
            # secrets of earlier rotations live no longer than this rotation's grace: a rotation
            # without grace (a leaked key) ends them all at once
            pointing = {"old": token, "new": new_token}
            if grace_until is None or grace_until <= now:
                conn.execute('DELETE FROM "deprecated_keys" WHERE "active_token" IN (:old, :new)', pointing)
            else:
                conn.execute('UPDATE "deprecated_keys" SET "revoke_at" = :cap WHERE "active_token" IN (:old, :new) '
                             'AND "revoke_at" > :cap', {**pointing, "cap": time_param(conn, grace_until)})
            if grace_until is not None and grace_until > now:
                insert_tx(conn, deprecated_keys, {"token": token, "active_token": new_token,
                                                  "revoke_at": grace_until, "created_at": now})
            after = get_tx(conn, virtual_keys, token=new_token)
            assert after is not None
            write_audit_tx(conn, self.ctx, actor, action="rotated", table=TABLE, object_id=new_token,
                           before=key_view(before),
                           updated={**key_view(dict(changes)), "token": new_token, "key_name": new_key_name,
                                    "grace_until": grace_until.isoformat() if grace_until else None})
            return after

        return await mutate(self.ctx, run, [Invalidation.key(token), Invalidation.key(new_token)])
