"""The management routes (``/key/*``, ``/team/*``, ``/user/*``, ``/customer/*`` and ``/end_user/*``,
``/budget/new``, ``/audit``): the route table of ``trioproxy.admin``, served by Quart.

Each view is thin, in this order:

1. **authenticate** with the one ``Authenticator`` (401; 503 when the key store cannot answer);
2. **authorize** by the route's access level (``admin.access.require``) *before the body is read*:
   a caller without the right gets its 403, never a 400 about a body it may not send;
3. **parse** the JSON body (``POST``) or the query string (``GET``), with path parameters
   (``/key/{key}/regenerate``, ``/audit/{id}``) merged in;
4. **call** the operation (``admin/``: it validates, checks ownership for the self-service reads,
   writes through the store) and answer its result as JSON, or its error in the OpenAI envelope.

Without a database every route answers 501 "Connect Proxy to database to generate keys" (the
operations' own check), except ``/customer/block`` and ``/customer/unblock`` when the in-memory
``blocked_user_check`` routes serve them (``customers.py``).

A path parameter can be a clear key (``/key/sk-…/regenerate``): nothing here logs a request path;
an unexpected error is logged under the route's template (``/key/{key}/regenerate``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson
from quart import Response, request
from werkzeug.exceptions import HTTPException

from ...admin import ROUTES, Caller, Route, require
from ...errors import BadRequestError, InternalServerError, ProxyError
from ..auth import identity
from ..errors import error_response, json_response

if TYPE_CHECKING:
    from ...proxy import Proxy
    from ..app import ProxyApp

__all__ = ["register", "register_table"]

log = logging.getLogger("trioproxy.admin")

#: served by the in-memory ``blocked_user_check`` routes when there is no database (``customers.py``)
IN_MEMORY_CUSTOMER_ROUTES = frozenset({"/customer/block", "/customer/unblock"})


def _rule(path: str) -> str:
    """``/key/{key}/regenerate`` → werkzeug's ``/key/<key>/regenerate``."""
    return path.replace("{", "<").replace("}", ">")


async def _data(route: Route, params: dict[str, str]) -> Any:
    if route.source == "query":
        data: Any = {name: request.args.get(name) for name in request.args}
    else:
        raw = await request.get_data(as_text=False)
        if not raw.strip():
            data = {}
        else:
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise BadRequestError(f"{route.path}: the request body is not valid JSON ({exc.msg})",
                                      code="400") from None
    if params and isinstance(data, dict):
        data = {**data, **params}
    return data


def register(app: ProxyApp, proxy: Proxy) -> None:
    services = proxy.services
    in_memory = services.store is None and services.builtins.blocked_users is not None
    register_table(app, proxy, [route for route in ROUTES
                                if not (in_memory and route.path in IN_MEMORY_CUSTOMER_ROUTES)])


def register_table(app: ProxyApp, proxy: Proxy, routes: Iterable[Route]) -> None:
    """Serve a table of ``admin.Route`` objects (the management API's, the spend endpoints') with the
    steps above, on the container's management context."""
    services = proxy.services
    ctx = services.admin
    authenticator = services.authenticator
    scrubber = services.scrubber

    def view_for(route: Route) -> Any:
        async def view(**params: str) -> Response:
            try:
                who = await identity(authenticator)
                caller = Caller.for_identity(who, changed_by=request.headers.get("litellm-changed-by"))
                require(caller, route.access, route.path,
                        delegated=getattr(ctx.key_generation, "delegated", False))
                answer = await route.handler(ctx, caller, await _data(route, params))
            except ProxyError as err:
                return error_response(err, scrubber)
            except HTTPException:
                raise   # 413 over the body cap, 408 body timeout: the app's handlers answer them
            except Exception as exc:
                log.error("management route %s %s failed", route.method, route.path, exc_info=exc)
                return error_response(InternalServerError("Internal error in the proxy; see the server log."),
                                      scrubber)
            return json_response(200, answer, getattr(answer, "headers", None) if isinstance(answer, list) else None)

        return view

    for route in routes:
        app.add_url_rule(_rule(route.path), endpoint=f"admin {route.method} {route.path}",
                         view_func=view_for(route), methods=[route.method])
