"""Google Gemini: AI Studio (``gemini/<model>``) here, Vertex AI (``vertex_ai/<model>``) in ``vertex.py``.

Both speak the same ``generateContent`` JSON; they differ in URL and auth only.

AI Studio: ``POST {api_base}/models/{model}:generateContent`` (``:streamGenerateContent?alt=sse``
for streams) with the key in the ``x-goog-api-key`` header (never in the URL, as LiteLLM does
now); ``api_base`` includes the API version (default
``https://generativelanguage.googleapis.com/v1beta``); ``GEMINI_API_KEY`` / ``GOOGLE_API_KEY`` are
the fallbacks. Embeddings: ``:batchEmbedContents``.

Translation:

* roles ``user``/``model``; ``system`` / ``developer`` messages → ``systemInstruction``; a ``tool``
  message → a ``functionResponse`` part named after the tool call it answers; assistant
  ``tool_calls`` → ``functionCall`` parts; images → ``inlineData`` (data URLs) or ``fileData``
  (other URLs; the MIME type is guessed from the extension);
* tools → ``functionDeclarations`` (JSON-schema keys Gemini rejects — ``$schema``,
  ``additionalProperties``, ``strict`` — removed); ``tool_choice`` → ``functionCallingConfig``;
  sampling parameters → ``generationConfig``; ``response_format`` → ``responseMimeType`` and
  ``responseJsonSchema``; ``n`` → ``candidateCount``; ``reasoning_effort`` → ``thinkingConfig``;
* answer: ``functionCall`` parts → ``tool_calls`` (ids ``call_…`` made up: Gemini names none),
  ``thought`` parts → ``reasoning_content``; ``finishReason`` → ``finish_reason`` (``SAFETY``,
  ``RECITATION``, ``BLOCKLIST``… → ``content_filter``); a prompt blocked by ``promptFeedback`` is
  an answer with ``finish_reason: content_filter``, not an error (as LiteLLM returns it);
* usage: ``promptTokenCount`` (+ tool-use prompt tokens) → ``prompt_tokens``;
  ``candidatesTokenCount`` plus ``thoughtsTokenCount`` (thinking is billed as output) →
  ``completion_tokens``; ``cachedContentTokenCount`` → cached tokens. In a stream the usage is
  cumulative: the last one counts;
* a stream has no end marker: it is complete when the body ends after a chunk with a
  ``finishReason`` (or a blocked prompt); otherwise the stream was cut.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from ...errors import APIConnectionError, BadRequestError, ProxyError
from ...observability.tokens import estimate_tokens
from ...streaming import SSEParser
from .adapter import (
    Adapter,
    Call,
    NativeAnswer,
    NativeRequest,
    StreamDecoder,
    StreamInterruptedError,
)
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

__all__ = ["GeminiAdapter", "GeminiSettings", "GeminiStreamDecoder", "gemini_error", "gemini_usage"]

DEFAULT_API_BASE = "https://generativelanguage.googleapis.com/v1beta"
#: LiteLLM's ``reasoning_effort`` → Gemini thinking budget
THINKING_BUDGETS = {"disable": 0, "none": 0, "minimal": 128, "low": 1024, "medium": 2048, "high": 4096}
_DROPPED_SCHEMA_KEYS = frozenset({"$schema", "additionalProperties", "strict", "$id"})

CHAT_SUPPORTED = frozenset({
    "model", "messages", "stream", "stream_options", "temperature", "top_p", "max_tokens", "max_completion_tokens",
    "stop", "n", "tools", "tool_choice", "response_format", "seed", "presence_penalty", "frequency_penalty",
    "reasoning_effort", "parallel_tool_calls",
})
CHAT_NATIVE = frozenset({"top_k", "safety_settings", "thinking", "cached_content"})
EMBED_SUPPORTED = frozenset({"model", "input", "encoding_format", "dimensions"})
EMBED_NATIVE = frozenset({"task_type"})


@dataclass(frozen=True, slots=True)
class GeminiSettings:
    api_base: str
    api_key: str
    model: str


# -------------------------------------------------------------------------------------------------
# request
# -------------------------------------------------------------------------------------------------


def _media_part(part: Mapping[str, Any]) -> dict[str, Any]:
    url = image_url_of(part)
    data = parse_data_url(url)
    if data is not None:
        return {"inlineData": {"mimeType": data[0], "data": data[1]}}
    mime = mimetypes.guess_type(url.split("?")[0])[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _parts(content: Any) -> list[dict[str, Any]]:
    out = []
    for part in content_parts(content):
        kind = part.get("type")
        if kind == "text":
            out.append({"text": str(part.get("text", ""))})
        elif kind == "image_url":
            out.append(_media_part(part))
        else:
            raise BadRequestError(f"gemini does not take {kind!r} content parts.", param="messages")
    return out


def clean_schema(schema: Any) -> Any:
    """A JSON schema without the keys Gemini's ``parameters`` rejects (recursively)."""
    if isinstance(schema, Mapping):
        return {k: clean_schema(v) for k, v in schema.items() if k not in _DROPPED_SCHEMA_KEYS}
    if isinstance(schema, list):
        return [clean_schema(v) for v in schema]
    return schema


