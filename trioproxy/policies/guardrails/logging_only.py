"""``mode: logging_only`` for LiteLLM's built-in guardrails: rewrite what the logging callbacks
receive, never the request or the answer.

LiteLLM calls a ``logging_only`` guardrail's ``async_logging_hook(kwargs, result, call_type)`` before
its logging callbacks (Presidio masks the PII in the logged messages and answer). Here the logging
sink (``observability/sink.py``) runs :func:`logging_hooks`'s functions before the callbacks of every
event. Which requests: every one whose mode is ``logging_only`` — as in LiteLLM, a ``logging_only``
guardrail runs without being named; with a mode chosen by request tag, the requests whose tags
choose ``logging_only``. What is rewritten (:func:`mask_kwargs`): ``messages``, ``input``,
``additional_args.complete_input_dict``'s messages, the answer (the response argument and
``complete_streaming_response``, as copies: the client's answer and the response cache are
untouched); ``original_response`` (the upstream's raw text) is left out (``None``). A hook that
fails stops the event's delivery: an unmasked record never reaches a callback.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ...hooks.scheduler import mode_tags
from .service import answer_texts, set_text

__all__ = ["logging_hooks", "mask_kwargs"]

Mask = Callable[[list[str], dict[str, Any]], Awaitable[list[str]]]


def _message_texts(messages: list[Any]) -> list[tuple[Any, Any, str]]:
    places: list[tuple[Any, Any, str]] = []
    for m in messages:
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if isinstance(content, str):
            places.append((m, "content", content))
        elif isinstance(content, list):
            places += [(p, "text", p["text"]) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return places


async def mask_kwargs(kwargs: dict[str, Any], response: Any, mask: Mask, data: dict[str, Any]) -> tuple[dict, Any]:
    """``kwargs`` and ``response`` with their texts replaced by ``mask`` (copies; module docstring)."""
    kwargs = dict(kwargs)
    messages = copy.deepcopy(kwargs.get("messages")) if isinstance(kwargs.get("messages"), list) else None
    answer = copy.deepcopy(response) if response is not None else None
    places = _message_texts(messages or [])
    slots = answer_texts(answer) if answer is not None else []
    texts = [t for _, _, t in places] + [t for _, _, t in slots]
    masked = await mask(texts, data) if texts else []
    for (container, key, _), text in zip(places, masked, strict=False):
        container[key] = text
    for (container, key, _), text in zip(slots, masked[len(places):], strict=False):
        set_text(container, key, text)
    if messages is not None:
        kwargs["messages"] = messages
        if kwargs.get("input") is not None:
            kwargs["input"] = messages
        extra = kwargs.get("additional_args")
        if isinstance(extra, dict) and isinstance(extra.get("complete_input_dict"), dict):
            kwargs["additional_args"] = {**extra, "complete_input_dict": {**extra["complete_input_dict"],
                                                                          "messages": messages}}
    if "original_response" in kwargs:
        kwargs["original_response"] = None
    if kwargs.get("complete_streaming_response") is not None:
        kwargs["complete_streaming_response"] = answer
    return kwargs, answer


def logging_hooks(handlers: Iterable[Any]) -> list[Callable[..., Awaitable[tuple[dict, Any]]]]:
    """The sink's hooks: one per loaded guardrail whose modes include ``logging_only`` and whose
    object has ``async_logging_hook``."""
    hooks = []
    for handler in handlers:
        spec = getattr(handler, "guardrail", None)
        fn = getattr(handler.obj, "async_logging_hook", None)
        if spec is None or "logging_only" not in spec.modes or not callable(fn):
            continue

        async def hook(kwargs: dict[str, Any], response: Any, ctx: Any, spec: Any = spec,
                       fn: Any = fn) -> tuple[dict, Any]:
            data = ctx.data if isinstance(ctx.data, dict) else {}
            if spec.tag_modes and "logging_only" not in spec.modes_for(mode_tags(data, ctx.request_headers)):
                return kwargs, response
            return await fn(kwargs, response, ctx.route.call_type)

        hook.__qualname__ = f"{handler.name}.async_logging_hook"
        hooks.append(hook)
    return hooks
