"""OpenAI's response shapes, built the same way for every provider.

One place writes ``chat.completion``, ``chat.completion.chunk``, ``usage`` and embedding lists, so a
client, a hook or the cost code cannot tell which provider answered. Also the small helpers every
translator needs: the text of a message's content, data-URL images, tool-call ids, finish reasons.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import struct
from collections.abc import Iterable, Mapping
from typing import Any

from ...errors import BadRequestError

__all__ = [
    "chat_completion",
    "chunk",
    "content_parts",
    "embedding_list",
    "encode_embedding",
    "map_finish_reason",
    "new_tool_call_id",
    "parse_data_url",
    "text_of",
    "usage",
    "usage_chunk",
]

#: native stop reasons → OpenAI ``finish_reason`` (LiteLLM's ``map_finish_reason`` table)
FINISH_REASONS: dict[str, str] = {
    # Anthropic / Bedrock Converse
    "end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
    "refusal": "content_filter", "pause_turn": "length", "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter", "content_filtered": "content_filter",
    # Gemini / Vertex AI
    "STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
    "LANGUAGE": "content_filter", "OTHER": "content_filter", "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter", "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter", "FINISH_REASON_UNSPECIFIED": "stop",
    "MALFORMED_FUNCTION_CALL": "stop", "UNEXPECTED_TOOL_CALL": "stop", "TOO_MANY_TOOL_CALLS": "stop",
    # Ollama and OpenAI's own
    "stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter",
    "function_call": "function_call", "load": "stop", "unload": "stop",
}


def map_finish_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    return FINISH_REASONS.get(reason, "stop")


def new_tool_call_id() -> str:
    """An id for a tool call the provider did not name (Gemini, Ollama): OpenAI's ``call_`` form."""
    return "call_" + secrets.token_hex(12)


def usage(prompt: int, completion: int, *, cached: int | None = None, cache_creation: int | None = None,
          reasoning: int | None = None) -> dict[str, Any]:
    """OpenAI ``usage``, with LiteLLM's prompt-cache fields when the provider reported them.

    ``prompt`` must already include cached and cache-creation tokens (OpenAI's convention:
    ``prompt_tokens_details.cached_tokens`` is a part of ``prompt_tokens``).
    """
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                           "total_tokens": prompt + completion}
    if cached is not None:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
        out["cache_read_input_tokens"] = cached
    if cache_creation is not None:
        out["cache_creation_input_tokens"] = cache_creation
    if reasoning is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return out


def chat_completion(*, id: str, created: int, model: str, message: dict[str, Any], finish_reason: str | None,
                    usage_: dict[str, Any] | None, choices: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A ``chat.completion`` body with one choice (or ``choices`` as given)."""
    body: dict[str, Any] = {
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": choices if choices is not None else
        [{"index": 0, "message": message, "finish_reason": finish_reason}],
    }
    if usage_ is not None:
        body["usage"] = usage_
    return body


def chunk(*, id: str, created: int, model: str, delta: dict[str, Any] | None = None,
          finish_reason: str | None = None, index: int = 0) -> dict[str, Any]:
    return {"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": index, "delta": delta or {}, "finish_reason": finish_reason}]}


def usage_chunk(*, id: str, created: int, model: str, usage_: dict[str, Any]) -> dict[str, Any]:
    """The final chunk of every stream: ``choices: []`` and the usage (the relay hides it when not asked)."""
    return {"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [], "usage": usage_}


def text_of(content: Any) -> str:
    """The text of a message's ``content`` (a string, or a list of parts: text parts joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, Mapping) and p.get("type") in ("text", None) and isinstance(p.get("text"), str))
    return str(content)


def content_parts(content: Any) -> list[dict[str, Any]]:
    """A message's ``content`` as a list of OpenAI parts (a string becomes one text part)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, str):
                out.append({"type": "text", "text": part})
            elif isinstance(part, Mapping):
                out.append(dict(part))
            else:
                raise BadRequestError("Invalid content part: expected an object with a 'type'.", param="messages")
        return out
    raise BadRequestError("Invalid message content: expected a string or a list of parts.", param="messages")


_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^,;]*)*?);base64,(?P<data>.*)$", re.S)


def image_url_of(part: Mapping[str, Any]) -> str:
    """The URL of an OpenAI ``image_url`` part (string or ``{"url": …}`` form)."""
    value = part.get("image_url")
    url = value.get("url") if isinstance(value, Mapping) else value
    if not isinstance(url, str) or not url:
        raise BadRequestError("An image_url content part needs a 'url'.", param="messages")
    return url


def parse_data_url(url: str) -> tuple[str, str] | None:
    """``data:image/png;base64,AAAA`` → ``("image/png", "AAAA")``; None for other URLs.

    The base64 payload is checked (a provider would reject it less clearly) but returned as text:
    it goes into the native body unchanged.
    """
    match = _DATA_URL.match(url)
    if match is None:
        return None
    data = match.group("data").strip()
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestError("An image data URL does not hold valid base64.", param="messages") from None
    return match.group("mime") or "application/octet-stream", data


def encode_embedding(values: Iterable[float], encoding_format: str | None) -> list[float] | str:
    """Floats as the client asked: a list, or (``base64``) little-endian float32 bytes, as OpenAI does."""
    floats = [float(v) for v in values]
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(floats)}f", *floats)).decode("ascii")
    return floats


def embedding_list(vectors: list[list[float]], *, model: str, prompt_tokens: int,
                   encoding_format: str | None) -> dict[str, Any]:
    """An OpenAI embeddings response from float vectors, in input order."""
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": encode_embedding(v, encoding_format)}
                 for i, v in enumerate(vectors)],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def embedding_inputs(body: Mapping[str, Any]) -> list[str]:
    """The ``input`` of an embeddings request as a list of strings (token-id lists are refused).

    Native embedding APIs take text; OpenAI's pre-tokenized form (lists of ints) has no meaning
    for another provider's tokenizer, so it is a 400 naming the parameter.
    """
    raw = body.get("input")
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
        return list(raw)
    if isinstance(raw, list) and not raw:
        raise BadRequestError("'input' must not be empty.", param="input")
    raise BadRequestError("'input' must be a string or a list of strings for this provider "
                          "(token-id arrays are only understood by OpenAI's own models).", param="input")
