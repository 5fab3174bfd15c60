"""``GET /routes`` (LiteLLM's): every route this proxy serves, with its methods.

The Quart routes come from the app's URL map, the proxy endpoints (served by the fast path,
``http/asgi.py``) from ``http/paths.py``; ``HEAD``/``OPTIONS`` are left out. Any valid key may
call it, as in LiteLLM. Issue #12 adds each route's auth rule to each entry (``access/``): this
module is where that field goes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart import Response

from ..auth import caller
from ..errors import json_response
from ..paths import ROUTES

if TYPE_CHECKING:
    from ...proxy import Proxy
    from ..app import ProxyApp

__all__ = ["register", "route_list"]


def route_list(app: ProxyApp) -> list[dict[str, Any]]:
    """Every path with its methods and what serves it, sorted by path."""
    found: dict[str, dict[str, Any]] = {}
    for path, route in ROUTES.items():
        found[path] = {"path": path, "methods": ["POST"], "name": route.endpoint.replace("/", "_")}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        methods = sorted(m for m in (rule.methods or ()) if m not in ("HEAD", "OPTIONS"))
        entry = found.setdefault(rule.rule, {"path": rule.rule, "methods": [], "name": rule.endpoint})
        entry["methods"] = sorted(set(entry["methods"]) | set(methods))
    return [found[path] for path in sorted(found)]


def register(app: ProxyApp, proxy: Proxy) -> None:
    services = proxy.services

    @app.get("/routes")
    async def routes() -> Response:
        await caller(services.authenticator)
        return json_response(200, {"routes": route_list(app)})
