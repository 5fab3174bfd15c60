"""A chat completion → the Responses API's ``response`` object (and the pieces the stream reuses).

The response echoes the request's settings as OpenAI's does (``instructions``, ``tools``,
``tool_choice``, ``text``, ``temperature``…), so clients that read them back (the OpenAI SDKs'
``responses.parse`` reads ``text.format``) see what they sent. ``store`` is always ``false``: a
translated response is not stored anywhere.

Output items, in the order OpenAI emits them: a ``reasoning`` item when the upstream returned its
reasoning text (``reasoning_content``, or ``reasoning`` as Ollama and OpenRouter name it), as a
summary part (what the Vercel AI SDK shows); then a ``message`` with an ``output_text`` part (and a
``refusal`` part when the upstream refused); then one ``function_call`` item per tool call. A chat
answer with neither text nor tool calls still gets its (empty) message, so ``output_text`` is ``""``
rather than missing.

``finish_reason`` → ``status``: ``length`` is ``incomplete`` with ``incomplete_details.reason:
max_output_tokens``, ``content_filter`` is ``incomplete`` with reason ``content_filter``;
everything else (``stop``, ``tool_calls``, none) is ``completed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from . import ids
from .ids import IdFactory, new_id
from .usage import responses_usage

__all__ = [
    "chat_response_to_response",
    "function_call_item",
    "message_item",
    "outcome",
    "output_text_part",
    "reasoning_item",
    "reasoning_text",
    "referenceable_items",
    "refusal_part",
    "response_object",
    "text_logprobs",
]


def response_object(
    request: Mapping[str, Any],
    *,
    response_id: str,
    created_at: int,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    incomplete_details: dict[str, Any] | None = None,
    completed_at: int | None = None,
) -> dict[str, Any]:
    """The ``response`` object, with the request's settings echoed as OpenAI echoes them."""
    reasoning = request.get("reasoning") if isinstance(request.get("reasoning"), Mapping) else {}
    text = request.get("text") if isinstance(request.get("text"), Mapping) else {}
    metadata = request.get("metadata")
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "completed_at": completed_at,
        "error": error,
        "incomplete_details": incomplete_details,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"),
        "model": model,
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True) is not False,
        "previous_response_id": None,
        "prompt_cache_key": request.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": request.get("safety_identifier"),
        "service_tier": request.get("service_tier"),
        "store": False,
        "temperature": request.get("temperature"),
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity")},
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": list(request.get("tools") or []),
        "top_logprobs": request.get("top_logprobs"),
        "top_p": request.get("top_p"),
        "truncation": request.get("truncation") or "disabled",
        "usage": usage,
        "user": request.get("user"),
        "metadata": dict(metadata) if isinstance(metadata, Mapping) else {},
    }


# --- output items (shared with the stream translator) ------------------------------------------


