"""Teams and their memberships.

Deleting a team deletes its keys in the same transaction (each with its own audit row) and its
memberships (foreign key ``ON DELETE CASCADE``); the ``team`` invalidation then drops every cached
key of the team at once — LiteLLM #34217 left them valid in its auth cache.

Adding a member who is not an internal user yet creates the user (``internal_user`` role), as
LiteLLM does, so ``/user/info`` lists the team afterwards. Members are named by ``user_id`` or
``user_email``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..errors import Conflict, NotFound, UniqueViolation
from ..invalidation import Invalidation
from ..schema import internal_users, team_memberships, teams, virtual_keys
from ..sql import Conn
from ..views import membership_view, team_view
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
from .keys import delete_keys_tx

__all__ = ["MemberSpec", "TeamRepository", "members_tx", "resolve_member_tx"]

TABLE = "teams"
UPDATABLE = frozenset(c.name for c in teams.columns) - {
    "team_id", "created_at", "created_by", "updated_at", "updated_by", "spend"}

MemberSpec = Mapping[str, Any]   # {"role": "admin"|"user", "user_id"?: str, "user_email"?: str}


def members_tx(conn: Conn, team_id: str) -> list[dict[str, Any]]:
    """Memberships of a team with each member's email, oldest first."""
    sql = ('SELECT m.*, u."user_email" AS user_email FROM "team_memberships" m '
           'LEFT JOIN "internal_users" u ON u."user_id" = m."user_id" '
           'WHERE m."team_id" = :team_id ORDER BY m."created_at", m."user_id"')
    from ..sql import codec_for

    codec = codec_for(team_memberships, conn.dialect)  # type: ignore[arg-type]
    out = []
    for raw in conn.all(sql, {"team_id": team_id}):
        row = codec.decode(raw)
        row["user_email"] = raw.get("user_email")
        out.append(row)
    return out


