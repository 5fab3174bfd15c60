"""Server-sent events: parsing the upstream's stream, framing ours, assembling the whole answer.

The upstream's bytes arrive in arbitrary pieces; :class:`SSEParser` cuts them into events. Each
``data:`` payload is parsed once into a chunk object (``ModelResponseStream`` for chat), which the
hooks may change; a chunk nobody changed is framed again from its JSON. ``[DONE]`` is never relayed
from upstream: the pipeline sends its own after the post-call phase, so a post-call rejection can
replace it with an error event.

:class:`StreamAssembler` rebuilds the complete response from the chunks the client received (what
``async_post_call_success_hook`` and the logging callbacks see for a stream).
"""

from __future__ import annotations

from typing import Any

import orjson

from .errors import ProxyError, error_body
from .types import ModelResponse, ModelResponseStream, OpenAIObject, TextCompletionResponse

__all__ = [
    "DONE_FRAME",
    "SSEParser",
    "StreamAssembler",
    "error_frame",
    "frame",
    "parse_chunk",
]

DONE_FRAME = b"data: [DONE]\n\n"
DONE = object()


def frame(chunk: Any) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def error_frame(err: ProxyError) -> bytes:
    """The terminal error event sent in place of ``[DONE]`` (the OpenAI SDK raises on it)."""
    return b"data: " + orjson.dumps(error_body(err)) + b"\n\n"


class SSEParser:
    """Incremental SSE parser: feed bytes, get the ``data`` payloads of complete events."""

    def __init__(self, max_event_bytes: int = 16 * 1024 * 1024) -> None:
        self._buffer = b""
        self._max = max_event_bytes

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        if len(self._buffer) > self._max and b"\n\n" not in self._buffer and b"\r\n\r\n" not in self._buffer:
            raise ValueError("upstream sent an oversized server-sent event")
        if b"\r" in self._buffer:
            self._buffer = self._buffer.replace(b"\r\n", b"\n")
        events = []
        while True:
            end = self._buffer.find(b"\n\n")
            if end < 0:
                break
            block, self._buffer = self._buffer[:end], self._buffer[end + 2:]
            data_lines = [line[5:].lstrip(b" ") if line.startswith(b"data:") else None
                          for line in block.split(b"\n")]
            payload = b"\n".join(d for d in data_lines if d is not None)
            if payload or any(d is not None for d in data_lines):
                events.append(payload)
        return events

    def flush(self) -> list[bytes]:
        """Whatever a stream that ended without a final blank line left behind."""
        rest, self._buffer = self._buffer, b""
        return self.feed(rest + b"\n\n") if rest.strip() else []


def parse_chunk(payload: bytes, chat: bool) -> Any:
    """One event's payload → a chunk object, ``DONE``, or an error ``ProxyError`` from the stream."""
    if payload.strip() == b"[DONE]":
        return DONE
    body = orjson.loads(payload)
    if isinstance(body, dict) and "error" in body and "choices" not in body:
        from .errors import APIError

        err = body["error"]
        message = err.get("message") if isinstance(err, dict) else str(err)
        return APIError(f"Upstream stream error: {message}", status_code=502)
    if not isinstance(body, dict):
        return OpenAIObject({"value": body})
    return ModelResponseStream(body) if chat else TextCompletionResponse(body)


class StreamAssembler:
    """Accumulates chunks into one complete ``chat.completion`` / ``text_completion`` object."""

    def __init__(self, chat: bool) -> None:
        self.chat = chat
        self.meta: dict[str, Any] = {}
        self.choices: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] | None = None
        self.chunk_count = 0

    def add(self, chunk: Any) -> None:
        if not isinstance(chunk, dict):
            return
        self.chunk_count += 1
        if not self.meta:
            self.meta = {k: chunk.get(k) for k in ("id", "created", "model", "system_fingerprint") if k in chunk}
        usage = dict.get(chunk, "usage")
        if usage:
            self.usage = dict(usage)
        for choice in dict.get(chunk, "choices") or ():
            index = choice.get("index", 0) if isinstance(choice, dict) else 0
            slot = self.choices.setdefault(index, {"content": [], "role": None, "finish_reason": None,
                                                   "tool_calls": {}, "function_call": None})
            if choice.get("finish_reason"):
                slot["finish_reason"] = choice["finish_reason"]
            if self.chat:
                delta = choice.get("delta") or {}
                if delta.get("role"):
                    slot["role"] = delta["role"]
                if delta.get("content"):
                    slot["content"].append(delta["content"])
                for call in delta.get("tool_calls") or ():
                    i = call.get("index", 0)
                    acc = slot["tool_calls"].setdefault(i, {"id": None, "type": "function",
                                                            "function": {"name": "", "arguments": ""}})
                    if call.get("id"):
                        acc["id"] = call["id"]
                    fn = call.get("function") or {}
                    if fn.get("name"):
                        acc["function"]["name"] += fn["name"]
                    if fn.get("arguments"):
                        acc["function"]["arguments"] += fn["arguments"]
            elif choice.get("text"):
                slot["content"].append(choice["text"])

    def text(self) -> str:
        return "".join("".join(s["content"]) for _, s in sorted(self.choices.items()))

    def build(self) -> ModelResponse | TextCompletionResponse:
        choices = []
        for index, slot in sorted(self.choices.items()):
            content = "".join(slot["content"])
            if self.chat:
                message: dict[str, Any] = {"role": slot["role"] or "assistant", "content": content}
                if slot["tool_calls"]:
                    message["tool_calls"] = [slot["tool_calls"][i] for i in sorted(slot["tool_calls"])]
                    if not content:
                        message["content"] = None
                choices.append({"index": index, "message": message, "finish_reason": slot["finish_reason"]})
            else:
                choices.append({"index": index, "text": content, "finish_reason": slot["finish_reason"]})
        body = {**self.meta, "object": "chat.completion" if self.chat else "text_completion", "choices": choices}
        if self.usage is not None:
            body["usage"] = self.usage
        return ModelResponse(body) if self.chat else TextCompletionResponse(body)
