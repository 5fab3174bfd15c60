"""``guardrail: aporia``: Aporia's guardrail API.

As LiteLLM's ``AporiaGuardrail`` (``guardrail_hooks/aporia_ai/aporia_ai.py``): ``POST {api_base}/validate``
with the header ``X-APORIA-API-KEY`` and ``{"messages": […], "validation_target": "prompt"}``
(``during_call``; roles other than system/user/assistant become ``other``), or, after the call
(``post_call``), the messages plus ``"response"`` (the answer's text, choices joined by newlines)
and ``"validation_target": "both"``. The request's ``extra_body`` for the guardrail is merged in.
Aporia's ``action: block`` → 400 ``guardrail_violation`` (``Violated guardrail policy``, with Aporia's
``revised_response`` when it gives one); ``modify`` / ``rephrase`` / ``passthrough`` let it through
unchanged, as in LiteLLM. ``api_key`` / ``api_base`` default to LiteLLM's variables
``APORIO_API_KEY`` / ``APORIO_API_BASE`` (sic). Modes: ``during_call``, ``post_call`` (LiteLLM's
hooks), and ``pre_call`` (LiteLLM's docs configure it; the same prompt check, before the call
instead of racing it); on streams the assembled answer is checked once before ``[DONE]``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ...errors import GuardrailViolationError
from ...hooks.loader import HandlerLoadError
from .service import ServiceGuardrail, answer_texts

__all__ = ["AporiaGuardrail"]

log = logging.getLogger("trioproxy.guardrails.aporia")

_ROLES = ("system", "user", "assistant")


class AporiaGuardrail(ServiceGuardrail):
    provider = "aporia"
    supported_modes = ("pre_call", "during_call", "post_call")

    def __init__(self, *, api_key: str | None = None, api_base: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key or os.environ.get("APORIO_API_KEY")
        base = api_base or os.environ.get("APORIO_API_BASE")
        if not self.api_key or not base:
            raise HandlerLoadError(f"aporia guardrail {self.name!r} needs api_key and api_base "
                                   "(or the environment variables APORIO_API_KEY and APORIO_API_BASE)")
        self.url = base.rstrip("/") + "/validate"

    def _messages(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for m in self.request_messages(data):
            if isinstance(m, dict):
                out.append(m if m.get("role") in _ROLES else {**m, "role": "other"})
        return out

    async def _validate(self, data: dict[str, Any], response: str | None) -> None:
        body: dict[str, Any] = {"messages": self._messages(data)}
        if response is not None:
            body["response"] = response
        body["validation_target"] = "both" if response is not None else "prompt"
        body.update(self.get_guardrail_dynamic_request_body_params(data))

        async def call() -> Any:
            return await self.post_json(self.url, body, {"X-APORIA-API-KEY": str(self.api_key)})

        answer = await self.checked(call)
        if isinstance(answer, dict) and answer.get("action") == "block":
            revised = answer.get("revised_response")
            log.info("guardrail %s: Aporia blocked the %s", self.name, "answer" if response is not None else "prompt")
            raise GuardrailViolationError(
                f"Violated guardrail policy: {revised}" if isinstance(revised, str) and revised
                else "Violated guardrail policy", guardrail=self.name)

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> None:
        if isinstance(data.get("messages"), list):
            await self._validate(data, None)

    async def async_moderation_hook(self, data: dict, user_api_key_dict: Any, call_type: str) -> None:
        if isinstance(data.get("messages"), list):
            await self._validate(data, None)

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> None:
        texts = [text for _, _, text in answer_texts(response)]
        if texts:
            await self._validate(data, "\n".join(texts))
