"""One request's run: its state, held once, and the rules for how it ends, applied once.

A :class:`RequestRun` is made for every request the pipeline handles. It owns:

* **the state**: one :class:`~trioproxy.context.RequestContext` (what observers and the logs read).
  Hook arguments are not a second copy of it: :class:`HookArgs` reads them from the context when a
  hook is called, and a pre-call hook that replaces ``data`` replaces it there;
* **the outcome rules**, each applied exactly once whatever path the request takes: invoke one
  hook (time limit, timing), the failure hooks, the headers hook, and the outcome itself (succeed,
  fail, or cancelled), each told to the observers (every call guarded: an observer never breaks a
  request), and the final cost, settled when the answer is complete (``observability/cost.py``);
* **the resources** the request opened (:class:`Resources`): the stream relay registers the
  upstream stream, the chunk source and every iterator-hook generator there, and they are closed in
  one place, last opened first;
* **its spend ticket** (with a database, ``docs/spend.md``): admission happens when the pre-call
  phase reaches the built-in step ``limits_and_budgets`` (:meth:`RequestRun.invoke`); from then on
  the outcome rules hand the spend record off exactly once, where the outcome is reported (before
  the client gets the last byte of its answer), and :meth:`RequestRun.close_spend` — called in a
  shielded ``finally`` on every way out (``pipeline.py``, ``relay.py``) — releases what is left.

The pipeline (``pipeline.py``) decides the flow and owns every nursery and cancel scope; the stream
relay (``relay.py``) depends on this module, not on the pipeline.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import trio

from ..auth import UserAPIKeyAuth
from ..caching.dual_cache import DualCache
from ..context import RequestContext
from ..errors import (
    ClientDisconnectedError,
    HookCrashedError,
    HookTimeoutError,
    ProxyError,
    UpstreamStreamInterruptedError,
    error_body,
)
from ..hooks import scheduler
from ..hooks.loader import CALL_HOOKS, HookCall
from ..hooks.steps import LimitsAndBudgets
from ..masking import SecretScrubber

if TYPE_CHECKING:
    from ..config import Deployment
    from ..observability.cost import CostCalculator
    from ..upstream.routing import Attempt

__all__ = ["CLEANUP_DEADLINE", "HookArgs", "Meter", "Observers", "ProxyResponse", "RequestRun", "Resources",
           "RunRules", "Ticket"]

log = logging.getLogger("trioproxy.pipeline")

#: how long cleanup may take once the request is cancelled (client gone, server stopping)
CLEANUP_DEADLINE = 5.0


@dataclass
class ProxyResponse:
    """What the HTTP layer sends: a status, headers and bytes or a stream relay (``relay.StreamRelay``)."""

    status: int
    headers: dict[str, str]
    body: Any       # bytes | StreamRelay
    media_type: str = "application/json"


# ---------------------------------------------------------------------------------------------
# Observers
# ---------------------------------------------------------------------------------------------

_EVENTS = ("on_request_start", "on_upstream_request", "on_success", "on_failure")


class Observers:
    """The pipeline's observers, fixed at construction, with every call guarded the same way.

    An observer is any object with some of ``on_request_start(ctx)``, ``on_upstream_request(ctx)``,
    ``on_success(ctx)``, ``on_failure(ctx)`` (``context.Observer``); they are called in list order,
    on the Trio thread, and must return at once. One that raises is logged, and the request and the
    other observers go on.
    """

    def __init__(self, observers: Sequence[Any] = ()) -> None:
        self.observers = tuple(observers)
        self._methods: dict[str, tuple[Callable[[RequestContext], None], ...]] = {
            event: tuple(m for m in (getattr(o, event, None) for o in self.observers) if m is not None)
            for event in _EVENTS}

    def notify(self, event: str, ctx: RequestContext) -> None:
        for method in self._methods[event]:
            try:
                method(ctx)
            except Exception as exc:  # an observer must never break a request
                log.error("observer %r raised", method, exc_info=exc)


# ---------------------------------------------------------------------------------------------
# Hook arguments
# ---------------------------------------------------------------------------------------------

_FROM_CONTEXT = ("data", "request_data", "user_api_key_dict", "cache", "call_type", "request_headers")


class HookArgs:
    """The arguments a hook may take (``loader.PHASE_ARGS``), read from the run's context when called.

    ``data`` / ``request_data`` are the context's ``data`` (a pre-call hook's replacement is stored
    there), unless this call has its own (a moderation hook's private copy). Per-call values
    (``response``, ``original_exception``…) are this object's own. It is the mapping the scheduler's
    rules and ``HookCall.call`` read; nothing keeps a second copy of the request's state.
    """

    __slots__ = ("_cache", "_ctx", "_own")

    def __init__(self, ctx: RequestContext, cache: DualCache, own: dict[str, Any]) -> None:
        self._ctx = ctx
        self._cache = cache
        self._own = own

    def __getitem__(self, name: str) -> Any:
        own = self._own
        if name in own:
            return own[name]
        ctx = self._ctx
        if name == "data" or name == "request_data":
            return ctx.data
        if name == "user_api_key_dict":
            return ctx.user
        if name == "cache":
            return self._cache
        if name == "call_type":
            return ctx.route.call_type
        if name == "request_headers":
            return ctx.request_headers
        raise KeyError(name)

    def __setitem__(self, name: str, value: Any) -> None:
        if (name == "data" or name == "request_data") and "data" not in self._own:
            self._ctx.data = value
        else:
            self._own[name] = value

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def keys(self) -> Iterator[str]:
        yield from _FROM_CONTEXT
        yield from (k for k in self._own if k not in _FROM_CONTEXT)

    def __iter__(self) -> Iterator[str]:
        return self.keys()


# ---------------------------------------------------------------------------------------------
# Resources
# ---------------------------------------------------------------------------------------------


class Resources:
    """What a request opened and must close, closed in one place: last opened first, each guarded.

    Closing runs shielded with :data:`CLEANUP_DEADLINE` (it also runs when the request is cancelled)
    and happens once; what one ``aclose`` raises is logged and the others are still closed.
    """

    def __init__(self) -> None:
        self._open: list[tuple[str, Callable[[], Awaitable[Any]], int]] = []

    def push(self, what: str, aclose: Callable[[], Awaitable[Any]], *, log_level: int = logging.DEBUG) -> None:
        """Register ``aclose`` (``what`` names it in the log if it raises, at ``log_level``)."""
        self._open.append((what, aclose, log_level))

    async def aclose(self) -> None:
        """Close everything registered (shielded, within :data:`CLEANUP_DEADLINE`)."""
        if self._open:
            with trio.CancelScope(shield=True, deadline=trio.current_time() + CLEANUP_DEADLINE):
                await self.close_all()

    async def close_all(self) -> None:
        """Close everything registered, in the caller's (shielded) cancel scope."""
        entries, self._open = self._open, []
        for what, aclose, level in reversed(entries):
            try:
                await aclose()
            except Exception as exc:
                if level >= logging.ERROR:
                    log.log(level, "closing %s raised", what, exc_info=exc)
                else:
                    log.log(level, "closing %s raised %r", what, exc)


# ---------------------------------------------------------------------------------------------
# Spend (the state layer's meter, handed in by the composition root: ``spend/meter.py``)
# ---------------------------------------------------------------------------------------------


class Ticket(Protocol):
    """An admitted request's reservation and spend record (``spend.meter.Ticket``)."""

    def finish(self, ctx: RequestContext) -> None: ...

    async def close(self, ctx: RequestContext) -> None: ...

    def headers(self) -> dict[str, str]: ...


class Meter(Protocol):
    """Admission against budgets and limits (``spend.meter.SpendMeter``): a ticket, or a refusal."""

    async def admit(self, ctx: RequestContext, peer: str | None) -> Ticket: ...


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _upstream_fault(error: ProxyError) -> bool:
    """Whether ``error`` is what the upstream itself did (for its health): an error made from its
    answer (it carries the upstream's status) or a stream it ended without its end marker."""
    return isinstance(error, UpstreamStreamInterruptedError) or getattr(error, "upstream_status", None) is not None


def _scrubbed_traceback(scrubber: SecretScrubber, error: BaseException) -> str:
    """``traceback_str`` for the failure hooks (in a worker thread: see :meth:`RequestRun.failure_hooks`)."""
    return scrubber.scrub("".join(traceback.format_exception(error)))


@dataclass(frozen=True)
class RunRules:
    """What every run of one pipeline shares (built once, by the pipeline)."""

    plan: scheduler.HookPlan
    cache: DualCache
    scrubber: SecretScrubber
    hook_timeout: float
    observers: Observers = field(default_factory=Observers)
    cost: CostCalculator | None = None
    #: admission and spend records (None without a database)
    meter: Meter | None = None
    #: token counts for answers without usage when spend needs the cost before the last byte
    estimates: trio.CapacityLimiter = field(default_factory=lambda: trio.CapacityLimiter(2))
    #: formatting a failure's traceback (reading source lines, scrubbing) runs in worker threads, two at once
    traceback_limiter: trio.CapacityLimiter = field(default_factory=lambda: trio.CapacityLimiter(2))
    #: False only for tests in virtual time (a worker thread lets an autojump clock leap forward)
    traceback_in_thread: bool = True


class RequestRun:
    """One request: its context, and the rules for its outcome (see the module docstring)."""

    __slots__ = ("attempt", "ctx", "peer", "picks", "resources", "rules", "ticket", "wire")

    def __init__(self, ctx: RequestContext, rules: RunRules, peer: str | None = None) -> None:
        self.ctx = ctx
        self.rules = rules
        self.resources = Resources()
        #: the routing attempt whose upstream answered (None: no upstream answered, e.g. a cache hit);
        #: settled exactly once by :meth:`settle_attempt`
        self.attempt: Attempt[Deployment] | None = None
        #: the client's address as the connection saw it (the spend record's fallback)
        self.peer = peer
        #: the spend ticket, once admitted (``spend/meter.py``); None before, or without a database
        self.ticket: Ticket | None = None
        #: which of the guardrails sharing a name runs for this request (``HookPlan.pick``), once
        self.picks: dict[str, int] = {}
        #: how the answer is written when the client spoke another API (``responses_wire.ResponsesWire``)
        self.wire: Any = None

    # -- hooks -------------------------------------------------------------------------------------
    def args(self, **own: Any) -> HookArgs:
        """Hook arguments for one call (or one phase): the context's, plus ``own``."""
        return HookArgs(self.ctx, self.rules.cache, own)

    async def invoke(self, call: HookCall, args: Mapping[str, Any]) -> Any:
        """One hook under its time limit; its duration goes into the request's timings.

        The built-in step ``limits_and_budgets`` (``hooks/steps.py``) is the request's admission,
        run here in its place in the pre-call order."""
        if type(call.obj) is LimitsAndBudgets:
            await self.admit()
            return None
        started = time.perf_counter()
        timeout = self.rules.hook_timeout
        try:
            with trio.fail_after(timeout):
                return await call.call(args)
        except trio.TooSlowError:
            raise HookTimeoutError(call.handler, CALL_HOOKS[call.phase], timeout) from None
        finally:
            self.ctx.hook_timings.append((call.handler, call.phase, time.perf_counter() - started))

    def calls(self, phase: str) -> list[HookCall]:
        """The hooks that run in ``phase`` for this request (guardrails selected by its ``data``)."""
        return self.rules.plan.calls(phase, self.ctx.data, self.picks, self.ctx.request_headers)

    # -- spend -------------------------------------------------------------------------------------
    async def admit(self) -> None:
        """Reserve against every budget and limit that applies, or raise the refusal (429 /
        ``budget_exceeded``). Once: the ticket is kept for the outcome rules."""
        meter = self.rules.meter
        if meter is not None and self.ticket is None:
            self.ticket = await meter.admit(self.ctx, self.peer)

    async def close_spend(self) -> None:
        """Every way out of an admitted request (shielded): the reservation settled or released,
        the record handed off if no outcome did it. No-op without a ticket; idempotent; never raises
        (what the ticket raises is logged: the answer, or the cleanup it runs in, goes on)."""
        ticket = self.ticket
        if ticket is not None:
            with trio.CancelScope(shield=True):
                try:
                    await ticket.close(self.ctx)
                except Exception as exc:    # a limiter's bug: never the request's answer (or its cleanup)
                    log.error("closing the spend ticket of %s raised", self.ctx.id, exc_info=exc)

    async def settle_final_cost(self) -> None:
        """:meth:`settle_cost`; and for an admitted answer whose upstream reported no usage, its
        tokens counted now, in a worker thread, so that the spend record (handed off before the
        last byte) carries the cost. Rare (the proxy asks upstreams for usage); without a ticket
        the logging worker counts them later, off the request path."""
        self.settle_cost()
        cost = self.rules.cost
        ctx = self.ctx
        if self.ticket is None or cost is None or not cost.needs_estimate(ctx):
            return
        (prompt, completion), final = await trio.to_thread.run_sync(cost.estimate, ctx, limiter=self.rules.estimates)
        ctx.settle_cost(final.cost, final.source)
        # what the logs and metrics read as this request's tokens (they do not count again)
        ctx.usage = {"prompt_tokens": prompt or 0, "completion_tokens": completion or 0,
                     "total_tokens": (prompt or 0) + (completion or 0)}

    # -- the upstream ------------------------------------------------------------------------------
    def upstream_attempt(self, deployment: Deployment, outgoing: dict[str, Any],
                         attempt: Attempt[Deployment] | None = None) -> None:
        """The router is about to send ``outgoing`` to ``deployment`` (every attempt, retries and
        fallbacks too); the model group is the one entered by name (a fallback's, after a fallback)."""
        ctx = self.ctx
        ctx.deployment = deployment
        ctx.upstream_body = outgoing
        ctx.upstream_start = time.perf_counter()
        ctx.model_group = attempt.route.requested if attempt is not None else deployment.model_name
        self.rules.observers.notify("on_upstream_request", ctx)

    def first_token(self) -> None:
        """The first chunk of the answer reached the relay (latency-based routing's time to first token)."""
        if self.attempt is not None and not self.attempt.settled:
            self.attempt.mark_first_token()

    def settle_attempt(self, *, succeeded: bool = False, error: ProxyError | None = None) -> None:
        """How the upstream attempt that answered ended, told to routing exactly once (docs/routing.md).

        ``succeeded``: the whole answer arrived (its usage feeds latency and ``tpm``); an ``error`` the
        upstream made after answering (a stream without its end marker, an error event: it carries the
        upstream's status): its health, nothing else is tried; otherwise abandoned (the client left, a
        hook refused the answer, the proxy stopped the stream) — nobody's fault. A no-op without an answered
        attempt, and once settled. The outcome rules below call it (:meth:`succeed`,
        :meth:`failure_hooks`, :meth:`report_failure`), so every way a request ends settles it.
        """
        attempt = self.attempt
        if attempt is None or attempt.settled:
            return
        if error is not None and not _upstream_fault(error):
            error = None
        if succeeded:
            usage = self.ctx.usage if isinstance(self.ctx.usage, dict) else {}
            completion, total = usage.get("completion_tokens"), usage.get("total_tokens")
            attempt.succeeded(completion_tokens=completion if isinstance(completion, int) else None,
                              total_tokens=total if isinstance(total, int) else None)
        elif error is not None:
            attempt.failed(error, first_byte_sent=True)
        else:
            attempt.abandoned()

    # -- outcome rules -----------------------------------------------------------------------------
    def settle_cost(self) -> None:
        """The answer is complete: its final cost, computed now, once (``observability/cost.py``)."""
        cost = self.rules.cost
        if cost is not None:
            final = cost.settle(self.ctx)
            self.ctx.settle_cost(final.cost, final.source)

    async def response_headers(self, response: Any) -> dict[str, str]:
        """The proxy's headers, and the headers hook: exactly once per request, before the status line."""
        ctx = self.ctx
        headers = {"x-trioproxy-request-id": ctx.id, "x-litellm-call-id": ctx.id}
        if ctx.deployment is not None:
            headers["x-trioproxy-model"] = ctx.deployment.model_name
        if ctx.cache_hit:
            headers["x-trioproxy-cache-hit"] = "true"
            if ctx.cache_key is not None:
                headers["x-litellm-cache-key"] = ctx.cache_key   # LiteLLM's header, on hits only
        if response is not None and ctx.response_cost is not None:
            # non-streaming only: a stream's cost is known after its headers are sent (docs/logging.md)
            headers["x-trioproxy-response-cost"] = headers["x-litellm-response-cost"] = \
                format(ctx.response_cost, ".10g")
        if self.ticket is not None:     # key spend and budget, rate-limit remaining/limit (docs/spend.md)
            headers.update(self.ticket.headers())
        if ctx.headers_hook_ran:
            return headers
        ctx.headers_hook_ran = True
        calls = self.rules.plan.calls("response_headers", ctx.data, self.picks)
        if calls:
            args = self.args(response=response, user_api_key_dict=ctx.user or UserAPIKeyAuth())
            headers.update(await scheduler.run_response_headers(calls, self.invoke, args))
        return headers

    async def failure_hooks(self, error: ProxyError) -> ProxyError:
        """Failure hooks, exactly once per failed request; returns the error the client gets."""
        ctx = self.ctx
        if ctx.failure_hooks_ran:
            return error
        ctx.failure_hooks_ran = True
        self.settle_attempt(error=error)    # with the error as it came, before a hook replaces it
        calls = self.calls("failure")
        if not calls:
            ctx.error = error
            return error
        scrubber = self.rules.scrubber
        # every text of the error and of its chain (an upstream echoing the key in ``param``, a
        # transport error naming a URL, a handler's exception): the hooks get them scrubbed
        scrubber.scrub_error(error)
        # failure hooks see what a handler raised (e.g. ValueError), not the proxy's wrapper for it
        original: BaseException = error.original if isinstance(error, HookCrashedError) else error
        # shielded: a client that leaves while these run must not cut the later handlers short.
        # Each hook keeps its own time limit; the scope's deadline only bounds the whole phase.
        replacement = None
        # the traceback text (with its chain of causes) may echo a key: the hooks get it scrubbed.
        # Formatting reads source files (linecache: a stat per frame, a read per new file) and walks
        # every frame of the chain: a worker thread's job, not the event loop's (shielded like the
        # hooks; it cannot hang)
        if self.rules.traceback_in_thread:
            with trio.CancelScope(shield=True):
                traceback_str = await trio.to_thread.run_sync(
                    _scrubbed_traceback, scrubber, original, limiter=self.rules.traceback_limiter)
        else:
            traceback_str = _scrubbed_traceback(scrubber, original)
        args = self.args(
            original_exception=original,
            user_api_key_dict=ctx.user or UserAPIKeyAuth(),
            traceback_str=traceback_str,
        )
        with trio.CancelScope(shield=True, deadline=trio.current_time() + self.rules.hook_timeout * len(calls) + 1):
            replacement = await scheduler.run_failure(calls, self.invoke, args)
        if replacement is not None:
            replacement.__context__ = error
            error = replacement
        ctx.error = error
        return error

    async def fail(self, error: ProxyError) -> ProxyResponse:
        """A failure before the status line: failure hooks, headers hook, one JSON error."""
        error = await self.failure_hooks(error)
        self.rules.scrubber.scrub_error(error)   # a failure hook's replacement may echo a key too
        headers = await self.response_headers(None)
        headers.update(error.headers)
        self.report_failure(error)
        return ProxyResponse(error.status_code, headers, orjson.dumps(error_body(error)))

    def succeed(self, status: int = 200) -> None:
        ctx = self.ctx
        if ctx.outcome_reported:
            return
        ctx.outcome_reported = True
        ctx.status = status
        ctx.end = time.perf_counter()
        self.settle_attempt(succeeded=True)
        if self.ticket is not None:     # the spend record, before the answer's last byte
            self.ticket.finish(ctx)
        self.rules.observers.notify("on_success", ctx)

    def report_failure(self, error: ProxyError) -> None:
        ctx = self.ctx
        if ctx.outcome_reported:
            return
        ctx.outcome_reported = True
        ctx.error = error
        ctx.status = error.status_code
        ctx.end = time.perf_counter()
        self.settle_attempt(error=error)
        if self.ticket is not None:     # a failure's record: cost 0, its status
            self.ticket.finish(ctx)
        self.rules.observers.notify("on_failure", ctx)

    async def cancelled(self, reason: ProxyError | None = None) -> None:
        """The request was cancelled (client gone, server stopping): failure hooks once, shielded.

        ``reason``: why, when the proxy knows better than "the client left" (a stream that was being
        stopped for shutdown or for its duration when the cancellation came).
        """
        ctx = self.ctx
        if ctx.outcome_reported:
            return
        if ctx.failure_hooks_ran and ctx.error is not None:
            error: ProxyError = ctx.error   # the failure path was under way: report what it decided
        elif reason is not None:
            error = reason
        else:
            error = ClientDisconnectedError("The client disconnected before the response was complete.")
        try:
            error = await self.failure_hooks(error)   # shielded inside; no-op if they ran
        except Exception as exc:  # a broken failure hook must not mask the cancellation
            log.error("failure hooks raised during cleanup of %s", ctx.id, exc_info=exc)
        self.report_failure(error)
