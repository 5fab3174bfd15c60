"""The three proxy endpoints, and what a request body must be before anything else runs.

:data:`CHAT`, :data:`COMPLETIONS` and :data:`EMBEDDINGS` say what each endpoint requires and
allows (streaming; a pre-call hook's string as the answer). :func:`parse_body` turns the raw body
into the request's ``data`` with the checks every provider would make anyway (a 400 naming the
field), and the bounds that keep one request from stalling the others (README "Limits and
guarantees"). :func:`upstream_body` is what goes upstream; :func:`text_answer` is the answer made
from a pre-call hook's string.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

import orjson
import trio

from ..context import RequestContext, Route
from ..errors import BadRequestError
from ..streaming import DONE_FRAME, frame

__all__ = [
    "CHAT",
    "COMPLETIONS",
    "EMBEDDINGS",
    "RESPONSES",
    "MAX_CHOICES",
    "MAX_JSON_UNITS",
    "MAX_LIST_ITEMS",
    "PROXY_ONLY_FIELDS",
    "chat_frames",
    "parse_body",
    "parse_large",
    "text_answer",
    "text_answer_chunks",
    "upstream_body",
    "validate_after_hooks",
]

CHAT = Route("chat/completions", "completion",
             (("model", (str,), "a string"), ("messages", (list,), "a list of messages")), True, True)
COMPLETIONS = Route("completions", "text_completion",
                    (("model", (str,), "a string"), ("prompt", (str, list), "a string or a list")), True, True)
EMBEDDINGS = Route("embeddings", "embeddings",
                   (("model", (str,), "a string"), ("input", (str, list), "a string or a list")), False, False)
#: OpenAI's Responses API as it arrives: before any hook it becomes either a natively forwarded request
#: (``responses_native.ROUTE``, call_type ``aresponses``) or a chat completion (``core/responses_wire.py``:
#: CHAT from then on; ``to_chat_request`` checks the rest of the body)
RESPONSES = Route("responses", "completion", (("model", (str,), "a string"),), True, True)

#: request fields that steer the proxy and are not sent upstream (``tags``, ``fallbacks`` and
#: ``disable_fallbacks`` steer routing: docs/routing.md)
PROXY_ONLY_FIELDS = frozenset({"guardrails", "metadata", "cache", "tags", "fallbacks", "disable_fallbacks"})

# -- bounds on what one request body may cost the event loop (README "Limits and guarantees") --------
# Parsing cost follows the number of JSON values, not the size: orjson builds 32 MiB of base64 in
# ~30 ms but a million small messages in 0.3-0.5 s, and holds the GIL all along, so a worker thread
# alone does not keep the event loop free. ``_json_units`` (',' + '{' + '[' : an upper bound on the
# values a body can hold, counted at C speed) decides where a body is parsed and refuses the
# pathological ones before any object is built.
#: bodies up to this size and unit count are parsed inline (worst case ~10 ms of the event loop)
PARSE_INLINE_BYTES = 1024 * 1024
PARSE_INLINE_UNITS = 20_000
#: above that: a worker thread, with the cyclic GC paused during the C parse (nested containers
#: made it ~5x slower: 0.6 s instead of 0.1 s for a million units, GIL held throughout)
PARSE_LIMITER = trio.CapacityLimiter(2)
#: the most units a body may hold (~50 ms of parsing on the development machine, GIL held); commas
#: inside strings count too, but 500,000 is ~30 MB of prose, far beyond any model's context window,
#: and 100,000 messages (MAX_LIST_ITEMS) take about 300,000
MAX_JSON_UNITS = 500_000
#: the most items in ``messages`` / ``prompt`` / ``input`` (Anthropic's limit on messages; OpenAI
#: caps embeddings inputs far lower): each item costs Python work in the hooks and on the way out
MAX_LIST_ITEMS = 100_000
#: OpenAI's range for ``n``; every choice costs the proxy assembly and logging work
MAX_CHOICES = 128

_GC_PAUSE = threading.Lock()


def _json_units(raw: bytes) -> int:
    return raw.count(b",") + raw.count(b"{") + raw.count(b"[")


def _loads_gc_paused(raw: bytes) -> Any:
    """``orjson.loads`` with the cyclic GC paused: it holds the GIL anyway, so nothing else runs
    meanwhile; without the pause, every few hundred new containers trigger a collection."""
    with _GC_PAUSE:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return orjson.loads(raw)
        finally:
            if was_enabled:
                gc.enable()


async def parse_body(route: Route, raw_body: bytes) -> dict[str, Any]:
    """Small bodies inline; large or value-heavy ones in a worker thread (see PARSE_INLINE_*)."""
    if len(raw_body) <= PARSE_INLINE_BYTES and _json_units(raw_body) <= PARSE_INLINE_UNITS:
        return parse(route, raw_body)
    return await trio.to_thread.run_sync(parse_large, route, raw_body, limiter=PARSE_LIMITER)


def parse_large(route: Route, raw_body: bytes) -> dict[str, Any]:
    """In a worker thread: refuse a body with too many JSON values before building any, then parse."""
    units = _json_units(raw_body)
    if units > MAX_JSON_UNITS:
        raise BadRequestError(
            f"The request body has {units} JSON separators and containers (',', '{{', '['); the proxy "
            f"accepts at most {MAX_JSON_UNITS} per request, so that parsing one request cannot stall "
            "the others. Send fewer items.", code="request_too_complex")
    return parse(route, raw_body, _loads_gc_paused)


def _check_n(n: Any) -> None:
    """``n`` as OpenAI checks it (1 to 128): a 400 naming it, whatever the provider."""
    if n is None:
        return
    if isinstance(n, bool) or not isinstance(n, int):
        raise BadRequestError(f"Invalid type for 'n': expected an integer, got {type(n).__name__}.",
                              param="n", code="invalid_type")
    if not 1 <= n <= MAX_CHOICES:
        raise BadRequestError(f"Invalid value for 'n': expected an integer from 1 to {MAX_CHOICES}, got {n}.",
                              param="n", code="integer_out_of_range")


def parse(route: Route, raw_body: bytes, loads: Any = orjson.loads) -> dict[str, Any]:
    """The request's ``data``: a JSON object with the endpoint's required fields, or a 400 naming what is wrong."""
    if not raw_body.strip():
        raise BadRequestError("The request body is empty; expected a JSON object.")
    try:
        data = loads(raw_body)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequestError(f"The request body must be a JSON object, not {type(data).__name__}.")
    for name, types, description in route.required:
        if name not in data:
            raise BadRequestError(f"Missing required parameter: {name!r}.", param=name, code="missing_parameter")
        if not isinstance(data[name], types):
            raise BadRequestError(
                f"Invalid type for {name!r}: expected {description}, got {type(data[name]).__name__}.",
                param=name, code="invalid_type")
    for name, _types, _description in route.required:
        value = data[name]
        if isinstance(value, list) and len(value) > MAX_LIST_ITEMS:
            raise BadRequestError(
                f"Invalid {name!r}: array too long. Expected an array with maximum length {MAX_LIST_ITEMS}, "
                f"but got an array with length {len(value)} instead.", param=name, code="array_above_max_length")
    _check_n(data.get("n"))
    if "stream" in data and not isinstance(data["stream"], bool | None):
        raise BadRequestError("Invalid type for 'stream': expected a boolean.", param="stream", code="invalid_type")
    # proxy-only fields: a wrong shape would be dropped silently (metadata lost from the logs, cache
    # controls ignored), so it is an error, whatever the config (the cache checks the details)
    if not isinstance(data.get("metadata"), dict | None):
        raise BadRequestError("Invalid type for 'metadata': expected an object.", param="metadata",
                              code="invalid_type")
    if not isinstance(data.get("cache"), dict | None):
        raise BadRequestError("'cache' must be an object such as {\"no-cache\": true}.", param="cache",
                              code="invalid_type")
    if route.endpoint == "chat/completions":
        for i, message in enumerate(data["messages"]):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise BadRequestError(f"Invalid message at messages[{i}]: expected an object with a 'role'.",
                                      param=f"messages[{i}]", code="invalid_type")
    return data


def validate_after_hooks(route: Route, data: dict[str, Any]) -> None:
    """What a pre-call hook must not have broken."""
    if not isinstance(data.get("model"), str):
        raise BadRequestError("A pre-call hook left the request without a string 'model'.", param="model")


def upstream_body(ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
    """The body sent upstream: without the proxy-only fields; a stream always asks for usage (for
    cost), and ``ctx.client_wants_usage`` records whether the client asked for it too."""
    body = {k: v for k, v in data.items() if k not in PROXY_ONLY_FIELDS}
    if ctx.stream and ctx.route.can_stream and ctx.route.endpoint != "responses":
        # (a native Responses stream carries its usage in response.completed; no stream_options)
        options = body.get("stream_options")
        ctx.client_wants_usage = bool(isinstance(options, dict) and options.get("include_usage"))
        if not ctx.client_wants_usage:
            # ask for usage so cost can be computed; the usage chunk is not relayed to this client
            body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return body


def text_answer(ctx: RequestContext, text: str) -> tuple[dict[str, Any], bytes | None]:
    """A pre-call hook's string as the answer: the completion object, and its SSE frames when the
    request streams (``None`` otherwise). Only for routes that ``answers_with_text``."""
    body, chunks = text_answer_chunks(ctx, text)
    return body, None if chunks is None else chat_frames(chunks)


def chat_frames(chunks: list[dict[str, Any]]) -> bytes:
    """Chunks as a whole chat completions SSE body, ``[DONE]`` included."""
    return b"".join(frame(c) for c in chunks) + DONE_FRAME


def text_answer_chunks(ctx: RequestContext, text: str) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """:func:`text_answer` as objects: the completion, and its stream chunks (``None``: not streaming)."""
    # (a native /v1/responses request: a chat answer, which responses_wire writes as a Responses one)
    chat = ctx.route.endpoint in ("chat/completions", "responses")
    created = int(time.time())
    model = ctx.data.get("model")
    if chat:
        body: dict[str, Any] = {
            "id": ctx.id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
    else:
        body = {
            "id": ctx.id, "object": "text_completion", "created": created, "model": model,
            "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
    if not ctx.stream:
        return body, None
    if chat:
        base = {"id": body["id"], "object": "chat.completion.chunk", "created": created, "model": model}
        chunks = [
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": text},
                                  "finish_reason": None}]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        ]
    else:
        base = {"id": body["id"], "object": "text_completion", "created": created, "model": model}
        chunks = [{**base, "choices": [{"index": 0, "text": text, "finish_reason": "stop"}]}]
    return body, chunks
