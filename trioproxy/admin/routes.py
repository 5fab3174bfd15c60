"""The management routes, in one table the HTTP layer registers (after the restructure, #9).

For each route: the method, the path (LiteLLM's; ``{name}`` parts are path parameters merged into
the data under that name), the operation, who may call it (checked again inside the operation),
and where its data comes from (``body``: the JSON body; ``query``: the query string as a dict).

The HTTP layer's part, per request: authenticate (master key → ``Caller.master(...)``, virtual key
→ ``Caller.from_record(await store.key_cache.authenticate(key))``), optionally pre-check
``access`` with :func:`~trioproxy.admin.access.require`, parse the data, ``await route.handler(ctx,
caller, data)``, answer 200 with the result as JSON, and turn a raised ``ProxyError`` into its
envelope (``trioproxy.errors.to_envelope``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from . import audit, customers, keys, teams, users
from .access import Access, Caller
from .common import AdminContext

__all__ = ["ROUTES", "Route", "find_route"]

Handler = Callable[[AdminContext, Caller, Any], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    method: Literal["GET", "POST"]
    path: str
    handler: Handler
    access: Access
    source: Literal["body", "query"]


def _post(path: str, handler: Handler, access: Access = Access.ADMIN) -> Route:
    return Route("POST", path, handler, access, "body")


def _get(path: str, handler: Handler, access: Access = Access.ADMIN_READ) -> Route:
    return Route("GET", path, handler, access, "query")


ROUTES: tuple[Route, ...] = (
    # keys
    _post("/key/generate", keys.key_generate, Access.KEY_GENERATE),
    _get("/key/info", keys.key_info, Access.SELF),
    _post("/key/update", keys.key_update),
    _post("/key/delete", keys.key_delete),
    _post("/key/block", keys.key_block),
    _post("/key/unblock", keys.key_unblock),
    _get("/key/list", keys.key_list),
    _post("/key/regenerate", keys.key_regenerate),
    _post("/key/{key}/regenerate", keys.key_regenerate),
    # teams
    _post("/team/new", teams.team_new),
    _get("/team/info", teams.team_info, Access.SELF),
    _post("/team/update", teams.team_update),
    _post("/team/delete", teams.team_delete),
    _post("/team/member_add", teams.team_member_add),
    _post("/team/member_update", teams.team_member_update),
    _post("/team/member_delete", teams.team_member_delete),
    _post("/team/block", teams.team_block),
    _post("/team/unblock", teams.team_unblock),
    _get("/team/list", teams.team_list),
    _get("/v2/team/list", teams.team_list_v2),
    # internal users
    _post("/user/new", users.user_new),
    _get("/user/info", users.user_info, Access.SELF),
    _post("/user/update", users.user_update),
    _post("/user/delete", users.user_delete),
    _get("/user/list", users.user_list),
    _post("/user/unblock", customers.customer_unblock),      # the seed's name for /customer/unblock
    # customers (end users) and their aliases
    *(route for prefix in ("/customer", "/end_user") for route in (
        _post(f"{prefix}/new", customers.customer_new),
        _get(f"{prefix}/info", customers.customer_info),
        _post(f"{prefix}/update", customers.customer_update),
        _post(f"{prefix}/delete", customers.customer_delete),
        _get(f"{prefix}/list", customers.customer_list),
        _post(f"{prefix}/block", customers.customer_block),
        _post(f"{prefix}/unblock", customers.customer_unblock),
    )),
    _post("/budget/new", customers.budget_new),
    # audit
    _get("/audit", audit.audit_list),
    _get("/audit/{id}", audit.audit_get),
)


def find_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route for ``method path`` and its path parameters (for tests and a simple dispatcher)."""
    parts = path.rstrip("/").split("/")
    for route in ROUTES:
        if route.method != method:
            continue
        pattern = route.path.split("/")
        if len(pattern) != len(parts):
            continue
        params: dict[str, str] = {}
        for want, got in zip(pattern, parts, strict=True):
            if want.startswith("{") and want.endswith("}"):
                if not got:
                    break
                params[want[1:-1]] = got
            elif want != got:
                break
        else:
            return route, params
    return None
