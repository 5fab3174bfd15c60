"""Which paths are the proxy endpoints, and how a path is tidied before any routing.

Used by the fast path (``asgi.py``: ``POST`` to these paths) and by the Quart app (``app.py``: any
other method on them is a ``405``, not a ``404``).
"""

from __future__ import annotations

import re
from typing import Any

from ..context import Route
from ..core.endpoints import CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES

__all__ = ["ROUTES", "normalize_path", "route_for"]

#: path → the endpoint it serves (each at ``/x`` and ``/v1/x``)
ROUTES: dict[str, Route] = {}
for _route, _paths in (
    (CHAT, ("/chat/completions", "/v1/chat/completions")),
    (COMPLETIONS, ("/completions", "/v1/completions")),
    (EMBEDDINGS, ("/embeddings", "/v1/embeddings")),
    (RESPONSES, ("/responses", "/v1/responses")),
):
    for _path in _paths:
        ROUTES[_path] = _route


#: Azure OpenAI clients call /openai/deployments/<deployment>/<endpoint>; the body names the model
_AZURE_PREFIX = "/openai/deployments/"


def route_for(path: str) -> Route | None:
    """The proxy endpoint ``path`` names (Azure's deployment paths included), or None."""
    route = ROUTES.get(path)
    if route is None and path.startswith(_AZURE_PREFIX):
        _, _, endpoint = path[len(_AZURE_PREFIX):].partition("/")
        route = ROUTES.get(f"/{endpoint}")
    return route


_SLASHES = re.compile(r"/{2,}")
_RAW_SLASHES = re.compile(rb"/{2,}")


def normalize_path(scope: dict[str, Any]) -> dict[str, Any]:
    """``//v1//models`` → ``/v1/models``, for every route, before any routing.

    A base URL with a stray slash (``http://proxy:4000//v1``) reaches the route the client meant.
    Werkzeug would answer it with a 308 whose ``Location`` is built from the ``Host`` header (an
    open redirect); its redirects are off (``app._NoRedirectMap``), so this is the only place a
    path is tidied, and nothing is ever redirected.
    """
    scope = dict(scope)
    scope["path"] = _SLASHES.sub("/", scope["path"])
    raw = scope.get("raw_path")
    if isinstance(raw, bytes):
        scope["raw_path"] = _RAW_SLASHES.sub(b"/", raw)
    return scope
