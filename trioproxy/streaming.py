"""Server-sent events: parsing the upstream's stream, framing ours, assembling the whole answer.

The upstream's bytes arrive in arbitrary pieces; :class:`SSEParser` cuts them into events. Each
``data:`` payload is parsed once into a chunk object (``ModelResponseStream`` for chat), which the
hooks may change; a chunk nobody changed is framed again from its JSON. ``[DONE]`` is never relayed
from upstream: the pipeline sends its own after the post-call phase, so a post-call rejection can
replace it with an error event; and only when the upstream sent one (a stream that ends without it
is incomplete: ``pipeline.StreamRelay``). An event that is an OpenAI error envelope is parsed into an
:class:`ErrorEvent`, which the pipeline maps to the error it names.

:class:`StreamAssembler` rebuilds the complete response from the chunks the client received (what
``async_post_call_success_hook`` and the logging callbacks see for a stream).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from .errors import ProxyError, ResponseTooLargeError, error_body
from .types import ModelResponse, ModelResponseStream, OpenAIObject, TextCompletionResponse

__all__ = [
    "DONE_FRAME",
    "MAX_EVENT_BYTES",
    "RESPONSES_FINISHED",
    "ErrorEvent",
    "SSEParser",
    "StreamAssembler",
    "error_frame",
    "frame",
    "is_error_envelope",
    "parse_chunk",
    "responses_error_envelope",
]

DONE_FRAME = b"data: [DONE]\n\n"
DONE = object()


def frame(chunk: Any) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def error_frame(err: ProxyError) -> bytes:
    """The terminal error event sent in place of ``[DONE]`` (the OpenAI SDK raises on it)."""
    return b"data: " + orjson.dumps(error_body(err)) + b"\n\n"


#: the largest single server-sent event accepted from an upstream (``SSEParser``'s default bound)
MAX_EVENT_BYTES = 16 * 1024 * 1024


class SSEParser:
    """Incremental SSE parser: feed bytes, get the ``data`` payloads of complete events.

    Memory is bounded: the bytes of an incomplete event are the only thing kept between calls,
    and an event that would grow past ``max_event_bytes`` raises :class:`ResponseTooLargeError`
    *before* the piece that would cross the bound is kept. An incomplete event is kept in a
    ``bytearray`` and only the new bytes are searched for the end of the event, so an event
    arriving in many pieces costs linear time, not quadratic. Line endings: ``\n`` and ``\r\n``
    (also split across two pieces).
    """

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._buffer: bytes | bytearray = b""
        self._max = max_event_bytes
        self._carry_cr = False       # the last piece ended with "\r": the next may start with "\n"

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete event."""
        return len(self._buffer) + self._carry_cr

    def feed(self, data: bytes) -> list[bytes]:
        if (not self._buffer and not self._carry_cr and data[-2:] == b"\n\n" and data[:5] == b"data:"
                and data.find(b"\n") == len(data) - 2 and b"\r" not in data):
            # the common piece: exactly one whole single-line event (what a paced stream's read
            # holds), a third of the general path's cost
            if len(data) - 2 > self._max:
                self._too_large(len(data) - 2)
            return [data[5:-2].lstrip(b" ")]
        if self._carry_cr:
            data = b"\r" + data
            self._carry_cr = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self._carry_cr = True
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        buffer = self._buffer
        if buffer:
            # an event boundary may straddle the kept bytes and the new ones
            joint = buffer[-1:] == b"\n" and data[:1] == b"\n"
            if not joint and b"\n\n" not in data:
                if len(buffer) + len(data) > self._max:
                    self._too_large(len(buffer) + len(data))
                if isinstance(buffer, bytes):
                    buffer = self._buffer = bytearray(buffer)
                buffer += data          # in place: amortised linear
                return []
            start = len(buffer) - 1
            buffer = bytes(buffer) + data
        else:
            start = 0
            buffer = data
        end = buffer.find(b"\n\n", start)
        if end < 0:
            if len(buffer) > self._max:
                self._too_large(len(buffer))
            self._buffer = buffer
            return []
        events = []
        pos = 0
        while end >= 0:
            if end - pos > self._max:
                self._too_large(end - pos)
            block = buffer[pos:end]
            pos = end + 2
            if block.startswith(b"data:") and b"\n" not in block:     # the common case: one data line
                events.append(block[5:].lstrip(b" "))
            else:
                data_lines = [line[5:].lstrip(b" ") if line.startswith(b"data:") else None
                              for line in block.split(b"\n")]
                if any(d is not None for d in data_lines):
                    events.append(b"\n".join(d for d in data_lines if d is not None))
            end = buffer.find(b"\n\n", pos)
        rest = buffer[pos:]
        if len(rest) > self._max:
            self._too_large(len(rest))
        self._buffer = rest
        return events

    def flush(self) -> list[bytes]:
        """Whatever a stream that ended without a final blank line left behind."""
        rest, self._buffer = bytes(self._buffer), b""
        self._carry_cr = False
        return self.feed(rest + b"\n\n") if rest.strip() else []

    def _too_large(self, size: int) -> None:
        self._buffer = b""
        raise ResponseTooLargeError(
            f"The upstream sent a single stream event larger than {self._max / 1024 / 1024:g} MiB "
            f"(at least {size / 1024 / 1024:.3g} MiB); the stream was stopped.",
            code="stream_event_too_large")


class ErrorEvent:
    """An upstream stream event that is an OpenAI error envelope (``{"error": …}`` without ``choices``).

    The pipeline maps it to the error it names (``upstream.common.envelope_error``): before the
    status line, to a real HTTP error status; later, to the stream's terminal error event.
    """

    __slots__ = ("body",)

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body


def is_error_envelope(body: Any) -> bool:
    """``{"error": {...}}`` (or ``{"error": "text"}``) with no answer beside it (``choices``, ``data``)."""
    return (isinstance(body, dict) and isinstance(body.get("error"), dict | str)
            and "choices" not in body and "data" not in body)


def parse_chunk(payload: bytes, chat: bool) -> Any:
    """One event's payload → a chunk object, ``DONE``, or an :class:`ErrorEvent`."""
    if payload.strip() == b"[DONE]":
        return DONE
    body = orjson.loads(payload)
    if not isinstance(body, dict):
        return OpenAIObject({"value": body})
    if "error" in body and is_error_envelope(body):
        return ErrorEvent(body)
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


# -- native Responses API streams (core/responses_native.py reads them; upstream/primed.py too) -------
#: the events that end a finished answer
RESPONSES_FINISHED = frozenset({"response.completed", "response.incomplete"})

def responses_error_envelope(event: Any) -> dict[str, Any] | None:
    """An ``error`` / ``response.failed`` event as ``{"error": {message, type, code, param}}``; None
    for any other event."""
    if not isinstance(event, Mapping):
        return None
    kind = event.get("type")
    if kind == "error":
        inner: Mapping[str, Any] = event.get("error") if isinstance(event.get("error"), Mapping) else event
    elif kind == "response.failed":
        response = event.get("response")
        inner = response.get("error") if isinstance(response, Mapping) and isinstance(response.get("error"), Mapping) \
            else {}
    else:
        return None
    code = inner.get("code")
    message = inner.get("message")
    kind = inner.get("type") if inner is not event else None
    return {"error": {"message": str(message) if message else "The upstream's response failed.",
                      "type": kind if isinstance(kind, str) else "server_error",
                      "code": code if isinstance(code, str | int) and not isinstance(code, bool) else None,
                      "param": inner.get("param") if isinstance(inner.get("param"), str) else None}}
