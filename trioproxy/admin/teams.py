"""``/team/*``: new, info, update, delete, member_add, member_update, member_delete, block, unblock, list."""

from __future__ import annotations

from typing import Any

from ..store.views import key_view, membership_view, team_view, user_view
from .access import Access, Caller, require
from .common import (
    DEFAULT_LIST_PAGE_SIZE,
    MAX_LIST_PAGE_SIZE,
    AdminContext,
    PagedList,
    reset_after,
    store_errors,
)
from .errors import bad_request, forbidden, not_found
from .team_metadata import TeamMetadataRequester, TeamMetadataValidationPayload
from .validation import (
    boolean,
    duration,
    integer,
    json_object,
    members,
    model_budget,
    model_limits,
    money,
    one_of,
    optional,
    query_int,
    string,
    string_list,
    validate,
)

__all__ = [
    "team_block",
    "team_delete",
    "team_info",
    "team_list",
    "team_list_v2",
    "team_member_add",
    "team_member_delete",
    "team_member_update",
    "team_new",
    "team_unblock",
    "team_update",
]

TEAM_FIELDS = {
    "team_alias": optional(string),
    "organization_id": optional(string),
    "models": string_list,
    "metadata": json_object,
    "tags": string_list,
    "model_aliases": json_object,
    "max_budget": optional(money),
    "soft_budget": optional(money),
    "budget_duration": optional(duration),
    "tpm_limit": optional(integer(0)),
    "rpm_limit": optional(integer(0)),
    "max_parallel_requests": optional(integer(0)),
    "model_max_budget": model_budget,
    "model_rpm_limit": model_limits,
    "model_tpm_limit": model_limits,
    "guardrails": string_list,
    "blocked": boolean,
}
NEW_FIELDS = {"team_id": string, "members_with_roles": members, **TEAM_FIELDS}
UPDATE_FIELDS = {"team_id": string, **TEAM_FIELDS}


