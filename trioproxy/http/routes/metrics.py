"""``GET /metrics``: Prometheus text format; behind a valid key unless ``general_settings.metrics_public``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio
from quart import Response

from ...observability.metrics import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from ...proxy import Proxy
    from ..app import ProxyApp

__all__ = ["register"]


def register(app: ProxyApp, proxy: Proxy) -> None:
    services = proxy.services

    @app.get("/metrics")
    async def metrics() -> Response:
        body = await trio.to_thread.run_sync(services.metrics.render)
        return Response(body, status=200, content_type=CONTENT_TYPE_LATEST)
