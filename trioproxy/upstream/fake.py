"""The built-in ``fake/…`` provider: deterministic OpenAI-shaped answers, no network.

It produces the same bytes a real upstream would (JSON bodies, SSE streams), so everything after
the provider — hooks, streaming, logging — runs exactly as with a real one. Demos and benchmarks
use it; knobs in ``litellm_params``:

* ``mock_response``: the assistant's text (default: a sentence echoing the last user message);
* ``latency``: seconds before the answer (or before the stream's first chunk);
* ``chunk_latency``: seconds between stream chunks;
* ``fail_rate`` (0..1) and ``fail_status`` (default 500): error injection. Failures are chosen by a
  counter, not a random draw, so a rate of 0.25 fails exactly every 4th request: tests and demos
  stay deterministic.

What clients depend on behaves as OpenAI's API does (issue #15), deterministically:

* ``tools``: the answer is a call of the first function tool (or of the one ``tool_choice`` names),
  with arguments built from its JSON schema (:func:`schema_instance`), ``finish_reason:
  "tool_calls"``; streamed as OpenAI streams tool calls. ``tool_choice: "none"``, or a last message
  that is a tool's result (with ``tool_choice`` auto), gets text instead, so agent loops end;
* ``response_format``: ``json_schema`` answers an instance of the schema; ``json_object`` answers
  an instance of the first JSON schema found in the messages (what instructor's JSON mode sends),
  else ``{"answer": <the usual text>}``;
* ``n`` choices (streamed one choice per chunk, as OpenAI does), ``logprobs`` / ``top_logprobs``
  (chat) and ``logprobs: k`` (completions) in OpenAI's shapes;
* embeddings: ``input`` as a string, strings, one token-id array or token-id arrays (at most 2,048
  inputs), ``dimensions``, ``encoding_format: "base64"`` (little-endian float32, what the Node SDK
  asks by default); unit-length vectors whose float and base64 forms are the same float32 numbers.

A ``mock_response`` (the deployment's, or the request's) always wins: tools and ``response_format``
then get that text.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import struct
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
import trio

from ..errors import BadRequestError, for_status
from .base import UpstreamResponse

if TYPE_CHECKING:
    from ..config import Deployment

__all__ = ["FakeProvider", "schema_instance"]

_ids = itertools.count(1)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _mocked(deployment: Deployment, body: dict[str, Any]) -> bool:
    return "mock_response" in deployment.fake or isinstance(body.get("mock_response"), str)


def _answer(deployment: Deployment, body: dict[str, Any]) -> str:
    if "mock_response" in deployment.fake:
        return str(deployment.fake["mock_response"])
    if isinstance(body.get("mock_response"), str):
        return body["mock_response"]
    prompt = ""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            prompt = _text_of(message.get("content"))
            break
    if not prompt:
        raw = body.get("prompt")
        prompt = raw if isinstance(raw, str) else " ".join(map(str, raw)) if isinstance(raw, list) else ""
    prompt = " ".join(prompt.split())[:200]
    return f"This is a fake answer from {deployment.upstream_model} to: {prompt}" if prompt else \
        f"This is a fake answer from {deployment.upstream_model}."


#: OpenAI's limit on ``n``; also keeps one request from building millions of choices on the Trio thread
MAX_CHOICES = 128


def _choice_count(body: dict[str, Any]) -> int:
    """``n``, checked the way OpenAI checks it: a 400 naming the parameter, never a crash."""
    n = body.get("n")
    if n is None:
        return 1
    if isinstance(n, bool) or not isinstance(n, int):
        raise BadRequestError(f"Invalid type for 'n': expected an integer, got {type(n).__name__}.",
                              param="n", code="invalid_type")
    if not 1 <= n <= MAX_CHOICES:
        raise BadRequestError(f"Invalid value for 'n': expected an integer from 1 to {MAX_CHOICES}, got {n}.",
                              param="n", code="integer_out_of_range")
    return n


def _count_tokens(text: str) -> int:
    return max(1, len(text.split())) if text else 0


def _prompt_tokens(body: dict[str, Any]) -> int:
    words = 0
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            words += len(_text_of(message.get("content")).split()) + 3
    for key in ("prompt", "input"):
        value = body.get(key)
        if isinstance(value, str):
            words += len(value.split())
        elif isinstance(value, list):
            words += sum(len(str(v).split()) for v in value)
    return max(words, 1)


def _int_param(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    """An integer parameter, checked the way OpenAI checks it (a 400 naming it, never a crash)."""
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequestError(f"Invalid type for '{name}': expected an integer, got {type(value).__name__}.",
                              param=name, code="invalid_type")
    if not low <= value <= high:
        raise BadRequestError(f"Invalid value for '{name}': expected an integer from {low} to {high}, got {value}.",
                              param=name, code="integer_out_of_range")
    return value


#: OpenAI's limits on one embeddings request; the fake's vectors are short unless ``dimensions`` asks
MAX_EMBEDDING_INPUTS = 2048
MAX_DIMENSIONS = 3072
DEFAULT_DIMENSIONS = 16


def _is_tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and \
        all(isinstance(t, int) and not isinstance(t, bool) for t in value)


def _embedding_inputs(value: Any) -> list[tuple[str, int]]:
    """``input`` as (seed, token count) per embedding, in OpenAI's four shapes; else a 400."""
    if isinstance(value, str):
        return [(value, _count_tokens(value))]
    if _is_tokens(value):                                   # one token-id array is ONE input
        return [("tokens:" + ",".join(map(str, value)), len(value))]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return [(v, _count_tokens(v)) for v in value]
    if isinstance(value, list) and value and all(_is_tokens(v) for v in value):
        return [("tokens:" + ",".join(map(str, v)), len(v)) for v in value]
    raise BadRequestError("Invalid 'input': expected a string, an array of strings, an array of token ids "
                          "(integers) or an array of token-id arrays, none of them empty.",
                          param="input", code="invalid_type")


