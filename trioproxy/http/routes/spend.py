"""The spend endpoints (``/spend/logs``, ``/spend/tags``, ``/global/spend*``, ``/spend/calculate``):
``spend.SPEND_ROUTES``, served exactly like the management routes (``admin.py``: authenticate,
authorize by the route's access level before the body, then the operation), on the same context.

Without a database they answer 501 like the management routes, except ``/spend/calculate``,
which needs only the price table (docs/spend.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...spend.endpoints import SPEND_ROUTES
from .admin import register_table

if TYPE_CHECKING:
    from ...proxy import Proxy
    from ..app import ProxyApp

__all__ = ["register"]


def register(app: ProxyApp, proxy: Proxy) -> None:
    register_table(app, proxy, SPEND_ROUTES)