def _columns(fields: dict[str, Any], now: Any, current_metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    row = dict(fields)
    if "budget_duration" in row:
        d = row["budget_duration"]
        row["budget_duration"] = str(d) if d is not None else None
        row["budget_reset_at"] = reset_after(d, now)
    if "tags" in row:
        metadata = dict(row.get("metadata", current_metadata or {}))
        metadata["tags"] = row.pop("tags")
        row["metadata"] = metadata
    return row


async def _team(ctx: AdminContext, team_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with store_errors():
        found = await ctx.require_store().teams.get_with_members(team_id)
    if found is None:
        raise not_found(f"Team not found, passed team_id={team_id}", param="team_id")
    return found


def _requester(caller: Caller) -> TeamMetadataRequester:
    return TeamMetadataRequester(user_id=caller.user_id or ("admin" if caller.is_master else None),
                                 user_role=caller.role)


async def team_new(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    require(caller, Access.ADMIN, "/team/new")
    store = ctx.require_store()
    fields = validate(data, NEW_FIELDS, "/team/new")
    team_members = fields.pop("members_with_roles", [])
    # a proxy_admin user creating a team becomes its admin (the seed's audit example shows this)
    if caller.user_id and not caller.is_master and not any(m["user_id"] == caller.user_id for m in team_members):
        team_members.append({"role": "admin", "user_id": caller.user_id, "user_email": None})
    if ctx.team_metadata_validator is not None:   # before anything is written (team_metadata.py)
        await ctx.team_metadata_validator.check(TeamMetadataValidationPayload(
            operation="create", metadata=dict(fields.get("metadata") or {}), requester=_requester(caller),
            team_id=fields.get("team_id"), team_alias=fields.get("team_alias")))
    row = _columns(fields, ctx.now())
    with store_errors():
        team, member_rows = await store.teams.create(row, team_members, caller.actor())
    return team_view(team, member_rows)


async def team_info(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    """``GET /team/info?team_id=`` → the team, its keys and memberships (LiteLLM's shape).

    Who sees what (docs/access.md "What /team/info shows"): proxy admins, admin viewers and the
    team's admins see everything. Any other member — a user listed in the team, or a key bound to
    it — sees the team (with ``members_with_roles``: who is in it) but only **their own** keys
    (the caller's key, and keys of the caller's user) and **their own** membership row: not the
    other members' keys, spend or budgets. LiteLLM shows every member everything. Anyone else: 403,
    before the team is looked up (no existence leak)."""
    require(caller, Access.SELF, "/team/info")
    store = ctx.require_store()
    team_id = validate(data, {"team_id": string}, "/team/info", required=("team_id",))["team_id"]
    sees_all = caller.can_read_all
    if not sees_all:
        roles: dict[str, str] = {}
        if caller.user_id:
            with store_errors():
                roles = {m["team_id"]: m["role"] for m in await store.teams.memberships_of_user(caller.user_id)}
        if caller.team_id != team_id and team_id not in roles:
            raise forbidden(f"You are not allowed to access this team's info. team_id={team_id}")
        sees_all = roles.get(team_id) == "admin"
    team, member_rows = await _team(ctx, team_id)
    with store_errors():
        keys = await store.keys.for_owner(team_id=team_id)
    memberships = member_rows
    if not sees_all:
        def own(row: dict[str, Any]) -> bool:
            return caller.user_id is not None and row.get("user_id") == caller.user_id

        keys = [k for k in keys if k["token"] == caller.token or own(k)]
        memberships = [m for m in member_rows if own(m)]
    return {"team_id": team_id, "team_info": team_view(team, member_rows),
            "keys": [key_view(k) for k in keys],
            "team_memberships": [membership_view(m) for m in memberships]}


async def team_update(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    require(caller, Access.ADMIN, "/team/update")
    store = ctx.require_store()
    fields = validate(data, UPDATE_FIELDS, "/team/update", required=("team_id",))
    team_id = fields.pop("team_id")
    current, _ = await _team(ctx, team_id)
    if ctx.team_metadata_validator is not None and "metadata" in fields:
        await ctx.team_metadata_validator.check(TeamMetadataValidationPayload(
            operation="update", metadata=dict(fields.get("metadata") or {}), requester=_requester(caller),
            existing_metadata=dict(current.get("metadata") or {}), team_id=team_id,
            team_alias=fields.get("team_alias", current.get("team_alias"))))
    with store_errors():
        await store.teams.update(team_id, _columns(fields, ctx.now(), current.get("metadata")), caller.actor())
    team, member_rows = await _team(ctx, team_id)
    return {"team_id": team_id, "data": team_view(team, member_rows)}


async def team_delete(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    """Deletes the teams, their keys (refused from the next request on) and memberships."""
    require(caller, Access.ADMIN, "/team/delete")
    store = ctx.require_store()
    ids = validate(data, {"team_ids": string_list}, "/team/delete", required=("team_ids",))["team_ids"]
    if not ids:
        raise bad_request("/team/delete: 'team_ids' must not be empty", param="team_ids")
    with store_errors():
        await store.teams.delete(ids, caller.actor())
    return {"deleted_teams": ids}


async def _set_blocked(ctx: AdminContext, caller: Caller, data: Any, blocked: bool) -> dict[str, Any]:
    route = "/team/block" if blocked else "/team/unblock"
    require(caller, Access.ADMIN, route)
    store = ctx.require_store()
    team_id = validate(data, {"team_id": string}, route, required=("team_id",))["team_id"]
    await _team(ctx, team_id)
    with store_errors():
        await store.teams.set_blocked(team_id, blocked, caller.actor())
    team, member_rows = await _team(ctx, team_id)
    return team_view(team, member_rows)


async def team_block(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    return await _set_blocked(ctx, caller, data, True)


async def team_unblock(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    return await _set_blocked(ctx, caller, data, False)


async def team_member_add(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    """``{team_id, member: {role, user_id | user_email} | [...], max_budget_in_team?}``; unknown users
    are created (``internal_user``)."""
    require(caller, Access.ADMIN, "/team/member_add")
    store = ctx.require_store()
    fields = validate(data, {"team_id": string, "member": members, "max_budget_in_team": optional(money),
                             "budget_duration": optional(duration)},
                      "/team/member_add", required=("team_id", "member"))
    team_id = fields["team_id"]
    await _team(ctx, team_id)
    window = _member_window(fields.get("budget_duration"), ctx.now())
    with store_errors():
        added = await store.teams.add_members(team_id, fields["member"], caller.actor(),
                                              max_budget_in_team=fields.get("max_budget_in_team"), **window)
        users = await store.users.get_many([m["user_id"] for m in added])
    team, member_rows = await _team(ctx, team_id)
    return {**team_view(team, member_rows), "updated_users": [user_view(u) for u in users],
            "updated_team_memberships": [membership_view(m) for m in added]}


def _member_window(d: Any, now: Any) -> dict[str, Any]:
    """A member budget's window starts when it is set, like every budget's (``docs/spend.md``)."""
    return {"budget_duration": str(d) if d is not None else None, "budget_reset_at": reset_after(d, now)}


def _member_ref(fields: dict[str, Any], route: str) -> dict[str, Any]:
    if fields.get("user_id") is None and fields.get("user_email") is None:
        raise bad_request(f"{route}: pass 'user_id' or 'user_email'", param="user_id")
    return {"user_id": fields.get("user_id"), "user_email": fields.get("user_email")}


async def team_member_update(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    require(caller, Access.ADMIN, "/team/member_update")
    store = ctx.require_store()
    route = "/team/member_update"
    fields = validate(data, {"team_id": string, "user_id": optional(string), "user_email": optional(string),
                             "role": one_of("admin", "user"), "max_budget_in_team": optional(money),
                             "budget_duration": optional(duration)},
                      route, required=("team_id",))
    changes = {k: fields[k] for k in ("role", "max_budget_in_team") if k in fields}
    if "budget_duration" in fields:     # set or changed: a new window starts now; null = lifetime
        changes.update(_member_window(fields["budget_duration"], ctx.now()))
    if not changes:
        raise bad_request(f"{route}: nothing to change: pass 'role', 'max_budget_in_team' and/or "
                          "'budget_duration'", param="role")
    await _team(ctx, fields["team_id"])
    with store_errors():
        after = await store.teams.update_member(fields["team_id"], _member_ref(fields, route), changes, caller.actor())
        user = await store.users.get(after["user_id"])
    view = membership_view(after)
    return {"team_id": view["team_id"], "user_id": view["user_id"],
            "user_email": user.get("user_email") if user else None, "role": view["role"],
            "max_budget_in_team": view["max_budget_in_team"], "budget_duration": view.get("budget_duration"),
            "budget_reset_at": view.get("budget_reset_at")}


async def team_member_delete(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    require(caller, Access.ADMIN, "/team/member_delete")
    store = ctx.require_store()
    route = "/team/member_delete"
    fields = validate(data, {"team_id": string, "user_id": optional(string), "user_email": optional(string)},
                      route, required=("team_id",))
    await _team(ctx, fields["team_id"])
    with store_errors():
        await store.teams.remove_member(fields["team_id"], _member_ref(fields, route), caller.actor())
    team, member_rows = await _team(ctx, fields["team_id"])
    return team_view(team, member_rows)


#: LiteLLM's default page size of ``/v2/team/list``
V2_LIST_PAGE_SIZE = 10

async def _team_page(ctx: AdminContext, caller: Caller, data: Any, where: str,
                     default_size: int) -> tuple[list[dict[str, Any]], Any, int, int]:
    """One page of teams with their members for both list routes: (views, page result, page, size).
    The page's teams and all their members come from one read (no query per team)."""
    require(caller, Access.ADMIN_READ, where)
    store = ctx.require_store()
    query = validate(data, {"user_id": string, "organization_id": string, "page": lambda v: v,
                            "page_size": lambda v: v}, where)
    size = query_int(query.get("page_size"), "page_size", where, default=default_size, minimum=1,
                     maximum=MAX_LIST_PAGE_SIZE)
    page = query_int(query.get("page"), "page", where, default=1)
    with store_errors():
        result, members = await store.teams.list_with_members(
            user_id=query.get("user_id"), organization_id=query.get("organization_id"), page=page, size=size)
    return [team_view(team, members[team["team_id"]]) for team in result.rows], result, page, size


async def team_list(ctx: AdminContext, caller: Caller, data: Any) -> PagedList:
    """``GET /team/list?user_id=&organization_id=&page=&page_size=`` → a JSON array of teams
    (LiteLLM's shape), one page: ``page_size`` 100 by default, at most 1000 (``page``/``page_size``
    are LiteLLM's ``/v2/team/list`` names); oldest first; the totals in ``x-total-count`` & co."""
    views, result, page, size = await _team_page(ctx, caller, data, "/team/list", DEFAULT_LIST_PAGE_SIZE)
    return PagedList.page(views, total=result.total, page=page, size=size)


async def team_list_v2(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    """``GET /v2/team/list?user_id=&organization_id=&page=&page_size=`` → LiteLLM's envelope
    ``{"teams", "total", "page", "page_size", "total_pages"}``; ``page_size`` 10 by default (LiteLLM's),
    at most 1000. The same teams, order and single read as ``/team/list``. LiteLLM's other filters
    (``team_id``, ``team_alias``, ``status``, ``sort_by``, ``sort_order``) are not supported: a 400
    names the parameter, rather than an unfiltered list that looks filtered."""
    views, result, page, size = await _team_page(ctx, caller, data, "/v2/team/list", V2_LIST_PAGE_SIZE)
    return {"teams": views, "total": result.total, "page": page, "page_size": size,
            "total_pages": result.total_pages}
