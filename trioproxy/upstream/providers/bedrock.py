"""AWS Bedrock (``bedrock/<model id>``, ``bedrock/converse/<model id>``): Converse and ConverseStream.

* URL: ``{endpoint}/model/{model id}/converse`` (``/converse-stream``), the id URL-encoded as LiteLLM
  does (ARNs and ``:`` in ids). ``endpoint``: ``api_base``, else ``aws_bedrock_runtime_endpoint``
  (or ``AWS_BEDROCK_RUNTIME_ENDPOINT``), else ``https://bedrock-runtime.{region}.amazonaws.com``;
  ``api_base`` wins when both are set (LiteLLM's rule).
* Region: ``aws_region_name``, else the region in an ARN model id, else ``AWS_REGION_NAME`` /
  ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else ``us-west-2`` (LiteLLM's default).
* Auth: SigV4 by botocore's signer (the ``trioproxy[bedrock]`` extra) with ``aws_access_key_id`` /
  ``aws_secret_access_key`` / ``aws_session_token``, or ``aws_profile_name``, or botocore's standard
  chain (environment, shared files, SSO, container and instance roles). Resolving and refreshing
  credentials can do I/O, so signing runs in a worker thread. A Bedrock API key (``api_key`` or
  ``AWS_BEARER_TOKEN_BEDROCK``) is sent as a bearer token instead.
* Translation: ``system`` messages → ``system``; text, images (data URLs → ``bytes``; Converse
  takes no image URLs), ``toolUse`` / ``toolResult`` blocks both ways; ``inferenceConfig`` from
  ``max_tokens``, ``temperature``, ``top_p``, ``stop``; tools → ``toolConfig`` (``tool_choice``
  ``auto``/``required``/named → ``auto``/``any``/``tool``; ``none`` sends no choice); ``top_k`` and
  other model-specific fields → ``additionalModelRequestFields``; ``stopReason`` → ``finish_reason``
  (``guardrail_intervened`` / ``content_filtered`` → ``content_filter``); usage with cache reads and
  writes.
* ConverseStream is AWS event-stream framing, decoded by botocore's ``EventStreamBuffer``;
  ``messageStop`` then ``metadata`` (usage) end it; an ``exception`` message
  (``throttlingException``…) is raised as the mapped error.
* Embeddings (InvokeModel): Titan (``amazon.titan-embed-*``: one input per request, usage from its
  ``inputTextTokenCount``, summed) and Cohere (``cohere.embed-*``: one request, usage from the
  ``X-Amzn-Bedrock-Input-Token-Count`` header).
* Errors: the ``x-amzn-errortype`` header / ``__type`` names the kind (``ThrottlingException`` →
  429, ``ServiceUnavailableException`` → 503, ``ValidationException`` with a too-long input →
  ``context_length_exceeded``…).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

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
    parse_data_url,
    text_of,
    usage,
    usage_chunk,
)

__all__ = ["AwsSigner", "BedrockAdapter", "BedrockSettings", "BedrockStreamDecoder"]

_ARN_REGION = re.compile(r"^arn:aws[\w-]*:bedrock:([a-z0-9-]+):")
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
                  "image/webp": "webp"}
CHAT_SUPPORTED = frozenset({"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
                            "temperature", "top_p", "stop", "tools", "tool_choice", "n"})
CHAT_NATIVE = frozenset({"top_k", "additionalModelRequestFields", "guardrailConfig", "performanceConfig",
                         "requestMetadata"})
EMBED_SUPPORTED = frozenset({"model", "input", "encoding_format", "dimensions"})
EMBED_NATIVE = frozenset({"input_type", "normalize", "truncate"})


class AwsSigner:
    """SigV4 with botocore, credentials resolved once and refreshed by botocore. Worker threads only."""

    def __init__(self, region: str, access_key: str | None, secret_key: str | None, session_token: str | None,
                 profile: str | None) -> None:
        self.region = region
        self._static = (access_key, secret_key, session_token) if access_key and secret_key else None
        self._profile = profile
        self._credentials: Any = None
        self._lock = threading.Lock()

    def _resolve(self) -> Any:
        try:
            import botocore.credentials
            import botocore.session
        except ImportError as exc:  # pragma: no cover - the extra is part of the test install
            raise APIConnectionError("bedrock needs botocore: pip install 'trioproxy[bedrock]'") from exc
        if self._static is not None:
            return botocore.credentials.Credentials(*self._static)
        session = botocore.session.Session(profile=self._profile) if self._profile else botocore.session.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise APIConnectionError("bedrock: no AWS credentials found (set aws_access_key_id / "
                                     "aws_secret_access_key, aws_profile_name, or the standard AWS environment)")
        return credentials

    def sign(self, request: NativeRequest) -> NativeRequest:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        with self._lock:
            if self._credentials is None:
                self._credentials = self._resolve()
            frozen = self._credentials.get_frozen_credentials()   # refreshes expiring credentials
        aws_request = AWSRequest(method=request.method, url=request.url, data=request.body,
                                 headers=dict(request.headers))
        SigV4Auth(frozen, "bedrock", self.region).add_auth(aws_request)
        headers = {name.lower(): str(value) for name, value in aws_request.headers.items()}
        return NativeRequest(request.method, request.url, headers, request.body)


@dataclass(frozen=True, slots=True)
class BedrockSettings:
    model: str                  # the model id (after ``converse/``)
    endpoint: str
    region: str
    bearer_token: str | None = field(repr=False)
    signer: AwsSigner | None = field(compare=False, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)


# -------------------------------------------------------------------------------------------------
# request
# -------------------------------------------------------------------------------------------------


def _content(content: Any, role: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in content_parts(content):
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                out.append({"text": str(part["text"])})
        elif kind == "image_url" and role == "user":
            data = parse_data_url(image_url_of(part))
            if data is None:
                raise BadRequestError("bedrock takes images as data: URLs (base64); the Converse API cannot "
                                      "fetch image URLs.", param="messages")
            image_format = _IMAGE_FORMATS.get(data[0])
            if image_format is None:
                raise BadRequestError(f"bedrock does not take {data[0]} images (png, jpeg, gif, webp).",
                                      param="messages")
            out.append({"image": {"format": image_format, "source": {"bytes": data[1]}}})
        else:
            raise BadRequestError(f"bedrock does not take {kind!r} content parts in {role} messages.",
                                  param="messages")
        if "cache_control" in part:
            out.append({"cachePoint": {"type": "default"}})
    return out


def translate_messages(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("'messages' must be a non-empty list.", param="messages")
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []

    def append(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": list(blocks)})

    for message in messages:
        if not isinstance(message, Mapping):
            raise BadRequestError("Each message must be an object.", param="messages")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_content(message.get("content"), "system"))
        elif role == "user":
            append("user", _content(message.get("content"), "user"))
        elif role == "assistant":
            blocks = _content(message.get("content"), "assistant")
            for call in message.get("tool_calls") or ():
                fn = call.get("function") or {}
                raw = fn.get("arguments") or "{}"
                try:
                    arguments = orjson.loads(raw) if isinstance(raw, str) else raw
                except orjson.JSONDecodeError:
                    raise BadRequestError(f"The arguments of tool call {call.get('id')!r} are not valid JSON.",
                                          param="messages") from None
                blocks.append({"toolUse": {"toolUseId": str(call.get("id")), "name": fn.get("name"),
                                           "input": arguments if isinstance(arguments, dict) else {"value": arguments}}})
            append("assistant", blocks)
        elif role == "tool":
            if not isinstance(message.get("tool_call_id"), str):
                raise BadRequestError("A tool message needs 'tool_call_id'.", param="messages")
            append("user", [{"toolResult": {"toolUseId": message["tool_call_id"],
                                            "content": [{"text": text_of(message.get("content")) or " "}]}}])
        else:
            raise BadRequestError(f"Unknown message role {role!r}.", param="messages")
    if not turns:
        raise BadRequestError("bedrock needs at least one user message besides the system prompt.", param="messages")
    return system, turns


def translate_request(body: Mapping[str, Any]) -> dict[str, Any]:
    if body.get("n", 1) != 1:
        raise BadRequestError("bedrock returns one choice per request: 'n' must be 1.", param="n")
    system, turns = translate_messages(body.get("messages"))
    out: dict[str, Any] = {"messages": turns}
    if system:
        out["system"] = system
    config: dict[str, Any] = {}
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    if "temperature" in body:
        config["temperature"] = body["temperature"]
    if "top_p" in body:
        config["topP"] = body["top_p"]
    stop = body.get("stop")
    if stop is not None:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if config:
        out["inferenceConfig"] = config
    if body.get("tools"):
        specs = []
        for tool in body["tools"]:
            fn = tool.get("function") if isinstance(tool, Mapping) else None
            if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
                raise BadRequestError("Each tool needs type 'function' and a function name.", param="tools")
            spec: dict[str, Any] = {"name": fn["name"],
                                    "inputSchema": {"json": fn.get("parameters") or {"type": "object", "properties": {}}}}
            if fn.get("description"):
                spec["description"] = fn["description"]
            specs.append({"toolSpec": spec})
        tool_config: dict[str, Any] = {"tools": specs}
        choice = body.get("tool_choice")
        if choice == "auto":
            tool_config["toolChoice"] = {"auto": {}}
        elif choice == "required":
            tool_config["toolChoice"] = {"any": {}}
        elif isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
            tool_config["toolChoice"] = {"tool": {"name": choice["function"].get("name")}}
        elif choice not in (None, "none"):
            raise BadRequestError(f"Invalid tool_choice {choice!r}.", param="tool_choice")
        out["toolConfig"] = tool_config
    additional = dict(body.get("additionalModelRequestFields") or {})
    if "top_k" in body:
        additional["top_k"] = body["top_k"]
    if additional:
        out["additionalModelRequestFields"] = additional
    for name in ("guardrailConfig", "performanceConfig", "requestMetadata"):
        if name in body:
            out[name] = body[name]
    return out


# -------------------------------------------------------------------------------------------------
# answers
# -------------------------------------------------------------------------------------------------


def bedrock_usage(raw: Any) -> dict[str, Any]:
    raw = raw if isinstance(raw, Mapping) else {}
    read = int(raw.get("cacheReadInputTokens") or 0)
    written = int(raw.get("cacheWriteInputTokens") or 0)
    return usage(int(raw.get("inputTokens") or 0) + read + written, int(raw.get("outputTokens") or 0),
                 cached=read if "cacheReadInputTokens" in raw else None,
                 cache_creation=written if "cacheWriteInputTokens" in raw else None)


def translate_response(call: Call, native: Mapping[str, Any]) -> dict[str, Any]:
    message_in = ((native.get("output") or {}).get("message") or {})
    text, reasoning, calls = [], [], []
    for block in message_in.get("content") or ():
        if "text" in block:
            text.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            calls.append({"id": use.get("toolUseId"), "type": "function",
                          "function": {"name": use.get("name"), "arguments": orjson.dumps(use.get("input") or {}).decode()}})
        elif "reasoningContent" in block:
            reasoning.append(((block["reasoningContent"] or {}).get("reasoningText") or {}).get("text", ""))
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    return chat_completion(id=call.call_id, created=call.created, model=call.settings.model, message=message,
                           finish_reason=map_finish_reason(native.get("stopReason")) or "stop",
                           usage_=bedrock_usage(native.get("usage")))


_ERROR_STATUS = {"throttlingexception": 429, "servicequotaexceededexception": 429, "modelnotreadyexception": 429,
                 "serviceunavailableexception": 503, "internalserverexception": 500, "modeltimeoutexception": 408,
                 "validationexception": 400, "accessdeniedexception": 403, "resourcenotfoundexception": 404,
                 "modelerrorexception": 424, "modelstreamerrorexception": 424, "unrecognizedclientexception": 403,
                 "expiredtokenexception": 403}


def bedrock_error(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> ProxyError:
    parsed = json_or_none(body)
    kind = (headers or {}).get("x-amzn-errortype", "").split(":")[0] or None
    if isinstance(parsed, dict):
        kind = kind or str(parsed.get("__type") or "").rsplit("#", 1)[-1] or None
        message = str(parsed.get("message") or parsed.get("Message") or "") or f"upstream answered HTTP {status}"
    else:
        message = text_message(body, status)
    lowered = (kind or "").lower()
    return error_for(status, message, kind=kind, rate_limited=lowered == "throttlingexception",
                     overloaded=lowered == "serviceunavailableexception")


class BedrockStreamDecoder(StreamDecoder):
    """AWS event-stream frames (botocore's decoder) → OpenAI chunks."""

    def __init__(self, call: Call) -> None:
        from botocore.eventstream import EventStreamBuffer

        self._call = call
        self._buffer = EventStreamBuffer()
        self._tool_index: dict[int, int] = {}
        self._stopped = False
        self._usage: dict[str, Any] | None = None

    def _chunk(self, delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
        return chunk(id=self._call.call_id, created=self._call.created, model=self._call.settings.model,
                     delta=delta, finish_reason=finish)

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        from botocore.eventstream import ParserError

        out: list[dict[str, Any]] = []
        self._buffer.add_data(data)
        try:
            for message in self._buffer:
                headers = message.headers
                payload = json_or_none(message.payload) or {}
                if headers.get(":message-type") == "exception" or headers.get(":message-type") == "error":
                    kind = str(headers.get(":exception-type") or headers.get(":error-code") or "")
                    raise bedrock_error(_ERROR_STATUS.get(kind.lower(), 502), message.payload,
                                        {"x-amzn-errortype": kind[:1].upper() + kind[1:]})
                self._event(str(headers.get(":event-type") or ""), payload, out)
        except ParserError as exc:
            raise APIConnectionError(f"bedrock sent a malformed event-stream frame ({type(exc).__name__}).") from None
        return out

    def _event(self, kind: str, payload: Mapping[str, Any], out: list[dict[str, Any]]) -> None:
        if kind == "messageStart":
            out.append(self._chunk({"role": "assistant", "content": ""}))
        elif kind == "contentBlockStart":
            use = (payload.get("start") or {}).get("toolUse")
            if use:
                index = self._tool_index.setdefault(int(payload.get("contentBlockIndex", 0)), len(self._tool_index))
                out.append(self._chunk({"tool_calls": [{"index": index, "id": use.get("toolUseId"), "type": "function",
                                                        "function": {"name": use.get("name"), "arguments": ""}}]}))
        elif kind == "contentBlockDelta":
            delta = payload.get("delta") or {}
            if "text" in delta:
                out.append(self._chunk({"content": delta["text"]}))
            elif "toolUse" in delta:
                index = self._tool_index.get(int(payload.get("contentBlockIndex", 0)), 0)
                out.append(self._chunk({"tool_calls": [{"index": index,
                                                        "function": {"arguments": delta["toolUse"].get("input", "")}}]}))
            elif "reasoningContent" in delta and "text" in delta["reasoningContent"]:
                out.append(self._chunk({"reasoning_content": delta["reasoningContent"]["text"]}))
        elif kind == "messageStop":
            self._stopped = True
            out.append(self._chunk(finish=map_finish_reason(payload.get("stopReason")) or "stop"))
        elif kind == "metadata":
            self._usage = dict(payload.get("usage") or {})
            if self._stopped:
                self.finished = True

    def close(self) -> list[dict[str, Any]]:
        if not self._stopped:
            super().close()     # raises: no messageStop
        self.finished = True
        if self._usage is None:
            return []
        return [usage_chunk(id=self._call.call_id, created=self._call.created, model=self._call.settings.model,
                            usage_=bedrock_usage(self._usage))]

    def interrupted_message(self) -> str:
        return "bedrock's stream ended without messageStop: the answer is incomplete."


class BedrockAdapter(Adapter):
    name = "bedrock"
    settings_names = frozenset({"api_base", "api_key", "aws_access_key_id", "aws_secret_access_key",
                                "aws_session_token", "aws_region_name", "aws_profile_name",
                                "aws_bedrock_runtime_endpoint"})
    secret_settings = frozenset({"api_key", "aws_secret_access_key", "aws_session_token"})
    endpoints = frozenset({"chat/completions", "embeddings"})
    authorize_in_thread = True

    def configure(self, prefix: str, model: str, params: Mapping[str, Any], environ: Mapping[str, str]) -> BedrockSettings:
        read = SettingsReader(prefix, model, params, environ)
        model_id = model.removeprefix("converse/")
        if model_id.startswith(("invoke/", "llama/", "deepseek_r1/", "nova/")):
            read.problems.append(f"bedrock/{model}: only the Converse API is served (bedrock/<id> or "
                                 "bedrock/converse/<id>); the invoke route is not")
        arn_region = _ARN_REGION.match(model_id)
        region = read.text("aws_region_name") or (arn_region.group(1) if arn_region else None) or \
            read.text("aws_region_name", ("AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION")) or "us-west-2"
        endpoint = read.text("api_base") or read.text("aws_bedrock_runtime_endpoint", ("AWS_BEDROCK_RUNTIME_ENDPOINT",)) \
            or f"https://bedrock-runtime.{region}.amazonaws.com"
        bearer = read.text("api_key", ("AWS_BEARER_TOKEN_BEDROCK",))
        access = read.text("aws_access_key_id")
        secret = read.text("aws_secret_access_key")
        token = read.text("aws_session_token")
        if bool(access) != bool(secret):
            read.problems.append(f"bedrock/{model}: aws_access_key_id and aws_secret_access_key go together")
        read.check()
        signer = None if bearer else AwsSigner(region, access, secret, token, read.text("aws_profile_name"))
        return BedrockSettings(model_id, endpoint.rstrip("/"), region, bearer, signer, secret, token)

    def supported_params(self, endpoint: str, settings: Any) -> frozenset[str]:
        return EMBED_SUPPORTED if endpoint == "embeddings" else CHAT_SUPPORTED

    def native_params(self, endpoint: str, settings: Any) -> frozenset[str]:
        return EMBED_NATIVE if endpoint == "embeddings" else CHAT_NATIVE

    def secrets(self, settings: BedrockSettings) -> list[str]:
        return [s for s in (settings.bearer_token, settings.secret_key, settings.session_token) if s]

    def _url(self, settings: BedrockSettings, action: str) -> str:
        return f"{settings.endpoint}/model/{quote(settings.model, safe='')}/{action}"

    def _request(self, settings: BedrockSettings, action: str, body: dict[str, Any], stream: bool) -> NativeRequest:
        headers = {"content-type": "application/json",
                   "accept": "application/vnd.amazon.eventstream" if stream else "application/json"}
        if settings.bearer_token:
            headers["authorization"] = f"Bearer {settings.bearer_token}"
        return NativeRequest("POST", self._url(settings, action), headers, orjson.dumps(body))

    def build(self, call: Call) -> list[NativeRequest]:
        settings: BedrockSettings = call.settings
        if call.endpoint == "embeddings":
            return self._embedding_requests(call, embedding_inputs(call.body))
        action = "converse-stream" if call.stream else "converse"
        return [self._request(settings, action, translate_request(call.body), call.stream)]

    def sign(self, settings: BedrockSettings, request: NativeRequest) -> NativeRequest:
        if settings.signer is None:
            return request
        return settings.signer.sign(request)

    # -- embeddings (InvokeModel) -------------------------------------------------------------------

    def _family(self, settings: BedrockSettings) -> str:
        model = settings.model.split(".", 1)[-1] if settings.model.startswith(("us.", "eu.", "apac.", "global.")) \
            else settings.model
        if model.startswith("amazon.titan-embed"):
            return "titan"
        if model.startswith("cohere.embed"):
            return "cohere"
        raise BadRequestError(f"bedrock embeddings are served for Titan (amazon.titan-embed-*) and Cohere "
                              f"(cohere.embed-*) models, not {settings.model!r}.", param="model")

    def _embedding_requests(self, call: Call, inputs: list[str]) -> list[NativeRequest]:
        settings: BedrockSettings = call.settings
        body = call.body
        if self._family(settings) == "titan":
            requests = []
            for text in inputs:
                native: dict[str, Any] = {"inputText": text}
                if body.get("dimensions"):
                    native["dimensions"] = body["dimensions"]
                if "normalize" in body:
                    native["normalize"] = body["normalize"]
                requests.append(self._request(settings, "invoke", native, False))
            return requests
        native = {"texts": inputs, "input_type": body.get("input_type", "search_document")}
        if body.get("truncate"):
            native["truncate"] = body["truncate"]
        return [self._request(settings, "invoke", native, False)]

    def _embedding_answer(self, call: Call, answers: list[NativeAnswer]) -> dict[str, Any]:
        settings: BedrockSettings = call.settings
        vectors: list[list[float]] = []
        tokens = 0
        for answer in answers:
            native = json_or_none(answer.body)
            if not isinstance(native, dict):
                raise APIConnectionError("bedrock's embedding answer is not a JSON object.")
            if "embedding" in native:       # Titan: one input
                vectors.append(native["embedding"])
                tokens += int(native.get("inputTextTokenCount") or 0)
            else:                           # Cohere: floats, or {"float": [...]} with embedding_types
                found = native.get("embeddings")
                vectors.extend(found.get("float", []) if isinstance(found, dict) else found or [])
                tokens += int(answer.headers.get("x-amzn-bedrock-input-token-count") or 0)
        return embedding_list(vectors, model=settings.model, prompt_tokens=tokens,
                              encoding_format=call.body.get("encoding_format"))

    def parse(self, call: Call, answers: list[NativeAnswer]) -> dict[str, Any]:
        if call.endpoint == "embeddings":
            return self._embedding_answer(call, answers)
        native = json_or_none(answers[0].body)
        if not isinstance(native, dict):
            raise APIConnectionError("bedrock's answer is not a JSON object.")
        return translate_response(call, native)

    def decoder(self, call: Call) -> StreamDecoder:
        return BedrockStreamDecoder(call)

    def error(self, call: Call | None, status: int, body: bytes,
              headers: Mapping[str, str] | None = None) -> ProxyError:
        return bedrock_error(status, body, headers)