def output_text_part(text: str = "", annotations: list[dict[str, Any]] | None = None,
                     logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": annotations or [], "logprobs": logprobs or []}


def refusal_part(refusal: str = "") -> dict[str, Any]:
    return {"type": "refusal", "refusal": refusal}


def message_item(item_id: str, content: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call_id, "name": name,
            "arguments": arguments}


def reasoning_item(item_id: str, summary: list[str]) -> dict[str, Any]:
    return {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": s} for s in summary]}


def outcome(finish_reason: Any) -> tuple[str, dict[str, Any] | None]:
    """``(status, incomplete_details)`` for a chat ``finish_reason``."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def reasoning_text(message: Mapping[str, Any]) -> str | None:
    """The upstream's reasoning text in a chat message or delta, under either name servers use."""
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def text_logprobs(choice_logprobs: Any) -> list[dict[str, Any]]:
    """Chat ``choice.logprobs.content`` → the ``logprobs`` of an ``output_text`` part (or delta event)."""
    if not isinstance(choice_logprobs, Mapping) or not isinstance(choice_logprobs.get("content"), list):
        return []
    out = []
    for entry in choice_logprobs["content"]:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("token"), str):
            continue
        top = [_logprob(t) for t in entry.get("top_logprobs") or () if isinstance(t, Mapping)
               and isinstance(t.get("token"), str)]
        out.append({**_logprob(entry), "top_logprobs": top})
    return out


def _logprob(entry: Mapping[str, Any]) -> dict[str, Any]:
    token = entry["token"]
    raw = entry.get("bytes")
    logprob = entry.get("logprob")
    return {"token": token, "bytes": list(raw) if isinstance(raw, list) else list(token.encode()),
            "logprob": float(logprob) if isinstance(logprob, int | float) and not isinstance(logprob, bool) else 0.0}


def _annotations(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Chat ``url_citation`` annotations (OpenAI's search models) → Responses annotations."""
    out = []
    for note in message.get("annotations") or ():
        cite = note.get("url_citation") if isinstance(note, Mapping) else None
        if isinstance(cite, Mapping) and isinstance(cite.get("url"), str):
            out.append({"type": "url_citation", "start_index": int(cite.get("start_index") or 0),
                        "end_index": int(cite.get("end_index") or 0), "url": cite["url"],
                        "title": str(cite.get("title") or "")})
    return out


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):     # a few servers answer with content parts
        return "".join(p["text"] for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""


def _first_choice(answer: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = [c for c in answer.get("choices") or () if isinstance(c, Mapping)]
    if not choices:
        return {}
    return min(choices, key=lambda c: c.get("index", 0) if isinstance(c.get("index"), int) else 0)


def chat_response_to_response(
    chat_answer: Mapping[str, Any],
    request: Mapping[str, Any],
    *,
    response_id: str | None = None,
    new_id: IdFactory = new_id,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """A whole chat completion (``choices[0]``) → the Responses ``response`` object for ``request``.

    ``request`` is the client's Responses body (its settings are echoed); ``model`` is the one the
    upstream reported, else the requested one. The request asks for one answer, so only the first
    choice is read.
    """
    choice = _first_choice(chat_answer)
    message = choice.get("message") if isinstance(choice.get("message"), Mapping) else {}
    status, incomplete = outcome(choice.get("finish_reason"))
    output: list[dict[str, Any]] = []
    thought = reasoning_text(message)
    if thought is not None:
        output.append(reasoning_item(new_id(ids.REASONING), [thought]))
    text = _content_text(message.get("content"))
    refusal = message.get("refusal") if isinstance(message.get("refusal"), str) else None
    calls = [c for c in message.get("tool_calls") or () if isinstance(c, Mapping)]
    legacy = message.get("function_call")
    if isinstance(legacy, Mapping):
        calls.append({"function": legacy})
    parts: list[dict[str, Any]] = []
    if text or (not calls and not refusal):
        parts.append(output_text_part(text, _annotations(message), text_logprobs(choice.get("logprobs"))))
    if refusal:
        parts.append(refusal_part(refusal))
    if parts:
        output.append(message_item(new_id(ids.MESSAGE), parts, "incomplete" if status == "incomplete" else "completed"))
    for call in calls:
        function = call.get("function") if isinstance(call.get("function"), Mapping) else {}
        arguments = function.get("arguments")
        if isinstance(arguments, Mapping):          # a few servers answer with the arguments as an object
            arguments = orjson.dumps(arguments).decode()
        output.append(function_call_item(
            new_id(ids.FUNCTION_CALL),
            call["id"] if isinstance(call.get("id"), str) and call["id"] else new_id(ids.CALL),
            str(function.get("name") or ""),
            arguments if isinstance(arguments, str) else "",
            "completed"))
    created = chat_answer.get("created")
    model = chat_answer.get("model")
    return response_object(
        request,
        response_id=response_id or new_id(ids.RESPONSE),
        created_at=created if isinstance(created, int) and not isinstance(created, bool) else int(clock()),
        model=model if isinstance(model, str) and model else str(request.get("model") or ""),
        status=status,
        output=output,
        usage=responses_usage(chat_answer.get("usage")),
        incomplete_details=incomplete,
        completed_at=int(clock()) if status == "completed" else None,
    )


def referenceable_items(response: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The output items a later request may name in an ``item_reference``, by id, as input items.

    For a response store (not built: see ``request.py``): the Vercel AI SDK, with its default
    ``store: true``, sends an earlier answer's text back as ``{"type": "item_reference", "id":
    "msg_…"}``; a store that kept these items would pass them to ``to_chat_request(items=…)``.
    Messages and function calls are kept; reasoning is not (it is never replayed).
    """
    return {item["id"]: dict(item) for item in response.get("output") or ()
            if isinstance(item, Mapping) and item.get("type") in ("message", "function_call")
            and isinstance(item.get("id"), str)}
