"""Which paths are the proxy endpoints.

Used by the fast path (``asgi.py``: ``POST`` to these paths) and by the Quart app (``app.py``: any
other method on them is a ``405``, not a ``404``). Paths arrive normalised (``gate.py``): one
spelling per route, so this table holds each path once.
"""

from __future__ import annotations

from ..context import Route
from ..core.endpoints import CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES

__all__ = ["ROUTES", "route_for"]

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
