"""Ollama's native API: ``ollama_chat/<model>`` → ``/api/chat``, ``ollama/<model>`` → ``/api/generate``.

* ``api_base`` is the server root (default ``http://localhost:11434``, or ``OLLAMA_API_BASE``); an
  ``api_key`` (or ``OLLAMA_API_KEY``) is sent as a bearer token, for servers behind an auth proxy.
* ``/api/chat``: messages keep their roles; images (data URLs) → ``images`` (base64; Ollama cannot
  fetch URLs); tools are sent as given (Ollama takes OpenAI's tool shape); ``tool_calls`` come back
  with ``arguments`` as an object and get a made-up ``call_…`` id; ``tool`` messages carry
  ``tool_name`` (looked up from the call they answer).
* ``/api/generate`` (``ollama/``): the prompt (``/v1/completions``), or chat messages flattened as
  LiteLLM's ``ollama_pt`` does (system messages → ``system``; turns → ``### User:`` /
  ``### Assistant:`` sections); tools are not available there.
* Sampling parameters go into ``options`` (``max_tokens`` → ``num_predict``; ``stop``, ``seed``,
  ``temperature``, ``top_p``, penalties); Ollama's own ``options`` keys (``num_ctx``, ``top_k``…),
  ``keep_alive``, ``format`` and ``think`` pass through; ``response_format`` → ``format``.
* Streams are NDJSON; the line with ``"done": true`` is the terminator and carries the usage
  (``prompt_eval_count`` → prompt tokens, ``eval_count`` → completion tokens, as in LiteLLM).
* Embeddings: ``/api/embed`` with every input at once; usage is Ollama's ``prompt_eval_count``.
* Errors are ``{"error": "…"}`` with an HTTP status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ...errors import APIConnectionError, BadRequestError, ProxyError
from .adapter import Adapter, Call, NativeAnswer, NativeRequest, StreamDecoder
from .errormap import error_for, json_or_none, text_message
from .settings import SettingsReader
from .shapes import (
    chat_completion,
    chunk,
    content_parts,
    embedding_inputs,
    embedding_list,
    image_url_of,
    map_finish_reason,
    new_tool_call_id,
    parse_data_url,
    text_of,
    usage,
    usage_chunk,
)

__all__ = ["OllamaAdapter", "OllamaSettings", "OllamaStreamDecoder"]

DEFAULT_API_BASE = "http://localhost:11434"
_OPTIONS = {"temperature": "temperature", "top_p": "top_p", "seed": "seed", "frequency_penalty": "frequency_penalty",
            "presence_penalty": "presence_penalty", "max_tokens": "num_predict",
            "max_completion_tokens": "num_predict", "stop": "stop"}
_OLLAMA_OPTIONS = frozenset({"num_ctx", "num_predict", "top_k", "min_p", "repeat_penalty", "repeat_last_n",
                             "mirostat", "mirostat_eta", "mirostat_tau", "tfs_z", "num_gpu", "num_thread",
                             "typical_p", "num_keep"})
CHAT_SUPPORTED = frozenset({"model", "messages", "stream", "stream_options", "temperature", "top_p", "seed",
                            "frequency_penalty", "presence_penalty", "max_tokens", "max_completion_tokens", "stop",
                            "response_format", "tools", "tool_choice", "n"})
GENERATE_SUPPORTED = CHAT_SUPPORTED - {"tools", "tool_choice"} | {"prompt", "suffix"}
NATIVE = _OLLAMA_OPTIONS | {"keep_alive", "format", "think", "options", "raw"}
EMBED_SUPPORTED = frozenset({"model", "input", "encoding_format", "dimensions"})
EMBED_NATIVE = frozenset({"keep_alive", "truncate", "options"})


@dataclass(frozen=True, slots=True)
class OllamaSettings:
    api_base: str
    api_key: str | None
    model: str
    chat: bool          # ollama_chat/ (→ /api/chat) or ollama/ (→ /api/generate)


def _options(body: Mapping[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = dict(body.get("options") or {})
    for name, native in _OPTIONS.items():
        if name in body:
            value = body[name]
            options[native] = [value] if name == "stop" and isinstance(value, str) else value
    for name in _OLLAMA_OPTIONS:
        if name in body:
            options[name] = body[name]
    return options


def _common(body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"model": body["model"], "stream": stream}
    options = _options(body)
    if options:
        out["options"] = options
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping):
        if response_format.get("type") == "json_object":
            out["format"] = "json"
        elif response_format.get("type") == "json_schema":
            out["format"] = (response_format.get("json_schema") or {}).get("schema") or "json"
    for name in ("keep_alive", "format", "think", "raw"):
        if name in body:
            out[name] = body[name]
    return out


def _split(content: Any) -> tuple[str, list[str]]:
    """Text and base64 images of a message's content."""
    text, images = [], []
    for part in content_parts(content):
        if part.get("type") == "text":
            text.append(str(part.get("text", "")))
        elif part.get("type") == "image_url":
            data = parse_data_url(image_url_of(part))
            if data is None:
                raise BadRequestError("ollama takes images as data: URLs (base64); it cannot fetch image URLs.",
                                      param="messages")
            images.append(data[1])
        else:
            raise BadRequestError(f"ollama does not take {part.get('type')!r} content parts.", param="messages")
    return "".join(text), images


