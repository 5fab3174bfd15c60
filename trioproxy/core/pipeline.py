"""The per-request flow, and every nursery and cancel scope a request has.

This module answers "what is cancelled when?":

* **Pre-call** hooks run one after another, each under ``hook_timeout`` (``trio.fail_after``, in
  ``RequestRun.invoke``).
* **Moderation ‖ upstream** (:meth:`Pipeline._race`): one nursery runs every moderation hook and
  the upstream call. Each child records its own outcome and never raises into the nursery, so no
  exception group can escape. The first moderation hook that raises cancels the nursery with reason
  ``"moderation rejected"``: the upstream request is abandoned mid-flight and its connection
  closed, so the provider stops generating. An upstream failure cancels the moderation hooks. If the
  upstream answers first, the nursery waits for every verdict. Exactly one outcome leaves. For
  streams, "the upstream answered" means its status, headers and first event (read within the routing
  attempt, so that a stream failing at once is retried: ``upstream/primed.py``): no byte is sent
  before every verdict is in, and nothing past the first event is read; a rejection closes the
  already-open stream.
* **Client disconnect**: the HTTP layer cancels the request's task. Nothing here catches
  ``trio.Cancelled`` for good: on the way out, a shielded scope with a deadline runs the failure
  hooks once (``ClientDisconnectedError``), closes the upstream stream and the iterator hooks'
  generators, and tells the observers; then the cancellation continues.
* **Streaming body**: ``relay.py`` (its first event is read here, before the status line; the rest
  after it, within the stream's own cancel scope). :meth:`Pipeline.stop_streams` stops every open
  stream at shutdown.

Which hooks run and how their results combine is ``hooks/scheduler.py``'s business; what a request
holds and how each outcome is applied exactly once is ``run.py``'s; the endpoints and the checks of
a body are ``endpoints.py``'s.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import trio

from ..auth import Authenticator, Identity, apply_key_rules, reject_client_tags
from ..auth.key_rules import apply_model_guardrails
from ..caching.dual_cache import DualCache
from ..config import ProxyConfig
from ..context import RequestContext, Route
from ..errors import (
    InternalServerError,
    PermissionDeniedError,
    ProxyError,
    RejectedByHookError,
    ShuttingDownError,
    to_proxy_error,
)
from ..hooks import scheduler
from ..hooks.loader import HookCall
from ..masking import SecretScrubber
from ..responses_api.ids import RESPONSE as RESPONSE_ID_PREFIX
from ..responses_api.ids import new_id as new_response_id
from ..types import wrap_response
from ..upstream.router import Router
from . import endpoints, responses_native
from .body_edits import copy_request, with_id
from .endpoints import CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES
from .relay import StreamRelay, response_too_large
from .responses_wire import ResponsesWire
from .routing_facts import prompt_tokens, request_facts
from .run import CLEANUP_DEADLINE, Meter, Observers, ProxyResponse, RequestRun, RunRules
from .shutdown import OpenStreams, Unanswered

if TYPE_CHECKING:
    from ..caching.response_cache import ResponseCache
    from ..observability.cost import CostCalculator


class CustomerLookup(Protocol):
    """The store's customer cache: the row of a ``user`` (or ``None``), a 503 when it cannot answer."""

    async def find(self, user_id: str) -> Any: ...

__all__ = ["CHAT", "COMPLETIONS", "EMBEDDINGS", "Pipeline", "ProxyResponse", "StreamRelay"]

log = logging.getLogger("trioproxy.pipeline")


