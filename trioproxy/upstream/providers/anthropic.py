"""Anthropic's Messages API (``anthropic/<model>``).

Request: ``POST {api_base}/v1/messages`` with ``x-api-key`` and ``anthropic-version: 2023-06-01``
(``api_base`` is the host root, default ``https://api.anthropic.com``; ``ANTHROPIC_API_KEY`` and
``ANTHROPIC_API_BASE`` / ``ANTHROPIC_BASE_URL`` are the fallbacks, as in LiteLLM).

Translation, both ways:

* ``system`` / ``developer`` messages are lifted into ``system`` (text blocks, ``cache_control``
  kept); consecutive messages of one role are merged (Anthropic wants turns to alternate) and every
  ``tool`` message becomes a ``tool_result`` block of the following user turn;
* ``max_tokens`` (or ``max_completion_tokens``) is required by Anthropic: when absent it defaults to
  the model's output limit from the price table, else 4096 (LiteLLM's rule);
* images: data URLs → ``base64`` sources, http(s) URLs → ``url`` sources; tools → ``input_schema``;
  ``tool_choice`` ``auto``/``required``/``none``/named → ``auto``/``any``/``none``/``tool``;
  ``parallel_tool_calls: false`` → ``disable_parallel_tool_use``; ``user`` → ``metadata.user_id``;
  ``reasoning_effort`` → ``thinking`` with LiteLLM's budgets; ``stop`` → ``stop_sequences``;
* answer: ``text`` blocks → ``content``, ``tool_use`` → ``tool_calls``, ``thinking`` →
  ``reasoning_content``; ``stop_reason`` → ``finish_reason``; usage with the prompt-cache fields
  (``prompt_tokens`` includes cache reads and writes, as LiteLLM reports them);
* stream events ``message_start``, ``content_block_start/delta/stop``, ``message_delta`` (usage),
  ``ping``, ``error``, and ``message_stop`` — the terminator;
* errors: ``overloaded_error`` → 529 ``ServiceUnavailableError`` (retried by the router),
  ``rate_limit_error`` → 429, a too-long prompt → ``context_length_exceeded``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ...errors import APIConnectionError, BadRequestError, ProxyError
from ...streaming import SSEParser
from .adapter import Adapter, Call, NativeAnswer, NativeRequest, StreamDecoder
from .catalog import DEFAULT_MAX_TOKENS, max_output_tokens
from .errormap import error_for, json_or_none, text_message
from .settings import SettingsReader
from .shapes import (
    chat_completion,
    chunk,
    content_parts,
    image_url_of,
    map_finish_reason,
    parse_data_url,
    text_of,
    usage,
    usage_chunk,
)

__all__ = ["ANTHROPIC_VERSION", "AnthropicAdapter", "AnthropicSettings", "AnthropicStreamDecoder"]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_API_BASE = "https://api.anthropic.com"
#: LiteLLM's ``reasoning_effort`` → thinking budget for Claude
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}

_SUPPORTED = frozenset({
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature",
    "top_p", "stop", "tools", "tool_choice", "parallel_tool_calls", "user", "reasoning_effort", "n",
})
_NATIVE = frozenset({"top_k", "thinking", "anthropic_beta"})


@dataclass(frozen=True, slots=True)
class AnthropicSettings:
    api_base: str
    api_key: str
    model: str


def messages_url(api_base: str) -> str:
    base = api_base.rstrip("/")
    if base.endswith("/v1/messages"):
        return base
    if base.endswith("/v1"):
        return f"{base}/messages"
    return f"{base}/v1/messages"


# -------------------------------------------------------------------------------------------------
# request
# -------------------------------------------------------------------------------------------------


def _image_block(part: Mapping[str, Any]) -> dict[str, Any]:
    url = image_url_of(part)
    data = parse_data_url(url)
    if data is not None:
        source: dict[str, Any] = {"type": "base64", "media_type": data[0], "data": data[1]}
    elif url.startswith(("http://", "https://")):
        source = {"type": "url", "url": url}
    else:
        raise BadRequestError("An image_url must be a data: URL or an http(s) URL.", param="messages")
    return {"type": "image", "source": source}


def _blocks(content: Any, role: str) -> list[dict[str, Any]]:
    out = []
    for part in content_parts(content):
        kind = part.get("type")
        if kind == "text":
            block: dict[str, Any] = {"type": "text", "text": str(part.get("text", ""))}
        elif kind == "image_url" and role == "user":
            block = _image_block(part)
        else:
            raise BadRequestError(f"anthropic does not take {kind!r} content parts in {role} messages.",
                                  param="messages")
        if "cache_control" in part:
            block["cache_control"] = part["cache_control"]
        out.append(block)
    return out


def _tool_use_blocks(tool_calls: Any) -> list[dict[str, Any]]:
    out = []
    for call in tool_calls or ():
        fn = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise BadRequestError("Each tool call needs a function with a name.", param="messages")
        raw = fn.get("arguments") or "{}"
        try:
            arguments = orjson.loads(raw) if isinstance(raw, str) else raw
        except orjson.JSONDecodeError:
            raise BadRequestError(f"The arguments of tool call {call.get('id')!r} are not valid JSON.",
                                  param="messages") from None
        out.append({"type": "tool_use", "id": str(call.get("id") or ""), "name": fn["name"],
                    "input": arguments if isinstance(arguments, dict) else {"value": arguments}})
    return out


def translate_messages(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """OpenAI messages → (Anthropic ``system`` blocks, alternating ``messages``)."""
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("'messages' must be a non-empty list.", param="messages")
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []

    def append(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            # tool results must lead their user turn: keep them ahead of any text merged into it
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": list(blocks)})

    for message in messages:
        if not isinstance(message, Mapping):
            raise BadRequestError("Each message must be an object.", param="messages")
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.extend(_blocks(content, "system"))
        elif role == "user":
            append("user", _blocks(content, "user"))
        elif role == "assistant":
            blocks = [b for b in _blocks(content, "assistant") if b.get("text") != ""]
            blocks += _tool_use_blocks(message.get("tool_calls"))
            if message.get("function_call"):
                blocks += _tool_use_blocks([{"id": "call_function", "function": message["function_call"]}])
            append("assistant", blocks)
        elif role in ("tool", "function"):
            tool_use_id = message.get("tool_call_id") or ("call_function" if role == "function" else None)
            if not isinstance(tool_use_id, str):
                raise BadRequestError("A tool message needs 'tool_call_id'.", param="messages")
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id}
            if isinstance(content, list):
                result["content"] = _blocks(content, "user")
            else:
                result["content"] = text_of(content)
            append("user", [result])
        else:
            raise BadRequestError(f"Unknown message role {role!r}.", param="messages")
    if not turns:
        raise BadRequestError("anthropic needs at least one user or assistant message besides the system "
                              "prompt.", param="messages")
    return system, turns


def _tools(tools: Any) -> list[dict[str, Any]]:
    out = []
    for tool in tools or ():
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise BadRequestError("Each tool needs type 'function' and a function name.", param="tools")
        entry: dict[str, Any] = {"name": fn["name"],
                                 "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
        if fn.get("description"):
            entry["description"] = fn["description"]
        if "cache_control" in tool:
            entry["cache_control"] = tool["cache_control"]
        out.append(entry)
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice is None:
        out: dict[str, Any] | None = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        out = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise BadRequestError(f"Invalid tool_choice {choice!r}.", param="tool_choice")
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def translate_request(call: Call) -> dict[str, Any]:
    body = call.body
    if body.get("n", 1) != 1:
        raise BadRequestError("anthropic returns one choice per request: 'n' must be 1.", param="n")
    system, turns = translate_messages(body.get("messages"))
    model = call.settings.model
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if max_tokens is None:
        max_tokens = max_output_tokens(f"anthropic/{model}") or DEFAULT_MAX_TOKENS
    out: dict[str, Any] = {"model": model, "messages": turns, "max_tokens": max_tokens}
    if system:
        out["system"] = system
    for name in ("temperature", "top_p", "top_k"):
        if name in body:
            out[name] = body[name]
    stop = body.get("stop")
    if stop is not None:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("tools"):
        out["tools"] = _tools(body["tools"])
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    if "thinking" in body:
        out["thinking"] = body["thinking"]
    elif body.get("reasoning_effort") in THINKING_BUDGETS:
        out["thinking"] = {"type": "enabled", "budget_tokens": THINKING_BUDGETS[body["reasoning_effort"]]}
    if call.stream:
        out["stream"] = True
    return out


# -------------------------------------------------------------------------------------------------
# answers
# -------------------------------------------------------------------------------------------------


def anthropic_usage(raw: Any) -> dict[str, Any]:
    raw = raw if isinstance(raw, Mapping) else {}
    read = int(raw.get("cache_read_input_tokens") or 0)
    created = int(raw.get("cache_creation_input_tokens") or 0)
    prompt = int(raw.get("input_tokens") or 0) + read + created
    return usage(prompt, int(raw.get("output_tokens") or 0),
                 cached=read if "cache_read_input_tokens" in raw else None,
                 cache_creation=created if "cache_creation_input_tokens" in raw else None)


def translate_response(call: Call, native: Mapping[str, Any]) -> dict[str, Any]:
    text: list[str] = []
    thinking: list[str] = []
    tool_calls = []
    for block in native.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text", ""))
        elif kind == "tool_use":
            tool_calls.append({"id": block.get("id"), "type": "function",
                               "function": {"name": block.get("name"),
                                            "arguments": orjson.dumps(block.get("input", {})).decode()}})
        elif kind == "thinking":
            thinking.append(block.get("thinking", ""))
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if thinking:
        message["reasoning_content"] = "".join(thinking)
    return chat_completion(id=str(native.get("id") or call.call_id), created=call.created,
                           model=str(native.get("model") or call.settings.model), message=message,
                           finish_reason=map_finish_reason(native.get("stop_reason")) or "stop",
                           usage_=anthropic_usage(native.get("usage")))


def anthropic_error(status: int, body: bytes) -> ProxyError:
    parsed = json_or_none(body)
    err = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(err, Mapping):
        kind = str(err.get("type") or "") or None
        message = str(err.get("message") or "") or f"upstream answered HTTP {status}"
    else:
        kind, message = None, text_message(body, status)
    return error_for(status, message, kind=kind, rate_limited=kind == "rate_limit_error",
                     overloaded=kind == "overloaded_error" or status == 529,
                     content_filter="content filtering policy" in message)


class AnthropicStreamDecoder(StreamDecoder):
    def __init__(self, call: Call) -> None:
        self._call = call
        self._parser = SSEParser()
        self._id = call.call_id
        self._model = call.settings.model
        self._usage: dict[str, Any] = {}
        self._tool_index: dict[int, int] = {}     # content block index → tool_calls index

    def _chunk(self, delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
        return chunk(id=self._id, created=self._call.created, model=self._model, delta=delta, finish_reason=finish)

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for payload in self._parser.feed(data):
            if self.finished:
                continue
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise APIConnectionError("anthropic sent a stream event that is not JSON.") from None
            if isinstance(event, dict):
                self._event(event, out)
        return out

    def _event(self, event: dict[str, Any], out: list[dict[str, Any]]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self._id = str(message.get("id") or self._id)
            self._model = str(message.get("model") or self._model)
            self._usage.update(message.get("usage") or {})
            out.append(self._chunk({"role": "assistant", "content": ""}))
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self._tool_index.setdefault(int(event.get("index", 0)), len(self._tool_index))
                out.append(self._chunk({"tool_calls": [{"index": index, "id": block.get("id"), "type": "function",
                                                        "function": {"name": block.get("name"), "arguments": ""}}]}))
            elif block.get("type") == "text" and block.get("text"):
                out.append(self._chunk({"content": block["text"]}))
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            dkind = delta.get("type")
            if dkind == "text_delta":
                out.append(self._chunk({"content": delta.get("text", "")}))
            elif dkind == "input_json_delta":
                index = self._tool_index.get(int(event.get("index", 0)), 0)
                out.append(self._chunk({"tool_calls": [{"index": index,
                                                        "function": {"arguments": delta.get("partial_json", "")}}]}))
            elif dkind == "thinking_delta":
                out.append(self._chunk({"reasoning_content": delta.get("thinking", "")}))
        elif kind == "message_delta":
            self._usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            reason = (event.get("delta") or {}).get("stop_reason")
            if reason:
                out.append(self._chunk(finish=map_finish_reason(reason)))
        elif kind == "message_stop":
            self.finished = True
        elif kind == "error":
            raise anthropic_error(_status_of(event), orjson.dumps(event))

    def close(self) -> list[dict[str, Any]]:
        super().close()
        return [usage_chunk(id=self._id, created=self._call.created, model=self._model,
                            usage_=anthropic_usage(self._usage))]

    def interrupted_message(self) -> str:
        return "anthropic's stream ended without message_stop: the answer is incomplete."


def _status_of(event: Mapping[str, Any]) -> int:
    kind = (event.get("error") or {}).get("type")
    return {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500,
            "invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
            "not_found_error": 404, "request_too_large": 413}.get(kind, 502)


class AnthropicAdapter(Adapter):
    name = "anthropic"
    settings_names = frozenset({"api_base", "api_key"})

    def configure(self, prefix: str, model: str, params: Mapping[str, Any], environ: Mapping[str, str]) -> AnthropicSettings:
        read = SettingsReader(prefix, model, params, environ)
        api_key = read.required("api_key", ("ANTHROPIC_API_KEY",))
        api_base = read.text("api_base", ("ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"), DEFAULT_API_BASE)
        read.check()
        return AnthropicSettings(str(api_base).rstrip("/"), api_key, model)

    def supported_params(self, endpoint: str, settings: Any) -> frozenset[str]:
        return _SUPPORTED

    def native_params(self, endpoint: str, settings: Any) -> frozenset[str]:
        return _NATIVE

    def secrets(self, settings: AnthropicSettings) -> list[str]:
        return [settings.api_key]

    def build(self, call: Call) -> list[NativeRequest]:
        settings: AnthropicSettings = call.settings
        headers = {"content-type": "application/json", "x-api-key": settings.api_key,
                   "anthropic-version": ANTHROPIC_VERSION,
                   "accept": "text/event-stream" if call.stream else "application/json"}
        beta = call.body.get("anthropic_beta")
        if beta:
            headers["anthropic-beta"] = beta if isinstance(beta, str) else ",".join(map(str, beta))
        return [NativeRequest("POST", messages_url(settings.api_base), headers,
                              orjson.dumps(translate_request(call)))]

    def parse(self, call: Call, answers: list[NativeAnswer]) -> dict[str, Any]:
        native = json_or_none(answers[0].body)
        if not isinstance(native, dict):
            raise APIConnectionError("anthropic's answer is not a JSON object.")
        return translate_response(call, native)

    def decoder(self, call: Call) -> StreamDecoder:
        return AnthropicStreamDecoder(call)

    def error(self, call: Call | None, status: int, body: bytes,
              headers: Mapping[str, str] | None = None) -> ProxyError:
        return anthropic_error(status, body)
