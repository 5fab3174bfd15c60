"""``block_robots``: ``GET /robots.txt`` tells every crawler to stay away (no key needed, as for any crawler).

The route exists only when ``general_settings.block_robots`` is on; otherwise the path is a 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quart import Response

if TYPE_CHECKING:
    from ...proxy import Proxy
    from ..app import ProxyApp

__all__ = ["ROBOTS_TXT", "register"]

ROBOTS_TXT = "User-agent: *\nDisallow: /"


def register(app: ProxyApp, proxy: Proxy) -> None:
    if not proxy.services.config.general.block_robots:
        return

    async def robots() -> Response:
        return Response(ROBOTS_TXT, status=200, content_type="text/plain; charset=utf-8")

    app.add_url_rule("/robots.txt", endpoint="robots_txt", view_func=robots, methods=["GET"])