def _arguments(raw: Any, call_id: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        raise BadRequestError(f"The arguments of tool call {call_id!r} are not valid JSON.", param="messages") from None
    return value if isinstance(value, dict) else {"value": value}


def translate_messages(messages: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """OpenAI messages → (``systemInstruction``, ``contents``)."""
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("'messages' must be a non-empty list.", param="messages")
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}      # tool call id → function name (functionResponse needs the name)

    def append(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": list(parts)})

    for message in messages:
        if not isinstance(message, Mapping):
            raise BadRequestError("Each message must be an object.", param="messages")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_parts(message.get("content")))
        elif role == "user":
            append("user", _parts(message.get("content")))
        elif role == "assistant":
            parts = [p for p in _parts(message.get("content")) if p.get("text") != ""]
            for call in message.get("tool_calls") or ():
                fn = call.get("function") or {}
                if not isinstance(fn.get("name"), str):
                    raise BadRequestError("Each tool call needs a function name.", param="messages")
                names[str(call.get("id"))] = fn["name"]
                parts.append({"functionCall": {"name": fn["name"], "args": _arguments(fn.get("arguments"),
                                                                                      call.get("id"))}})
            append("model", parts)
        elif role in ("tool", "function"):
            name = message.get("name") or names.get(str(message.get("tool_call_id")))
            if not name:
                raise BadRequestError("A tool message must answer a tool call of an earlier assistant message "
                                      "(its 'tool_call_id' names no known call).", param="messages")
            content = text_of(message.get("content"))
            try:
                parsed = orjson.loads(content)
                response = parsed if isinstance(parsed, dict) else {"content": parsed}
            except orjson.JSONDecodeError:
                response = {"content": content}
            append("user", [{"functionResponse": {"name": name, "response": response}}])
        else:
            raise BadRequestError(f"Unknown message role {role!r}.", param="messages")
    if not contents:
        raise BadRequestError("gemini needs at least one user message besides the system prompt.", param="messages")
    return ({"parts": system} if system else None), contents


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "auto":
        mode: dict[str, Any] = {"mode": "AUTO"}
    elif choice == "required":
        mode = {"mode": "ANY"}
    elif choice == "none":
        mode = {"mode": "NONE"}
    elif isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        mode = {"mode": "ANY", "allowedFunctionNames": [choice["function"].get("name")]}
    else:
        raise BadRequestError(f"Invalid tool_choice {choice!r}.", param="tool_choice")
    return {"functionCallingConfig": mode}


def translate_request(body: Mapping[str, Any]) -> dict[str, Any]:
    system, contents = translate_messages(body.get("messages"))
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = system
    config: dict[str, Any] = {}
    for openai_name, native in (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK"),
                                ("seed", "seed"), ("presence_penalty", "presencePenalty"),
                                ("frequency_penalty", "frequencyPenalty"), ("n", "candidateCount")):
        if openai_name in body:
            config[native] = body[openai_name]
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = body.get("stop")
    if stop is not None:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping):
        kind = response_format.get("type")
        if kind in ("json_object", "json_schema"):
            config["responseMimeType"] = "application/json"
        schema = (response_format.get("json_schema") or {}).get("schema") if kind == "json_schema" else None
        if schema is not None:
            config["responseJsonSchema"] = schema
    if "thinking" in body and isinstance(body["thinking"], Mapping):
        budget = body["thinking"].get("budget_tokens")
        config["thinkingConfig"] = {"thinkingBudget": int(budget) if budget is not None else -1,
                                    "includeThoughts": True}
    elif body.get("reasoning_effort") in THINKING_BUDGETS:
        budget = THINKING_BUDGETS[body["reasoning_effort"]]
        config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": budget > 0}
    if config:
        out["generationConfig"] = config
    if body.get("tools"):
        declarations = []
        for tool in body["tools"]:
            fn = tool.get("function") if isinstance(tool, Mapping) else None
            if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
                raise BadRequestError("Each tool needs type 'function' and a function name.", param="tools")
            declaration: dict[str, Any] = {"name": fn["name"]}
            if fn.get("description"):
                declaration["description"] = fn["description"]
            if fn.get("parameters"):
                declaration["parameters"] = clean_schema(fn["parameters"])
            declarations.append(declaration)
        out["tools"] = [{"functionDeclarations": declarations}]
        tool_config = _tool_config(body.get("tool_choice"))
        if tool_config is not None:
            out["toolConfig"] = tool_config
    if body.get("safety_settings") is not None:
        out["safetySettings"] = body["safety_settings"]
    if body.get("cached_content"):
        out["cachedContent"] = body["cached_content"]
    return out


