"""Where the user's text is in a request body, for policies that read or rewrite it.

Chat ``messages[].content`` (a string, or the ``text`` of ``{"type": "text"}`` parts), the text
completion ``prompt`` and the embeddings ``input`` (a string or a list of strings). Token-id
prompts, images and audio are not text and are skipped. Each place is a :class:`TextSlot` that can
be replaced in place, so a policy that rewrites text (LLM Guard's sanitized prompt) changes exactly
the string it scanned and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

__all__ = ["INLINE_LIMIT", "TextSlot", "run_scan", "text_slots"]

T = TypeVar("T")

#: text scans over more characters than this run in a worker thread: they cost a few ms per
#: 100 KB, and a multi-megabyte prompt would otherwise stall every other request on the Trio thread
INLINE_LIMIT = 64 * 1024

#: at most this many large scans at once (each holds a worker thread)
SCAN_LIMITER = trio.CapacityLimiter(4)


async def run_scan(size: int, scan: Callable[..., T], *args: Any) -> T:
    """``scan(*args)`` inline for small texts, in a worker thread (limited) for large ones."""
    if size > INLINE_LIMIT:
        return await trio.to_thread.run_sync(scan, *args, limiter=SCAN_LIMITER)
    return scan(*args)


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
