"""Where the user's text is in a request body: one walker, for every reader of it.

:func:`text_slots` is the only code that knows the request shapes: the policies (banned keywords,
LLM Guard, Llama Guard, Google moderation), secret detection (``hide_secrets``), the token
estimator (``observability/tokens.py``) and the handler API's :func:`get_formatted_prompt` all ask
it, each for the places it cares about. A leaf module (it imports nothing of ours) because its
readers live in different layers: the estimator sits below the policies.

Places, in request order (each a :class:`TextSlot`, which can be replaced in place, so that a
policy that rewrites text changes exactly the string it read and nothing else):

* ``messages[i].content`` when it is a string (``where="content"``), or each ``{"type": "text",
  "text": …}`` part of a list (``"part"``). With ``any_part``: every part with a string ``text``
  whatever its type (``"part"``), and bare strings in the list (``"bare_part"``);
* with ``names``: ``messages[i].name`` (``"name"``) and ``tool_calls[].function.name``
  (``"tool_name"``);
* with ``arguments``: ``tool_calls[].function.arguments`` (``"tool_arguments"``) and the legacy
  ``function_call.arguments`` (``"function_arguments"``);
* the text completion ``prompt`` and the embeddings ``input``: a string, or the strings of a list
  (``"prompt"``, ``"input"``). Token ids, images and audio are not text and are skipped;
* a Responses API body (``POST /v1/responses`` forwarded natively): its ``instructions``
  (``"instructions"``), a string ``input`` (``"input"``), and in ``input`` items the text of each
  message (a string ``content``, or the ``text`` of its ``input_text``/``output_text`` parts:
  ``"content"``/``"part"``) and each ``function_call_output``'s string ``output`` (``"tool_output"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["TextSlot", "get_formatted_prompt", "text_slots"]


@dataclass(slots=True)
class TextSlot:
    text: str
    container: Any      # the dict or list holding the string
    key: Any            # its key or index there
    where: str          # which place (see the module docstring)
    message: int | None = None   # the index in ``messages``, for text from a message

    def replace(self, new: str) -> None:
        self.container[self.key] = new


def _strings(container: dict[str, Any], key: str) -> list[TextSlot]:
    value = container.get(key)
    if isinstance(value, str):
        return [TextSlot(value, container, key, key)]
    if isinstance(value, list):
        return [TextSlot(item, value, i, key) for i, item in enumerate(value) if isinstance(item, str)]
    return []


def _function(function: Any, index: int, slots: list[TextSlot], where: str, field: str) -> None:
    if isinstance(function, dict) and isinstance(function.get(field), str):
        slots.append(TextSlot(function[field], function, field, where, index))


def text_slots(data: dict[str, Any], *, arguments: bool = False, names: bool = False,
               any_part: bool = False) -> list[TextSlot]:
    """Every piece of user text in ``data``, in request order (see the module docstring)."""
    slots: list[TextSlot] = []
    messages = data.get("messages")
    if isinstance(messages, list):
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            if isinstance(content, str):
                slots.append(TextSlot(content, message, "content", "content", index))
            elif isinstance(content, list):
                for i, part in enumerate(content):
                    if isinstance(part, dict):
                        if isinstance(part.get("text"), str) and (any_part or part.get("type") == "text"):
                            slots.append(TextSlot(part["text"], part, "text", "part", index))
                    elif any_part and isinstance(part, str):
                        slots.append(TextSlot(part, content, i, "bare_part", index))
            if names and isinstance(message.get("name"), str):
                slots.append(TextSlot(message["name"], message, "name", "name", index))
            if names or arguments:
                tool_calls = message.get("tool_calls")
                for call in tool_calls if isinstance(tool_calls, list) else ():
                    function = call.get("function") if isinstance(call, dict) else None
                    if names:
                        _function(function, index, slots, "tool_name", "name")
                    if arguments:
                        _function(function, index, slots, "tool_arguments", "arguments")
            if arguments:
                _function(message.get("function_call"), index, slots, "function_arguments", "arguments")
    slots += _strings(data, "prompt")
    if isinstance(data.get("instructions"), str) and "messages" not in data:
        slots.append(TextSlot(data["instructions"], data, "instructions", "instructions"))
    slots += _strings(data, "input")
    items = data.get("input")
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            _responses_item(item, slots)
    return slots


def _responses_item(item: dict[str, Any], slots: list[TextSlot]) -> None:
    """The text of one Responses ``input`` item (a message, or a function call's output)."""
    if item.get("type") == "function_call_output":
        if isinstance(item.get("output"), str):
            slots.append(TextSlot(item["output"], item, "output", "tool_output"))
        return
    if item.get("type", "message") != "message":
        return
    content = item.get("content")
    if isinstance(content, str):
        slots.append(TextSlot(content, item, "content", "content"))
    for part in content if isinstance(content, list) else ():
        if isinstance(part, dict) and part.get("type") in ("input_text", "output_text") and \
                isinstance(part.get("text"), str):
            slots.append(TextSlot(part["text"], part, "text", "part"))


def get_formatted_prompt(data: dict, call_type: str = "completion") -> str:
    """Messages' contents (chat), ``prompt`` (text completion) or ``input`` (embeddings), joined.

    LiteLLM's ``litellm.utils.get_formatted_prompt``: each message's text (its parts joined by a
    space), the messages joined by a space; ``prompt`` / ``input`` items (token ids too) likewise.
    """
    if call_type in ("completion", "acompletion") or "messages" in data:
        messages = data.get("messages") or []
        if not isinstance(messages, list):
            messages = list(messages)
        texts: dict[int, list[str]] = {i: [] for i, m in enumerate(messages) if isinstance(m, dict)}
        for slot in text_slots({"messages": messages}, any_part=True):
            if slot.where != "bare_part" and slot.message is not None:
                texts[slot.message].append(slot.text)
        parts = [" ".join(texts[i]) for i in sorted(texts)]
        if parts or call_type in ("completion", "acompletion"):
            return "".join(parts) if len(parts) == 1 else " ".join(parts)
    for key in ("prompt", "input"):
        value = data.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return " ".join(str(v) for v in value)
    return ""