# -------------------------------------------------------------------------------------------------
# answers
# -------------------------------------------------------------------------------------------------


def gemini_usage(meta: Any) -> dict[str, Any] | None:
    if not isinstance(meta, Mapping):
        return None
    prompt = int(meta.get("promptTokenCount") or 0)
    tool_prompt = int(meta.get("toolUsePromptTokenCount") or 0)
    candidates = int(meta.get("candidatesTokenCount") or 0)
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    total = meta.get("totalTokenCount")
    # candidatesTokenCount may or may not include the thoughts (LiteLLM's rule: compare with the total)
    inclusive = total is not None and prompt + candidates + tool_prompt == int(total)
    completion = candidates if inclusive else candidates + thoughts
    cached = meta.get("cachedContentTokenCount")
    return usage(prompt + tool_prompt, completion, cached=int(cached) if cached is not None else None,
                 reasoning=thoughts if "thoughtsTokenCount" in meta else None)


def _message_of(content: Any) -> tuple[dict[str, Any], bool]:
    text: list[str] = []
    thoughts: list[str] = []
    calls = []
    for part in (content or {}).get("parts") or ():
        if "functionCall" in part:
            fn = part["functionCall"]
            calls.append({"id": fn.get("id") or new_tool_call_id(), "type": "function",
                          "function": {"name": fn.get("name"), "arguments": orjson.dumps(fn.get("args") or {}).decode()}})
        elif "text" in part:
            (thoughts if part.get("thought") else text).append(part["text"])
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    return message, bool(calls)


def _finish(reason: Any, has_calls: bool) -> str:
    if has_calls and reason in (None, "STOP"):
        return "tool_calls"
    return map_finish_reason(reason) or "stop"


def translate_response(call: Call, native: Mapping[str, Any], model: str) -> dict[str, Any]:
    choices = []
    for position, candidate in enumerate(native.get("candidates") or ()):
        message, has_calls = _message_of(candidate.get("content"))
        choices.append({"index": candidate.get("index", position), "message": message,
                        "finish_reason": _finish(candidate.get("finishReason"), has_calls)})
    if not choices:
        # the prompt itself was blocked (promptFeedback.blockReason): an answer, filtered
        choices = [{"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": "content_filter"}]
    return chat_completion(id=str(native.get("responseId") or call.call_id), created=call.created,
                           model=str(native.get("modelVersion") or model), message={}, finish_reason=None,
                           usage_=gemini_usage(native.get("usageMetadata")) or usage(0, 0), choices=choices)