@contextmanager
def _single_cancelled() -> Iterator[None]:
    """Let a nursery cancelled from outside raise one ``Cancelled``, never a group of them.

    Children of our nurseries catch their own errors, so a group can only hold ``Cancelled``s
    (or a bug, which becomes one 500 rather than a group reaching the HTTP layer).
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


async def _close_quietly(stream: Any) -> None:
    with trio.CancelScope(shield=True, deadline=trio.current_time() + CLEANUP_DEADLINE):
        try:
            await stream.aclose()
        except Exception as exc:
            log.debug("closing an upstream stream raised %r", exc)


class Pipeline:
    """Every request of the proxy endpoints, start to finish (one instance per proxy).

    Built by the composition root (``proxy.py``) with everything it uses: the hook plan, the router,
    the authenticator, the hooks' ``DualCache``, the scrubber, the observers (an explicit list,
    fixed here), the cost calculator and the response cache (each ``None`` when not in use).
    """

    def __init__(
        self,
        config: ProxyConfig,
        plan: scheduler.HookPlan,
        router: Router,
        cache: DualCache,
        scrubber: SecretScrubber,
        observers: Sequence[Any] = (),
        *,
        authenticator: Authenticator | None = None,
        cost: CostCalculator | None = None,
        response_cache: ResponseCache | None = None,
        customers: CustomerLookup | None = None,
        meter: Meter | None = None,
    ) -> None:
        self.config = config
        self.plan = plan
        self.router = router
        self.scrubber = scrubber
        #: the ``cache`` every pre-call hook receives (``DualCache``)
        self.cache = cache
        self.authenticator = authenticator or Authenticator(config.master_key)
        self.response_cache = response_cache
        #: the customers of the database (``None`` without one): a blocked ``user`` is refused here
        self.customers = customers
        self.observers = Observers(observers)
        #: admission and spend records (``spend/meter.py``; None without a database): run by the
        #: pre-call step ``limits_and_budgets`` (``hooks/steps.py``), finished by the outcome rules
        self.rules = RunRules(plan=plan, cache=cache, scrubber=scrubber, hook_timeout=config.hook_timeout,
                              observers=self.observers, cost=cost, meter=meter)
        self.max_response_bytes = config.max_response_bytes   # MiB → bytes in one place (config)
        #: ``reject_clientside_metadata_tags`` (or LiteLLM's earlier name ``reject_metadata_tags``)
        self.reject_client_tags = any(map(config.general_settings.get, ("reject_clientside_metadata_tags", "reject_metadata_tags")))
        #: a ``logging_only`` guardrail masks the logged ``messages`` and chat answers: with one, every
        #: /v1/responses request is translated, so that it masks them (docs/responses_api.md)
        self.masks_logs = any("logging_only" in g.modes for g in config.guardrails)
        #: streams between their upstream's status line and their end (what :meth:`stop_streams` stops)
        self.open_streams = OpenStreams()

    def stop_streams(self, make_error: Callable[[], ProxyError] | None = None) -> int:
        """End every open stream (and every stream opened from now on) with an error event.

        For graceful shutdown (``core/shutdown.py``, a little before Hypercorn's deadline): each
        stream stops at its next upstream read, sends ``make_error()`` (default:
        ``ShuttingDownError``, code ``shutdown``) as its terminal SSE event, runs the failure hooks
        once and is logged as a failure, then its response ends. Returns how many streams were open.
        """
        return self.open_streams.stop_all(make_error)

    # -- entry point -----------------------------------------------------------------------------
    async def handle(self, route: Route, raw_body: bytes | ProxyError, headers: Mapping[str, str],
                     peer: str | None = None, identity: Identity | ProxyError | None = None) -> ProxyResponse:
        """One request, start to finish. Always returns a response; only ``Cancelled`` escapes.

        ``raw_body`` is a :class:`ProxyError` when the HTTP layer refused the body (413, 408);
        ``headers`` have lower-case names; ``peer`` is the client's address as the HTTP entry
        resolved it (``X-Forwarded-For`` behind trusted proxies), recorded as ``requester_ip_address``.
        ``identity``: what the HTTP layer's route decision established (``http/gate.py``, before the
        body was read), or its refusal (401/403/503), answered here so that the failure hooks and
        the logging event see it; ``None``: authenticate here.
        """
        ctx = RequestContext(route=route, request_headers=dict(headers), requester_ip_address=peer)
        if route is RESPONSES:
            # the id the client receives (the Responses object's ``id``) is the request's id, as on
            # every route (the spend record's key: docs/spend.md), shaped like OpenAI's ``resp_…``
            ctx.id = new_response_id(RESPONSE_ID_PREFIX)
        run = RequestRun(ctx, self.rules, peer)
        self.observers.notify("on_request_start", ctx)
        response: ProxyResponse | None = None
        # until its status line, the request can be stopped by a graceful shutdown (``Unanswered``):
        # it then gets a 503 ``shutdown`` rather than a connection cut at Hypercorn's deadline
        unanswered = Unanswered()
        self.open_streams.add_unanswered(unanswered)
        try:
            response = await self._answer(run, unanswered, raw_body, headers, peer, identity)
        except trio.Cancelled:
            # the client left (or the server is stopping) at any point above, the failure path included
            await run.cancelled()
            run.settle_attempt()
            raise
        finally:
            self.open_streams.discard_unanswered(unanswered)
            # an admitted request's reservation is released on every way out (shielded); a stream
            # being relayed is the relay's to close (relay.py, at its end)
            if run.ticket is not None and not (response is not None and isinstance(response.body, StreamRelay)):
                await run.close_spend()
        if not isinstance(response.body, StreamRelay):
            # a stream's relay settles its attempt at its end; anything else is over now (an answer
            # that succeeded was settled when it arrived: what is left was abandoned)
            run.settle_attempt()
        return response

    async def _answer(self, run: RequestRun, unanswered: Unanswered, raw_body: bytes | ProxyError,
                      headers: Mapping[str, str], peer: str | None,
                      identity: Identity | ProxyError | None) -> ProxyResponse:
        """The request's response; a request stopped by a graceful shutdown before its status line
        gets the shutdown's error (hooks and outcome once)."""
        with unanswered.scope:
            try:
                # a nursery below (a provider's fan-out) cancelled from outside raises a group of
                # Cancelled: one Cancelled here, so that handle's cancellation path runs
                with _single_cancelled():
                    return await self._run(run, raw_body, headers, peer, identity)
            except Exception as exc:
                error = to_proxy_error(exc)
                if not isinstance(exc, ProxyError):
                    log.error("request %s failed with an unexpected error", run.ctx.id, exc_info=exc)
                return await run.fail(error)
        # only a shutdown stops the scope: answer with its error (hooks and outcome once)
        return await run.fail(unanswered.error or ShuttingDownError("The proxy is shutting down."))

    async def _run(self, run: RequestRun, raw_body: bytes | ProxyError, headers: Mapping[str, str],
                   peer: str | None, decided: Identity | ProxyError | None = None) -> ProxyResponse:
        ctx = run.ctx
        if isinstance(decided, ProxyError):
            raise decided
        identity = ctx.identity = decided or await self.authenticator.identify(headers, peer)
        ctx.user = identity.user_api_key_auth()
        if isinstance(raw_body, ProxyError):   # the HTTP layer refused the body (413)
            raise raw_body
        data = ctx.data = await endpoints.parse_body(ctx.route, raw_body)
        if self.reject_client_tags:   # before any hook: only keys and teams carry tags (docs/keys.md)
            reject_client_tags(data)
        ctx.requested_model = data.get("model")
        ctx.stream = bool(data.get("stream")) and ctx.route.can_stream
        if identity.kind == "jwt":   # a token listing several teams: the team that may use this model
            identity = ctx.identity = await self.authenticator.for_request(identity, data.get("model"), headers)
            ctx.user = identity.user_api_key_auth()
        if identity.record is not None:   # the key's models, enforced params and guardrails
            apply_key_rules(identity.record, data, self.plan.guardrails)
        if self.customers is not None:
            await self._check_customer(ctx, data)
        apply_model_guardrails(data, self.config.model_groups)   # the model's litellm_params.guardrails
        self.plan.check_requested_guardrails(data)
        if ctx.route is RESPONSES:
            # forwarded as is when every deployment serves /v1/responses and every hook of the request
            # reads Responses bodies; otherwise translated now, so every hook below sees a chat
            # completion (docs/responses_api.md: "Native or translated")
            if self.masks_logs or not responses_native.use_native(run, self.router, data):
                data = ctx.data = self._from_responses(run, data)
        model_before_hooks = data.get("model")

        calls = run.calls("pre_call")
        answer = await scheduler.run_pre_call(calls, run.invoke, run.args()) if calls else None
        if answer is not None:
            return await self._answer_with_text(run, answer)
        endpoints.validate_after_hooks(ctx.route, ctx.data)
        self.router.resolve(ctx.data["model"])  # unknown model → 404 before anything is sent
        if ctx.route is responses_native.ROUTE and ctx.data["model"] != model_before_hooks and not \
                responses_native.use_native(run, self.router, ctx.data):
            # a pre-call hook sent a native request to a model without a native /v1/responses: translated
            # now (every hook of the request reads Responses bodies, and chat bodies too)
            ctx.data = self._from_responses(run, ctx.data)
        if ctx.stream:
            return await self._stream(run)
        return await self._complete(run)

    def _from_responses(self, run: RequestRun, body: dict[str, Any]) -> dict[str, Any]:
        """A ``/v1/responses`` body as the chat completion the rest of the flow serves (responses_wire.py)."""
        run.wire = ResponsesWire(body, response_id=run.ctx.id)
        model = body.get("model")
        deployments = self.router.deployments(model) if model in self.router.model_names else []
        chat = run.wire.chat_body(deployments)
        run.ctx.route = CHAT
        return chat

    async def _check_customer(self, ctx: RequestContext, data: dict[str, Any]) -> None:
        """A ``user`` blocked in the database (``/customer/block``) is refused before any hook (403
        ``user_blocked``, as ``blocked_user_check``). The lookup is cached; a miss the store cannot
        answer is a 503: a block does not lapse while the database is down."""
        user = data.get("user")
        if not isinstance(user, str) or not user:
            return
        customer = ctx.customer = await self.customers.find(user)  # type: ignore[union-attr]
        if customer is not None and customer.blocked:
            raise PermissionDeniedError(f"User blocked from making LLM API calls. User={user} (blocked through "
                                        "/customer/block)", param="user", code="user_blocked")

    # -- the upstream call and the moderation race -----------------------------------------------
    async def _call_upstream(self, run: RequestRun, body: dict[str, Any]) -> Any:
        """The upstream answer (a response, or an open stream), or a cache hit standing in for it."""
        ctx = run.ctx
        model = body["model"]
        if self.response_cache is not None:
            hit = await self.response_cache.lookup(ctx, body)   # async: a shared backend does I/O
            if hit is not None:
                ctx.cache_hit = True
                return hit
        facts = request_facts(ctx, count_tokens=self.router.counts_tokens)
        if self.router.checks_context_window:
            facts = dataclasses.replace(facts, prompt_tokens=await prompt_tokens(body))
        try:
            if ctx.stream:
                run.attempt, result = await self.router.open_stream(
                    model, ctx.route.endpoint, body, facts=facts, on_attempt=run.upstream_attempt)
            else:
                run.attempt, result = await self.router.send(
                    model, ctx.route.endpoint, body, facts=facts, on_attempt=run.upstream_attempt)
        finally:
            ctx.upstream_end = time.perf_counter()
        return result

    async def _race(self, run: RequestRun) -> Any:
        """Moderation hooks ‖ upstream call. Returns the upstream result or raises one ProxyError."""
        ctx = run.ctx
        data = ctx.data
        body = endpoints.upstream_body(ctx, data)
        calls = run.calls("moderation")
        if not calls:
            return await self._call_upstream(run, body)

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
                            outcome["upstream"] = await self._call_upstream(run, body)
                        except Exception as exc:
                            await fail(len(calls), to_proxy_error(exc), "upstream failed")

                    async def moderate(rank: int, call: HookCall) -> None:
                        # each hook gets its own copy: moderation cannot change what is sent, and
                        # concurrent hooks cannot see each other's changes (no order is promised)
                        own = copy_request(data)
                        try:
                            await run.invoke(call, run.args(data=own, request_data=own))
                        except Exception as exc:
                            await fail(rank, scheduler.classify(call, exc), "moderation rejected")

                    nursery.start_soon(upstream)
                    for rank, call in enumerate(calls):
                        nursery.start_soon(moderate, rank, call)
        except BaseException:
            # cancelled from outside (client gone) after the stream opened: close it on the way out
            if ctx.stream and outcome.get("upstream") is not None:
                await _close_quietly(outcome["upstream"])
            raise

        if errors:
            if ctx.stream and outcome.get("upstream") is not None:
                await _close_quietly(outcome["upstream"])
            raise min(errors, key=lambda pair: pair[0])[1]
        return outcome["upstream"]

    # -- non-streaming ---------------------------------------------------------------------------
    async def _complete(self, run: RequestRun) -> ProxyResponse:
        ctx = run.ctx
        upstream = await self._race(run)
        if self.max_response_bytes is not None and len(upstream.body) > self.max_response_bytes:
            raise response_too_large(len(upstream.body), self.max_response_bytes)
        try:
            parsed = orjson.loads(upstream.body)
        except orjson.JSONDecodeError:
            raise to_proxy_error(ProxyError("The upstream answered with invalid JSON.", status_code=502)) from None
        native = ctx.route is responses_native.ROUTE
        if isinstance(parsed, dict) and isinstance(parsed.get("usage"), dict):
            ctx.usage = responses_native.chat_usage(parsed["usage"]) if native else parsed["usage"]
        run.settle_attempt(succeeded=True)
        body = ctx.upstream_raw = upstream.body
        if run.ticket is not None and type(parsed) is dict and "id" in parsed and not native:
            # metered: the id the client receives is the record's (a native response keeps OpenAI's
            # id: previous_response_id must find it there)
            body = with_id(body, parsed, ctx.id)
        response = wrap_response(parsed)
        calls = run.calls("post_call_success")
        if calls:
            response = await scheduler.run_post_call_success(calls, run.invoke, run.args(response=response))
            body = orjson.dumps(response)
        ctx.response = response
        ctx.usage = dict.get(response, "usage") if isinstance(response, dict) else None
        if native:
            ctx.usage = responses_native.chat_usage(ctx.usage)
        await run.settle_final_cost()
        headers = await run.response_headers(response)
        if run.wire is not None:
            body = run.wire.whole(response)
        run.succeed(200)
        return ProxyResponse(200, headers, body)

    # -- a pre-call hook's string as the answer ---------------------------------------------------
    async def _answer_with_text(self, run: RequestRun, answer: scheduler.Answer) -> ProxyResponse:
        ctx = run.ctx
        if not ctx.route.answers_with_text:
            raise RejectedByHookError(answer.text)
        body, chunks = endpoints.text_answer_chunks(ctx, answer.text)
        response = ctx.response = wrap_response(body)
        run.settle_cost()
        headers = await run.response_headers(response)
        run.succeed(200)
        wire = run.wire
        if ctx.route is responses_native.ROUTE:     # a native request: the text as a Responses answer
            wire = ResponsesWire(ctx.data, response_id=ctx.id)
        if chunks is None:
            return ProxyResponse(200, headers, orjson.dumps(body) if wire is None else wire.whole(body))
        stream = endpoints.chat_frames(chunks) if wire is None else wire.chunks(chunks)
        return ProxyResponse(200, headers, stream, "text/event-stream")

    # -- streaming -------------------------------------------------------------------------------
    async def _stream(self, run: RequestRun) -> ProxyResponse:
        upstream = await self._race(run)
        native = responses_native.NativeStream(run.ctx) if run.ctx.route is responses_native.ROUTE else None
        relay = StreamRelay(run, upstream, self.open_streams, max_response_bytes=self.max_response_bytes,
                            keep_upstream_answer=self.response_cache is not None and native is None,
                            encoder=run.wire, native=native)
        try:
            # up to the first event before the status line: an error there gets its own status
            await relay.start()
            headers = await run.response_headers(None)
        except BaseException:
            await relay.discard()   # closes the upstream: shielded, with a deadline
            raise
        headers.setdefault("cache-control", "no-cache")
        return ProxyResponse(200, headers, relay, "text/event-stream")
