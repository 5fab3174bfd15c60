"""``guardrail: aim``: Aim Security's firewall API.

As LiteLLM's ``AimGuardrail`` (``guardrail_hooks/aim/aim.py``): ``POST {api_base}/fw/v1/analyze``
(``api_base`` default ``AIM_API_BASE`` or ``https://api.aim.security``) with ``{"messages": […]}`` and
the headers ``Authorization: Bearer {api_key}`` (default ``AIM_API_KEY``), ``x-aim-litellm-hook``
(``pre_call`` / ``moderation`` / ``output``), ``x-aim-litellm-version`` (here ``trioproxy-<version>``),
and ``x-aim-gateway-key-alias`` (the caller's key alias) / ``x-aim-user-email`` (the request's
``metadata.headers["x-aim-user-email"]``) when known. ``required_action.action_type``:

* ``block_action`` → 400 ``guardrail_violation`` with Aim's ``detection_message``;
* ``anonymize_action`` (pre-call) → the messages become Aim's redacted ones (LiteLLM's order: the
  redacted new message, then ``all_redacted_messages``), and the answer gets the session's entities
  back (``[NAME]`` → value). **Decision**: LiteLLM keeps those entities on the guardrail object,
  shared by every request (one request's PII could be put into another's answer); here they are
  kept per request, like Presidio's tokens (``presidio.py``), and dropped with the answer;
* ``monitor_action`` / none → unchanged.

Post-call the request's messages plus the answer (``assistant``) are analysed (``hook: output``). On
streams LiteLLM relays chunks through Aim's websocket (``/fw/v1/analyze/stream``); trioproxy checks
the assembled answer once before ``[DONE]`` (the guardrail machinery's streaming rule) instead.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections import OrderedDict
from typing import Any

from ...errors import GuardrailViolationError
from ...hooks.loader import HandlerLoadError
from .service import ServiceGuardrail, answer_texts, set_text

__all__ = ["AimGuardrail"]

log = logging.getLogger("trioproxy.guardrails.aim")

MAX_PENDING = 10_000
_REF = "aim_session_ref"
_refs = itertools.count(1)


def _version() -> str:
    try:
        from importlib.metadata import version
        return f"trioproxy-{version('trioproxy')}"
    except Exception:  # not installed as a distribution (a source checkout)
        return "trioproxy"


class AimGuardrail(ServiceGuardrail):
    provider = "aim"

    def __init__(self, *, api_key: str | None = None, api_base: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key or os.environ.get("AIM_API_KEY")
        if not self.api_key:
            raise HandlerLoadError(f"aim guardrail {self.name!r} needs api_key (or the environment variable "
                                   "AIM_API_KEY)")
        self.url = (api_base or os.environ.get("AIM_API_BASE") or "https://api.aim.security").rstrip("/") \
            + "/fw/v1/analyze"
        self.version = _version()
        self._entities: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    def _headers(self, hook: str, user: Any, data: dict[str, Any]) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.api_key}", "x-aim-litellm-hook": hook,
                   "x-aim-litellm-version": self.version}
        metadata = data.get("metadata")
        sent = metadata.get("headers") if isinstance(metadata, dict) else None
        email = sent.get("x-aim-user-email") if isinstance(sent, dict) else None
        if isinstance(email, str) and email:
            headers["x-aim-user-email"] = email
        alias = getattr(user, "key_alias", None)
        if isinstance(alias, str) and alias:
            headers["x-aim-gateway-key-alias"] = alias
        return headers

    async def analyze(self, messages: list[Any], hook: str, user: Any, data: dict[str, Any]) -> dict[str, Any]:
        body = {"messages": messages}
        answer = await self.checked(lambda: self.post_json(self.url, body, self._headers(hook, user, data)))
        return answer if isinstance(answer, dict) else {}

    def _block(self, answer: dict[str, Any]) -> None:
        action = answer.get("required_action") or {}
        if isinstance(action, dict) and action.get("action_type") == "block_action":
            message = action.get("detection_message")
            log.info("guardrail %s: Aim blocked the content", self.name)
            raise GuardrailViolationError(message if isinstance(message, str) and message else "Blocked by Aim",
                                          guardrail=self.name)

    async def _check_request(self, data: dict[str, Any], hook: str, user: Any, *, may_change: bool) -> Any:
        messages = self.request_messages(data)
        answer = await self.analyze(messages, hook, user, data)
        self._block(answer)
        action = answer.get("required_action") or {}
        if not may_change or not isinstance(action, dict) or action.get("action_type") != "anonymize_action":
            return None
        redaction = action.get("chat_redaction_result")
        if not isinstance(redaction, dict) or not isinstance(redaction.get("redacted_new_message"), dict):
            return None
        entities = (answer.get("analysis_result") or {}).get("session_entities")
        if isinstance(entities, list) and entities:
            metadata = data.setdefault("metadata", {})
            ref = f"{id(self):x}-{next(_refs)}"
            metadata[_REF] = ref
            self._entities[ref] = [e for e in entities[:100] if isinstance(e, dict)]
            while len(self._entities) > MAX_PENDING:
                self._entities.popitem(last=False)
        new = redaction["redacted_new_message"]
        data["messages"] = [{"role": new.get("role"), "content": new.get("content")}] + [
            {"role": m.get("role"), "content": m.get("content")}
            for m in redaction.get("all_redacted_messages") or () if isinstance(m, dict)]
        log.info("guardrail %s: Aim anonymized the request", self.name)
        return data

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> Any:
        return await self._check_request(data, "pre_call", user_api_key_dict, may_change=True)

    async def async_moderation_hook(self, data: dict, user_api_key_dict: Any, call_type: str) -> None:
        await self._check_request(data, "moderation", user_api_key_dict, may_change=False)

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        metadata = data.get("metadata")
        ref = metadata.get(_REF) if isinstance(metadata, dict) else None
        entities = self._entities.pop(ref, []) if isinstance(ref, str) else []
        texts = answer_texts(response)
        if not texts:
            return None
        container, key, output = texts[0]
        messages = list(self.request_messages(data)) + [{"role": "assistant", "content": output}]
        self._block(await self.analyze(messages, "output", user_api_key_dict, data))
        restored = output
        for entity in entities:
            if isinstance(entity.get("name"), str) and isinstance(entity.get("content"), str):
                restored = restored.replace(f"[{entity['name']}]", entity["content"])
        if restored == output or data.get("stream"):
            return None
        set_text(container, key, restored)
        return response