def gemini_error(status: int, body: bytes) -> ProxyError:
    parsed = json_or_none(body)
    if isinstance(parsed, list) and parsed:     # streamGenerateContent without alt=sse wraps it in a list
        parsed = parsed[0]
    err = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(err, Mapping):
        return error_for(status, text_message(body, status))
    message = str(err.get("message") or f"upstream answered HTTP {status}")
    kind = str(err.get("status") or "") or None
    reasons = {d.get("reason") for d in err.get("details") or () if isinstance(d, Mapping)}
    if "API_KEY_INVALID" in reasons or kind == "UNAUTHENTICATED":
        status = 401
    return error_for(status, message, kind=kind, rate_limited=kind == "RESOURCE_EXHAUSTED",
                     overloaded=kind == "UNAVAILABLE" or status == 503)


class GeminiStreamDecoder(StreamDecoder):
    def __init__(self, call: Call, model: str) -> None:
        self._call = call
        self._model = model
        self._id = call.call_id
        self._parser = SSEParser()
        self._started: set[int] = set()
        self._tool_counts: dict[int, int] = {}
        self._usage: dict[str, Any] | None = None
        self._ended = False        # a finishReason (or a blocked prompt) was seen

    def _chunk(self, index: int, delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
        return chunk(id=self._id, created=self._call.created, model=self._model, delta=delta, finish_reason=finish,
                     index=index)

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for payload in self._parser.feed(data):
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise APIConnectionError("gemini sent a stream event that is not JSON.") from None
            if not isinstance(event, dict):
                continue
            if "error" in event:
                code = (event["error"] or {}).get("code") if isinstance(event["error"], dict) else None
                raise gemini_error(code if isinstance(code, int) else 502, payload)
            self._event(event, out)
        return out

    def _event(self, event: dict[str, Any], out: list[dict[str, Any]]) -> None:
        self._id = str(event.get("responseId") or self._id)
        self._model = str(event.get("modelVersion") or self._model)
        if event.get("usageMetadata"):
            self._usage = event["usageMetadata"]      # cumulative: the last one is the total
        if not event.get("candidates") and (event.get("promptFeedback") or {}).get("blockReason"):
            out.append(self._chunk(0, {"role": "assistant", "content": ""}))
            out.append(self._chunk(0, finish="content_filter"))
            self._ended = True
            return
        for position, candidate in enumerate(event.get("candidates") or ()):
            index = int(candidate.get("index", position))
            delta: dict[str, Any] = {}
            if index not in self._started:
                self._started.add(index)
                delta["role"] = "assistant"
            message, has_calls = _message_of(candidate.get("content"))
            if message.get("content"):
                delta["content"] = message["content"]
            if message.get("reasoning_content"):
                delta["reasoning_content"] = message["reasoning_content"]
            if has_calls:
                calls = []
                for tool_call in message["tool_calls"]:
                    position_in_choice = self._tool_counts.get(index, 0)
                    self._tool_counts[index] = position_in_choice + 1
                    calls.append({"index": position_in_choice, **tool_call})
                delta["tool_calls"] = calls
            reason = candidate.get("finishReason")
            if delta:
                out.append(self._chunk(index, delta))
            if reason:
                out.append(self._chunk(index, finish=_finish(reason, self._tool_counts.get(index, 0) > 0)))
                self._ended = True

    def close(self) -> list[dict[str, Any]]:
        for payload in self._parser.flush():      # a last event without its blank line
            event = json_or_none(payload)
            if isinstance(event, dict):
                tail: list[dict[str, Any]] = []
                self._event(event, tail)
                if tail:
                    raise StreamInterruptedError("gemini's stream ended in the middle of an event.")
        if not self._ended:
            raise StreamInterruptedError(self.interrupted_message())
        self.finished = True
        return [usage_chunk(id=self._id, created=self._call.created, model=self._model,
                            usage_=gemini_usage(self._usage) or usage(0, 0))]

    def interrupted_message(self) -> str:
        return "gemini's stream ended before a chunk with a finishReason: the answer is incomplete."


def embedding_usage(native: Mapping[str, Any], inputs: list[str]) -> int:
    """Gemini's own count when it reports one; AI Studio's batch API reports none: then estimated."""
    meta = native.get("usageMetadata")
    if isinstance(meta, Mapping) and isinstance(meta.get("promptTokenCount"), int):
        return int(meta["promptTokenCount"])
    return sum(estimate_tokens(text) for text in inputs)


class GeminiAdapter(Adapter):
    name = "gemini"
    settings_names = frozenset({"api_base", "api_key"})
    endpoints = frozenset({"chat/completions", "embeddings"})

    def configure(self, prefix: str, model: str, params: Mapping[str, Any], environ: Mapping[str, str]) -> GeminiSettings:
        read = SettingsReader(prefix, model, params, environ)
        api_key = read.required("api_key", ("GEMINI_API_KEY", "GOOGLE_API_KEY"))
        api_base = read.text("api_base", ("GEMINI_API_BASE",), DEFAULT_API_BASE) or DEFAULT_API_BASE
        read.check()
        return GeminiSettings(api_base.rstrip("/"), api_key, model.removeprefix("models/"))

    def supported_params(self, endpoint: str, settings: Any) -> frozenset[str]:
        return EMBED_SUPPORTED if endpoint == "embeddings" else CHAT_SUPPORTED

    def native_params(self, endpoint: str, settings: Any) -> frozenset[str]:
        return EMBED_NATIVE if endpoint == "embeddings" else CHAT_NATIVE

    def secrets(self, settings: GeminiSettings) -> list[str]:
        return [settings.api_key]

    # -- URLs and auth (Vertex AI overrides these) ------------------------------------------------

    def method_url(self, settings: Any, method: str, stream: bool) -> str:
        url = f"{settings.api_base}/models/{quote(settings.model, safe='')}:{method}"
        return f"{url}?alt=sse" if stream else url

    def auth_headers(self, settings: Any) -> dict[str, str]:
        return {"x-goog-api-key": settings.api_key}

    def headers(self, settings: Any, stream: bool) -> dict[str, str]:
        return {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json",
                **self.auth_headers(settings)}

    def embedding_request(self, call: Call, inputs: list[str]) -> NativeRequest:
        settings = call.settings
        requests = []
        for text in inputs:
            entry: dict[str, Any] = {"model": f"models/{settings.model}", "content": {"parts": [{"text": text}]}}
            if call.body.get("dimensions"):
                entry["outputDimensionality"] = call.body["dimensions"]
            if call.body.get("task_type"):
                entry["taskType"] = call.body["task_type"]
            requests.append(entry)
        return NativeRequest("POST", self.method_url(settings, "batchEmbedContents", False),
                             self.headers(settings, False), orjson.dumps({"requests": requests}))

    def embedding_answer(self, call: Call, native: Mapping[str, Any], inputs: list[str]) -> dict[str, Any]:
        vectors = [e.get("values") or [] for e in native.get("embeddings") or ()]
        if len(vectors) != len(inputs):
            raise APIConnectionError("gemini answered with a different number of embeddings than inputs.")
        return embedding_list(vectors, model=call.settings.model, prompt_tokens=embedding_usage(native, inputs),
                              encoding_format=call.body.get("encoding_format"))

    # -- the adapter -------------------------------------------------------------------------------

    def build(self, call: Call) -> list[NativeRequest]:
        settings = call.settings
        if call.endpoint == "embeddings":
            return [self.embedding_request(call, embedding_inputs(call.body))]
        method = "streamGenerateContent" if call.stream else "generateContent"
        return [NativeRequest("POST", self.method_url(settings, method, call.stream), self.headers(settings, call.stream),
                              orjson.dumps(translate_request(call.body)))]

    def parse(self, call: Call, answers: list[NativeAnswer]) -> dict[str, Any]:
        native = json_or_none(answers[0].body)
        if not isinstance(native, dict):
            raise APIConnectionError(f"{self.name}'s answer is not a JSON object.")
        if call.endpoint == "embeddings":
            return self.embedding_answer(call, native, embedding_inputs(call.body))
        return translate_response(call, native, call.settings.model)

    def decoder(self, call: Call) -> StreamDecoder:
        return GeminiStreamDecoder(call, call.settings.model)

    def error(self, call: Call | None, status: int, body: bytes,
              headers: Mapping[str, str] | None = None) -> ProxyError:
        return gemini_error(status, body)
