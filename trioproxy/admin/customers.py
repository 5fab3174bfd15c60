"""``/customer/*`` (and the ``/end_user/*`` aliases), ``/customer/block|unblock`` (and the seed's
``/user/unblock``), ``/budget/new``.

Customers are the ``user`` field of OpenAI requests. Blocking is stored, so it survives a restart
and is the same for every worker; ``/customer/block`` creates rows for ids never seen before.
"""

from __future__ import annotations

from typing import Any

from ..store.views import budget_view, customer_view
from .access import Access, Caller, require
from .common import (
    DEFAULT_LIST_PAGE_SIZE,
    MAX_LIST_PAGE_SIZE,
    AdminContext,
    PagedList,
    reset_after,
    store_errors,
)
from .errors import bad_request, not_found
from .validation import (
    boolean,
    duration,
    integer,
    model_budget,
    money,
    one_of,
    optional,
    query_int,
    string,
    string_list,
    validate,
)

__all__ = [
    "budget_new",
    "customer_block",
    "customer_delete",
    "customer_info",
    "customer_list",
    "customer_new",
    "customer_unblock",
    "customer_update",
]

BUDGET_FIELDS = {
    "max_budget": optional(money),
    "soft_budget": optional(money),
    "tpm_limit": optional(integer(0)),
    "rpm_limit": optional(integer(0)),
    "max_parallel_requests": optional(integer(0)),
    "budget_duration": optional(duration),
    "model_max_budget": model_budget,
}
CUSTOMER_FIELDS = {
    "alias": optional(string),
    "blocked": boolean,
    "budget_id": optional(string),
    "allowed_model_region": optional(one_of("eu", "us")),
    "default_model": optional(string),
    **BUDGET_FIELDS,
}


#: customer ids are at most this long (``end_users.user_id``; the request path looks up no longer ``user``)
MAX_CUSTOMER_ID = 255


def _check_ids(ids: list[str], param: str) -> None:
    too_long = [i for i in ids if len(i) > MAX_CUSTOMER_ID]
    if too_long:
        raise bad_request(f"{param}: a customer id is at most {MAX_CUSTOMER_ID} characters "
                          f"({len(too_long)} longer)", param=param)


def _budget_columns(fields: dict[str, Any], now: Any) -> dict[str, Any]:
    row = dict(fields)
    if "budget_duration" in row:
        d = row["budget_duration"]
        row["budget_duration"] = str(d) if d is not None else None
        row["budget_reset_at"] = reset_after(d, now)
    return row


def _split(fields: dict[str, Any], route: str) -> tuple[dict[str, Any], dict[str, Any]]:
    budget = {k: fields.pop(k) for k in list(fields) if k in BUDGET_FIELDS}
    if budget and fields.get("budget_id") is not None:
        raise bad_request(f"{route}: pass either 'budget_id' or inline budget fields "
                          f"({', '.join(sorted(budget))}), not both", param="budget_id")
    return fields, budget


async def customer_new(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    route = "/customer/new"
    require(caller, Access.ADMIN, route)
    store = ctx.require_store()
    fields = validate(data, {"user_id": string, **CUSTOMER_FIELDS}, route, required=("user_id",))
    _check_ids([fields["user_id"]], "user_id")
    row, budget = _split(fields, route)
    with store_errors():
        customer, budget_row = await store.customers.create(row, caller.actor(),
                                                            new_budget=_budget_columns(budget, ctx.now()) or None)
    return customer_view(customer, budget_row)


async def customer_info(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    route = "/customer/info"
    require(caller, Access.ADMIN_READ, route)
    store = ctx.require_store()
    user_id = validate(data, {"end_user_id": string}, route, required=("end_user_id",))["end_user_id"]
    with store_errors():
        found = await store.customers.get(user_id)
    if found is None:
        raise not_found(f"End User Id={user_id} does not exist in db", param="end_user_id")
    return customer_view(*found)


async def customer_update(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    route = "/customer/update"
    require(caller, Access.ADMIN, route)
    store = ctx.require_store()
    fields = validate(data, {"user_id": string, **CUSTOMER_FIELDS}, route, required=("user_id",))
    user_id = fields.pop("user_id")
    row, budget = _split(fields, route)
    with store_errors():
        customer, budget_row = await store.customers.update(
            user_id, row, caller.actor(), budget_changes=_budget_columns(budget, ctx.now()) or None)
    return customer_view(customer, budget_row)


async def customer_delete(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    route = "/customer/delete"
    require(caller, Access.ADMIN, route)
    store = ctx.require_store()
    ids = validate(data, {"user_ids": string_list}, route, required=("user_ids",))["user_ids"]
    if not ids:
        raise bad_request(f"{route}: 'user_ids' must not be empty", param="user_ids")
    with store_errors():
        await store.customers.delete(ids, caller.actor())
    return {"deleted_customers": ids}


async def customer_list(ctx: AdminContext, caller: Caller, data: Any) -> PagedList:
    """``GET /customer/list?page=&page_size=`` → a JSON array (LiteLLM's shape; LiteLLM takes no
    paging parameters and answers every customer), one page: ``page_size`` 100 by default, at most
    1000; oldest first; the totals in ``x-total-count`` & co. Budgets come with one query per page."""
    route = "/customer/list"
    require(caller, Access.ADMIN_READ, route)
    store = ctx.require_store()
    query = validate(data, {"page": lambda v: v, "page_size": lambda v: v}, route)
    size = query_int(query.get("page_size"), "page_size", route, default=DEFAULT_LIST_PAGE_SIZE, minimum=1,
                     maximum=MAX_LIST_PAGE_SIZE)
    page = query_int(query.get("page"), "page", route, default=1)
    with store_errors():
        rows, total = await store.customers.list(page=page, size=size)
    return PagedList.page([customer_view(c, b) for c, b in rows], total=total, page=page, size=size)


async def _set_blocked(ctx: AdminContext, caller: Caller, data: Any, blocked: bool, route: str) -> list[str]:
    require(caller, Access.ADMIN, route)
    store = ctx.require_store()
    ids = validate(data, {"user_ids": string_list}, route, required=("user_ids",))["user_ids"]
    if not ids:
        raise bad_request(f"{route}: 'user_ids' must not be empty", param="user_ids")
    _check_ids(ids, "user_ids")
    with store_errors():
        await store.customers.set_blocked(ids, blocked, caller.actor())
    return ids


async def customer_block(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    """``{"user_ids": [...]}`` → ``{"blocked_users": [...]}``; requests with these ``user`` values
    are refused before the model (once the request path reads the customer cache)."""
    return {"blocked_users": await _set_blocked(ctx, caller, data, True, "/customer/block")}


async def customer_unblock(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    """``{"user_ids": [...]}`` → ``{"unblocked_users": [...]}``. Ids that the config's
    ``blocked_user_list`` blocks stay blocked (the config is the floor; edit it to unblock them):
    the answer names them in ``still_blocked_by_config``."""
    ids = await _set_blocked(ctx, caller, data, False, "/customer/unblock")
    answer: dict[str, Any] = {"unblocked_users": ids}
    by_config = [i for i in ids if i in ctx.config_blocked_users]
    if by_config:
        answer["still_blocked_by_config"] = by_config
    return answer


async def budget_new(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    route = "/budget/new"
    require(caller, Access.ADMIN, route)
    store = ctx.require_store()
    fields = validate(data, {"budget_id": string, **BUDGET_FIELDS}, route)
    with store_errors():
        row = await store.budgets.create(_budget_columns(fields, ctx.now()), caller.actor())
    return budget_view(row) or {}
