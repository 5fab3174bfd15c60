"""Guardrails that implement only ``apply_guardrail``: hooks made from it, for every mode.

LiteLLM's custom-guardrail docs lead with one method instead of the call hooks::

    async def apply_guardrail(self, inputs, request_data, input_type, logging_obj=None):
        # inputs["texts"]: the texts of the request (input_type "request") or of the answer ("response")
        ...            # raise to block; return inputs, with changed texts to rewrite them

A guardrail class that defines ``apply_guardrail`` and not the hook of one of its modes gets that
hook from :class:`ApplyGuardrailHooks` (``assembly.py`` binds it like a hook the class wrote, so
the scheduler's order, time limit and error rules are the same):

=============  ================================  ==============================================
mode           hook made                         what ``apply_guardrail`` sees and may do
=============  ================================  ==============================================
pre_call       ``async_pre_call_hook``           the request's texts (``input_type="request"``);
                                                 changed texts are written back before the call
during_call    ``async_moderation_hook``         the same, racing the upstream; raise to block
                                                 (changes cannot reach a request already sent)
post_call      ``async_post_call_success_hook``  the answer's texts (``"response"``): a plain
                                                 answer is rewritten with changed texts; a
                                                 stream is checked once, assembled, before
                                                 ``[DONE]`` — raising ends it with an error
                                                 event (with ``stream_mode: buffer`` nothing of
                                                 it was sent); changed texts cannot rewrite
                                                 chunks already sent, and are logged
=============  ================================  ==============================================

The texts are found by the one walker of "where is the user's text" (``prompt.text_slots``:
message contents and text parts, a completion's ``prompt``, an embeddings ``input``) and, in an
answer, each choice's ``message.content`` / ``text``. Texts come back by position: a returned list
of another length is a handler bug, reported as the guardrail's error. ``inputs`` also carries
``structured_messages`` (the request's messages), ``tools`` and ``model``, as in LiteLLM.

The older signature ``apply_guardrail(self, text, language=None, entities=None, request_data=None)
-> str`` (one text at a time) is recognised by its first parameter's name and called per text.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from ..errors import GuardrailViolationError
from ..prompt import TextSlot, text_slots

__all__ = ["ApplyGuardrailHooks", "defines_apply_guardrail"]

log = logging.getLogger("trioproxy.hooks")


def defines_apply_guardrail(obj: Any) -> bool:
    """True when ``obj``'s class wrote its own ``apply_guardrail`` (not the base class's no-op)."""
    fn = getattr(type(obj), "apply_guardrail", None)
    return fn is not None and not getattr(fn, "_trioproxy_default", False) and callable(fn)


def _answer_slots(response: Any) -> list[TextSlot]:
    """The text of each choice of a chat or text completion answer, or of each ``output_text`` part
    of a Responses answer's messages, replaceable in place."""
    slots: list[TextSlot] = []
    output = response.get("output") if isinstance(response, dict) else None
    for item in output if isinstance(output, list) else ():
        content = item.get("content") if isinstance(item, dict) and item.get("type") == "message" else None
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str):
                slots.append(TextSlot(part["text"], part, "text", "content"))
    choices = response.get("choices") if isinstance(response, dict) else None
    for choice in choices if isinstance(choices, list) else ():
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            slots.append(TextSlot(message["content"], message, "content", "content"))
        elif isinstance(choice.get("text"), str):
            slots.append(TextSlot(choice["text"], choice, "text", "prompt"))
    return slots


class ApplyGuardrailHooks:
    """The call hooks of one guardrail object that has only ``apply_guardrail`` (module docstring)."""

    #: they find the texts of a Responses body and answer too (``prompt.text_slots``, ``_answer_slots``),
    #: so a /v1/responses request may be forwarded natively with them (core/responses_native.py)
    handles_responses_api = True

    def __init__(self, obj: Any, name: str) -> None:
        self.obj = obj
        self.name = name
        fn = obj.apply_guardrail
        if not inspect.iscoroutinefunction(fn):
            raise TypeError("apply_guardrail must be 'async def'")
        params = list(inspect.signature(fn).parameters)
        #: the pre-v1 form, one text at a time: apply_guardrail(text, language, entities, request_data)
        self.per_text = bool(params) and params[0] == "text"

    async def _apply(self, texts: list[str], data: dict[str, Any], input_type: str) -> list[str]:
        """``texts`` as the guardrail returns them (raises what the guardrail raises)."""
        if self.per_text:
            return [await self.obj.apply_guardrail(text=text, request_data=data) for text in texts]
        inputs: dict[str, Any] = {"texts": list(texts), "model": data.get("model")}
        if isinstance(data.get("messages"), list):
            inputs["structured_messages"] = data["messages"]
        if isinstance(data.get("tools"), list):
            inputs["tools"] = data["tools"]
        result = await self.obj.apply_guardrail(inputs=inputs, request_data=data, input_type=input_type,
                                                logging_obj=None)
        returned = result.get("texts") if isinstance(result, dict) else None
        if returned is None:
            return list(texts)
        if not isinstance(returned, list) or len(returned) != len(texts) or \
                not all(isinstance(t, str) for t in returned):
            raise GuardrailViolationError(
                f"Guardrail {self.name!r}: apply_guardrail returned {len(returned) if isinstance(returned, list) else 0}"
                f" texts for {len(texts)}; it must return one string per text it was given", guardrail=self.name)
        return returned

    async def _rewrite(self, slots: list[TextSlot], data: dict[str, Any], input_type: str) -> bool:
        """Apply to the slots' texts and write changed ones back; True when any changed."""
        texts = [slot.text for slot in slots]
        new = await self._apply(texts, data, input_type)
        changed = False
        for slot, old, text in zip(slots, texts, new, strict=True):
            if text != old:
                slot.replace(text)
                changed = True
        return changed

    # -- the hooks (parameter names are the loader's canonical ones: hooks/loader.PHASE_ARGS) -------
    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> None:
        await self._rewrite(text_slots(data), data, "request")

    async def async_moderation_hook(self, data: dict, user_api_key_dict: Any, call_type: str) -> None:
        await self._apply([slot.text for slot in text_slots(data)], data, "request")

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        slots = _answer_slots(response)
        if not slots:
            return None
        if data.get("stream"):
            texts = [slot.text for slot in slots]
            if await self._apply(texts, data, "response") != texts:
                log.warning("guardrail %s changed a streamed answer; chunks already sent cannot be rewritten "
                            "(docs/guardrails.md: apply_guardrail)", self.name)
            return None
        return response if await self._rewrite(slots, data, "response") else None
