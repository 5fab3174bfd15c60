"""``/key/*``: generate, info, update, delete, block, unblock, list, regenerate.

Each operation takes ``(ctx, caller, data)`` — ``data`` is the parsed JSON body, or the query
string as a dict for GET routes, with path parameters merged in — and returns LiteLLM's answer or
raises a ``trioproxy.errors`` error. The clear key appears only in the answers of ``generate`` and
``regenerate``; everywhere else a key is its hash (``token``) or, in messages, masked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ..store.durations import Duration
from ..store.views import key_view
from .access import Access, Caller, require
from .common import AdminContext, new_clear_key, reset_after, store_errors, token_of
from .errors import bad_request, describe_key, forbidden, not_found
from .validation import (
    boolean,
    duration,
    integer,
    json_object,
    model_budget,
    model_limits,
    money,
    optional,
    query_bool,
    query_int,
    route_list,
    string,
    string_list,
    validate,
)

__all__ = [
    "key_block",
    "key_delete",
    "key_generate",
    "key_info",
    "key_list",
    "key_regenerate",
    "key_unblock",
    "key_update",
]

#: fields of /key/generate and /key/update (LiteLLM's names)
KEY_FIELDS = {
    "key_alias": optional(string),
    "duration": optional(duration),
    "models": string_list,
    "aliases": json_object,
    "config": json_object,
    "spend": money,
    "max_budget": optional(money),
    "soft_budget": optional(money),
    "budget_duration": optional(duration),
    "tpm_limit": optional(integer(0)),
    "rpm_limit": optional(integer(0)),
    "max_parallel_requests": optional(integer(0)),
    "model_max_budget": model_budget,
    "model_rpm_limit": model_limits,
    "model_tpm_limit": model_limits,
    "user_id": optional(string),
    "team_id": optional(string),
    "organization_id": optional(string),
    "budget_id": optional(string),
    "metadata": json_object,
    "tags": string_list,
    "permissions": json_object,
    "enforced_params": string_list,
    "guardrails": string_list,
    "blocked": boolean,
    "allowed_routes": route_list,
}
#: the longest ``grace_period`` of a rotation: long enough to roll every client, short enough that a
#: rotated-away secret does not quietly live on
MAX_GRACE = timedelta(days=30)


def _longest_span(grace: Duration) -> timedelta:
    """The longest a duration can last: a month counts as 31 days, so whether ``1mo`` fits under
    :data:`MAX_GRACE` never depends on the date of the rotation (it never does: 400)."""
    if grace.unit == "mo":
        return timedelta(days=31 * grace.amount)
    start = datetime(2000, 1, 1, tzinfo=UTC)
    return grace.after(start) - start


def check_grace_period(grace: Duration | None, route: str) -> None:
    """400 naming the limit when ``grace`` is longer than :data:`MAX_GRACE`."""
    if grace is not None and _longest_span(grace) > MAX_GRACE:
        raise bad_request(f"{route}: grace_period '{grace}' is too long: it is at most {MAX_GRACE.days} days "
                          f"('{MAX_GRACE.days}d', '{MAX_GRACE.days * 24}h'; a month counts as 31 days). The old "
                          "secret stays valid for the whole grace period; rotate again for a longer overlap.",
                          param="grace_period")

GENERATE_FIELDS = {"key": string, **KEY_FIELDS}
UPDATE_FIELDS = {"key": string, **KEY_FIELDS}
REGENERATE_FIELDS = {"key": string, "new_key": string, "grace_period": optional(duration), **KEY_FIELDS}


def _check_custom_key(value: str, field: str) -> None:
    if not value.startswith("sk-") or len(value) < 8 or any(c.isspace() for c in value):
        raise bad_request(f"Invalid key format for '{field}': a virtual key must start with 'sk-', "
                          "be at least 8 characters long and contain no whitespace.", param=field)


def _row_changes(data: dict[str, Any], now: Any, *, current_metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validated fields → ``virtual_keys`` columns (only those sent)."""
    row = dict(data)
    if "duration" in row:
        row["expires"] = reset_after(row.pop("duration"), now)
    if "budget_duration" in row:
        d = row["budget_duration"]
        row["budget_duration"] = str(d) if d is not None else None
        row["budget_reset_at"] = reset_after(d, now)
    if "tags" in row:
        tags = row.pop("tags")
        metadata = dict(row.get("metadata", current_metadata or {}))
        metadata["tags"] = tags
        row["metadata"] = metadata
    return row


