"""``GET /routes`` (LiteLLM's): every route this proxy serves, with its methods and its access rule.

The Quart routes come from the app's URL map, the proxy endpoints (served by the fast path,
``http/asgi.py``) from ``http/paths.py`` (with Azure's ``/openai/deployments/{model}/…`` forms), the
configured pass-through endpoints from ``general_settings.pass_through_endpoints``; ``HEAD`` and
``OPTIONS`` are left out. Each entry carries the rule the one route decision applies
(``access.describe_routes``: ``public``, ``llm_api``, ``info``, ``admin``, ``master_key``, or
``disabled`` by ``allowed_routes``) and which setting changed it (``configured_by``). A route the
catalog (``access/catalog.py``) does not know is listed as ``admin`` / ``unclassified``: it is
treated as admin-only, and the route-matrix test fails until it gets a row.

Public, as ``LiteLLMRoutes.public_routes`` lists it in the issue (unless ``allowed_routes`` leaves
it out).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from quart import Response

from ...access import describe_routes
from ..errors import json_response
from ..paths import ROUTES

if TYPE_CHECKING:
    from ...proxy import Proxy
    from ..app import ProxyApp

__all__ = ["register", "registered_routes", "route_list"]

_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")
_AZURE = "/openai/deployments/{model}"


def _template(rule: str) -> str:
    """werkzeug's ``/key/<key>/regenerate`` → ``/key/{key}/regenerate``; ``<path:m>`` → ``{m:path}``."""
    return _CONVERTER.sub(lambda m: f"{{{m.group(2)}:path}}" if m.group(1) == "path" else f"{{{m.group(2)}}}",
                          rule)


def registered_routes(app: ProxyApp) -> dict[str, dict[str, Any]]:
    """Every route the app serves, from the app itself: path template → ``{path, methods, name}``."""
    found: dict[str, dict[str, Any]] = {}
    for path, route in ROUTES.items():
        name = route.endpoint.replace("/", "_")
        found[path] = {"path": path, "methods": ["POST"], "name": name}
        if not path.startswith("/v1/"):
            azure = f"{_AZURE}{path}"
            found[azure] = {"path": azure, "methods": ["POST"], "name": f"azure_{name}"}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        methods = sorted(m for m in (rule.methods or ()) if m not in ("HEAD", "OPTIONS"))
        path = _template(rule.rule)
        entry = found.setdefault(path, {"path": path, "methods": [], "name": rule.endpoint})
        entry["methods"] = sorted(set(entry["methods"]) | set(methods))
    for endpoint in app.proxy.services.config.general.pass_through_endpoints:
        path = endpoint.path + ("/{subpath:path}" if endpoint.include_subpath else "")
        for each in ([endpoint.path, path] if endpoint.include_subpath else [path]):
            entry = found.setdefault(each, {"path": each, "methods": [], "name": "pass_through_endpoint"})
            entry["methods"] = sorted(set(entry["methods"]) | set(endpoint.methods))
    return found


def route_list(app: ProxyApp) -> list[dict[str, Any]]:
    """Every path with its methods, what serves it and its rule, sorted by path."""
    found = registered_routes(app)
    rules = app.proxy.services.access.rules
    described = describe_routes(rules, [(path, found[path]["methods"]) for path in sorted(found)])
    return [{**found[entry["path"]], **{k: entry[k] for k in ("rule", "configured_by", "groups")}}
            for entry in described]


def register(app: ProxyApp, proxy: Proxy) -> None:
    @app.get("/routes")
    async def routes() -> Response:
        return json_response(200, {"routes": route_list(app)})
