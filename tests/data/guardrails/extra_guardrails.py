"""Guardrails and callbacks used by the integration tests next to the seed's ``custom_guardrail.py``.

Copied next to each test config, so the proxy imports them exactly as it imports a user's file.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

from trioproxy import CustomGuardrail, CustomLogger, HTTPException


class DynamicParamsGuard(CustomGuardrail):
    """Answers with the dynamic params the request passed for it (pre_call string → a 200 answer)."""

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> Any:
        params = self.get_guardrail_dynamic_request_body_params(request_data=data)
        return "dynamic params: " + json.dumps(params, sort_keys=True)


class MaskWord(CustomGuardrail):
    """Replaces the ``word`` param (config: ``word: forbidden-word``) with ``[masked]``."""

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> Any:
        word = self.optional_params["word"]
        for message in data.get("messages") or []:
            if isinstance(message.get("content"), str):
                message["content"] = message["content"].replace(word, "[masked]")
        return data


class TagGuard(CustomGuardrail):
    """Appends ``[its name]`` to an ``order-test`` message: the upstream sees the order hooks ran in."""

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> Any:
        message = data["messages"][-1]
        if "order-test" in message["content"]:
            message["content"] += f" [{self.guardrail_name}]"
        return data


class TagCallback(CustomLogger):
    """The plain-callback counterpart of :class:`TagGuard`."""

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> Any:
        message = data["messages"][-1]
        if "order-test" in message["content"]:
            message["content"] += " [callback]"
        return data


tag_callback = TagCallback()


class ForbiddenGuard(CustomGuardrail):
    """Raises FastAPI-style ``HTTPException(403)``: the status is kept, not turned into 400."""

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> Any:
        raise HTTPException(status_code=403, detail="this guardrail forbids the request")


class GatedDuringGuard(CustomGuardrail):
    """A during_call guardrail that rejects only once the upstream has the request.

    It asks the test's gate server (``GATE_URL``), which answers once the fake upstream has recorded
    the request: so the rejection provably cancels an upstream call that is in flight.
    """

    async def async_moderation_hook(self, data: dict, user_api_key_dict: Any, call_type: str) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            response = await client.get(os.environ["GATE_URL"], timeout=10)
            response.raise_for_status()
        raise ValueError("rejected while the upstream was generating")


class KeyPermissions(CustomLogger):
    """Test stand-in for virtual keys: ``metadata.test_key_permissions`` become the key's permissions.

    (Key management is another issue; policies read ``UserAPIKeyAuth.permissions`` either way.)
    """

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> None:
        metadata = data.get("metadata") or {}
        user_api_key_dict.permissions.update(metadata.get("test_key_permissions") or {})


key_permissions = KeyPermissions()
