"""``enforce_user_param`` and ``enforced_params``: reject requests that lack required body fields.

Decision: a missing field is a **400** ``invalid_request_error`` naming the field
(``please pass param=metadata.generation_name in request body``). The seed answers 401
"Authentication Error", but the caller *is* authenticated; what is wrong is the body, and an SDK
that sees 401 tells its user to check their API key, which sends them looking in the wrong place.

Paths are dotted (``metadata.generation_name`` is ``body["metadata"]["generation_name"]``). A
field that is present but ``null`` counts as missing: ``"user": null`` identifies nobody. A key's
own ``enforced_params`` follow the same rule (one ``missing_param``, in ``auth/key_rules.py``).
"""

from __future__ import annotations

from typing import Any

from ..auth.key_rules import missing_param
from ..errors import BadRequestError
from ..hooks.base import CustomLogger

__all__ = ["RequiredParams", "missing_param"]


class RequiredParams(CustomLogger):
    """Pre-call: every path in ``paths`` must be in the request body (``setting`` names the config key)."""

    def __init__(self, paths: list[str], setting: str) -> None:
        super().__init__()
        self.paths = list(dict.fromkeys(paths))
        self.setting = setting

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> None:
        missing = missing_param(data, self.paths)
        if missing is not None:
            raise BadRequestError(
                f"please pass param={missing} in request body. This is a required param "
                f"(general_settings.{self.setting}).",
                param=missing,
                code="missing_required_param",
            )
