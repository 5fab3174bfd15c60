"""``GET /v1/models`` (and ``/models``): the model names this proxy serves (to a virtual key: those
its ``models`` allow-list, and its team's, let it call)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from quart import Response

from ...auth import may_use_model
from ..auth import identity
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
        who = await identity(services.authenticator)
        names = services.router.model_names
        if who.record is not None:
            names = [name for name in names if may_use_model(who.record, name)]
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "trioproxy"} for name in names]
        return json_response(200, {"object": "list", "data": data})
