"""``guardrail: guardrails_ai``: a Guardrails AI server's guard.

As LiteLLM's ``GuardrailsAI`` (``guardrail_hooks/guardrails_ai/guardrails_ai.py``): ``POST
{api_base}/guards/{guard_name}/validate`` (``api_base`` default ``GUARDRAILS_AI_API_BASE`` or
``http://0.0.0.0:8000``) with ``{"llmOutput": text}`` plus the request's ``extra_body``.
``validationPassed: false`` → 400 ``guardrail_violation`` (``Violated guardrail policy``).

* ``pre_call``: the last user message is validated and replaced by the guard's ``validatedOutput``
  (or ``rawLlmOutput``), so a guard that fixes text (PII redaction) changes what the model sees.
* ``post_call``: the answer's text is validated (on streams: assembled, once, before ``[DONE]``).
* ``logging_only`` (LiteLLM validates what its logging callbacks receive) is not supported, and
  LiteLLM's ``guardrails_ai_api_input_format: inputs`` (which its own code says does not work with
  the Guardrails AI API) neither: startup errors.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import quote

from ...errors import GuardrailViolationError
from ...hooks.loader import HandlerLoadError
from ...prompt import text_slots
from .service import ServiceGuardrail, answer_texts

__all__ = ["GuardrailsAI"]

log = logging.getLogger("trioproxy.guardrails.guardrails_ai")


class GuardrailsAI(ServiceGuardrail):
    provider = "guardrails_ai"
    supported_modes = ("pre_call", "post_call")

    def __init__(self, *, guard_name: str | None = None, api_base: str | None = None,
                 guardrails_ai_api_input_format: str = "llmOutput", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not guard_name:
            raise HandlerLoadError(f"guardrails_ai guardrail {self.name!r} needs guard_name (the Guardrails AI guard)")
        if guardrails_ai_api_input_format != "llmOutput":
            raise HandlerLoadError("guardrails_ai_api_input_format: only 'llmOutput' is supported (LiteLLM's 'inputs' "
                                   "format does not work with the Guardrails AI API, as its code says)")
        base = api_base or os.environ.get("GUARDRAILS_AI_API_BASE") or "http://0.0.0.0:8000"
        self.url = f"{base.rstrip('/')}/guards/{quote(guard_name, safe='')}/validate"

    async def validate(self, text: str, data: dict[str, Any]) -> str | None:
        """The guard's validated text (None when failing open); raises when validation fails."""
        body = {"llmOutput": text, **self.get_guardrail_dynamic_request_body_params(data)}
        answer = await self.checked(lambda: self.post_json(self.url, body))
        if answer is None:
            return None
        if not isinstance(answer, dict):
            answer = {}
        if answer.get("validationPassed") is False:
            log.info("guardrail %s: the Guardrails AI guard failed validation", self.name)
            raise GuardrailViolationError("Violated guardrail policy", guardrail=self.name)
        validated = answer.get("validatedOutput") or answer.get("rawLlmOutput")
        return validated if isinstance(validated, str) else None

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> Any:
        messages = data.get("messages")
        users = [i for i, m in enumerate(messages or ()) if isinstance(m, dict) and m.get("role") == "user"]
        if not users:
            return None
        slots = [s for s in text_slots({"messages": messages}) if s.message == users[-1]]
        text = "\n".join(s.text for s in slots)
        if not text.strip():
            return None
        validated = await self.validate(text, data)
        if validated is None or validated == text:
            return None
        messages[users[-1]]["content"] = validated     # LiteLLM's set_last_user_message
        return data

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> None:
        texts = answer_texts(response)
        if texts and texts[0][2]:
            await self.validate(texts[0][2], data)
