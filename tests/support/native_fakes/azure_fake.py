"""A strict fake of Azure OpenAI, and (``mode="openai"``) of an OpenAI-compatible server under a path.

Azure: ``/openai/deployments/{deployment}/{chat/completions|completions|embeddings}`` with a
required ``api-version`` query parameter, or the v1 API ``/openai/v1/{endpoint}``; auth is
``api-key: <key>`` or ``Authorization: Bearer <Entra ID token>``. Like Azure it answers with
``prompt_filter_results`` and ``content_filter_results``, starts streams with a chunk whose
``choices`` are empty, ends them with ``data: [DONE]``, and refuses a prompt that trips the content
filter with a 400 ``content_filter`` error. OpenAI mode: ``{prefix}/{endpoint}`` with a bearer key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .server import Exchange, NativeFake, Refuse, Reply

__all__ = ["AzureFake"]

_KNOWN_CHAT = {"model", "messages", "stream", "stream_options", "temperature", "top_p", "n", "stop", "max_tokens",
               "max_completion_tokens", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs",
               "top_logprobs", "user", "response_format", "seed", "tools", "tool_choice", "parallel_tool_calls",
               "functions", "function_call", "reasoning_effort", "top_k"}


def _refuse(status: int, message: str, code: str | None = None, violation: bool = True, **extra: Any) -> Refuse:
    return Refuse(status, {"error": {"message": message, "type": "invalid_request_error", "param": None,
                                     "code": code, **extra}}, violation=message if violation else None)


@dataclass
class Script:
    text: str = "Hello from the fake Azure."
    model: str = "gpt-4o-2024-11-20"
    content_filter: bool = False
    truncate: bool = False
    hang: bool = False
    tool_call: dict[str, Any] | None = None


class AzureFake(NativeFake):
    def __init__(self, api_key: str, *, ad_token: str | None = None, mode: str = "azure", prefix: str = "/v1") -> None:
        super().__init__(self.handle)
        self.api_key = api_key
        self.ad_token = ad_token
        self.mode = mode
        self.prefix = prefix
        self.script = Script()

    def handle(self, ex: Exchange) -> Reply:
        if self.mode == "azure":
            match = re.fullmatch(r"/openai/deployments/([^/]+)/(chat/completions|completions|embeddings)", ex.path)
            v1 = re.fullmatch(r"/openai/v1/(chat/completions|completions|embeddings)", ex.path)
            if match is None and v1 is None:
                raise _refuse(404, "Resource not found", "404")
            if match is not None and not ex.query.get("api-version"):
                raise _refuse(404, "Resource not found (missing api-version)", "404")
            endpoint = match.group(2) if match else v1.group(1)   # type: ignore[union-attr]
            token = ex.headers.get("authorization", "").removeprefix("Bearer ")
            if ex.headers.get("api-key") != self.api_key and not (self.ad_token and token == self.ad_token):
                raise _refuse(401, f"Access denied due to invalid subscription key {ex.headers.get('api-key')}. "
                              "Make sure to provide a valid key for an active subscription.", "401", violation=False)
        else:
            match = re.fullmatch(rf"{re.escape(self.prefix)}/(chat/completions|completions|embeddings)", ex.path)
            if match is None:
                raise _refuse(404, f"Not found: {ex.path}", "not_found")
            endpoint = match.group(1)
            if ex.headers.get("authorization") != f"Bearer {self.api_key}":
                raise _refuse(401, f"Incorrect API key provided: {ex.headers.get('authorization')}",
                              "invalid_api_key", violation=False)
        body = ex.json
        if not isinstance(body, dict):
            raise _refuse(400, "body must be JSON")
        if endpoint == "embeddings":
            return self._embed(body)
        unknown = set(body) - _KNOWN_CHAT - {"prompt"}
        if unknown:
            raise _refuse(400, f"Unrecognized request argument supplied: {sorted(unknown)[0]}")
        if self.script.content_filter:
            raise _refuse(400, "The response was filtered due to the prompt triggering Azure OpenAI's content "
                          "management policy.", "content_filter", violation=False,
                          innererror={"code": "ResponsibleAIPolicyViolation",
                                      "content_filter_result": {"hate": {"filtered": True, "severity": "high"}}})
        if body.get("stream"):
            return self._stream(body)
        message: dict[str, Any] = {"role": "assistant", "content": self.script.text}
        finish = "stop"
        if body.get("tools") and self.script.tool_call and body["messages"][-1]["role"] != "tool":
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_azure1", "type": "function", "function": self.script.tool_call}]}
            finish = "tool_calls"
        answer = {"id": "chatcmpl-az1", "object": "chat.completion", "created": 1, "model": self.script.model,
                  "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
                  "choices": [{"index": 0, "message": message, "finish_reason": finish,
                               "content_filter_results": {}}],
                  "usage": {"prompt_tokens": 11, "completion_tokens": 6, "total_tokens": 17}}
        return Reply(200, {"content-type": "application/json"}, json.dumps(answer).encode())

    def _stream(self, body: dict[str, Any]) -> Reply:
        def sse(data: dict[str, Any]) -> bytes:
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        base = {"id": "chatcmpl-az2", "object": "chat.completion.chunk", "created": 1, "model": self.script.model}
        pieces = [sse({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                       "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}),
                  sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                            "finish_reason": None}]})]
        for n, word in enumerate(self.script.text.split(" ")):
            pieces.append(sse({**base, "choices": [{"index": 0, "delta": {"content": word if n == 0 else " " + word},
                                                    "finish_reason": None, "content_filter_results": {}}]}))
            if self.script.hang:
                return Reply(200, {"content-type": "text/event-stream"}, pieces=pieces, hang=True)
        pieces.append(sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            pieces.append(sse({**base, "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 6,
                                                                "total_tokens": 17}}))
        if not self.script.truncate:
            pieces.append(b"data: [DONE]\n\n")
        return Reply(200, {"content-type": "text/event-stream"}, pieces=pieces)

    def _embed(self, body: dict[str, Any]) -> Reply:
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if set(body) - {"model", "input", "encoding_format", "dimensions", "user"}:
            raise _refuse(400, "Unrecognized request argument supplied")
        data = [{"object": "embedding", "index": i, "embedding": [0.5, float(len(t))]} for i, t in enumerate(inputs)]
        answer = {"object": "list", "data": data, "model": "text-embedding-3-small",
                  "usage": {"prompt_tokens": 4, "total_tokens": 4}}
        return Reply(200, {"content-type": "application/json"}, json.dumps(answer).encode())
