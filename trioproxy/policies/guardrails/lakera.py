"""``guardrail: lakera_v2``: Lakera Guard's v2 API.

As LiteLLM's ``LakeraAIGuardrail`` (``guardrail_hooks/lakera_ai_v2.py``): ``POST {api_base}/v2/guard``
(``api_base`` default ``LAKERA_API_BASE`` or ``https://api.lakera.ai``) with ``Authorization: Bearer
{api_key}`` (default ``LAKERA_API_KEY``) and ``{"messages": [{"role", "content"}, …], "payload",
"breakdown", "dev_info"}`` (and ``project_id`` / ``metadata`` when set; LiteLLM sends them as
``null`` otherwise). Messages are the request's, their text parts joined by newlines; ``post_call``
adds the answer's choices as assistant messages.

``flagged: true``:

* only PII detectors (``breakdown[].detector_type`` ``pii/…``) → the PII is masked, not blocked:
  Lakera's ``payload`` offsets are replaced by ``[MASKED <TYPE>]`` in plain string messages
  (``pre_call``: before the upstream sees them; ``post_call``: in the answer). A request with
  non-string content (images) is blocked instead, as in LiteLLM; ``during_call`` cannot change a
  request already sent, so there it lets the request on.
* anything else → 400 ``guardrail_violation`` (``Violated guardrail policy``, with the detector
  types), unless ``on_flagged: monitor`` (logged, let through).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ...errors import GuardrailViolationError
from ...hooks.loader import HandlerLoadError
from .service import ServiceGuardrail, answer_texts, set_text

__all__ = ["LakeraGuardrail"]

log = logging.getLogger("trioproxy.guardrails.lakera")


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(parts) if parts else None
    return None


def _masked(content: str, detections: list[dict[str, Any]]) -> str:
    for d in sorted(detections, key=lambda d: (d.get("start") or 0, d.get("end") or 0), reverse=True):
        kind = str(d.get("detector_type") or "")
        start, end = d.get("start"), d.get("end")
        if kind and isinstance(start, int) and isinstance(end, int):
            content = content[:start] + f"[MASKED {kind.split('/')[-1].upper() or 'PII'}]" + content[end:]
    return content


class LakeraGuardrail(ServiceGuardrail):
    provider = "lakera_v2"

    def __init__(self, *, api_key: str | None = None, api_base: str | None = None, project_id: str | None = None,
                 payload: bool = True, breakdown: bool = True, metadata: dict[str, Any] | None = None,
                 dev_info: bool = True, on_flagged: str = "block", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key or os.environ.get("LAKERA_API_KEY") or ""
        if not self.api_key:
            raise HandlerLoadError(f"lakera_v2 guardrail {self.name!r} needs api_key (or LAKERA_API_KEY)")
        base = api_base or os.environ.get("LAKERA_API_BASE") or "https://api.lakera.ai"
        self.url = base.rstrip("/") + "/v2/guard"
        if on_flagged not in ("block", "monitor"):
            raise HandlerLoadError(f"on_flagged is 'block' or 'monitor', got {on_flagged!r}")
        self.on_flagged = on_flagged
        self.options: dict[str, Any] = {"payload": payload, "breakdown": breakdown, "dev_info": dev_info}
        if project_id is not None:
            self.options["project_id"] = project_id
        if metadata is not None:
            self.options["metadata"] = metadata

    async def guard(self, messages: list[dict[str, Any]], data: dict[str, Any]) -> dict[str, Any] | None:
        body = {"messages": messages, **self.options, **self.get_guardrail_dynamic_request_body_params(data)}

        async def call() -> Any:
            return await self.post_json(self.url, body, {"Authorization": f"Bearer {self.api_key}"})

        answer = await self.checked(call)
        return answer if isinstance(answer, dict) else None

    @staticmethod
    def _only_pii(answer: dict[str, Any]) -> bool:
        detected = [b for b in answer.get("breakdown") or () if isinstance(b, dict) and b.get("detected")]
        return bool(detected) and all(str(b.get("detector_type") or "").startswith("pii/") for b in detected)

    def _flagged(self, answer: dict[str, Any]) -> None:
        """A non-PII flag: block, or log in monitor mode."""
        kinds = sorted({str(b.get("detector_type")) for b in answer.get("breakdown") or ()
                        if isinstance(b, dict) and b.get("detected")})
        if self.on_flagged == "monitor":
            log.warning("guardrail %s: Lakera flagged the content (%s); let through (on_flagged: monitor)",
                        self.name, ", ".join(kinds) or "-")
            return
        log.info("guardrail %s: Lakera flagged the content (%s)", self.name, ", ".join(kinds) or "-")
        raise GuardrailViolationError("Violated guardrail policy" + (f" (Lakera: {', '.join(kinds)})" if kinds else ""),
                                      guardrail=self.name)

    def _request_messages(self, data: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
        out = []
        kept = {id(m) for m in self.request_messages(data)}
        for index, m in enumerate(data.get("messages") or ()):
            text = _text(m.get("content")) if isinstance(m, dict) and id(m) in kept else None
            if text:
                out.append((index, {"role": m.get("role", "user"), "content": text}))
        return out

    async def _check_request(self, data: dict[str, Any], *, may_change: bool) -> Any:
        pairs = self._request_messages(data)
        if not pairs:
            return None
        answer = await self.guard([m for _, m in pairs], data)
        if answer is None or answer.get("flagged") is not True:
            return None
        multimodal = any(not isinstance(data["messages"][i].get("content"), str) for i, _ in pairs)
        if self._only_pii(answer) and not multimodal:
            if not may_change:
                return None
            detections = [d for d in answer.get("payload") or () if isinstance(d, dict)]
            for position, (index, message) in enumerate(pairs):
                mine = [d for d in detections if d.get("message_id") == position]
                if mine:
                    data["messages"][index]["content"] = _masked(message["content"], mine)
            return data
        self._flagged(answer)
        return None

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> Any:
        return await self._check_request(data, may_change=True)

    async def async_moderation_hook(self, data: dict, user_api_key_dict: Any, call_type: str) -> None:
        await self._check_request(data, may_change=False)

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        slots = [s for s in answer_texts(response) if s[2]]
        if not slots:
            return None
        request = [m for _, m in self._request_messages(data)]
        answer = await self.guard(request + [{"role": "assistant", "content": t} for _, _, t in slots], data)
        if answer is None or answer.get("flagged") is not True:
            return None
        if self._only_pii(answer):
            if data.get("stream"):
                log.warning("guardrail %s: Lakera found PII in a streamed answer; chunks already sent cannot be "
                            "masked", self.name)
                return None
            detections = [d for d in answer.get("payload") or () if isinstance(d, dict)]
            for offset, (container, key, text) in enumerate(slots):
                mine = [d for d in detections if d.get("message_id") == len(request) + offset]
                if mine:
                    set_text(container, key, _masked(text, mine))
            return response
        self._flagged(answer)
        return None
