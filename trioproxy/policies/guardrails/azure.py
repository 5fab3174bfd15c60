"""Azure AI Content Safety: ``guardrail: azure/text_moderations``, ``guardrail: azure/prompt_shield``
and the older callback ``litellm_settings.callbacks: ["azure_content_safety"]``.

As LiteLLM's ``guardrail_hooks/azure/`` and ``proxy/hooks/azure_content_safety.py``. Every call is
``POST {api_base}/contentsafety/text:<action>?api-version=<api_version>`` with the header
``Ocp-Apim-Subscription-Key`` (API version ``2024-09-01`` unless ``api_version`` is set).

* **Text moderation** (``text:analyze``, body ``{"text", "categories", "haltOnBlocklistHit",
  "outputType"}`` plus ``blocklistNames`` when set; texts over 10,000 characters are sent in word-
  boundary chunks): a category whose severity reaches ``severity_threshold_by_category[cat]``, else
  ``severity_threshold``, else 2 → 400 ``guardrail_violation``: ``Azure Content Safety Guardrail: Hate
  crossed severity 2, Got severity: 4``. ``pre_call`` / ``during_call`` check the last user message,
  ``post_call`` the answer (on streams: assembled, once, before ``[DONE]``).
* **Prompt shield** (``text:shieldPrompt``, body ``{"userPrompt", "documents": []}``): the last user
  message; ``userPromptAnalysis.attackDetected`` → 400 ``Violated Azure Prompt Shield guardrail
  policy``. Modes ``pre_call``, ``during_call`` (LiteLLM's).
* **The ``azure_content_safety`` callback** (``azure_content_safety_params: {endpoint, key,
  thresholds}``; API version ``2023-10-01`` as LiteLLM's SDK call): every request message before the
  call and the answer after it; default threshold 4 for each of Hate, SelfHarm, Sexual, Violence;
  a violation → 400 ``Violated content safety policy (input: Hate severity 4)``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from ...errors import GuardrailViolationError
from ...hooks.loader import HandlerLoadError
from ...prompt import text_slots
from .service import ServiceGuardrail, answer_texts

__all__ = ["AzureContentSafetyCallback", "AzurePromptShield", "AzureTextModeration"]

log = logging.getLogger("trioproxy.guardrails.azure")

MAX_TEXT = 10_000
CATEGORIES = ["Hate", "Sexual", "SelfHarm", "Violence"]


def split_by_words(text: str, limit: int = MAX_TEXT) -> list[str]:
    """``text`` in chunks of at most ``limit`` characters, cut between words where possible."""
    if len(text) <= limit:
        return [text]
    chunks, current = [], ""
    for token in re.findall(r"\S+|\s+", text):
        if len(current) + len(token) <= limit:
            current += token
            continue
        if current:
            chunks.append(current)
        while len(token) > limit:
            chunks.append(token[:limit])
            token = token[limit:]
        current = token
    if current:
        chunks.append(current)
    return chunks


def last_user_text(data: dict[str, Any]) -> str | None:
    """The text of the request's last user message (LiteLLM's ``get_last_user_message``)."""
    messages = data.get("messages")
    users = [i for i, m in enumerate(messages or ()) if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        return None
    texts = [s.text for s in text_slots({"messages": [messages[users[-1]]]})]
    return "\n".join(texts) or None


class _AzureBase(ServiceGuardrail):
    provider = "azure content safety"
    default_version = "2024-09-01"

    def __init__(self, *, api_key: str | None = None, api_base: str | None = None, api_version: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not api_key or not api_base:
            raise HandlerLoadError(f"{self.provider} guardrail {self.name!r} needs api_key and api_base "
                                   "(the Content Safety resource's key and endpoint)")
        self.api_key = api_key
        self.api_base = api_base.rstrip("/")
        self.api_version = api_version if api_version and api_version != "v1" else self.default_version

    async def content_safety(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.api_base}/contentsafety/text:{action}?api-version={self.api_version}"
        answer = await self.post_json(url, body, {"Ocp-Apim-Subscription-Key": self.api_key})
        return answer if isinstance(answer, dict) else {}


class AzureTextModeration(_AzureBase):
    provider = "azure/text_moderations"

    def __init__(self, *, severity_threshold: int | None = None,
                 severity_threshold_by_category: dict[str, int] | None = None, categories: list[str] | None = None,
                 blocklistNames: list[str] | None = None, haltOnBlocklistHit: bool = False,
                 outputType: str = "FourSeverityLevels", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.body: dict[str, Any] = {"categories": categories or list(CATEGORIES),
                                     "haltOnBlocklistHit": bool(haltOnBlocklistHit), "outputType": outputType}
        if blocklistNames:
            self.body["blocklistNames"] = blocklistNames
        self.threshold = int(severity_threshold) if severity_threshold else None
        self.by_category = {str(k): int(v) for k, v in (severity_threshold_by_category or {}).items()} or None

    def _violation(self, answer: dict[str, Any]) -> str | None:
        analysis = [c for c in answer.get("categoriesAnalysis") or () if isinstance(c, dict)]
        rules: list[dict[str, int] | int] = []
        if self.by_category:
            rules.append(self.by_category)
        if self.threshold:
            rules.append(self.threshold)
        if not rules:
            rules.append(2)
        for rule in rules:
            for c in analysis:
                limit = rule.get(c.get("category")) if isinstance(rule, dict) else rule
                severity = c.get("severity")
                if limit is not None and isinstance(severity, int) and severity >= limit:
                    return f"Azure Content Safety Guardrail: {c.get('category')} crossed severity {limit}, " \
                           f"Got severity: {severity}"
        return None

    async def moderate(self, text: str) -> None:
        async def call() -> str | None:
            for chunk in split_by_words(text):
                problem = self._violation(await self.content_safety("analyze", {"text": chunk, **self.body}))
                if problem:
                    return problem
            return None

        problem = await self.checked(call)
        if problem:
            log.info("guardrail %s: %s", self.name, problem)
            raise GuardrailViolationError(problem, guardrail=self.name)

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> None:
        text = last_user_text(data)
        if text:
            await self.moderate(text)

    async def async_moderation_hook(self, data: dict, user_api_key_dict: Any, call_type: str) -> None:
        text = last_user_text(data)
        if text:
            await self.moderate(text)

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> None:
        texts = answer_texts(response)
        if texts and texts[0][2]:
            await self.moderate(texts[0][2])


class AzurePromptShield(_AzureBase):
    provider = "azure/prompt_shield"
    supported_modes = ("pre_call", "during_call")

    async def shield(self, data: dict[str, Any]) -> None:
        text = last_user_text(data)
        if not text:
            return
        answer = await self.checked(lambda: self.content_safety("shieldPrompt", {"userPrompt": text, "documents": []}))
        analysis = answer.get("userPromptAnalysis") if isinstance(answer, dict) else None
        if isinstance(analysis, dict) and analysis.get("attackDetected"):
            log.info("guardrail %s: Azure Prompt Shield detected an attack", self.name)
            raise GuardrailViolationError("Violated Azure Prompt Shield guardrail policy: attack detected in the "
                                          "user prompt", guardrail=self.name)

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> None:
        await self.shield(data)

    async def async_moderation_hook(self, data: dict, user_api_key_dict: Any, call_type: str) -> None:
        await self.shield(data)


class AzureContentSafetyCallback(_AzureBase):
    """``callbacks: ["azure_content_safety"]``: every request message, then the answer."""

    provider = "azure_content_safety"
    default_version = "2023-10-01"

    def __init__(self, *, thresholds: dict[str, int] | None = None, **kwargs: Any) -> None:
        super().__init__(guardrail_name="azure_content_safety", event_hook=["pre_call", "post_call"], **kwargs)
        self.thresholds = {c: 4 for c in CATEGORIES}
        for category, value in (thresholds or {}).items():
            if category not in self.thresholds:
                raise HandlerLoadError(f"azure_content_safety_params.thresholds: unknown category {category!r} "
                                       f"(categories: {', '.join(CATEGORIES)})")
            self.thresholds[category] = int(value)

    async def _check(self, text: str, source: str) -> None:
        answer = await self.checked(lambda: self.content_safety("analyze", {"text": text, "categories": CATEGORIES,
                                                                            "outputType": "FourSeverityLevels"}))
        for c in (answer or {}).get("categoriesAnalysis") or ():
            severity, category = c.get("severity"), c.get("category")
            if isinstance(severity, int) and category in self.thresholds and severity >= self.thresholds[category]:
                log.info("azure_content_safety: %s violates %s (severity %d)", source, category, severity)
                raise GuardrailViolationError(
                    f"Violated content safety policy ({source}: {category} severity {severity})",
                    guardrail="azure_content_safety")

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> None:
        for slot in text_slots(data):
            if slot.text.strip():
                await self._check(slot.text, "input")

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> None:
        texts = answer_texts(response)
        if texts and texts[0][2]:
            await self._check(texts[0][2], "output")
