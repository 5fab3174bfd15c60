"""The request path's side of spend: admit a request against its limits and budgets, hand its record off.

One :class:`SpendMeter` per process (built by ``proxy.py`` when a database is configured). The
request core calls it through its run (``core/run.py``), at three moments::

    ticket = await meter.admit(ctx, peer)   # the pre-call step ``limits_and_budgets`` (hooks/steps.py);
                                            # refused → BudgetExceededError / RateLimitError, no record
    ticket.finish(ctx)                      # at the outcome (RequestRun.succeed / report_failure):
                                            # exactly once, before the client gets the last byte
    await ticket.close(ctx)                 # in a shielded ``finally`` on every way out

**Exactly once.** ``finish`` is called where the run reports the request's outcome, which happens
once per request whatever path it takes (success, upstream error, a hook's rejection, a timeout,
the client leaving): the final record goes to the writer's outbox (a memcpy: durable against
``kill -9`` when ``finish`` returns) and the reservation is settled — synchronously with the
in-process limiter, so the parallel slot is free in the same step. ``close`` is the safety net
that cannot be skipped: it finishes a request that somehow reported no outcome (as a failure) and
awaits the settle or release an asynchronous limiter (Redis, issue #13) needs.

**The id.** The record's ``request_id`` is the run's id (``RequestContext.id``), known at
admission: the outbox pairs the admission entry with the final one by it. It is also the ``id``
the client receives (``core/`` puts it in the body of chat and text completions — upstream ids are
neither known at admission nor unique: a cache hit replays one, some servers repeat theirs), in
``x-litellm-call-id``, and in the logging payload's ``litellm_call_id``.

Cheap by design (``bench/spend_admission.py``): no database, no thread, no await on the way in or
out for a cached key with the in-process limiter; everything the record needs is read from the
context the request already has.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
import trio

from ..coordination import Kind, Limiter
from ..store.money import to_micros
from .admission import Admitter, RequestFacts, Reservation
from .estimate import estimate_prompt_tokens, requested_output_tokens
from .record import ErrorInfo, KeyIdentity, RecordInputs, SpendRecord
from .writer import SpendWriter

if TYPE_CHECKING:
    from ..observability.prices import Price

__all__ = ["CALL_TYPES", "SpendMeter", "Ticket", "key_spend_forgetter"]

log = logging.getLogger("trioproxy.spend")

#: the route's call type → LiteLLM's ``call_type`` in spend records
CALL_TYPES = {"completion": "acompletion", "text_completion": "atext_completion", "embeddings": "aembedding"}

#: master-key (and open-proxy) calls: counted in the proxy's spend, never limited. The record's
#: ``api_key`` is empty, as in the audit log: an unsalted SHA-256 of the master key readable by
#: every admin viewer through ``/spend/logs`` would let them brute-force a weak master key offline.
MASTER_IDENTITY = KeyIdentity(is_master=True)

#: seconds between two soft-budget warnings of the same budget
SOFT_BUDGET_REPEAT = 3600.0

#: how long a shielded close may wait for an asynchronous limiter (Redis answers or times out sooner)
CLOSE_DEADLINE = 5.0


class SpendMeter:
    """Admission and records for every request of one process (see the module docstring)."""

    def __init__(self, admitter: Admitter, writer: SpendWriter, *, price_of: Callable[[str], Price | None],
                 scrub: Callable[[str], str] = lambda text: text, store_prompts: bool = False) -> None:
        self.admitter = admitter
        #: ``general_settings.store_prompts_in_spend_logs``: messages, answer and request body in the row
        self.store_prompts = store_prompts
        self.writer = writer
        #: the model group's price (its first deployment's), None when unknown or unpriced
        self.price_of = price_of
        #: error messages go to the database: the proxy's secret scrubber cleans them first
        self.scrub = scrub
        self.default_max_tokens = admitter.settings.default_max_tokens
        #: (entity, id) → when its soft-budget warning was last logged (monotonic seconds)
        self._soft_warned: dict[tuple[str, str], float] = {}

    def _soft_budget_warnings(self, reservation: Reservation) -> None:
        """``soft_budget`` reached: a warning event (logged on ``trioproxy.spend`` with the budget's
        entity, id, spend and soft budget), never a refusal — LiteLLM's soft-budget alert. Once per
        budget per :data:`SOFT_BUDGET_REPEAT` seconds, not on every request past the line."""
        now = time.monotonic()
        for alert in reservation.soft_budget_alerts():
            ident = (alert["entity"], alert["id"])
            last = self._soft_warned.get(ident)
            if last is not None and now - last < SOFT_BUDGET_REPEAT:
                continue
            if len(self._soft_warned) > 10_000:
                self._soft_warned.clear()
            self._soft_warned[ident] = now
            log.warning("soft budget reached: %s %s has spent %s USD, soft_budget %s USD (requests are still "
                        "served)", alert["entity"], alert["id"], alert["spend"], alert["soft_budget"],
                        extra={"event": "soft_budget_reached", **{f"budget_{k}": v for k, v in alert.items()}})

    async def admit(self, ctx: Any, peer: str | None = None) -> Ticket:
        """Reserve the request's estimate on every counter that applies, or refuse it (no record).

        ``ctx`` is the request's ``RequestContext`` after authentication and the cheap checks
        (``identity``, ``customer``, ``data`` set); ``peer`` the client's address when the HTTP
        entry resolved none (``requester_ip_address``)."""
        identity = ctx.identity
        auth = identity.record if identity is not None else None
        data = ctx.data
        model = data.get("model")
        model = model if isinstance(model, str) else ""
        user = data.get("user")
        end_user = user if isinstance(user, str) and user else None
        embeddings = ctx.route.endpoint == "embeddings"
        facts = RequestFacts(model=model, end_user=end_user, price=self.price_of(model) if model else None,
                             prompt_tokens=estimate_prompt_tokens(data),
                             output_tokens=0 if embeddings else requested_output_tokens(data, self.default_max_tokens))
        reservation = await self.admitter.admit(ctx.id, auth, facts, customer=ctx.customer, master=auth is None)
        if reservation.plan.soft:
            self._soft_budget_warnings(reservation)
        try:
            headers = ctx.request_headers
            metadata = data.get("metadata")
            started = time.time() - (time.perf_counter() - ctx.start)
            inputs = RecordInputs(
                request_id=ctx.id, call_type=CALL_TYPES.get(ctx.route.call_type, ctx.route.call_type),
                start_time=started, end_time=started,
                identity=KeyIdentity.from_auth_record(auth) if auth is not None else MASTER_IDENTITY,
                model=model, model_group=model or None, end_user=end_user,
                request_metadata=metadata if isinstance(metadata, Mapping) else None,
                body_tags=data.get("tags"), header_tags=headers.get("x-litellm-tags"),
                header_spend_logs_metadata=headers.get("x-litellm-spend-logs-metadata"),
                requester_ip_address=getattr(ctx, "requester_ip_address", None) or peer,
                reserved_micros=reservation.estimate_micros)
            base = self.writer.admitted(inputs)
        except BaseException:
            # admitted but no record can be made (a bug): give the reservation back, fail the request
            with trio.CancelScope(shield=True):
                await reservation.release()
            raise
        return Ticket(self, reservation, base, started)


class Ticket:
    """One admitted request's reservation and record: finished once, closed always."""

    __slots__ = ("base", "finished", "meter", "reservation", "started")

    def __init__(self, meter: SpendMeter, reservation: Reservation, base: SpendRecord, started: float) -> None:
        self.meter = meter
        self.reservation = reservation
        self.base = base
        self.started = started        # unix time of the request's start
        self.finished = False

    def headers(self) -> dict[str, str]:
        """``x-litellm-key-spend``, ``-max-budget``, ``-tpm-limit``, ``-rpm-limit`` and the rate-limit
        remaining/limit headers of the limited subjects (``Reservation.headers``)."""
        return self.reservation.headers()

    def finish(self, ctx: Any) -> None:
        """The outcome is known: settle the counters (at once when the limiter can) and hand the
        final record to the writer. Exactly once; never raises (a bug is logged, and the record is
        still handed off as well as it can be built)."""
        if self.finished:
            return
        self.finished = True
        try:
            record = self._final(ctx)
            if self.meter.store_prompts:
                record = self._with_prompts(record, ctx)
        except Exception as exc:
            log.error("building the spend record of %s failed; recorded as a failure", ctx.id, exc_info=exc)
            record = self.base.complete(end_time=time.time(), status="failure",
                                        error=ErrorInfo(type(exc).__name__, "500", "spend record incomplete"))
        try:
            if record.status == "success":
                self.reservation.settle_at_once(tokens=record.total_tokens, cost_micros=record.spend)
            else:
                self.reservation.settle_at_once(tokens=0, cost_micros=0)
        except Exception as exc:        # the limiter's bug must not lose the record
            log.error("settling the reservation of %s failed", ctx.id, exc_info=exc)
        self.meter.writer.finished(record)

    async def close(self, ctx: Any) -> None:
        """Every way out of an admitted request (call it shielded): finish it if no outcome was
        reported (a failure), then let an asynchronous limiter settle or release it."""
        if not self.finished:
            self.finish(ctx)
        if not self.reservation.settled:
            with trio.move_on_after(CLOSE_DEADLINE):
                await self.reservation.release()   # applies the actuals a deferred settle kept

    def _with_prompts(self, record: SpendRecord, ctx: Any) -> SpendRecord:
        """``store_prompts_in_spend_logs``: what was asked and answered, as LiteLLM's row keeps it —
        through the proxy's secret scrubber first (provider keys, the master key and any other known
        secret a client pasted never reach the database in clear)."""
        data = ctx.data if isinstance(ctx.data, Mapping) else {}
        asked = data.get("messages")
        if asked is None:
            asked = data.get("prompt", data.get("input"))
        scrub = self.meter.scrub
        return replace(record, messages=_scrubbed(asked, scrub), response=_scrubbed(_plain(ctx.response), scrub),
                       proxy_server_request=_scrubbed(dict(data), scrub))

    def _final(self, ctx: Any) -> SpendRecord:
        now = time.time()
        deployment = ctx.deployment
        first = ctx.first_chunk_at
        completion_start = self.started + (first - ctx.start) if first is not None else None
        served: dict[str, Any] = {}
        if deployment is not None:
            served = {"model": deployment.upstream_model, "custom_llm_provider": deployment.provider,
                      "api_base": deployment.api_base or "",
                      "model_id": _model_id(deployment)}
        error = ctx.error
        if error is None and ctx.outcome_reported:
            usage = ctx.usage if isinstance(ctx.usage, dict) else {}
            prompt = _count(usage.get("prompt_tokens"))
            completion = _count(usage.get("completion_tokens"))
            cost = ctx.response_cost
            return self.base.complete(end_time=now, status="success",
                                      spend_micros=(to_micros(cost) or 0) if cost is not None else 0,
                                      prompt_tokens=prompt, completion_tokens=completion,
                                      completion_start_time=completion_start, cache_hit=ctx.cache_hit, **served)
        provider = deployment.provider if deployment is not None else ""
        if error is None:       # closed without an outcome (cannot happen: the run reports every one)
            info = ErrorInfo("InternalServerError", "500", "the request ended without an outcome", provider)
        else:
            status = getattr(error, "status_code", None) or ctx.status or 500
            info = ErrorInfo(type(error).__name__, str(status),
                             self.meter.scrub(str(getattr(error, "message", error))), provider)
        return self.base.complete(end_time=now, status="failure", spend_micros=0, error=info,
                                  completion_start_time=completion_start, cache_hit=ctx.cache_hit, **served)


def _plain(value: Any) -> Any:
    """A response object (the types' ``model_dump``/``to_dict``, or a dict) as a JSON value."""
    if value is None or isinstance(value, dict | list | str):
        return value
    for name in ("model_dump", "to_dict", "dict"):
        method = getattr(value, name, None)
        if callable(method):
            return method()
    return str(value)


def _scrubbed(value: Any, scrub: Callable[[str], str]) -> Any:
    """``value`` through the scrubber, as JSON (and without NUL characters, which PostgreSQL refuses)."""
    if value is None:
        return None
    text = orjson.dumps(value, default=str).decode()
    return orjson.loads(scrub(text).replace("\\u0000", "\\ufffd"))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _model_id(deployment: Any) -> str | None:
    info = getattr(deployment, "model_info", None)
    found = info.get("id") if isinstance(info, Mapping) else None
    return str(found) if found is not None else None


def key_spend_forgetter(limiter: Limiter | None) -> Callable[[str], Any] | None:
    """What ``/key/update`` calls after setting a key's ``spend``: its budget counter is dropped and
    seeded again from the row (docs/spend.md)."""
    if limiter is None:
        return None

    async def forget(token: str) -> None:
        await limiter.forget(Kind.BUDGET, f"key:{token}")

    return forget
