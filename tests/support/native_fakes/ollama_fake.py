"""A fake of Ollama's native API: ``/api/chat``, ``/api/generate`` (NDJSON streams), ``/api/embed``.

Like Ollama: ``model`` is required (``{"error": "model is required"}``), an unknown model is a 404
``model '<name>' not found``; images are bare base64 strings; tool calls come back with
``arguments`` as an object; streams are one JSON object per line, the last with ``"done": true``
and the counts (``prompt_eval_count``, ``eval_count``). Ollama ignores unknown fields, so the fake
does too, but records them as violations (the adapter should never send OpenAI-only fields).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from .server import Exchange, NativeFake, Refuse, Reply

__all__ = ["OllamaFake"]

_CHAT = {"model", "messages", "stream", "options", "format", "tools", "keep_alive", "think"}
_GENERATE = {"model", "prompt", "suffix", "system", "images", "stream", "options", "format", "keep_alive", "raw",
             "think", "template", "context"}
_EMBED = {"model", "input", "truncate", "options", "keep_alive", "dimensions"}


def _refuse(status: int, message: str, violation: bool = True) -> Refuse:
    return Refuse(status, {"error": message}, violation=message if violation else None)


@dataclass
class Script:
    text: str = "Hello from the fake Ollama."
    tool_call: dict[str, Any] | None = None
    truncate: bool = False
    hang: bool = False


class OllamaFake(NativeFake):
    def __init__(self, models: tuple[str, ...] = ("llama3.2", "nomic-embed-text")) -> None:
        super().__init__(self.handle)
        self.models = models
        self.script = Script()

    def handle(self, ex: Exchange) -> Reply:
        if ex.method != "POST" or ex.path not in ("/api/chat", "/api/generate", "/api/embed"):
            raise _refuse(404, "404 page not found")
        body = ex.json
        if not isinstance(body, dict):
            raise _refuse(400, "invalid JSON")
        if not body.get("model"):
            raise _refuse(400, "model is required")
        allowed = {"/api/chat": _CHAT, "/api/generate": _GENERATE, "/api/embed": _EMBED}[ex.path]
        unknown = set(body) - allowed
        if unknown:
            self.violations.append(f"unknown fields for {ex.path}: {sorted(unknown)}")
        if body["model"] not in self.models:
            raise _refuse(404, f"model '{body['model']}' not found", violation=False)
        if ex.path == "/api/embed":
            inputs = body.get("input")
            inputs = [inputs] if isinstance(inputs, str) else inputs
            vectors = [[0.125, float(len(text))] for text in inputs]
            answer = {"model": body["model"], "embeddings": vectors, "total_duration": 1000,
                      "prompt_eval_count": sum(len(t.split()) for t in inputs)}
            return Reply(200, {"content-type": "application/json"}, json.dumps(answer).encode())
        if ex.path == "/api/chat":
            self._check_chat(body)
        elif not isinstance(body.get("prompt"), str):
            raise _refuse(400, "prompt must be a string")
        for image in body.get("images") or ():
            self._check_image(image)
        return self._stream(ex.path, body) if body.get("stream", True) else self._answer(ex.path, body)

    @staticmethod
    def _check_image(image: Any) -> None:
        try:
            base64.b64decode(image, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise _refuse(400, "illegal base64 data in images") from None

    def _check_chat(self, body: dict[str, Any]) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise _refuse(400, "messages must be a list")
        for message in messages:
            if message.get("role") not in ("system", "user", "assistant", "tool"):
                raise _refuse(400, f"invalid role {message.get('role')!r}")
            if not isinstance(message.get("content", ""), str):
                raise _refuse(400, "json: cannot unmarshal array into Go struct field Message.messages.content "
                              "of type string")
            for image in message.get("images") or ():
                self._check_image(image)
            for call in message.get("tool_calls") or ():
                if not isinstance((call.get("function") or {}).get("arguments"), dict):
                    raise _refuse(400, "tool call arguments must be an object")

    def _wants_tool(self, path: str, body: dict[str, Any]) -> bool:
        return (path == "/api/chat" and bool(body.get("tools")) and self.script.tool_call is not None
                and body["messages"][-1]["role"] != "tool")

    def _final(self, body: dict[str, Any], done_reason: str = "stop") -> dict[str, Any]:
        return {"model": body["model"], "created_at": "2026-01-01T00:00:00Z", "done": True, "done_reason": done_reason,
                "total_duration": 5000, "load_duration": 100, "prompt_eval_count": 17, "eval_count": 8}

    def _answer(self, path: str, body: dict[str, Any]) -> Reply:
        answer = self._final(body)
        if path == "/api/chat":
            message: dict[str, Any] = {"role": "assistant", "content": self.script.text}
            if self._wants_tool(path, body):
                message = {"role": "assistant", "content": "", "tool_calls": [{"function": self.script.tool_call}]}
            answer["message"] = message
        else:
            answer["response"] = self.script.text
        return Reply(200, {"content-type": "application/json"}, json.dumps(answer).encode())

    def _stream(self, path: str, body: dict[str, Any]) -> Reply:
        lines = []
        for n, word in enumerate(self.script.text.split(" ")):
            piece = word if n == 0 else " " + word
            event: dict[str, Any] = {"model": body["model"], "created_at": "2026-01-01T00:00:00Z", "done": False}
            if path == "/api/chat":
                event["message"] = {"role": "assistant", "content": piece}
            else:
                event["response"] = piece
            lines.append(json.dumps(event).encode() + b"\n")
            if self.script.hang:
                return Reply(200, {"content-type": "application/x-ndjson"}, pieces=lines, hang=True)
        if self._wants_tool(path, body):
            lines.append(json.dumps({"model": body["model"], "done": False, "message": {
                "role": "assistant", "content": "", "tool_calls": [{"function": self.script.tool_call}]}}).encode() + b"\n")
        if not self.script.truncate:
            final = self._final(body)
            if path == "/api/chat":
                final["message"] = {"role": "assistant", "content": ""}
            else:
                final["response"] = ""
            lines.append(json.dumps(final).encode() + b"\n")
        joined = b"".join(lines)
        return Reply(200, {"content-type": "application/x-ndjson"}, pieces=[joined[:25], joined[25:]])
