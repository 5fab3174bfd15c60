"""The per-request flow, and every nursery and cancel scope a request has.

This module answers "what is cancelled when?":

* **Pre-call** hooks run one after another, each under ``hook_timeout`` (``trio.fail_after``).
* **Moderation ‖ upstream** (:meth:`Pipeline._race`): one nursery runs every moderation hook and
  the upstream call. Each child records its own outcome and never raises into the nursery, so no
  exception group can escape. The first moderation hook that raises cancels the nursery with reason
  ``"moderation rejected"``: the upstream request is abandoned mid-flight and httpx closes its
  connection, so the provider stops generating. An upstream failure cancels the moderation hooks.
  If the upstream answers first, the nursery waits for every verdict. Exactly one outcome leaves.
  For streams, "the upstream answered" means status and headers: no byte of the body is read, let
  alone sent, before every verdict is in; a rejection closes the already-open stream.
* **Client disconnect**: quart-trio cancels the request's task. Nothing here catches
  ``trio.Cancelled`` for good: on the way out, a shielded scope with a deadline runs the failure
  hooks once (``ClientDisconnectedError``), closes the upstream stream and the iterator hooks'
  generators, and tells the observers; then the cancellation continues.
* **Streaming body** (:class:`StreamRelay`): its first upstream event is read in ``handle`` (before
  the status line, so an error there gets its own status); the rest runs after the status line is
  sent, in the same request task, with no nursery of its own (a generator must not hold one open
  across ``yield``). The HTTP layer relays it with :meth:`StreamRelay.send_to`: one cancel scope
  around the frame generator and the writes, carrying the stream's ``max_stream_duration`` deadline,
  which :meth:`StreamRelay.stop` cancels at shutdown (:meth:`Pipeline.stop_streams`); either way the
  generator is closed, the failure hooks run once with the reason, and the error event is written.
  (Reading the first event has its own scope with the same deadline.) The cleanup is idempotent
  and is also called by the connection adapter (``asgi.py``), so an upstream stream is closed even
  when the client leaves before the first chunk is pulled.

Which hooks run and how their results combine is ``scheduler.py``'s business, not this module's.
"""

from __future__ import annotations

import copy
import gc
import logging
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import trio

from ..auth.identity import UserAPIKeyAuth, authenticate
from ..caching.dual_cache import DualCache
from ..config import ProxyConfig
from ..context import Observer, RequestContext, Route
from ..errors import (
    APIConnectionError,
    APIError,
    BadRequestError,
    ClientDisconnectedError,
    HookCrashedError,
    HookTimeoutError,
    InternalServerError,
    ProxyError,
    RejectedByHookError,
    ResponseTooLargeError,
    ShuttingDownError,
    StreamDurationExceededError,
    UpstreamStreamInterruptedError,
    error_body,
    to_proxy_error,
)
from ..hooks import scheduler
from ..hooks.loader import CALL_HOOKS, HookCall
from ..masking import SecretScrubber
from ..streaming import (
    DONE,
    DONE_FRAME,
    ErrorEvent,
    SSEParser,
    StreamAssembler,
    error_frame,
    frame,
    parse_chunk,
)
from ..types import wrap_response
from ..upstream.errors import envelope_error
from ..upstream.router import Router

__all__ = ["CHAT", "COMPLETIONS", "EMBEDDINGS", "Pipeline", "ProxyResponse", "StreamRelay"]

log = logging.getLogger("trioproxy.pipeline")

CHAT = Route("chat/completions", "completion",
             (("model", (str,), "a string"), ("messages", (list,), "a list of messages")), True, True)
COMPLETIONS = Route("completions", "text_completion",
                    (("model", (str,), "a string"), ("prompt", (str, list), "a string or a list")), True, True)
EMBEDDINGS = Route("embeddings", "embeddings",
                   (("model", (str,), "a string"), ("input", (str, list), "a string or a list")), False, False)

#: request fields that steer the proxy and are not sent upstream
_PROXY_ONLY_FIELDS = frozenset({"guardrails", "metadata", "cache"})

#: how long cleanup may take once the request is cancelled (client gone, server stopping)
CLEANUP_DEADLINE = 5.0

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

#: ``litellm_params.max_stream_duration`` when a deployment does not set it (seconds)
DEFAULT_MAX_STREAM_DURATION = 600.0

#: ``data: `` and the blank line around an event's payload (counted towards max_response_size_mb)
_FRAMING = 8


@dataclass
class ProxyResponse:
    """What the HTTP layer sends: a status, headers and bytes or a :class:`StreamRelay`."""

    status: int
    headers: dict[str, str]
    body: bytes | StreamRelay
    media_type: str = "application/json"


@contextmanager
def _single_cancelled() -> Iterator[None]:
    """Let a nursery cancelled from outside raise one ``Cancelled``, never a group of them.

    Children of our nurseries catch their own errors, so a group can only hold ``Cancelled``s
    (or a bug, which becomes one 500 rather than a group reaching Quart).
    """
    try:
        yield
    except BaseExceptionGroup as group:
        cancelled, rest = group.split(trio.Cancelled)
        if rest is not None:
            if rest.split(Exception)[1] is not None:
                raise  # KeyboardInterrupt/SystemExit: not ours to turn into a response
            raise InternalServerError("Internal error in the proxy; see the server log.") from group
        leaf: BaseException = cancelled  # type: ignore[assignment]
        while isinstance(leaf, BaseExceptionGroup):
            leaf = leaf.exceptions[0]
        raise leaf from None


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