def chat_request(body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("'messages' must be a non-empty list.", param="messages")
    names: dict[str, str] = {}
    out_messages = []
    for message in messages:
        if not isinstance(message, Mapping):
            raise BadRequestError("Each message must be an object.", param="messages")
        role = message.get("role")
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant", "tool"):
            raise BadRequestError(f"Unknown message role {role!r}.", param="messages")
        text, images = _split(message.get("content"))
        entry: dict[str, Any] = {"role": role, "content": text}
        if images:
            entry["images"] = images
        if role == "assistant" and message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                fn = call.get("function") or {}
                raw = fn.get("arguments") or "{}"
                try:
                    arguments = orjson.loads(raw) if isinstance(raw, str) else raw
                except orjson.JSONDecodeError:
                    raise BadRequestError(f"The arguments of tool call {call.get('id')!r} are not valid JSON.",
                                          param="messages") from None
                names[str(call.get("id"))] = str(fn.get("name"))
                calls.append({"function": {"name": fn.get("name"), "arguments": arguments}})
            entry["tool_calls"] = calls
        if role == "tool":
            name = names.get(str(message.get("tool_call_id")))
            if name:
                entry["tool_name"] = name
        out_messages.append(entry)
    out = _common(body, stream)
    out["messages"] = out_messages
    if body.get("tools") and body.get("tool_choice") != "none":
        out["tools"] = body["tools"]
    return out


def flatten(messages: Any) -> tuple[str | None, str, list[str]]:
    """LiteLLM's ``ollama_pt``: (system, prompt, images) from chat messages, for /api/generate."""
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("'messages' must be a non-empty list.", param="messages")
    system, sections, images = [], [], []
    turns = [m for m in messages if isinstance(m, Mapping) and m.get("role") not in ("system", "developer")]
    for message in messages:
        if isinstance(message, Mapping) and message.get("role") in ("system", "developer"):
            system.append(text_of(message.get("content")))
    if len(turns) == 1 and turns[0].get("role") == "user":
        text, images = _split(turns[0].get("content"))
        return ("\n".join(system) or None), text, images
    for message in turns:
        text, found = _split(message.get("content"))
        images += found
        title = {"user": "User", "assistant": "Assistant", "tool": "Tool"}.get(str(message.get("role")))
        if title is None:
            raise BadRequestError(f"Unknown message role {message.get('role')!r}.", param="messages")
        sections.append(f"### {title}:\n{text}\n\n")
    sections.append("### Assistant:\n")
    return ("\n".join(system) or None), "".join(sections), images


def generate_request(body: Mapping[str, Any], stream: bool, endpoint: str) -> dict[str, Any]:
    out = _common(body, stream)
    if endpoint == "completions":
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise BadRequestError("ollama takes one string 'prompt' per request.", param="prompt")
        out["prompt"] = prompt
        if body.get("suffix"):
            out["suffix"] = body["suffix"]
    else:
        system, prompt, images = flatten(body.get("messages"))
        out["prompt"] = prompt
        if system:
            out["system"] = system
        if images:
            out["images"] = images
    return out


def ollama_usage(native: Mapping[str, Any]) -> dict[str, Any]:
    return usage(int(native.get("prompt_eval_count") or 0), int(native.get("eval_count") or 0))


def _tool_calls(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    calls = []
    for index, call in enumerate(message.get("tool_calls") or ()):
        fn = call.get("function") or {}
        arguments = fn.get("arguments")
        calls.append({"index": index, "id": call.get("id") or new_tool_call_id(), "type": "function",
                      "function": {"name": fn.get("name"),
                                   "arguments": arguments if isinstance(arguments, str)
                                   else orjson.dumps(arguments or {}).decode()}})
    return calls


def _finish(native: Mapping[str, Any], has_calls: bool) -> str:
    if has_calls:
        return "tool_calls"
    return map_finish_reason(native.get("done_reason")) or "stop"


def ollama_error(status: int, body: bytes) -> ProxyError:
    parsed = json_or_none(body)
    message = parsed.get("error") if isinstance(parsed, dict) else None
    message = str(message) if message else text_message(body, status)
    return error_for(status, message, overloaded=status == 503)


class OllamaStreamDecoder(StreamDecoder):
    """NDJSON lines → chunks; ``"done": true`` ends the stream."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self._buffer = b""
        self._started = False
        self._tools = 0
        self._final: dict[str, Any] | None = None
        self._text = call.endpoint == "completions"

    def _chunk(self, delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
        if self._text:
            return {"id": self._call.call_id, "object": "text_completion", "created": self._call.created,
                    "model": self._call.settings.model,
                    "choices": [{"index": 0, "text": (delta or {}).get("content", ""), "logprobs": None,
                                 "finish_reason": finish}]}
        return chunk(id=self._call.call_id, created=self._call.created, model=self._call.settings.model,
                     delta=delta, finish_reason=finish)

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        out: list[dict[str, Any]] = []
        while not self.finished:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            line, self._buffer = self._buffer[:end].strip(), self._buffer[end + 1:]
            if line:
                self._line(line, out)
        return out

    def _line(self, line: bytes, out: list[dict[str, Any]]) -> None:
        event = json_or_none(line)
        if not isinstance(event, dict):
            raise APIConnectionError("ollama sent a stream line that is not JSON.")
        if "error" in event:
            raise ollama_error(502, line)
        message = event.get("message") or {}
        text = message.get("content") if self._call.settings.chat else event.get("response")
        delta: dict[str, Any] = {}
        if not self._started and not self._text:
            delta["role"] = "assistant"
        self._started = True
        if text:
            delta["content"] = text
        if message.get("thinking"):
            delta["reasoning_content"] = message["thinking"]
        calls = _tool_calls(message)
        if calls:
            for call in calls:
                call["index"] = self._tools
                self._tools += 1
            delta["tool_calls"] = calls
        if delta:
            out.append(self._chunk(delta))
        if event.get("done"):
            out.append(self._chunk(finish=_finish(event, self._tools > 0)))
            self._final = event
            self.finished = True

    def close(self) -> list[dict[str, Any]]:
        if not self.finished and self._buffer.strip():
            tail: list[dict[str, Any]] = []
            self._line(self._buffer.strip(), tail)     # a last line without its newline
            self._buffer = b""
            if self.finished:
                return [*tail, *self.close()]
        super().close()
        final = self._final or {}
        if self._text:
            return [{"id": self._call.call_id, "object": "text_completion", "created": self._call.created,
                     "model": self._call.settings.model, "choices": [], "usage": ollama_usage(final)}]
        return [usage_chunk(id=self._call.call_id, created=self._call.created, model=self._call.settings.model,
                            usage_=ollama_usage(final))]

    def interrupted_message(self) -> str:
        return 'ollama\'s stream ended without its "done": true line: the answer is incomplete.'


class OllamaAdapter(Adapter):
    name = "ollama"
    settings_names = frozenset({"api_base", "api_key"})
    endpoints = frozenset({"chat/completions", "completions", "embeddings"})

    def configure(self, prefix: str, model: str, params: Mapping[str, Any], environ: Mapping[str, str]) -> OllamaSettings:
        read = SettingsReader(prefix, model, params, environ)
        api_base = read.text("api_base", ("OLLAMA_API_BASE",), DEFAULT_API_BASE) or DEFAULT_API_BASE
        api_key = read.text("api_key", ("OLLAMA_API_KEY",))
        read.check()
        return OllamaSettings(api_base.rstrip("/"), api_key, model, prefix == "ollama_chat")

    def endpoints_for(self, settings: OllamaSettings) -> frozenset[str]:
        return self.endpoints if not settings.chat else frozenset({"chat/completions", "embeddings"})

    def supported_params(self, endpoint: str, settings: OllamaSettings) -> frozenset[str]:
        if endpoint == "embeddings":
            return EMBED_SUPPORTED
        return CHAT_SUPPORTED if settings.chat else GENERATE_SUPPORTED

    def native_params(self, endpoint: str, settings: Any) -> frozenset[str]:
        return EMBED_NATIVE if endpoint == "embeddings" else NATIVE

    def secrets(self, settings: OllamaSettings) -> list[str]:
        return [settings.api_key] if settings.api_key else []

    def _request(self, settings: OllamaSettings, path: str, body: dict[str, Any]) -> NativeRequest:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if settings.api_key:
            headers["authorization"] = f"Bearer {settings.api_key}"
        return NativeRequest("POST", f"{settings.api_base}{path}", headers, orjson.dumps(body))

    def build(self, call: Call) -> list[NativeRequest]:
        settings: OllamaSettings = call.settings
        body = {**call.body, "model": settings.model}
        if body.get("n", 1) != 1:
            raise BadRequestError("ollama returns one choice per request: 'n' must be 1.", param="n")
        if call.endpoint == "embeddings":
            native: dict[str, Any] = {"model": settings.model, "input": embedding_inputs(body)}
            for name in ("dimensions", "keep_alive", "truncate", "options"):
                if name in body:
                    native[name] = body[name]
            return [self._request(settings, "/api/embed", native)]
        if settings.chat and call.endpoint == "chat/completions":
            return [self._request(settings, "/api/chat", chat_request(body, call.stream))]
        return [self._request(settings, "/api/generate", generate_request(body, call.stream, call.endpoint))]

    def parse(self, call: Call, answers: list[NativeAnswer]) -> dict[str, Any]:
        native = json_or_none(answers[0].body)
        if not isinstance(native, dict):
            raise APIConnectionError("ollama's answer is not a JSON object.")
        settings: OllamaSettings = call.settings
        if call.endpoint == "embeddings":
            vectors = native.get("embeddings") or []
            return embedding_list(vectors, model=settings.model, prompt_tokens=int(native.get("prompt_eval_count") or 0),
                                  encoding_format=call.body.get("encoding_format"))
        if call.endpoint == "completions":
            return {"id": call.call_id, "object": "text_completion", "created": call.created, "model": settings.model,
                    "choices": [{"index": 0, "text": native.get("response", ""), "logprobs": None,
                                 "finish_reason": _finish(native, False)}],
                    "usage": ollama_usage(native)}
        message_in = native.get("message") or {}
        calls = [{k: v for k, v in c.items() if k != "index"} for c in _tool_calls(message_in)]
        text = message_in.get("content") if settings.chat else native.get("response")
        message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
        if calls:
            message["tool_calls"] = calls
        if message_in.get("thinking"):
            message["reasoning_content"] = message_in["thinking"]
        return chat_completion(id=call.call_id, created=call.created, model=settings.model, message=message,
                               finish_reason=_finish(native, bool(calls)), usage_=ollama_usage(native))

    def decoder(self, call: Call) -> StreamDecoder:
        return OllamaStreamDecoder(call)

    def error(self, call: Call | None, status: int, body: bytes,
              headers: Mapping[str, str] | None = None) -> ProxyError:
        return ollama_error(status, body)