def _answer(row: dict[str, Any], **extra: Any) -> dict[str, Any]:
    out = key_view(row)
    out.update(extra)
    return out


async def key_generate(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    policy = ctx.key_generation
    require(caller, Access.KEY_GENERATE, "/key/generate", delegated=policy is not None and policy.delegated)
    store = ctx.require_store()
    fields = validate(data, GENERATE_FIELDS, "/key/generate")
    hooks = ctx.custom_key_hooks
    if hooks is not None and hooks.generate is not None:   # the user's function first (custom_key_hooks.py)
        await hooks.generate.check(fields)
    if policy is not None:   # litellm_settings: defaults, upper bounds, who may generate (key_generation.py)
        if caller.is_admin:
            policy.check_admin_personal(fields, data)
        else:
            team_role = await _team_role(ctx, fields.get("team_id"), caller.user_id)
            fields = policy.check_non_admin(role=caller.role, user_id=caller.user_id, fields=fields, sent=data,
                                            team_role=team_role)
        fields = policy.apply(fields, ctx.now())
    clear = fields.pop("key", None)
    if clear is not None:
        _check_custom_key(clear, "key")
    else:
        clear = new_clear_key()
    token = token_of(clear)
    now = ctx.now()
    row = _row_changes(fields, now)
    row.update(token=token, key_name=f"sk-...{clear[-4:]}")
    with store_errors():
        stored = await store.keys.create(row, caller.actor())
    return _answer(stored, key=clear, token_id=token)


async def _team_role(ctx: AdminContext, team_id: str | None, user_id: str | None) -> str | None:
    """``user_id``'s role in ``team_id`` (``None``: no such team or not a member)."""
    if team_id is None or user_id is None:
        return None
    with store_errors():
        found = await ctx.require_store().teams.get_with_members(team_id)
    if found is None:
        raise bad_request(f"Unable to find team object in database. Team ID: {team_id}", param="team_id")
    for member in found[1]:
        if member.get("user_id") == user_id:
            return str(member.get("role") or "user")
    return None


async def _find(ctx: AdminContext, key: str) -> dict[str, Any]:
    with store_errors():
        row = await ctx.require_store().keys.get(token_of(key))
    if row is None:
        raise not_found(f"Key not found: {describe_key(key)}", param="key")
    return row


async def key_info(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    """``GET /key/info?key=`` — by clear key or hash; without ``key``, the caller's own key."""
    require(caller, Access.SELF, "/key/info")
    query = validate(data, {"key": optional(string)}, "/key/info")
    key = query.get("key")
    if key is None:
        if caller.token is None or caller.is_master:
            raise bad_request("/key/info: pass ?key=<key or hash> (the master key has no key info)", param="key")
        key = caller.token
    token = token_of(key)
    if not caller.can_read_all and token != caller.token:
        raise forbidden(f"You are not allowed to access this key's info. Your role={caller.role}")
    row = await _find(ctx, key)
    info = key_view(row)
    info.pop("token", None)
    return {"key": token_of(key), "info": info}


async def key_update(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    require(caller, Access.ADMIN, "/key/update")
    store = ctx.require_store()
    fields = validate(data, UPDATE_FIELDS, "/key/update", required=("key",))
    hooks = ctx.custom_key_hooks
    if hooks is not None and hooks.update is not None:
        await hooks.update.check(fields)
    key = fields.pop("key")
    current = await _find(ctx, key)
    changes = _row_changes(fields, ctx.now(), current_metadata=current.get("metadata"))
    with store_errors():
        after = await store.keys.update(current["token"], changes, caller.actor())
    if "spend" in fields and ctx.forget_key_spend is not None:
        await ctx.forget_key_spend(current["token"])     # the live counter follows the row again
    return _answer(after, key=token_of(key))


async def key_delete(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    """``{"keys": [...]}`` and/or ``{"key_aliases": [...]}``: all of them, or none (404 naming the
    missing ones). Answers the keys as the caller passed them — hashes as they are, clear keys as
    their hashes (a clear key is never echoed) — then the aliases."""
    require(caller, Access.ADMIN, "/key/delete")
    store = ctx.require_store()
    fields = validate(data, {"keys": string_list, "key_aliases": string_list}, "/key/delete")
    keys, aliases = fields.get("keys") or [], fields.get("key_aliases") or []
    if not keys and not aliases:
        raise bad_request("/key/delete: pass 'keys' or 'key_aliases' (a non-empty list)", param="keys")
    tokens = [token_of(k) for k in keys]
    if aliases:
        with store_errors():
            rows = await store.keys.get_by_alias(aliases)
        found = {r["key_alias"]: r["token"] for r in rows}
        missing = [a for a in aliases if a not in found]
        if missing:
            raise not_found(f"Key not found. No key with key_alias={', '.join(repr(a) for a in missing)}.",
                            param="key_aliases")
        tokens += [found[a] for a in aliases]
    with store_errors():
        existing = {r["token"] for r in await store.keys.get_many(tokens)}
    missing_keys = [describe_key(k) for k, t in zip(keys, tokens, strict=False) if t not in existing]
    if missing_keys:
        raise not_found(f"Key not found: {', '.join(missing_keys)}", param="keys")
    with store_errors():
        await store.keys.delete(list(dict.fromkeys(tokens)), caller.actor())
    return {"deleted_keys": [token_of(k) for k in keys] + list(aliases)}


async def _set_blocked(ctx: AdminContext, caller: Caller, data: Any, blocked: bool) -> dict[str, Any]:
    route = "/key/block" if blocked else "/key/unblock"
    require(caller, Access.ADMIN, route)
    store = ctx.require_store()
    key = validate(data, {"key": string}, route, required=("key",))["key"]
    current = await _find(ctx, key)
    with store_errors():
        after = await store.keys.set_blocked(current["token"], blocked, caller.actor())
    return _answer(after)


async def key_block(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    return await _set_blocked(ctx, caller, data, True)


async def key_unblock(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    return await _set_blocked(ctx, caller, data, False)


async def key_list(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    """``GET /key/list?user_id=&team_id=&key_alias=&page=&size=&return_full_object=``"""
    require(caller, Access.ADMIN_READ, "/key/list")
    store = ctx.require_store()
    where = "/key/list"
    query = validate(data, {"user_id": string, "team_id": string, "key_alias": string, "page": lambda v: v,
                            "size": lambda v: v, "return_full_object": lambda v: v}, where)
    page = query_int(query.get("page"), "page", where, default=1)
    size = query_int(query.get("size"), "size", where, default=10, maximum=100)
    full = query_bool(query.get("return_full_object"), "return_full_object", where)
    with store_errors():
        result = await store.keys.list(user_id=query.get("user_id"), team_id=query.get("team_id"),
                                       key_alias=query.get("key_alias"), page=page, size=size)
    keys: list[Any] = [key_view(r) for r in result.rows] if full else [r["token"] for r in result.rows]
    return {"keys": keys, "total_count": result.total, "current_page": page, "total_pages": result.total_pages}


async def key_regenerate(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    """``/key/regenerate`` and ``/key/{key}/regenerate``: the same key row under a new secret.

    Identity, spend, budgets, limits, alias, team and metadata stay (plus any update fields sent).
    The old secret is refused from the next request on, unless ``grace_period`` (at most 30 days)
    keeps it valid until then; secrets of earlier rotations never outlive this one's grace (without
    a grace period they die too). ``new_key`` brings your own new secret.
    """
    require(caller, Access.ADMIN, "/key/regenerate")
    store = ctx.require_store()
    fields = validate(data, REGENERATE_FIELDS, "/key/regenerate", required=("key",))
    key = fields.pop("key")
    new_clear = fields.pop("new_key", None)
    if new_clear is not None:
        _check_custom_key(new_clear, "new_key")
    else:
        new_clear = new_clear_key()
    grace = fields.pop("grace_period", None)
    check_grace_period(grace, "/key/regenerate")
    current = await _find(ctx, key)
    now = ctx.now()
    changes = _row_changes(fields, now, current_metadata=current.get("metadata"))
    new_token = token_of(new_clear)
    with store_errors():
        after = await store.keys.rotate(current["token"], new_token=new_token, new_key_name=f"sk-...{new_clear[-4:]}",
                                        grace_until=grace.after(now) if grace else None, changes=changes,
                                        actor=caller.actor())
    return _answer(after, key=new_clear, token_id=new_token)
