"""``blocked_user_check``: reject requests from end users on a block list, and change it at run time.

The list comes from ``litellm_settings.blocked_user_list`` (a list or a ``.txt`` path, read once at
startup). A request is checked against its ``user`` field and the key's ``end_user_id``.

Decision: a blocked user gets **403** ``permission_denied`` (code ``user_blocked``), not the seed's
400: the request is well formed; it is this caller who may not use the API.

``POST /customer/block`` and ``POST /customer/unblock`` (``http/routes/customers.py``) change the
list through :meth:`BlockedUsers.block` / :meth:`BlockedUsers.unblock`. Changes live in this
process's memory: they are not written back to the file, and with ``--workers N`` each worker has
its own copy (a shared store belongs to the key-management / database work).
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import PermissionDeniedError
from ..hooks.base import CustomLogger

__all__ = ["BlockedUsers"]

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
