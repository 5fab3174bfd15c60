"""A strict fake of Anthropic's Messages API (``POST /v1/messages``).

Checks what the real API checks and answers the way it does (shapes from Anthropic's API
reference): ``x-api-key`` and ``anthropic-version`` headers; ``model``, ``max_tokens`` and a
non-empty ``messages`` required; only ``user``/``assistant`` roles, alternating; unknown top-level
fields refused ("Extra inputs are not permitted"); ``system`` a string or text blocks; every
``tool_result`` answering a ``tool_use`` of the assistant turn just before; image sources
``base64`` (with ``media_type``) or ``url``. Errors are ``{"type": "error", "error": {"type",
"message"}}``; streams are SSE ``event:``/``data:`` pairs ending with ``message_stop``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .server import Exchange, NativeFake, Refuse, Reply

__all__ = ["AnthropicFake"]

_TOP_LEVEL = {"model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
              "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier"}
_BLOCKS = {"text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking", "document"}


def _err(status: int, kind: str, message: str, violation: bool = True) -> Refuse:
    return Refuse(status, {"type": "error", "error": {"type": kind, "message": message}},
                  violation=f"{kind}: {message}" if violation else None)


@dataclass
class Script:
    text: str = "Hello from the fake Claude."
    tool_call: dict[str, Any] | None = None     # answer with this tool_use when tools are offered
    fail: tuple[int, str, str] | None = None    # (status, error type, message)
    stream_error: tuple[str, str] | None = None  # an ``error`` event mid-stream
    error_at_start: bool = False                 # stream_error right after message_start (overload)
    truncate: bool = False                       # end the stream without message_stop
    hang: bool = False                           # send the first events, then wait for the client
    usage: dict[str, int] = field(default_factory=lambda: {"input_tokens": 21, "output_tokens": 7,
                                                           "cache_creation_input_tokens": 0,
                                                           "cache_read_input_tokens": 5})


class AnthropicFake(NativeFake):
    def __init__(self, api_key: str) -> None:
        super().__init__(self.handle)
        self.api_key = api_key
        self.script = Script()

    # -- validation ----------------------------------------------------------------------------------

    def handle(self, ex: Exchange) -> Reply:
        if ex.method != "POST" or ex.path != "/v1/messages":
            raise _err(404, "not_found_error", f"Not found: {ex.method} {ex.path}")
        if ex.headers.get("x-api-key") != self.api_key:
            raise _err(401, "authentication_error", f"invalid x-api-key {ex.headers.get('x-api-key')}",
                       violation=False)
        if ex.headers.get("anthropic-version") != "2023-06-01":
            raise _err(400, "invalid_request_error", "anthropic-version: header is required")
        if not ex.headers.get("content-type", "").startswith("application/json"):
            raise _err(400, "invalid_request_error", "content-type must be application/json")
        body = ex.json
        if not isinstance(body, dict):
            raise _err(400, "invalid_request_error", "body must be a JSON object")
        extra = set(body) - _TOP_LEVEL
        if extra:
            raise _err(400, "invalid_request_error", f"{sorted(extra)[0]}: Extra inputs are not permitted")
        if not isinstance(body.get("model"), str):
            raise _err(400, "invalid_request_error", "model: Field required")
        if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
            raise _err(400, "invalid_request_error", "max_tokens: Field required")
        self._check_system(body.get("system"))
        self._check_messages(body.get("messages"))
        self._check_tools(body)
        if self.script.fail is not None:
            status, kind, message = self.script.fail
            raise _err(status, kind, message, violation=False)
        return self._stream(body) if body.get("stream") else self._answer(body)

    def _check_system(self, system: Any) -> None:
        if system is None or isinstance(system, str):
            return
        if not isinstance(system, list) or not all(isinstance(b, dict) and b.get("type") == "text"
                                                   and isinstance(b.get("text"), str) for b in system):
            raise _err(400, "invalid_request_error", "system: must be a string or a list of text blocks")

    def _check_messages(self, messages: Any) -> None:
        if not isinstance(messages, list) or not messages:
            raise _err(400, "invalid_request_error", "messages: at least one message is required")
        previous_role = None
        previous_tool_ids: set[str] = set()
        for i, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ("user", "assistant"):
                raise _err(400, "invalid_request_error", f"messages.{i}.role: Input should be 'user' or 'assistant'")
            if role == previous_role:
                raise _err(400, "invalid_request_error", f"messages.{i}: roles must alternate")
            content = message.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            if not isinstance(blocks, list) or not blocks:
                raise _err(400, "invalid_request_error", f"messages.{i}.content: must not be empty")
            tool_ids = set()
            for block in blocks:
                kind = block.get("type") if isinstance(block, dict) else None
                if kind not in _BLOCKS:
                    raise _err(400, "invalid_request_error", f"messages.{i}.content: unknown block type {kind!r}")
                if kind == "text" and not isinstance(block.get("text"), str):
                    raise _err(400, "invalid_request_error", f"messages.{i}: text blocks need text")
                if kind == "image":
                    source = block.get("source") or {}
                    if source.get("type") == "base64":
                        if not source.get("media_type") or not source.get("data"):
                            raise _err(400, "invalid_request_error", "image source needs media_type and data")
                    elif source.get("type") != "url" or not source.get("url"):
                        raise _err(400, "invalid_request_error", "image source must be base64 or url")
                if kind == "tool_use":
                    if role != "assistant" or not block.get("id") or not isinstance(block.get("input"), dict):
                        raise _err(400, "invalid_request_error", f"messages.{i}: malformed tool_use")
                    tool_ids.add(block["id"])
                if kind == "tool_result":
                    if role != "user" or block.get("tool_use_id") not in previous_tool_ids:
                        raise _err(400, "invalid_request_error",
                                   f"messages.{i}: tool_result block(s) provided when previous message does not "
                                   "have the matching tool_use")
            previous_role, previous_tool_ids = role, tool_ids

    def _check_tools(self, body: dict[str, Any]) -> None:
        for tool in body.get("tools") or ():
            schema = tool.get("input_schema") if isinstance(tool, dict) else None
            if not isinstance(tool.get("name"), str) or not isinstance(schema, dict) or schema.get("type") != "object":
                raise _err(400, "invalid_request_error", "tools: each tool needs a name and an object input_schema")
        choice = body.get("tool_choice")
        if choice is not None and choice.get("type") not in ("auto", "any", "tool", "none"):
            raise _err(400, "invalid_request_error", "tool_choice: invalid type")

    # -- answers ---------------------------------------------------------------------------------------

    def _wants_tool(self, body: dict[str, Any]) -> bool:
        if not body.get("tools") or self.script.tool_call is None:
            return False
        last = body["messages"][-1]["content"]
        return not (isinstance(last, list) and any(b.get("type") == "tool_result" for b in last))

    def _answer(self, body: dict[str, Any]) -> Reply:
        if self._wants_tool(body):
            content = [{"type": "text", "text": "Let me check."},
                       {"type": "tool_use", "id": "toolu_01", **self.script.tool_call}]
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": self.script.text}]
            stop = "end_turn"
        message = {"id": "msg_fake01", "type": "message", "role": "assistant", "model": body["model"],
                   "content": content, "stop_reason": stop, "stop_sequence": None, "usage": self.script.usage}
        return Reply(200, {"content-type": "application/json", "request-id": "req_fake"}, json.dumps(message).encode())

    def _stream(self, body: dict[str, Any]) -> Reply:
        def event(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

        usage = dict(self.script.usage)
        start_usage = {**usage, "output_tokens": 1}
        pieces = [event("message_start", {"type": "message_start", "message": {
            "id": "msg_fake02", "type": "message", "role": "assistant", "model": body["model"], "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": start_usage}}),
            event("ping", {"type": "ping"})]
        if self.script.stream_error is not None and self.script.error_at_start:
            kind, message = self.script.stream_error
            pieces.append(event("error", {"type": "error", "error": {"type": kind, "message": message}}))
            return Reply(200, {"content-type": "text/event-stream"}, pieces=pieces)
        if self.script.hang:
            pieces.append(event("content_block_start", {"type": "content_block_start", "index": 0,
                                                        "content_block": {"type": "text", "text": ""}}))
            pieces.append(event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                        "delta": {"type": "text_delta", "text": "Hel"}}))
            return Reply(200, {"content-type": "text/event-stream"}, pieces=pieces, hang=True)
        pieces.append(event("content_block_start", {"type": "content_block_start", "index": 0,
                                                    "content_block": {"type": "text", "text": ""}}))
        words = self.script.text.split(" ")
        for n, word in enumerate(words):
            pieces.append(event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
                "type": "text_delta", "text": word if n == 0 else " " + word}}))
        pieces.append(event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        stop = "end_turn"
        if self._wants_tool(body):
            call = self.script.tool_call or {}
            pieces.append(event("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
                "type": "tool_use", "id": "toolu_02", "name": call["name"], "input": {}}}))
            arguments = json.dumps(call["input"])
            half = len(arguments) // 2
            for part in (arguments[:half], arguments[half:]):
                pieces.append(event("content_block_delta", {"type": "content_block_delta", "index": 1,
                                                            "delta": {"type": "input_json_delta", "partial_json": part}}))
            pieces.append(event("content_block_stop", {"type": "content_block_stop", "index": 1}))
            stop = "tool_use"
        if self.script.stream_error is not None:
            kind, message = self.script.stream_error
            pieces.append(event("error", {"type": "error", "error": {"type": kind, "message": message}}))
            return Reply(200, {"content-type": "text/event-stream"}, pieces=pieces)
        pieces.append(event("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop,
                                                                                 "stop_sequence": None},
                                              "usage": {"output_tokens": usage["output_tokens"]}}))
        if not self.script.truncate:
            pieces.append(event("message_stop", {"type": "message_stop"}))
        return Reply(200, {"content-type": "text/event-stream"}, pieces=pieces)