def _copy_request(data: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON request; through orjson (C) when it is plain JSON, which it nearly always is."""
    try:
        return orjson.loads(orjson.dumps(data))
    except TypeError:
        return copy.deepcopy(data)


def _is_usage_only(chunk: Any) -> bool:
    return isinstance(chunk, dict) and not dict.get(chunk, "choices") and bool(dict.get(chunk, "usage"))


class Pipeline:
    def __init__(
        self,
        config: ProxyConfig,
        plan: scheduler.HookPlan,
        router: Router,
        cache: DualCache,
        scrubber: SecretScrubber,
        observers: list[Observer] | None = None,
    ) -> None:
        self.config = config
        self.plan = plan
        self.router = router
        self.cache = cache
        self.scrubber = scrubber
        # the same list object the app holds: observers added after construction are seen
        self.observers: list[Observer] = observers if observers is not None else []
        #: the response cache seam (``response_cache.py``); None when caching is off
        self.response_cache: Any = None
        #: ``cost_of(ctx) -> float | None`` (``cost.py``, set by observability): the cost header
        self.cost_of: Any = None
        self.hook_timeout = config.hook_timeout
        self.master_key = config.master_key
        self.max_response_bytes = config.max_response_bytes   # MiB → bytes in one place (config.py)
        #: streams between their upstream's status line and their end (what :meth:`stop_streams` stops)
        self.open_streams: set[StreamRelay] = set()
        #: set by stop_streams: streams opened later stop at once
        self._stopping: Callable[[], ProxyError] | None = None

    def stop_streams(self, make_error: Callable[[], ProxyError] | None = None) -> int:
        """End every open stream (and every stream opened from now on) with an error event.

        For graceful shutdown (``cli.py`` calls it a little before Hypercorn's deadline): each stream
        stops at its next upstream read, sends ``make_error()`` (default: :class:`ShuttingDownError`,
        code ``shutdown``) as its terminal SSE event, runs the failure hooks once and is logged as a
        failure, then its response ends. Returns how many streams were open.
        """
        self._stopping = make_error or _shutdown_error
        streams = list(self.open_streams)
        for relay in streams:
            relay.stop(self._stopping())
        return len(streams)

    # -- entry point -----------------------------------------------------------------------------
    async def handle(self, route: Route, raw_body: bytes | ProxyError, headers: Mapping[str, str]) -> ProxyResponse:
        """One request, start to finish. Always returns a response; only ``Cancelled`` escapes."""
        ctx = RequestContext(route=route, request_headers=dict(headers))  # names already lower-case
        for observer in self.observers:
            start = getattr(observer, "on_request_start", None)
            if start is not None:
                _notify(start, ctx)
        values: dict[str, Any] = {"_ctx": ctx, "cache": self.cache, "call_type": route.call_type,
                                  "request_headers": ctx.request_headers}
        try:
            try:
                return await self._run(ctx, values, raw_body, headers)
            except Exception as exc:
                error = to_proxy_error(exc)
                if not isinstance(exc, ProxyError):
                    log.error("request %s failed with an unexpected error", ctx.id, exc_info=exc)
                return await self._fail(ctx, values, error)
        except trio.Cancelled:
            # the client left (or the server is stopping) at any point above, the failure path included
            await self._cancelled(ctx, values)
            raise

    async def _run(self, ctx: RequestContext, values: dict[str, Any], raw_body: bytes | ProxyError,
                   headers: Mapping[str, str]) -> ProxyResponse:
        ctx.user = authenticate(self.master_key, headers)
        values["user_api_key_dict"] = ctx.user
        if isinstance(raw_body, ProxyError):   # the HTTP layer refused the body (413)
            raise raw_body
        data = await self._parse_body(ctx.route, raw_body)
        values["data"] = values["request_data"] = ctx.data = data
        ctx.requested_model = data.get("model")
        ctx.stream = bool(data.get("stream")) and ctx.route.can_stream
        self.plan.check_requested_guardrails(data)

        answer = await scheduler.run_pre_call(self.plan.calls("pre_call", data), self._invoke, values)
        data = ctx.data = values["data"]
        if answer is not None:
            return await self._answer_with_text(ctx, values, answer)
        self._validate_after_hooks(ctx.route, data)
        self.router.deployments(data["model"])  # unknown model → 404 before anything is sent
        if ctx.stream:
            return await self._stream(ctx, values)
        return await self._complete(ctx, values)

    # -- parsing and validation ------------------------------------------------------------------
    async def _parse_body(self, route: Route, raw_body: bytes) -> dict[str, Any]:
        """Small bodies inline; large or value-heavy ones in a worker thread (see PARSE_INLINE_*)."""
        if len(raw_body) <= PARSE_INLINE_BYTES and _json_units(raw_body) <= PARSE_INLINE_UNITS:
            return self._parse(route, raw_body)
        return await trio.to_thread.run_sync(self._parse_large, route, raw_body, limiter=PARSE_LIMITER)

    @staticmethod
    def _parse_large(route: Route, raw_body: bytes) -> dict[str, Any]:
        """In a worker thread: refuse a body with too many JSON values before building any, then parse."""
        units = _json_units(raw_body)
        if units > MAX_JSON_UNITS:
            raise BadRequestError(
                f"The request body has {units} JSON separators and containers (',', '{{', '['); the proxy "
                f"accepts at most {MAX_JSON_UNITS} per request, so that parsing one request cannot stall "
                "the others. Send fewer items.", code="request_too_complex")
        return Pipeline._parse(route, raw_body, _loads_gc_paused)

    @staticmethod
    def _parse(route: Route, raw_body: bytes, loads: Any = orjson.loads) -> dict[str, Any]:
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

    @staticmethod
    def _validate_after_hooks(route: Route, data: dict[str, Any]) -> None:
        if not isinstance(data.get("model"), str):
            raise BadRequestError("A pre-call hook left the request without a string 'model'.", param="model")

    # -- invoking one hook -----------------------------------------------------------------------
    async def _invoke(self, call: HookCall, values: dict[str, Any]) -> Any:
        """One hook under its time limit; its duration goes into the request's timings."""
        started = time.perf_counter()
        try:
            with trio.fail_after(self.hook_timeout):
                return await call.call(values)
        except trio.TooSlowError:
            raise HookTimeoutError(call.handler, CALL_HOOKS[call.phase], self.hook_timeout) from None
        finally:
            values["_ctx"].hook_timings.append((call.handler, call.phase, time.perf_counter() - started))

    # -- the upstream call and the moderation race -----------------------------------------------
    def _upstream_body(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        # proxy-only fields stay here: guardrail selection and the caller's logging metadata
        body = {k: v for k, v in data.items() if k not in _PROXY_ONLY_FIELDS}
        if ctx.stream and ctx.route.can_stream:
            options = body.get("stream_options")
            ctx.client_wants_usage = bool(isinstance(options, dict) and options.get("include_usage"))
            if not ctx.client_wants_usage:
                # ask for usage so cost can be computed; the usage chunk is not relayed to this client
                body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        return body

    def _on_attempt(self, ctx: RequestContext) -> Any:
        def record(deployment: Any, outgoing: dict[str, Any]) -> None:
            ctx.deployment = deployment
            ctx.upstream_body = outgoing
            ctx.upstream_start = time.perf_counter()
            for observer in self.observers:
                observer.on_upstream_request(ctx)
        return record

    async def _call_upstream(self, ctx: RequestContext, body: dict[str, Any]) -> Any:
        """The upstream answer (a response, or an open stream), or a cache hit standing in for it."""
        model = body["model"]
        if self.response_cache is not None:
            hit = await self.response_cache.lookup(ctx, body)   # async: a shared backend does I/O
            if hit is not None:
                ctx.cache_hit = True
                return hit
        try:
            if ctx.stream:
                _, result = await self.router.open_stream(model, ctx.route.endpoint, body, self._on_attempt(ctx))
            else:
                _, result = await self.router.send(model, ctx.route.endpoint, body, self._on_attempt(ctx))
        finally:
            ctx.upstream_end = time.perf_counter()
        return result

    async def _race(self, ctx: RequestContext, values: dict[str, Any]) -> Any:
        """Moderation hooks ‖ upstream call. Returns the upstream result or raises one ProxyError."""
        data = values["data"]
        body = self._upstream_body(ctx, data)
        calls = self.plan.calls("moderation", data)
        if not calls:
            return await self._call_upstream(ctx, body)

        outcome: dict[str, Any] = {}
        # (rank, error). Errors that happen at the same moment are ordered by rank — moderation hooks
        # in config order, then the upstream — not by Trio's deliberately random task order. A child
        # that fails yields one scheduling tick before cancelling, so that every task woken in the
        # same batch records its own outcome first (after a cancel, Trio would turn their pending
        # results into Cancelled: only the outermost cancelled scope catches it).
        errors: list[tuple[int, ProxyError]] = []

        async def fail(rank: int, error: ProxyError, reason: str) -> None:
            errors.append((rank, error))
            await trio.lowlevel.cancel_shielded_checkpoint()
            nursery.cancel_scope.cancel(reason=reason)

        try:
            with _single_cancelled():
                async with trio.open_nursery() as nursery:

                    async def upstream() -> None:
                        try:
                            outcome["upstream"] = await self._call_upstream(ctx, body)
                        except Exception as exc:
                            await fail(len(calls), to_proxy_error(exc), "upstream failed")

                    async def moderate(rank: int, call: HookCall) -> None:
                        # each hook gets its own copy: moderation cannot change what is sent, and
                        # concurrent hooks cannot see each other's changes (no order is promised)
                        own = _copy_request(data)
                        try:
                            await self._invoke(call, {**values, "data": own, "request_data": own})
                        except Exception as exc:
                            await fail(rank, scheduler.classify(call, exc), "moderation rejected")

                    nursery.start_soon(upstream)
                    for rank, call in enumerate(calls):
                        nursery.start_soon(moderate, rank, call)
        except BaseException:
            # cancelled from outside (client gone) after the stream opened: close it on the way out
            if ctx.stream and outcome.get("upstream") is not None:
                await self._close_quietly(outcome["upstream"])
            raise

        if errors:
            if ctx.stream and outcome.get("upstream") is not None:
                await self._close_quietly(outcome["upstream"])
            raise min(errors, key=lambda pair: pair[0])[1]
        return outcome["upstream"]

    # -- non-streaming ---------------------------------------------------------------------------
    async def _complete(self, ctx: RequestContext, values: dict[str, Any]) -> ProxyResponse:
        upstream = await self._race(ctx, values)
        if self.max_response_bytes is not None and len(upstream.body) > self.max_response_bytes:
            raise self._response_too_large(len(upstream.body))
        try:
            parsed = orjson.loads(upstream.body)
        except orjson.JSONDecodeError:
            raise to_proxy_error(ProxyError("The upstream answered with invalid JSON.", status_code=502)) from None
        response = values["response"] = wrap_response(parsed)
        body = ctx.upstream_raw = upstream.body
        calls = self.plan.calls("post_call_success", values["data"])
        if calls:
            response = await scheduler.run_post_call_success(calls, self._invoke, values)
            body = orjson.dumps(response)
        ctx.response = response
        ctx.usage = dict.get(response, "usage") if isinstance(response, dict) else None
        headers = await self._response_headers(ctx, values, response)
        self._succeed(ctx, 200)
        return ProxyResponse(200, headers, body)

    def _response_too_large(self, size: int) -> ResponseTooLargeError:
        limit = self.max_response_bytes or 0
        return ResponseTooLargeError(
            f"Response size is too large. Response size is {size / 1024 / 1024:.6g} MB. "
            f"Max size is {limit / 1024 / 1024:.6g} MB"
        )

    # -- a pre-call hook's string as the answer ---------------------------------------------------
    async def _answer_with_text(self, ctx: RequestContext, values: dict[str, Any],
                                answer: scheduler.Answer) -> ProxyResponse:
        if not ctx.route.answers_with_text:
            raise RejectedByHookError(answer.text)
        chat = ctx.route.endpoint == "chat/completions"
        created = int(time.time())
        model = ctx.data.get("model")
        if chat:
            body: dict[str, Any] = {
                "id": f"chatcmpl-{ctx.id}", "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }
        else:
            body = {
                "id": f"cmpl-{ctx.id}", "object": "text_completion", "created": created, "model": model,
                "choices": [{"index": 0, "text": answer.text, "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }
        response = ctx.response = wrap_response(body)
        headers = await self._response_headers(ctx, values, response)
        self._succeed(ctx, 200)
        if not ctx.stream:
            return ProxyResponse(200, headers, orjson.dumps(body))
        if chat:
            base = {"id": body["id"], "object": "chat.completion.chunk", "created": created, "model": model}
            chunks = [
                {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": answer.text},
                                      "finish_reason": None}]},
                {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            ]
        else:
            base = {"id": body["id"], "object": "text_completion", "created": created, "model": model}
            chunks = [{**base, "choices": [{"index": 0, "text": answer.text, "finish_reason": "stop"}]}]
        payload = b"".join(frame(c) for c in chunks) + DONE_FRAME
        return ProxyResponse(200, headers, payload, "text/event-stream")

    # -- streaming -------------------------------------------------------------------------------
    async def _stream(self, ctx: RequestContext, values: dict[str, Any]) -> ProxyResponse:
        upstream = await self._race(ctx, values)
        relay = StreamRelay(self, ctx, values, upstream)
        try:
            # up to the first event before the status line: an error there gets its own status
            await relay.start()
            headers = await self._response_headers(ctx, values, None)
        except BaseException:
            await relay.discard()   # closes the upstream: shielded, with a deadline
            raise
        headers.setdefault("cache-control", "no-cache")
        return ProxyResponse(200, headers, relay, "text/event-stream")

    # -- outcomes --------------------------------------------------------------------------------
    async def _response_headers(self, ctx: RequestContext, values: dict[str, Any], response: Any) -> dict[str, str]:
        """The headers hook, exactly once per request, before the status line."""
        headers = {"x-trioproxy-request-id": ctx.id}
        if ctx.deployment is not None:
            headers["x-trioproxy-model"] = ctx.deployment.model_name
        if ctx.cache_hit:
            headers["x-trioproxy-cache-hit"] = "true"
        if response is not None and self.cost_of is not None:
            # non-streaming only: a stream's cost is known after its headers are sent (docs/logging.md)
            ctx.response_cost = self.cost_of(ctx)
            if ctx.response_cost is not None:
                headers["x-trioproxy-response-cost"] = format(ctx.response_cost, ".10g")
        if ctx.headers_hook_ran:
            return headers
        ctx.headers_hook_ran = True
        calls = self.plan.calls("response_headers", values.get("data") or {})
        if calls:
            hook_values = {**values, "response": response}
            hook_values.setdefault("data", ctx.data)
            hook_values.setdefault("request_data", ctx.data)
            hook_values.setdefault("user_api_key_dict", ctx.user or UserAPIKeyAuth())
            headers.update(await scheduler.run_response_headers(calls, self._invoke, hook_values))
        return headers

    async def _failure_hooks(self, ctx: RequestContext, values: dict[str, Any], error: ProxyError) -> ProxyError:
        """Failure hooks, exactly once per failed request; returns the error the client gets."""
        if ctx.failure_hooks_ran:
            return error
        ctx.failure_hooks_ran = True
        calls = self.plan.calls("failure", ctx.data)
        if not calls:
            ctx.error = error
            return error
        # every text of the error and of its chain (an upstream echoing the key in ``param``, a
        # transport error naming a URL, a handler's exception): the hooks get them scrubbed
        self.scrubber.scrub_error(error)
        # failure hooks see what a handler raised (e.g. ValueError), not the proxy's wrapper for it
        original: BaseException = error.original if isinstance(error, HookCrashedError) else error
        hook_values = {
            **values,
            "request_data": ctx.data,
            "data": ctx.data,
            "original_exception": original,
            "user_api_key_dict": ctx.user or UserAPIKeyAuth(),
            # the traceback text (with its chain of causes) may echo a key: the hooks get it scrubbed
            "traceback_str": self.scrubber.scrub("".join(traceback.format_exception(original))),
        }
        # shielded: a client that leaves while these run must not cut the later handlers short.
        # Each hook keeps its own time limit; the scope's deadline only bounds the whole phase.
        replacement = None
        with trio.CancelScope(shield=True, deadline=trio.current_time() + self.hook_timeout * len(calls) + 1):
            replacement = await scheduler.run_failure(calls, self._invoke, hook_values)
        if replacement is not None:
            replacement.__context__ = error
            error = replacement
        ctx.error = error
        return error

    async def _fail(self, ctx: RequestContext, values: dict[str, Any], error: ProxyError) -> ProxyResponse:
        """A failure before the status line: failure hooks, headers hook, one JSON error."""
        error = await self._failure_hooks(ctx, values, error)
        self.scrubber.scrub_error(error)   # a failure hook's replacement may echo a key too
        headers = await self._response_headers(ctx, values, None)
        headers.update(error.headers)
        self._report_failure(ctx, error)
        return ProxyResponse(error.status_code, headers, orjson.dumps(error_body(error)))

    def _succeed(self, ctx: RequestContext, status: int) -> None:
        if ctx.outcome_reported:
            return
        ctx.outcome_reported = True
        ctx.status = status
        ctx.end = time.perf_counter()
        for observer in self.observers:
            _notify(observer.on_success, ctx)

    def _report_failure(self, ctx: RequestContext, error: ProxyError) -> None:
        if ctx.outcome_reported:
            return
        ctx.outcome_reported = True
        ctx.error = error
        ctx.status = error.status_code
        ctx.end = time.perf_counter()
        for observer in self.observers:
            _notify(observer.on_failure, ctx)

    async def _cancelled(self, ctx: RequestContext, values: dict[str, Any], reason: ProxyError | None = None) -> None:
        """The request was cancelled (client gone, server stopping): failure hooks once, shielded.

        ``reason``: why, when the proxy knows better than "the client left" (a stream that was being
        stopped for shutdown or for its duration when the cancellation came).
        """
        if ctx.outcome_reported:
            return
        if ctx.failure_hooks_ran and ctx.error is not None:
            error: ProxyError = ctx.error   # the failure path was under way: report what it decided
        elif reason is not None:
            error = reason
        else:
            error = ClientDisconnectedError("The client disconnected before the response was complete.")
        try:
            error = await self._failure_hooks(ctx, values, error)   # shielded inside; no-op if they ran
        except Exception as exc:  # a broken failure hook must not mask the cancellation
            log.error("failure hooks raised during cleanup of %s", ctx.id, exc_info=exc)
        self._report_failure(ctx, error)

    @staticmethod
    async def _close_quietly(stream: Any) -> None:
        with trio.CancelScope(shield=True, deadline=trio.current_time() + CLEANUP_DEADLINE):
            try:
                await stream.aclose()
            except Exception as exc:
                log.debug("closing an upstream stream raised %r", exc)


def _notify(method: Any, ctx: RequestContext) -> None:
    try:
        method(ctx)
    except Exception as exc:  # an observer must never break a request
        log.error("observer %r raised", method, exc_info=exc)


class StreamRelay:
    """The body of a streaming response: relays the open upstream stream through the hooks.

    :meth:`start` reads the upstream up to its first event before the status line is sent, so an
    error there (an error envelope, a body that ends at once, a broken connection) is answered with
    its own HTTP status. After the status line, errors become the terminal SSE error event (after the
    failure hooks had their say); the upstream stream and every iterator-hook generator are closed on
    every path by :meth:`aclose`, which is idempotent and also called by the connection adapter.

    How a stream ends, honestly:

    * ``data: [DONE]`` from the upstream → the proxy's own ``[DONE]`` after the post-call hooks;
    * the body ends without it (connection closed, or a clean end), for an upstream that declares
      ``sends_done_marker`` (every OpenAI-compatible one) → ``upstream_stream_interrupted``;
    * ``max_stream_duration`` (the deployment's, counted from the upstream's status line) →
      ``stream_duration_exceeded``; a single event over ``MAX_EVENT_BYTES`` →
      ``stream_event_too_large``; ``max_response_size_mb`` → ``response_too_large``;
    * :meth:`stop` (graceful shutdown, see ``Pipeline.stop_streams``) → ``shutdown``.

    The HTTP layer relays the frames with :meth:`send_to`, which runs the whole relay (the frame
    generator *and* the writes) in one cancel scope per stream: its deadline is the stream's, and
    :meth:`stop` cancels it. One scope per stream, not per upstream read: a scope costs a few µs and
    a stream has a read per token. (The scope cannot live inside the generator: a cancel scope must
    not be held across a ``yield``.) Wherever the cancellation lands — a silent upstream, a hook, a
    write — the generator is closed, its cleanup reports the failure once with the reason, and
    :meth:`send_to` writes the terminal error event. Reads happen only when a frame was written: a
    client that reads slowly throttles the upstream (TCP backpressure) and the relay holds at most
    one incomplete event (≤ ``MAX_EVENT_BYTES``).
    """

    def __init__(self, pipeline: Pipeline, ctx: RequestContext, values: dict[str, Any], upstream: Any) -> None:
        self.pipeline = pipeline
        self.ctx = ctx
        self.values = values
        self.upstream = upstream
        self.chat = ctx.route.endpoint == "chat/completions"
        self._generators: list[Any] = []
        self._source: Any = None
        self._pieces: Any = None        # the upstream's byte iterator
        self._parser = SSEParser()
        self._pending: list[bytes] = []  # event payloads read by start(), not yet relayed
        self._body_bytes = 0            # upstream body bytes read so far
        # the events' bytes so far, for max_response_size_mb: counted per event, not per network read,
        # so where the limit is crossed does not depend on how TCP cut the body
        self._event_bytes = 0
        self._ended = False             # the upstream body ended
        self._saw_done = False
        self._released = False
        self._more_ready = False        # more parsed chunks are waiting: no need to flush yet
        deployment = ctx.deployment
        duration = getattr(deployment, "max_stream_duration", None) or DEFAULT_MAX_STREAM_DURATION
        self.max_duration = float(duration)
        #: when the stream is stopped with ``stream_duration_exceeded`` (Trio clock)
        self.deadline = trio.current_time() + self.max_duration
        #: the scope of start() or send_to(): what stop() cancels (kept after it exits: cleanup asks
        #: whether it was cancelled, to report why the stream ended)
        self._scope: trio.CancelScope | None = None
        self._stop_error: ProxyError | None = None
        self._terminal: bytes | None = None     # the last frame (``[DONE]`` or error), once yielded
        self._terminal_sent = False
        # the upstream's own answer, assembled before the hooks touch it: what the response cache
        # stores (a cached answer goes through the hooks again when it is replayed)
        self._upstream_answer = StreamAssembler(self.chat) if pipeline.response_cache is not None else None
        self._events: Any = None
        self._closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._events is None:
            self._events = self._run()
        return self._events

    # -- reading the upstream --------------------------------------------------------------------
    async def start(self) -> None:
        """Read up to the first complete event (or the end of the body). Before the status line.

        Raises the error an upstream that fails this early stands for: the error an error envelope
        names (``upstream.common.envelope_error``: its status, e.g. 429), or
        ``upstream_stream_interrupted`` (502) for a body that ends, or breaks, before any event.
        """
        if self._pieces is not None:
            return
        self.pipeline.open_streams.add(self)
        if self.pipeline._stopping is not None and self._stop_error is None:
            self._stop_error = self.pipeline._stopping()
        self._pieces = self.upstream.aiter_bytes()
        payloads: list[bytes] = []
        with trio.CancelScope(deadline=self.deadline) as scope:
            self._scope = scope
            if self._stop_error is not None:
                scope.cancel()
            while not payloads:
                piece = await self._next_piece()
                if piece is None:
                    payloads = self._parser.flush()
                    break
                payloads = self._parser.feed(piece)
        if scope.cancelled_caught:
            self._ended = True
            raise self._stop_reason()
        self._pending = payloads
        if not payloads:
            if getattr(self.upstream, "sends_done_marker", True) or not self._body_bytes:
                raise UpstreamStreamInterruptedError(
                    "The upstream's stream ended before its first event (an empty answer).")
            return
        first = payloads[0]
        limit = self.pipeline.max_response_bytes
        if limit is not None and len(first) + _FRAMING > limit:
            raise self.pipeline._response_too_large(len(first) + _FRAMING)
        if b'"error"' in first:
            self._parse(first)      # raises the error an error envelope names

    async def _next_piece(self) -> bytes | None:
        """The next piece of the upstream body, or None at its end."""
        if self._ended:
            return None
        try:
            piece = await self._pieces.__anext__()
        except StopAsyncIteration:
            self._ended = True
            return None
        except APIConnectionError as exc:    # the connection broke (reset, EOF inside a chunk)
            self._ended = True
            raise UpstreamStreamInterruptedError(
                "The upstream connection broke in the middle of the stream; the answer is incomplete.") from exc
        self._body_bytes += len(piece)
        return piece

    def stop(self, error: ProxyError) -> None:
        """End this stream with ``error`` as its terminal event, at once (wherever it is waiting)."""
        if self._stop_error is None:
            self._stop_error = error
        if self._scope is not None:
            self._scope.cancel()

    def _stop_reason(self) -> ProxyError:
        """Why our scope was cancelled: :meth:`stop`, or else the stream's deadline."""
        if self._stop_error is not None:
            return self._stop_error
        return StreamDurationExceededError(
            f"The stream ran longer than the model's max_stream_duration ({self.max_duration:g} s) "
            "and was stopped.")

    def _parse(self, payload: bytes) -> Any:
        try:
            chunk = parse_chunk(payload, self.chat)
        except orjson.JSONDecodeError:
            raise ProxyError("The upstream sent an invalid stream chunk.", status_code=502) from None
        if isinstance(chunk, ErrorEvent):
            deployment = self.ctx.deployment
            if deployment is None:      # not from an upstream (a replayed answer): cannot happen
                raise APIError("The stream carried an error event.", status_code=502)
            raise envelope_error(chunk.body, deployment, self.pipeline.scrubber)
        return chunk

    async def _chunks(self) -> AsyncIterator[Any]:
        """Upstream bytes → chunk objects (stops at ``[DONE]``; raises ProxyError on errors)."""
        await self.start()
        payloads, self._pending = self._pending, []
        client_wants_usage = self.ctx.client_wants_usage
        limit = self.pipeline.max_response_bytes
        while True:
            chunks = []
            for payload in payloads:
                if limit is not None:
                    self._event_bytes += len(payload) + _FRAMING
                    if self._event_bytes > limit:
                        raise self.pipeline._response_too_large(self._event_bytes)
                chunk = self._parse(payload)
                if chunk is DONE:
                    self._saw_done = True
                    break
                if _is_usage_only(chunk):
                    self.ctx.usage = dict(dict.get(chunk, "usage"))
                    if not client_wants_usage:
                        continue
                elif not client_wants_usage and "usage" in chunk and dict.get(chunk, "usage") is None:
                    # servers add "usage": null to every chunk once asked for usage; this client did not ask
                    del chunk["usage"]
                chunks.append(chunk)
            last = len(chunks) - 1
            for index, chunk in enumerate(chunks):
                if self._upstream_answer is not None:
                    self._upstream_answer.add(chunk)   # before any hook sees (and may change) it
                # tells _run whether the next chunk is already here (then both go out in one write)
                self._more_ready = index < last
                yield chunk
            if self._saw_done:
                return
            if self._ended:
                break
            piece = await self._next_piece()
            payloads = self._parser.flush() if piece is None else self._parser.feed(piece)
        if getattr(self.upstream, "sends_done_marker", True):
            raise UpstreamStreamInterruptedError(
                "The upstream ended the stream without data: [DONE]; the answer is incomplete.")

    # -- relaying --------------------------------------------------------------------------------
    async def _run(self) -> AsyncIterator[bytes]:
        pipeline, ctx, values = self.pipeline, self.ctx, self.values
        data = values["data"]
        plan = pipeline.plan
        chunk_calls = plan.calls("post_call_streaming", data)
        success_calls = plan.calls("post_call_success", data)
        buffering = any(c.guardrail in plan.buffering_guardrails for c in success_calls)
        assembler = StreamAssembler(self.chat)
        held: list[bytes] = []      # held back by a buffering guardrail until it approves
        ready: list[bytes] = []     # frames from one upstream read, sent in one write
        try:
            self._source = self._chunks()
            stream, self._generators = scheduler.chain_iterators(
                plan.calls("streaming_iterator", data), self._source, values)
            async for chunk in stream:
                if chunk_calls:
                    chunk = await scheduler.run_chunk_hooks(chunk_calls, pipeline._invoke,
                                                            {**values, "response": chunk})
                    if chunk is None:
                        continue
                if ctx.first_chunk_at is None:
                    ctx.first_chunk_at = time.perf_counter()
                assembler.add(chunk)
                encoded = frame(chunk)
                if buffering:
                    held.append(encoded)
                else:
                    ready.append(encoded)
                    if not self._more_ready:
                        yield b"".join(ready)
                        ready.clear()
            if ready and success_calls:
                # pass-through: what already passed is released before the post-call hooks run
                yield b"".join(ready)
                ready.clear()
            assembled = assembler.build()
            if ctx.usage and "usage" not in assembled:
                assembled["usage"] = ctx.usage
            values["response"] = assembled
            if success_calls:
                await scheduler.run_post_call_success(success_calls, pipeline._invoke, values)
            ctx.response = assembled
            if self._upstream_answer is not None:
                upstream_answer = self._upstream_answer.build()
                if ctx.usage:
                    upstream_answer["usage"] = ctx.usage
                ctx.upstream_response = upstream_answer
            tail = self._terminal = b"".join(ready) + b"".join(held) + DONE_FRAME
            ready.clear()
            held.clear()
            pipeline._succeed(ctx, 200)
            yield tail
        except Exception as exc:
            error = to_proxy_error(exc)
            if not isinstance(exc, ProxyError) and error.__class__ is InternalServerError:
                log.error("stream %s failed with an unexpected error", ctx.id, exc_info=exc)
            # drop what a buffering guardrail held back: it was never approved
            held.clear()
            if ready:   # these passed every hook: release them before the error event
                yield b"".join(ready)
                ready.clear()
            error = await pipeline._failure_hooks(ctx, values, error)
            pipeline.scrubber.scrub_error(error)
            pipeline._report_failure(ctx, error)
            self._terminal = error_frame(error)
            yield self._terminal
        finally:
            await self._cleanup()

    async def send_to(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        """Relay every frame through ``send`` (the HTTP layer's write); how the HTTP layer runs a stream.

        The relay and the writes run in one cancel scope with the stream's deadline
        (``max_stream_duration``), which :meth:`stop` cancels. When it fires, the frame generator is
        closed wherever it was (its cleanup closes the upstream and reports the failure once, with
        the reason), then the terminal frame goes out: the error event, or the frame whose write the
        cancellation interrupted if that was already the last one.
        """
        with trio.CancelScope(deadline=self.deadline) as scope:
            self._scope = scope
            if self._stop_error is not None:
                scope.cancel()
            async for frame in self:
                await send(frame)
                if frame is self._terminal:
                    self._terminal_sent = True
        if not scope.cancelled_caught or self._terminal_sent:
            return
        pending = self._terminal
        events, self._events = self._events, None
        if events is not None:
            with trio.CancelScope(shield=True):
                await events.aclose()   # _run's finally: cleanup, the failure reported with its reason
        await self._cleanup()
        if pending is None:
            error = self.ctx.error
            if error is None:           # nothing was decided (cannot happen): end the body as is
                return
            error.message = self.pipeline.scrubber.scrub(error.message)
            pending = error_frame(error)
        await send(pending)

    # -- closing ---------------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close everything this stream holds. Idempotent; safe before iteration started.

        The HTTP layer calls it after the response's last byte went out; only then is the rest of a
        finished upstream body read, so that the connection can go back to the pool without
        delaying the end of the client's response.
        """
        events, self._events = self._events, None
        if events is not None:
            with trio.CancelScope(shield=True):
                await events.aclose()   # runs _run's finally, if it started
        await self._cleanup()
        await self._release_upstream()

    async def discard(self) -> None:
        """Before the status line (the request failed or was cancelled): abandon the upstream.

        The pipeline reports that failure itself; nothing here is reported.
        """
        self._closed = True
        await self._release_upstream()

    async def _release_upstream(self) -> None:
        """Return the upstream connection (after [DONE]: read the tiny rest) or abandon it. Idempotent."""
        if self._released:
            return
        self._released = True
        self.pipeline.open_streams.discard(self)
        with trio.CancelScope(shield=True, deadline=trio.current_time() + CLEANUP_DEADLINE):
            if self._pieces is not None:
                if self._saw_done:
                    with trio.move_on_after(0.5):
                        try:
                            async for _ in self._pieces:
                                pass
                        except Exception as exc:
                            log.debug("reading the end of an upstream stream raised %r", exc)
                try:
                    await self._pieces.aclose()
                except Exception as exc:
                    log.debug("closing the upstream byte iterator raised %r", exc)
            try:
                await self.upstream.aclose()
            except Exception as exc:
                log.debug("closing the upstream stream raised %r", exc)

    async def _cleanup(self) -> None:
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(shield=True, deadline=trio.current_time() + CLEANUP_DEADLINE):
            for generator in reversed(self._generators):
                aclose = getattr(generator, "aclose", None)
                if aclose is not None:
                    try:
                        await aclose()
                    except Exception as exc:
                        log.error("closing a streaming iterator hook raised", exc_info=exc)
            if self._source is not None:
                try:
                    await self._source.aclose()
                except Exception as exc:
                    log.debug("closing the chunk source raised %r", exc)
            if not self._saw_done:
                # unfinished (error, disconnect): abandon the upstream now, so it stops generating.
                # A finished one is released by aclose(), after the client's last byte.
                await self._release_upstream()
            if not self.ctx.outcome_reported:
                # the client left before the end (or never pulled the first chunk), or send_to's scope
                # stopped the stream (shutdown, max_stream_duration): reported with that reason
                stopped = self._scope is not None and self._scope.cancel_called
                await self.pipeline._cancelled(self.ctx, self.values, self._stop_reason() if stopped else None)


def _shutdown_error() -> ProxyError:
    return ShuttingDownError("The proxy is shutting down; the stream was stopped before its end. Retry the request.")