def _embedding(text: str, dims: int = DEFAULT_DIMENSIONS) -> list[float]:
    """A unit vector seeded by ``text`` (like OpenAI's, length 1), made of float32 numbers: the JSON
    floats and the base64 bytes of one vector decode to exactly the same values."""
    blocks = -(-dims * 2 // 32)
    digest = b"".join(hashlib.sha256(text.encode() + (i.to_bytes(4, "little") if i else b"")).digest()
                      for i in range(blocks))
    raw = [v / 32768.0 - 1.0 for v in struct.unpack(f">{dims}H", digest[: dims * 2])]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return list(struct.unpack(f"<{dims}f", struct.pack(f"<{dims}f", *(v / norm for v in raw))))


async def _embeddings(body: dict[str, Any], model: str) -> dict[str, Any]:
    items = _embedding_inputs(body.get("input"))
    if len(items) > MAX_EMBEDDING_INPUTS:
        raise BadRequestError(f"Invalid 'input': at most {MAX_EMBEDDING_INPUTS} inputs per request, got {len(items)}.",
                              param="input", code="array_above_max_length")
    dims = _int_param(body, "dimensions", DEFAULT_DIMENSIONS, 1, MAX_DIMENSIONS)
    encoding = body.get("encoding_format")
    if encoding not in (None, "float", "base64"):
        raise BadRequestError(f"Invalid value for 'encoding_format': expected 'float' or 'base64', got {encoding!r}.",
                              param="encoding_format", code="invalid_value")
    data: list[dict[str, Any]] = []
    for i, (seed, _) in enumerate(items):
        vector: Any = _embedding(seed, dims)
        if encoding == "base64":                            # OpenAI's bytes: little-endian float32
            vector = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": vector})
        if i % 64 == 63:                                    # 2,048 long vectors: let others run
            await trio.lowlevel.checkpoint()
    tokens = max(1, sum(count for _, count in items))
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


# --- tools and response_format: what the "model" says ------------------------------------------

_FORMATS = {"date-time": "2024-01-01T00:00:00Z", "date": "2024-01-01", "time": "00:00:00Z",
            "email": "fake@example.com", "uri": "https://example.com/", "uuid": "00000000-0000-4000-8000-000000000000"}
#: nesting past which an optional branch (``anyOf`` with null) is left empty so recursive ``$ref``s
#: end; twice that is the hard stop (objects empty, arrays at ``minItems``)
_SCHEMA_DEPTH = 16


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(schema: dict[str, Any], integer: bool) -> int | float:
    value: float = 0
    low, high = schema.get("minimum"), schema.get("maximum")
    xlow, xhigh = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    step = 1 if integer else 0.5
    if _is_number(low) and value < low:
        value = low
    if _is_number(xlow) and value <= xlow:
        value = xlow + step
    if _is_number(high) and value > high:
        value = high
    if _is_number(xhigh) and value >= xhigh:
        value = xhigh - step
    if not integer:
        return value
    up = math.ceil(value)
    return int(up if not (_is_number(high) and up > high) else math.floor(value))


def _resolve(root: Any, ref: str) -> dict[str, Any] | None:
    """A local ``$ref`` (``#/$defs/X``, ``#/definitions/X``, ``#``); remote ones are not followed."""
    if not ref.startswith("#"):
        return None
    node = root
    for part in ref[1:].split("/")[1:]:
        node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def schema_instance(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """A value valid against the JSON ``schema`` as far as simple keywords go: ``type`` (first non-null
    of a list), ``properties`` (every one filled, required or not), ``items``/``prefixItems``,
    ``enum``, ``const``, ``anyOf``/``oneOf`` (first non-null option), ``allOf`` (merged), local
    ``$ref``, ``minimum``/``maximum`` (and exclusive), ``minItems``/``maxItems``,
    ``minLength``/``maxLength`` and common string ``format``s. ``pattern`` and ``multipleOf`` are not
    honoured. Deterministic: strings are "fake", numbers 0 (or the nearest bound), booleans true."""
    root = schema if root is None else root
    if not isinstance(schema, dict):
        return None                                         # a boolean schema: ``true`` accepts null
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if isinstance(schema.get("$ref"), str) and depth < 2 * _SCHEMA_DEPTH:
        target = _resolve(root, schema["$ref"])
        if target is not None:
            return schema_instance(target, root, depth + 1)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            rest = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            if len(rest) < len(options) and depth >= _SCHEMA_DEPTH:
                return None
            return schema_instance(rest[0] if rest else options[0], root, depth + 1)
    if isinstance(schema.get("allOf"), list) and schema["allOf"]:
        parts = [schema_instance(part, root, depth + 1) for part in schema["allOf"]]
        if all(isinstance(part, dict) for part in parts):
            return {k: v for part in parts for k, v in part.items()}
        return parts[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        if "default" in schema:
            return schema["default"]
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, dict) or depth >= 2 * _SCHEMA_DEPTH:
            return {}
        return {name: schema_instance(sub, root, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        low = schema.get("minItems") if isinstance(schema.get("minItems"), int) else 0
        high = schema.get("maxItems") if isinstance(schema.get("maxItems"), int) else None
        count = low if depth >= 2 * _SCHEMA_DEPTH else max(low, 1) if high is None else min(max(low, 1), high)
        prefix = schema.get("prefixItems") if isinstance(schema.get("prefixItems"), list) else []
        return [schema_instance(prefix[i] if i < len(prefix) else schema.get("items", {}), root, depth + 1)
                for i in range(count)]
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    text = _FORMATS.get(schema.get("format"), "fake")
    min_length, max_length = schema.get("minLength"), schema.get("maxLength")
    if isinstance(min_length, int) and len(text) < min_length:
        text += "x" * (min_length - len(text))
    if isinstance(max_length, int):
        text = text[:max_length]
    return text


def _tool_to_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The function tool the fake calls, or None for a text answer (see the module docstring)."""
    tools = body.get("tools")
    functions = [t["function"] for t in (tools if isinstance(tools, list) else [])
                 if isinstance(t, dict) and t.get("type", "function") == "function"
                 and isinstance(t.get("function"), dict) and isinstance(t["function"].get("name"), str)]
    choice = body.get("tool_choice")
    if not functions or choice == "none":
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if isinstance(choice.get("function"), dict) else None
        for function in functions:
            if function["name"] == name:
                return function
        raise BadRequestError(f"Invalid 'tool_choice': no function named {name!r} in 'tools'.",
                              param="tool_choice", code="invalid_value")
    messages = body.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages and isinstance(messages[-1], dict) else {}
    if choice != "required" and last.get("role") in ("tool", "function"):
        return None                                         # the tool answered: now the model talks
    return functions[0]


_decoder = json.JSONDecoder()


def _schema_in_messages(body: dict[str, Any]) -> dict[str, Any] | None:
    """The first JSON schema written in the messages, system ones first: JSON mode's instructions
    (instructor's ``Mode.JSON`` puts the schema there). At most 32 candidate ``{`` per message."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    messages.sort(key=lambda m: m.get("role") not in ("system", "developer"))
    for message in messages:
        text = _text_of(message.get("content"))
        start = text.find("{")
        for _ in range(32):
            if start < 0:
                break
            try:
                value, _end = _decoder.raw_decode(text, start)
            except ValueError:
                value = None
            if isinstance(value, dict) and (isinstance(value.get("properties"), dict) or value.get("type") == "object"):
                return value
            start = text.find("{", start + 1)
    return None


def _structured(body: dict[str, Any], text: str) -> str | None:
    """The JSON answer ``response_format`` asks for, or None when it asks for none."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return orjson.dumps(schema_instance(schema if isinstance(schema, dict) else {"type": "object"})).decode()
    if fmt.get("type") == "json_object":
        schema = _schema_in_messages(body)
        return orjson.dumps(schema_instance(schema) if schema is not None else {"answer": text}).decode()
    return None


def _reply(deployment: Deployment, body: dict[str, Any], chat: bool) -> tuple[str | None, dict[str, str] | None]:
    """(text, function call): what the model says. A ``mock_response`` always wins."""
    text = _answer(deployment, body)
    if not chat or _mocked(deployment, body):
        return text, None
    tool = _tool_to_call(body)
    if tool is not None:
        arguments = schema_instance(tool.get("parameters") or {"type": "object", "properties": {}})
        return None, {"name": tool["name"], "arguments": orjson.dumps(arguments).decode()}
    structured = _structured(body, text)
    return (structured if structured is not None else text), None


def _call_id() -> str:
    return f"call_fake_{next(_ids)}"


# --- logprobs ---------------------------------------------------------------------------------

def _top_logprobs(body: dict[str, Any], chat: bool) -> int | None:
    """How many alternatives per token the client asked for; None when it asked for no logprobs."""
    if not chat:                                            # completions: ``logprobs: k`` (0..5)
        return None if body.get("logprobs") is None else _int_param(body, "logprobs", 0, 0, 5)
    top = _int_param(body, "top_logprobs", 0, 0, 20)
    wanted = body.get("logprobs")
    if wanted is not None and not isinstance(wanted, bool):
        raise BadRequestError(f"Invalid type for 'logprobs': expected a boolean, got {type(wanted).__name__}.",
                              param="logprobs", code="invalid_type")
    if not wanted:
        if top:
            raise BadRequestError("'top_logprobs' needs 'logprobs': true.", param="top_logprobs", code="invalid_value")
        return None
    return top


def _logprob(token: str, rank: int = 0) -> float:
    return round(-1.0 - hashlib.sha256(token.encode()).digest()[0] / 256 - rank, 4)


def _alternatives(token: str, top: int) -> list[str]:
    return [token, *(f"{token}~{rank}" for rank in range(1, top))][:top]


def _chat_logprobs(pieces: list[str], top: int) -> dict[str, Any]:
    return {"content": [{"token": piece, "logprob": _logprob(piece), "bytes": list(piece.encode()),
                         "top_logprobs": [{"token": alt, "logprob": _logprob(piece, rank), "bytes": list(alt.encode())}
                                          for rank, alt in enumerate(_alternatives(piece, top))]}
                        for piece in pieces],
            "refusal": None}


def _completion_logprobs(pieces: list[str], top: int, offset: int = 0) -> dict[str, Any]:
    return {"tokens": pieces, "token_logprobs": [_logprob(piece) for piece in pieces],
            "top_logprobs": [{alt: _logprob(piece, rank) for rank, alt in enumerate(_alternatives(piece, top))}
                             for piece in pieces],
            "text_offset": list(itertools.accumulate((len(piece) for piece in pieces[:-1]), initial=offset))}


def _chunks(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


class FakeStream:
    #: the fake ends its streams with ``data: [DONE]``, as OpenAI does (see ``base.UpstreamStream``)
    sends_done_marker = True

    def __init__(self, events: list[bytes], chunk_latency: float) -> None:
        self.status = 200
        self.headers = {"content-type": "text/event-stream"}
        self._events = events
        self._chunk_latency = chunk_latency
        self.closed = False

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for i, event in enumerate(self._events):
            if self.closed:
                return
            if self._chunk_latency and i:
                await trio.sleep(self._chunk_latency)
            yield event

    async def aclose(self) -> None:
        self.closed = True


class FakeProvider:
    def __init__(self) -> None:
        self._calls: dict[int, int] = {}

    async def _prelude(self, deployment: Deployment) -> None:
        fail_rate = float(deployment.fake.get("fail_rate", 0.0))
        if fail_rate > 0:
            n = self._calls.get(deployment.index, 0) + 1
            self._calls[deployment.index] = n
            if int(n * fail_rate) > int((n - 1) * fail_rate):
                status = int(deployment.fake.get("fail_status", 500))
                raise for_status(status, f"Injected failure from the fake provider ({deployment.upstream_model})")
        latency = float(deployment.fake.get("latency", 0.0))
        if latency:
            await trio.sleep(latency)
        else:
            await trio.lowlevel.checkpoint()

    async def send(self, deployment: Deployment, endpoint: str, body: dict[str, Any]) -> UpstreamResponse:
        await self._prelude(deployment)
        created = int(time.time())
        model = deployment.upstream_model
        if endpoint == "embeddings":
            payload = await _embeddings(body, model)
        else:
            chat = endpoint != "completions"
            n = _choice_count(body)
            top = _top_logprobs(body, chat)
            text, call = _reply(deployment, body, chat)
            pieces = _chunks(text) if text is not None else []
            prompt_tokens = _prompt_tokens(body)
            completion_tokens = _count_tokens(text if call is None else call["arguments"]) * n
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                     "total_tokens": prompt_tokens + completion_tokens}
            if not chat:
                payload = {
                    "id": f"cmpl-fake-{next(_ids)}", "object": "text_completion", "created": created, "model": model,
                    "choices": [{"index": i, "text": text,
                                 "logprobs": None if top is None else _completion_logprobs(pieces, top),
                                 "finish_reason": "stop"} for i in range(n)],
                    "usage": usage,
                }
            else:
                choices = []
                for i in range(n):
                    message: dict[str, Any] = {"role": "assistant", "content": text}
                    if call is not None:
                        message["tool_calls"] = [{"id": _call_id(), "type": "function", "function": dict(call)}]
                    choices.append({"index": i, "message": message,
                                    "logprobs": None if top is None else _chat_logprobs(pieces, top),
                                    "finish_reason": "stop" if call is None else "tool_calls"})
                payload = {
                    "id": f"chatcmpl-fake-{next(_ids)}", "object": "chat.completion", "created": created, "model": model,
                    "choices": choices, "usage": usage,
                }
        return UpstreamResponse(200, {"content-type": "application/json"}, orjson.dumps(payload))

    async def open_stream(self, deployment: Deployment, endpoint: str, body: dict[str, Any]) -> FakeStream:
        await self._prelude(deployment)
        model = deployment.upstream_model
        created = int(time.time())
        n = _choice_count(body)
        chat = endpoint != "completions"
        top = _top_logprobs(body, chat)
        text, call = _reply(deployment, body, chat)
        cid = f"{'chatcmpl' if chat else 'cmpl'}-fake-{next(_ids)}"
        obj = "chat.completion.chunk" if chat else "text_completion"

        def steps(i: int) -> list[dict[str, Any]]:
            """Choice ``i``'s pieces, one per chunk (OpenAI sends one choice per chunk)."""
            if call is not None:
                arguments = call["arguments"]
                head = {"index": 0, "id": _call_id(), "type": "function",
                        "function": {"name": call["name"], "arguments": ""}}
                return [{"index": i, "delta": {"role": "assistant", "content": None, "tool_calls": [head]},
                         "logprobs": None, "finish_reason": None},
                        *({"index": i, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": arguments[k:k + 16]}}]},
                           "logprobs": None, "finish_reason": None} for k in range(0, len(arguments), 16)),
                        {"index": i, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}]
            assert text is not None
            pieces, offset, out = _chunks(text), 0, []
            if chat:
                out.append({"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                            "finish_reason": None})
            for piece in pieces:
                if chat:
                    out.append({"index": i, "delta": {"content": piece}, "finish_reason": None,
                                "logprobs": None if top is None else _chat_logprobs([piece], top)})
                else:
                    out.append({"index": i, "text": piece, "finish_reason": None,
                                "logprobs": None if top is None else _completion_logprobs([piece], top, offset)})
                offset += len(piece)
            out.append({"index": i, "delta": {}, "logprobs": None, "finish_reason": "stop"} if chat else
                       {"index": i, "text": "", "logprobs": None, "finish_reason": "stop"})
            return out

        per_choice = [steps(i) for i in range(n)]
        events: list[dict[str, Any]] = [
            {"id": cid, "object": obj, "created": created, "model": model, "choices": [choice[j]]}
            for j in range(len(per_choice[0])) for choice in per_choice
        ]
        if (body.get("stream_options") or {}).get("include_usage"):
            prompt_tokens = _prompt_tokens(body)
            completion_tokens = _count_tokens(text if call is None else call["arguments"]) * n
            events.append({"id": cid, "object": obj, "created": created, "model": model, "choices": [],
                           "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                     "total_tokens": prompt_tokens + completion_tokens}})
        frames = [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]
        return FakeStream(frames, float(deployment.fake.get("chunk_latency", 0.0)))
