"""``GET /health/liveliness`` (the seeds' spelling; ``/health/liveness`` too), ``/health/readiness``
and LiteLLM's ``GET /health``.

Liveness and readiness need no key: load balancers and orchestrators call them. Readiness is
``503`` until the app's services have started (and again once it stops serving).

``GET /health`` (also ``/v1/health``; ``?model=<name>`` checks one model) calls every deployment
once (``core/health.py``) and answers LiteLLM's ``healthy_endpoints`` / ``unhealthy_endpoints``. It
costs a real request per deployment, so it is an admin route (``access/catalog.py``; decided by the
one route decision before the view runs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quart import Response, request

from ...core.health import check_health
from ..errors import json_response

if TYPE_CHECKING:
    from ...proxy import Proxy
    from ..app import ProxyApp

__all__ = ["register"]


def register(app: ProxyApp, proxy: Proxy) -> None:
    services = proxy.services
    router = services.router

    @app.get("/health")
    @app.get("/v1/health")
    async def health() -> Response:
        model = request.args.get("model")
        deployments = router.deployments(model) if model else services.config.deployments
        # a wildcard (``openai/*``) names no model to call; the others are called with their current
        # secrets (a key refreshed from the secret manager, docs/secrets.md)
        deployments = [services.live_secrets.current(d) for d in deployments if "*" not in d.litellm_model]
        return json_response(200, await check_health(deployments, services.providers, services.scrubber))

    @app.get("/health/liveliness")
    @app.get("/health/liveness")
    async def liveliness() -> Response:
        return json_response(200, "I'm alive!")

    @app.get("/health/readiness")
    async def readiness() -> Response:
        ready = proxy.started
        return json_response(200 if ready else 503, {"status": "healthy" if ready else "starting",
                                                     "models": len(router.model_names)})
