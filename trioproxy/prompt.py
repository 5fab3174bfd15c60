"""``get_formatted_prompt``: the request's text as one string, for hooks that scan prompts."""

from __future__ import annotations

from typing import Any

__all__ = ["get_formatted_prompt"]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def get_formatted_prompt(data: dict, call_type: str = "completion") -> str:
    """Messages' contents (chat), ``prompt`` (text completion) or ``input`` (embeddings), joined."""
    if call_type in ("completion", "acompletion") or "messages" in data:
        parts = [_text(m.get("content")) for m in data.get("messages") or [] if isinstance(m, dict)]
        if parts or call_type in ("completion", "acompletion"):
            return "".join(parts) if len(parts) == 1 else " ".join(parts)
    for key in ("prompt", "input"):
        value = data.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return " ".join(str(v) for v in value)
    return ""
