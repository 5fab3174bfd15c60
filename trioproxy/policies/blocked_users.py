"""``blocked_user_check``: reject requests from end users on a block list, and change it at run time.

The list comes from ``litellm_settings.blocked_user_list`` (a list or a ``.txt`` path, read once at
startup). A request is checked against its ``user`` field and the key's ``end_user_id``.

Decision: a blocked user gets **403** ``permission_denied`` (code ``user_blocked``), not the seed's
400: the request is well formed; it is this caller who may not use the API.

``POST /customer/block`` and ``POST /customer/unblock`` with ``{"user_ids": [...]}`` change the list
(proxy admin only; 401 without a valid key, 403 for any other caller). Changes live in this
process's memory: they are not written back to the file, and with ``--workers N`` each worker has
its own copy (a shared store belongs to the key-management / database work).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from ..auth import identity as auth
from ..errors import BadRequestError, PermissionDeniedError, ProxyError, error_body
from ..hooks.base import CustomLogger

__all__ = ["BlockedUsers", "register_routes"]

log = logging.getLogger("trioproxy.policies.blocked_users")


class BlockedUsers(CustomLogger):
    name = "blocked_user_check"

    def __init__(self, users: list[str]) -> None:
        super().__init__()
        self.blocked: set[str] = set(users)

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> None:
        if not self.blocked:
            return
        for user in (data.get("user"), getattr(user_api_key_dict, "end_user_id", None)):
            if isinstance(user, str) and user in self.blocked:
                raise PermissionDeniedError(
                    f"User blocked from making LLM API calls. User={user} (blocked by {self.name!r})",
                    param="user",
                    code="user_blocked",
                )

    def block(self, user_ids: list[str]) -> None:
        self.blocked.update(user_ids)

    def unblock(self, user_ids: list[str]) -> None:
        self.blocked.difference_update(user_ids)


def _user_ids(raw: bytes) -> list[str]:
    try:
        body = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        body = None
    ids = body.get("user_ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise BadRequestError('Expected a JSON body {"user_ids": ["<user id>", ...]}.', param="user_ids")
    return ids


def register_routes(app: Any, state: Any, handler: BlockedUsers) -> None:
    """``POST /customer/block`` and ``/customer/unblock`` (admin only), changing ``handler``'s list."""
    from quart import Response, request

    async def change(action: str) -> Response:
        try:
            caller = auth.authenticate(state.config.master_key, request.headers)
            if not caller.is_admin:
                raise PermissionDeniedError(f"Only the proxy admin may call /customer/{action}.",
                                            code="admin_only")
            ids = _user_ids(await request.get_data(as_text=False))  # type: ignore[arg-type]
        except ProxyError as err:
            return Response(orjson.dumps(error_body(err)), status=err.status_code,
                            content_type="application/json", headers=err.headers)
        (handler.block if action == "block" else handler.unblock)(ids)
        log.info("blocked_user_check: %s %d user id(s); %d blocked now", action, len(ids), len(handler.blocked))
        body = {"blocked_users": sorted(handler.blocked)}
        return Response(orjson.dumps(body), status=200, content_type="application/json")

    async def block() -> Response:
        return await change("block")

    async def unblock() -> Response:
        return await change("unblock")

    app.add_url_rule("/customer/block", endpoint="customer_block", view_func=block, methods=["POST"])
    app.add_url_rule("/customer/unblock", endpoint="customer_unblock", view_func=unblock, methods=["POST"])