def members_of_teams_tx(conn: Conn, team_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The memberships of several teams in one query (a page of ``/team/list``: no query per team),
    each team's oldest first, as :func:`members_tx`."""
    out: dict[str, list[dict[str, Any]]] = {team_id: [] for team_id in team_ids}
    if not team_ids:
        return out
    names = [f":t{i}" for i in range(len(team_ids))]
    sql = ('SELECT m.*, u."user_email" AS user_email FROM "team_memberships" m '
           'LEFT JOIN "internal_users" u ON u."user_id" = m."user_id" '
           f'WHERE m."team_id" IN ({", ".join(names)}) ORDER BY m."created_at", m."user_id"')
    from ..sql import codec_for

    codec = codec_for(team_memberships, conn.dialect)  # type: ignore[arg-type]
    for raw in conn.all(sql, {f"t{i}": team_id for i, team_id in enumerate(team_ids)}):
        row = codec.decode(raw)
        row["user_email"] = raw.get("user_email")
        out[row["team_id"]].append(row)
    return out


def resolve_member_tx(conn: Conn, ctx: RepoContext, member: MemberSpec, actor: Actor, *,
                      create: bool) -> str | None:
    """The user_id of a member named by id or email; creates the user when ``create``."""
    user_id, email = member.get("user_id"), member.get("user_email")
    if user_id is not None:
        user = get_tx(conn, internal_users, user_id=user_id)
    elif email is not None:
        found = select_tx(conn, internal_users, {"user_email": email})
        user = found[0] if found else None
    else:
        raise ValueError("a member needs user_id or user_email")
    if user is not None:
        return str(user["user_id"])
    if not create:
        return None
    now = ctx.clock()
    new_id = user_id or str(uuid.uuid4())
    row = {"user_id": new_id, "user_email": email, "user_role": "internal_user", "created_at": now,
           "updated_at": now, "created_by": actor.changed_by or None, "updated_by": actor.changed_by or None}
    insert_tx(conn, internal_users, row)
    from ..views import user_view

    stored = get_tx(conn, internal_users, user_id=new_id)
    write_audit_tx(conn, ctx, actor, action="created", table="internal_users", object_id=new_id,
                   before=None, updated=user_view(stored or row))
    return new_id


def add_members_tx(conn: Conn, ctx: RepoContext, team_id: str, members: list[MemberSpec],
                   actor: Actor, *, max_budget_in_team: int | None = None, budget_duration: str | None = None,
                   budget_reset_at: datetime | None = None) -> list[dict[str, Any]]:
    added = []
    now = ctx.clock()
    for member in members:
        user_id = resolve_member_tx(conn, ctx, member, actor, create=True)
        assert user_id is not None
        if get_tx(conn, team_memberships, team_id=team_id, user_id=user_id) is not None:
            raise Conflict("team member", "user_id", user_id)
        row = {"team_id": team_id, "user_id": user_id, "role": member.get("role") or "user",
               "max_budget_in_team": max_budget_in_team, "budget_duration": budget_duration,
               "budget_reset_at": budget_reset_at, "created_at": now}
        insert_tx(conn, team_memberships, row)
        added.append(row)
        write_audit_tx(conn, ctx, actor, action="created", table="team_memberships",
                       object_id=f"{team_id}:{user_id}", before=None, updated=membership_view(row))
    return added


class TeamRepository:
    def __init__(self, ctx: RepoContext):
        self.ctx = ctx

    # --- reads -----------------------------------------------------------------------------------

    async def get(self, team_id: str) -> dict[str, Any] | None:
        return await self.ctx.db.read(lambda conn: get_tx(conn, teams, team_id=team_id))

    async def get_with_members(self, team_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        def run(conn: Conn) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
            team = get_tx(conn, teams, team_id=team_id)
            return None if team is None else (team, members_tx(conn, team_id))

        return await self.ctx.db.read(run)

    async def members(self, team_id: str) -> list[dict[str, Any]]:
        return await self.ctx.db.read(lambda conn: members_tx(conn, team_id))

    async def memberships_of_user(self, user_id: str) -> list[dict[str, Any]]:
        return await self.ctx.db.read(
            lambda conn: select_tx(conn, team_memberships, {"user_id": user_id}, order_by=("created_at",)))

    async def list(self, *, user_id: str | None = None, organization_id: str | None = None,
                   page: int = 1, size: int | None = None) -> Page:
        """Teams (a user's, an organisation's), oldest first; every row when ``size`` is None."""
        return await self.ctx.db.read(lambda conn: _team_page_tx(conn, user_id, organization_id, page, size))

    async def list_with_members(self, *, user_id: str | None = None, organization_id: str | None = None,
                                page: int = 1, size: int) -> tuple[Page, dict[str, list[dict[str, Any]]]]:
        """A page of teams and their memberships: two statements and a count in one read, whatever
        the page size."""
        def run(conn: Conn) -> tuple[Page, dict[str, list[dict[str, Any]]]]:
            page_ = _team_page_tx(conn, user_id, organization_id, page, size)
            return page_, members_of_teams_tx(conn, [r["team_id"] for r in page_.rows])

        return await self.ctx.db.read(run)

    # --- mutations -------------------------------------------------------------------------------

    async def create(self, values: Mapping[str, Any], members: list[MemberSpec], actor: Actor) -> tuple[
            dict[str, Any], list[dict[str, Any]]]:
        team_id = values.get("team_id") or str(uuid.uuid4())

        def run(conn: Conn, inv: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            now = self.ctx.clock()
            row = {"created_at": now, "updated_at": now, "created_by": actor.changed_by or None,
                   "updated_by": actor.changed_by or None, **values, "team_id": team_id}
            try:
                insert_tx(conn, teams, row)
            except UniqueViolation:
                raise Conflict("team", "team_id", team_id) from None
            added = add_members_tx(conn, self.ctx, team_id, list(members), actor)
            inv.add(*(Invalidation.user(m["user_id"]) for m in added))
            stored = get_tx(conn, teams, team_id=team_id)
            assert stored is not None
            member_rows = members_tx(conn, team_id)
            write_audit_tx(conn, self.ctx, actor, action="created", table=TABLE, object_id=team_id,
                           before=None, updated=team_view(stored, member_rows))
            return stored, member_rows

        return await mutate(self.ctx, run, [Invalidation.team(team_id)])

    async def update(self, team_id: str, changes: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")

        def run(conn: Conn, inv: Any) -> dict[str, Any]:
            before = get_tx(conn, teams, team_id=team_id)
            if before is None:
                raise NotFound("team", [team_id])
            update_tx(conn, teams, {"team_id": team_id},
                      {**changes, "updated_at": self.ctx.clock(), "updated_by": actor.changed_by or None})
            after = get_tx(conn, teams, team_id=team_id)
            assert after is not None
            action = "updated"
            if set(changes) == {"blocked"}:
                action = "blocked" if changes["blocked"] else "unblocked"
            write_audit_tx(conn, self.ctx, actor, action=action, table=TABLE, object_id=team_id,
                           before=team_view(before), updated=_changed_view(changes))
            return after

        return await mutate(self.ctx, run, [Invalidation.team(team_id)])

    async def set_blocked(self, team_id: str, blocked: bool, actor: Actor) -> dict[str, Any]:
        return await self.update(team_id, {"blocked": blocked}, actor)

    async def delete(self, team_ids: list[str], actor: Actor) -> list[dict[str, Any]]:
        """Delete every team named (and their keys and memberships) or none (``NotFound``)."""
        def run(conn: Conn, inv: Any) -> list[dict[str, Any]]:
            rows = select_tx(conn, teams, {"team_id": team_ids})
            found = {r["team_id"] for r in rows}
            missing = [t for t in dict.fromkeys(team_ids) if t not in found]
            if missing:
                raise NotFound("team", missing)
            for team in rows:
                keys = select_tx(conn, virtual_keys, {"team_id": team["team_id"]})
                delete_keys_tx(conn, self.ctx, keys, actor)
                inv.add(*(Invalidation.key(k["token"]) for k in keys))
                member_rows = members_tx(conn, team["team_id"])
                inv.add(*(Invalidation.user(m["user_id"]) for m in member_rows))
                delete_tx(conn, team_memberships, {"team_id": team["team_id"]})
                delete_tx(conn, teams, {"team_id": team["team_id"]})
                write_audit_tx(conn, self.ctx, actor, action="deleted", table=TABLE, object_id=team["team_id"],
                               before=team_view(team, member_rows), updated=None)
            return rows

        return await mutate(self.ctx, run, [Invalidation.team(t) for t in team_ids])

    async def add_members(self, team_id: str, members: list[MemberSpec], actor: Actor, *,
                          max_budget_in_team: int | None = None, budget_duration: str | None = None,
                          budget_reset_at: datetime | None = None) -> list[dict[str, Any]]:
        def run(conn: Conn, inv: Any) -> list[dict[str, Any]]:
            if get_tx(conn, teams, team_id=team_id) is None:
                raise NotFound("team", [team_id])
            added = add_members_tx(conn, self.ctx, team_id, members, actor,
                                   max_budget_in_team=max_budget_in_team, budget_duration=budget_duration,
                                   budget_reset_at=budget_reset_at)
            inv.add(*(Invalidation.user(m["user_id"]) for m in added))
            return added

        return await mutate(self.ctx, run, [Invalidation.team(team_id)])

    async def update_member(self, team_id: str, member: MemberSpec, changes: Mapping[str, Any],
                            actor: Actor) -> dict[str, Any]:
        """``changes``: ``role``, ``max_budget_in_team`` (micro-USD), ``budget_duration`` with its
        ``budget_reset_at`` (the admin layer starts the window)."""
        def run(conn: Conn, inv: Any) -> dict[str, Any]:
            if get_tx(conn, teams, team_id=team_id) is None:
                raise NotFound("team", [team_id])
            user_id = resolve_member_tx(conn, self.ctx, member, actor, create=False)
            before = get_tx(conn, team_memberships, team_id=team_id, user_id=user_id) if user_id else None
            if before is None or user_id is None:
                raise NotFound("team member", [str(member.get("user_id") or member.get("user_email"))])
            update_tx(conn, team_memberships, {"team_id": team_id, "user_id": user_id}, dict(changes))
            after = get_tx(conn, team_memberships, team_id=team_id, user_id=user_id)
            assert after is not None
            inv.add(Invalidation.user(user_id))
            write_audit_tx(conn, self.ctx, actor, action="updated", table="team_memberships",
                           object_id=f"{team_id}:{user_id}", before=membership_view(before),
                           updated=_changed_view(changes))
            return after

        return await mutate(self.ctx, run, [Invalidation.team(team_id)])

    async def remove_member(self, team_id: str, member: MemberSpec, actor: Actor) -> str:
        def run(conn: Conn, inv: Any) -> str:
            if get_tx(conn, teams, team_id=team_id) is None:
                raise NotFound("team", [team_id])
            user_id = resolve_member_tx(conn, self.ctx, member, actor, create=False)
            before = get_tx(conn, team_memberships, team_id=team_id, user_id=user_id) if user_id else None
            if before is None or user_id is None:
                raise NotFound("team member", [str(member.get("user_id") or member.get("user_email"))])
            delete_tx(conn, team_memberships, {"team_id": team_id, "user_id": user_id})
            inv.add(Invalidation.user(user_id))
            write_audit_tx(conn, self.ctx, actor, action="deleted", table="team_memberships",
                           object_id=f"{team_id}:{user_id}", before=membership_view(before), updated=None)
            return user_id

        return await mutate(self.ctx, run, [Invalidation.team(team_id)])


def _changed_view(changes: Mapping[str, Any]) -> dict[str, Any]:
    from ..views import user_view

    return user_view(dict(changes))   # the generic row view: money as USD, times as ISO


def _team_page_tx(conn: Conn, user_id: str | None, organization_id: str | None, page: int,
                  size: int | None) -> Page:
    """One page of teams (every row when ``size`` is None), filtered by member and organisation."""
    where: dict[str, Any] = {}
    if organization_id is not None:
        where["organization_id"] = organization_id
    extra = None
    if user_id is not None:
        extra = ('"team_id" IN (SELECT "team_id" FROM "team_memberships" WHERE "user_id" = :member)',
                 {"member": user_id})
    total = count_tx(conn, teams, where, extra)
    rows = select_tx(conn, teams, where, order_by=("created_at", "team_id"), limit=size,
                     offset=(page - 1) * (size or 0), extra=extra)
    return Page(rows, total, page, size or max(total, 1))
