"""``GET /v1/models`` (and ``/models``): the model names this proxy serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from quart import Response

from ..auth import caller
from ..errors import json_response

if TYPE_CHECKING:
    from ...proxy import Proxy
    from ..app import ProxyApp

__all__ = ["register"]


def register(app: ProxyApp, proxy: Proxy) -> None:
    services = proxy.services

    @app.get("/models")
    @app.get("/v1/models")
    async def models() -> Response:
        caller(services.authenticator)
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "trioproxy"}
                for name in services.router.model_names]
        return json_response(200, {"object": "list", "data": data})
