"""``GET /health/liveliness`` (the seeds' spelling; ``/health/liveness`` too) and ``/health/readiness``.

No key needed: load balancers and orchestrators call them. Readiness is ``503`` until the app's
services have started (and again once it stops serving).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quart import Response

from ..errors import json_response

if TYPE_CHECKING:
    from ...proxy import Proxy
    from ..app import ProxyApp

__all__ = ["register"]


def register(app: ProxyApp, proxy: Proxy) -> None:
    router = proxy.services.router

    @app.get("/health/liveliness")
    @app.get("/health/liveness")
    async def liveliness() -> Response:
        return json_response(200, "I'm alive!")

    @app.get("/health/readiness")
    async def readiness() -> Response:
        ready = proxy.started
        return json_response(200 if ready else 503, {"status": "healthy" if ready else "starting",
                                                     "models": len(router.model_names)})
