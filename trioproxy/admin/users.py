"""``/user/*``: new (answers with a key for the user), info, update, delete, list."""

from __future__ import annotations

from typing import Any

from ..store.views import key_view, team_view, user_view
from .access import USER_ROLES, Access, Caller, require
from .common import AdminContext, new_clear_key, reset_after, store_errors, token_of
from .errors import bad_request, forbidden, not_found
from .keys import _check_custom_key
from .validation import (
    MAX_LIST,
    boolean,
    duration,
    integer,
    json_object,
    model_budget,
    money,
    one_of,
    optional,
    query_int,
    route_list,
    string,
    string_list,
    validate,
)

__all__ = ["user_delete", "user_info", "user_list", "user_new", "user_update"]

USER_FIELDS = {
    "user_alias": optional(string),
    "user_email": optional(string),
    "user_role": one_of(*USER_ROLES),
    "models": string_list,
    "metadata": json_object,
    "max_budget": optional(money),
    "soft_budget": optional(money),
    "budget_duration": optional(duration),
    "tpm_limit": optional(integer(0)),
    "rpm_limit": optional(integer(0)),
    "max_parallel_requests": optional(integer(0)),
    "model_max_budget": model_budget,
}
#: /user/new also takes the fields of the key it creates for the user
NEW_FIELDS = {
    "user_id": string,
    "teams": string_list,
    "team_id": optional(string),
    "auto_create_key": boolean,
    "key": string,
    "key_alias": optional(string),
    "duration": optional(duration),
    "permissions": json_object,
    "guardrails": string_list,
    "enforced_params": string_list,
    "allowed_routes": route_list,
    "aliases": json_object,
    "config": json_object,
    **USER_FIELDS,
}
UPDATE_FIELDS = {"user_id": string, **USER_FIELDS}
_KEY_ONLY = ("key", "key_alias", "duration", "permissions", "guardrails", "enforced_params", "allowed_routes",
             "aliases", "config")


def _user_columns(fields: dict[str, Any], now: Any) -> dict[str, Any]:
    row = dict(fields)
    if "budget_duration" in row:
        d = row["budget_duration"]
        row["budget_duration"] = str(d) if d is not None else None
        row["budget_reset_at"] = reset_after(d, now)
    return row


async def user_new(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    """The user and (unless ``auto_create_key: false``) a key for them, in one transaction. Budgets
    and limits sent here belong to the user; the key carries the key fields (``key_alias``,
    ``duration``, ``permissions``, …) and is bound to ``team_id`` when one is given."""
    require(caller, Access.ADMIN, "/user/new")
    store = ctx.require_store()
    fields = validate(data, NEW_FIELDS, "/user/new")
    now = ctx.now()
    teams = list(fields.pop("teams", []))
    team_id = fields.pop("team_id", None)
    if team_id and team_id not in teams:
        teams.append(team_id)
    make_key = fields.pop("auto_create_key", True)
    key_fields = {k: fields.pop(k) for k in _KEY_ONLY if k in fields}
    clear = key_fields.pop("key", None)
    key_row = None
    if make_key:
        if clear is not None:
            _check_custom_key(clear, "key")
        else:
            clear = new_clear_key()
        key_row = {**key_fields, "token": token_of(clear), "key_name": f"sk-...{clear[-4:]}", "team_id": team_id,
                   "models": fields.get("models", [])}
        if "duration" in key_row:
            key_row["expires"] = reset_after(key_row.pop("duration"), now)
    elif clear is not None or key_fields:
        raise bad_request("/user/new: key fields were sent with auto_create_key=false", param="auto_create_key")
    user_row = _user_columns(fields, now)
    with store_errors():
        user, key = await store.users.create(user_row, caller.actor(), teams_to_join=teams, key=key_row)
    answer = {**user_view(user), "teams": teams}
    if key is not None:
        answer.update({"key": clear, "token": key["token"], "token_id": key["token"], "key_name": key["key_name"],
                       "key_alias": key["key_alias"], "expires": key_view(key)["expires"], "team_id": team_id})
    return answer


async def user_info(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    """``GET /user/info?user_id=`` (default: the caller's user). ``user_id`` is inside ``user_info``."""
    require(caller, Access.SELF, "/user/info")
    store = ctx.require_store()
    user_id = validate(data, {"user_id": string}, "/user/info").get("user_id") or caller.user_id
    if user_id is None:
        raise bad_request("user_id is required. Either pass it as a query parameter or authenticate with a "
                          "user-bound key.", param="user_id")
    if not caller.can_read_all and user_id != caller.user_id:
        raise forbidden(f"key not allowed to access this user's info. user_id={user_id}, "
                        f"key's user_id={caller.user_id}")
    with store_errors():
        user = await store.users.get(user_id)
        if user is None:
            raise not_found(f"User {user_id} not found", param="user_id")
        keys = await store.keys.for_owner(user_id=user_id)
        teams = []
        for membership in await store.teams.memberships_of_user(user_id):
            found = await store.teams.get_with_members(membership["team_id"])
            if found is not None:
                teams.append(team_view(*found))
    return {"user_id": user_id, "user_info": user_view(user), "keys": [key_view(k) for k in keys], "teams": teams}


async def user_update(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    require(caller, Access.ADMIN, "/user/update")
    store = ctx.require_store()
    fields = validate(data, UPDATE_FIELDS, "/user/update", required=("user_id",))
    user_id = fields.pop("user_id")
    with store_errors():
        after = await store.users.update(user_id, _user_columns(fields, ctx.now()), caller.actor())
    return {"user_id": user_id, "data": user_view(after)}


async def user_delete(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    """Deletes the users, their keys and memberships — all of them or none (404)."""
    require(caller, Access.ADMIN, "/user/delete")
    store = ctx.require_store()
    ids = validate(data, {"user_ids": string_list}, "/user/delete", required=("user_ids",))["user_ids"]
    if not ids:
        raise bad_request("/user/delete: 'user_ids' must not be empty", param="user_ids")
    with store_errors():
        await store.users.delete(ids, caller.actor())
    return {"deleted_users": ids}


async def user_list(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    """``GET /user/list?role=&user_ids=a,b&team_id=&page=&page_size=``"""
    require(caller, Access.ADMIN_READ, "/user/list")
    store = ctx.require_store()
    where = "/user/list"
    query = validate(data, {"role": one_of(*USER_ROLES), "user_ids": lambda v: v, "team_id": string,
                            "page": lambda v: v, "page_size": lambda v: v}, where)
    page = query_int(query.get("page"), "page", where, default=1)
    size = query_int(query.get("page_size"), "page_size", where, default=25, maximum=100)
    ids = query.get("user_ids")
    if isinstance(ids, str):
        ids = [i for i in ids.split(",") if i]
    elif ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        raise bad_request(f"{where}: 'user_ids' must be a comma-separated string", param="user_ids")
    if ids is not None and len(ids) > MAX_LIST:
        raise bad_request(f"{where}: 'user_ids' may name at most {MAX_LIST} users", param="user_ids")
    if ids is not None and any("\x00" in i for i in ids):
        raise bad_request(f"{where}: 'user_ids' must not contain NUL characters", param="user_ids")
    with store_errors():
        result = await store.users.list(role=query.get("role"), user_ids=ids, team_id=query.get("team_id"),
                                        page=page, size=size)
    return {"users": [user_view(u) for u in result.rows], "total": result.total, "page": page,
            "page_size": size, "total_pages": result.total_pages}
