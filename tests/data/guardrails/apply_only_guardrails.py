"""Guardrails written against LiteLLM's one-method API (``apply_guardrail``), no call hooks.

Imports as a LiteLLM file has them after the README's rewrite (``litellm.integrations.custom_guardrail``
→ ``trioproxy``). Used by ``tests/hooks/test_apply_guardrail.py``.
"""

from typing import Literal

from trioproxy import CustomGuardrail, GenericGuardrailAPIInputs, PiiEntityType


class MaskAndBlock(CustomGuardrail):
    """The docs' example: rewrite one word, block another; records what it saw."""

    seen: list[tuple[str, list[str]]] = []

    async def apply_guardrail(
        self,
        inputs: GenericGuardrailAPIInputs,
        request_data: dict,
        input_type: Literal["request", "response"],
        logging_obj=None,
    ) -> GenericGuardrailAPIInputs:
        texts = inputs.get("texts", [])
        MaskAndBlock.seen.append((input_type, list(texts)))
        if any("block-me" in t or "BLOCKED" in t for t in texts):
            raise ValueError(f"blocked {input_type} text")
        inputs["texts"] = [t.replace("secret-word", "[MASKED]").replace("Hello", "Howdy") for t in texts]
        return inputs


class OldStyle(CustomGuardrail):
    """The pre-v1 signature: one text at a time, returns the text."""

    async def apply_guardrail(self, text: str, language: str | None = None,
                              entities: list[PiiEntityType] | None = None,
                              request_data: dict | None = None) -> str:
        if "forbidden" in text:
            raise ValueError("forbidden text")
        return text.replace("old-word", "[OLD]")


class WrongCount(CustomGuardrail):
    async def apply_guardrail(self, inputs, request_data, input_type, logging_obj=None):
        return {"texts": []}
