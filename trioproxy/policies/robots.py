"""``block_robots``: ``GET /robots.txt`` tells every crawler to stay away (no key needed, as for any crawler)."""

from __future__ import annotations

from typing import Any

__all__ = ["ROBOTS_TXT", "register_routes"]

ROBOTS_TXT = "User-agent: *\nDisallow: /"


def register_routes(app: Any) -> None:
    from quart import Response

    async def robots() -> Response:
        return Response(ROBOTS_TXT, status=200, content_type="text/plain; charset=utf-8")

    app.add_url_rule("/robots.txt", endpoint="robots_txt", view_func=robots, methods=["GET"])
