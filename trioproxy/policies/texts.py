"""Where the user's text is in a request body, for policies that read or rewrite it.

Chat ``messages[].content`` (a string, or the ``text`` of ``{"type": "text"}`` parts), the text
completion ``prompt`` and the embeddings ``input`` (a string or a list of strings). Token-id
prompts, images and audio are not text and are skipped. Each place is a :class:`TextSlot` that can
be replaced in place, so a policy that rewrites text (LLM Guard's sanitized prompt) changes exactly
the string it scanned and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["TextSlot", "text_slots"]


@dataclass(slots=True)
class TextSlot:
    text: str
    container: Any      # the dict or list holding the string
    key: Any            # its key or index there

    def replace(self, new: str) -> None:
        self.container[self.key] = new


def _strings(container: Any, key: Any) -> list[TextSlot]:
    value = container.get(key) if isinstance(container, dict) else None
    if isinstance(value, str):
        return [TextSlot(value, container, key)]
    if isinstance(value, list):
        return [TextSlot(item, value, i) for i, item in enumerate(value) if isinstance(item, str)]
    return []


def text_slots(data: dict[str, Any]) -> list[TextSlot]:
    """Every piece of user text in ``data``, in request order."""
    slots: list[TextSlot] = []
    messages = data.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            if isinstance(content, str):
                slots.append(TextSlot(content, message, "content"))
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                        slots.append(TextSlot(part["text"], part, "text"))
    slots += _strings(data, "prompt")
    slots += _strings(data, "input")
    return slots
