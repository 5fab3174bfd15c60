"""``POST /customer/block`` and ``/customer/unblock`` *without a database*: change
``blocked_user_check``'s in-memory list at run time.

With ``{"user_ids": [...]}``; proxy admin only (401 without a valid key, 403 ``admin_only`` for
any other caller). The routes exist only when ``litellm_settings.callbacks`` has
``blocked_user_check`` and no database is configured; with a database both paths are management
routes (``admin.py``) that store the block, and without either they answer the management routes'
"Connect Proxy to database" error. The list and its rules are the policy's
(``policies/blocked_users.py``); these views only parse, authorize and call it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import orjson
from quart import Response, request

from ...errors import BadRequestError, ProxyError
from ..auth import admin
from ..errors import error_response, json_response

if TYPE_CHECKING:
    from ...proxy import Proxy
    from ..app import ProxyApp

__all__ = ["register"]

log = logging.getLogger("trioproxy.policies.blocked_users")


def _user_ids(raw: bytes) -> list[str]:
    try:
        body = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        body = None
    ids = body.get("user_ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise BadRequestError('Expected a JSON body {"user_ids": ["<user id>", ...]}.', param="user_ids")
    return ids


def register(app: ProxyApp, proxy: Proxy) -> None:
    handler = proxy.services.builtins.blocked_users
    if handler is None or proxy.services.store is not None:
        return   # with a database, /customer/block and /customer/unblock are management routes (admin.py)
    services = proxy.services

    async def change(action: str) -> Response:
        try:
            await admin(services.authenticator, f"/customer/{action}")
            ids = _user_ids(await request.get_data(as_text=False))  # type: ignore[arg-type]
        except ProxyError as err:
            return error_response(err, services.scrubber)
        (handler.block if action == "block" else handler.unblock)(ids)
        log.info("blocked_user_check: %s %d user id(s); %d blocked now", action, len(ids), len(handler.blocked))
        return json_response(200, {"blocked_users": sorted(handler.blocked)})

    async def block() -> Response:
        return await change("block")

    async def unblock() -> Response:
        return await change("unblock")

    app.add_url_rule("/customer/block", endpoint="customer_block", view_func=block, methods=["POST"])
    app.add_url_rule("/customer/unblock", endpoint="customer_unblock", view_func=unblock, methods=["POST"])
