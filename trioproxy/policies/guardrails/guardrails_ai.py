"""``guardrail: guardrails_ai``: a Guardrails AI server's guard.

As LiteLLM's ``GuardrailsAI`` (``guardrail_hooks/guardrails_ai/guardrails_ai.py``): ``POST
{api_base}/guards/{guard_name}/validate`` (``api_base`` default ``GUARDRAILS_AI_API_BASE`` or
``http://0.0.0.0:8000``) with ``{"llmOutput": text}`` plus the request's ``extra_body``.
``validationPassed: false`` → 400 ``guardrail_violation`` (``Violated guardrail policy``).

* ``pre_call``: the last user message is validated and replaced by the guard's ``validatedOutput``
  (or ``rawLlmOutput``), so a guard that fixes text (PII redaction) changes what the model sees.
* ``post_call``: the answer's text is validated (on streams: assembled, once, before ``[DONE]``).
* ``logging_only``: as LiteLLM, the last user message of what the logging callbacks receive is
  validated and replaced by the validated text (``logging_only.py``; the request is untouched). A
  failed validation stops the event's delivery to the callbacks.
* LiteLLM's ``guardrails_ai_api_input_format: inputs`` (which its own code says does not work with
  the Guardrails AI API) is a startup error.
"""

from __future__ import annotations

import copy
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
    supported_modes = ("pre_call", "post_call", "logging_only")

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

    async def async_logging_hook(self, kwargs: dict[str, Any], result: Any, call_type: str) -> tuple[dict, Any]:
        """``logging_only``: the logged last user message, validated (a copy; ``logging_only.py``)."""
        messages = kwargs.get("messages")
        if not isinstance(messages, list):
            return kwargs, result
        copied = {"messages": copy.deepcopy(messages)}
        changed = await self.async_pre_call_hook(None, None, copied, call_type)
        if changed is None:
            return kwargs, result
        kwargs = {**kwargs, "messages": copied["messages"]}
        if kwargs.get("input") is not None:
            kwargs["input"] = copied["messages"]
        extra = kwargs.get("additional_args")
        if isinstance(extra, dict) and isinstance(extra.get("complete_input_dict"), dict):
            kwargs["additional_args"] = {**extra, "complete_input_dict": {**extra["complete_input_dict"],
                                                                          "messages": copied["messages"]}}
        return kwargs, result
