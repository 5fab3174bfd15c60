"""Budgets and rate limits of one request as limiter checks, reserved atomically before the upstream.

The integration calls, once the key is authenticated and the model resolved::

    facts = RequestFacts(model=..., end_user=body.get("user"), prompt_tokens=estimate_prompt_tokens(body),
                         output_tokens=requested_output_tokens(body, settings.default_max_tokens), price=price)
    reservation = await admitter.admit(request_id, auth_record, facts, customer=customer_record)
    try:                                  # refused → BudgetExceededError (429) / RateLimitError (429)
        ... the upstream call ...
        await reservation.settle(tokens=usage.total_tokens, cost_micros=cost)
    finally:
        with trio.CancelScope(shield=True):
            await reservation.release()   # no-op after settle: frees the parallel slot on any failure
    response.headers.update(reservation.headers())

**The rule** (the limiter's, ``coordination/limiter.py``): refuse when *recorded spend + reservations
in flight* ≥ the budget, else admit and reserve the estimate on every counter at once. So the call
that crosses the line is served and the next one refused, and N concurrent requests against a
budget that fits k calls admit at most k + 1 — whatever the interleaving. A budget refusal names
the first refusing budget in this order: key, team, team member, user, customer, proxy, key×model,
team×model;
then rate limits: parallel slots, rpm, tpm for key, user, team, customer, key×model, team×model.

Counters (names of the limiter's keys):

==============================  ==================================================================
``key:<hash>``                  the key's budget, rpm, tpm, parallel slots
``team:<id>``                   one pot for every key of the team; team rpm/tpm/parallel
``member:<team>:<user>``        ``max_budget_in_team`` (its ``budget_duration``)
``user:<id>``                   the internal user's budget across *all* their keys (team keys too:
                                the stricter reading of LiteLLM's disputed rule, #11962)
``customer:<id>``               the request's ``user``: its budget row, else ``max_end_user_budget``
``proxy``                       ``litellm_settings.max_budget``; master-key calls reserve on it with
                                no limit (counted, never refused)
``key:<hash>:model:<m>``        ``model_max_budget`` and ``model_rpm_limit``/``model_tpm_limit``
``team:<id>:model:<m>``         the team's ``model_max_budget`` (one pot per model for its keys) and
                                per-model rpm/tpm
==============================  ==================================================================

**Windows and the ledger.** A budget with ``budget_duration`` uses the limiter's anchored windows
with the *store's* boundaries: the current window ends at ``budget_reset_at`` and windows are
``duration`` long, so the anchor is ``budget_reset_at mod duration`` — stable across resets (the
counter key does not change when the window rolls) and equal on every process. The counter is
seeded (once per window, never added to) with the row's ``spend`` when the cached row still
describes the current window, else 0: the window rolled, the ledger's spend belongs to the old one.
Calendar months (``mo``) are not a fixed length: their counter key carries the window's start
(``key:<hash>@<epoch>``) and its window is that month. The proxy budget's windows step from the
start stored in the database at the first start with its duration (:class:`ProxyBudgetAnchor`,
filled by :class:`ProxyBudgetAnchorService`; UTC-epoch aligned only until that has been read);
``model_max_budget`` has no stored anchor: its windows are aligned to the UTC epoch (``1d`` = UTC
days). Both are seeded from the ledger (``SpendRepository.spend_since``) the first time this process
uses them in a window.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

import trio

from ..coordination.errors import CoordinationError
from ..coordination.limiter import Admission, Check, Kind, Limiter, admit
from ..errors import ProxyError, RateLimitError
from ..observability.prices import Price
from ..store.budget_windows import parse_budget_duration, roll_forward, window_start
from ..store.durations import Duration
from ..store.money import from_micros, to_micros
from .estimate import estimate_cost_micros

__all__ = [
    "AdmissionSettings",
    "Admitter",
    "BudgetExceededError",
    "RequestFacts",
    "Reservation",
    "SeedSource",
    "plan_checks",
    "proxy_window_start",
]

log = logging.getLogger("trioproxy.spend.admission")

#: a limit that never refuses (the master key's share of the proxy budget)
UNLIMITED = 2**62

#: seconds a failed reserve waits for its release's reply. The release is queued on the limiter's
#: connection before the wait begins (behind the reserve: Redis runs it after), so waiting longer
#: only delays the caller's 503 or cancellation; if it never arrives the lease ends the reservation.
RELEASE_WAIT = 0.1


class BudgetExceededError(ProxyError):
    """A budget refused the request before the upstream (LiteLLM's ``budget_exceeded``)."""

    status_code = 429
    error_type = "budget_exceeded"
    default_code = "429"


class ProxyBudgetAnchor:
    """Where the proxy budget's windows start (Unix seconds): the stored start of its first window.

    Mutable and shared (settings are frozen): :class:`ProxyBudgetAnchorService` sets ``start`` once
    the store has answered; while it is None the windows are aligned to the UTC epoch (logged).
    """

    __slots__ = ("start",)

    def __init__(self, start: float | None = None):
        self.start = start


@dataclass(frozen=True, slots=True)
class AdmissionSettings:
    """Proxy-wide settings of admission (from ``litellm_settings`` / ``general_settings``)."""

    proxy_max_budget: int | None = None           # micro-USD (litellm_settings.max_budget)
    proxy_budget_duration: str | None = None      # litellm_settings.budget_duration
    max_end_user_budget: int | None = None        # micro-USD (litellm_settings.max_end_user_budget)
    default_max_tokens: int = 4096                # reserved when a request names no max_tokens
    budget_exceeded_status: int = 429             # litellm_settings.budget_exceeded_status_code
    rate_limit_window: float = 60.0               # rpm/tpm sliding window, seconds
    fail_open: bool = False                       # shared state down: admit (degraded) instead of 503
    proxy_anchor: ProxyBudgetAnchor = field(default_factory=ProxyBudgetAnchor, compare=False)

    @classmethod
    def from_config(cls, litellm_settings: Mapping[str, Any] | None,
                    general_settings: Mapping[str, Any] | None = None) -> AdmissionSettings:
        ls = litellm_settings or {}
        gs = general_settings or {}
        status = int(ls.get("budget_exceeded_status_code") or 429)
        if status not in (400, 422, 429):
            raise ValueError("litellm_settings.budget_exceeded_status_code must be 400, 422 or 429")
        default_max = gs.get("spend_default_max_tokens", 4096)
        if not isinstance(default_max, int) or isinstance(default_max, bool) or default_max < 0:
            raise ValueError("general_settings.spend_default_max_tokens must be an integer ≥ 0")
        duration = ls.get("budget_duration")
        if duration is not None:
            from ..store.durations import parse_duration
            parse_duration(str(duration))          # raises InvalidDuration with a clear message
        return cls(proxy_max_budget=to_micros(ls.get("max_budget")), proxy_budget_duration=duration,
                   max_end_user_budget=to_micros(ls.get("max_end_user_budget")), default_max_tokens=default_max,
                   budget_exceeded_status=status, fail_open=bool(gs.get("limits_fail_open", False)))


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What admission needs from the request (``estimate.py`` computes the token counts)."""

    model: str                       # the model name the client asked for (model group)
    end_user: str | None = None      # the request's ``user``
    prompt_tokens: int = 0
    output_tokens: int = 0           # max_tokens (or the default); 0 for embeddings
    price: Price | None = None       # of the model group (its deployment's price)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens

    @property
    def cost_micros(self) -> int:
        return estimate_cost_micros(self.price, self.prompt_tokens, self.output_tokens)


# --- what a check means (for messages and headers) ---------------------------------------------------

class _Meaning(NamedTuple):     # a tuple: built per check per request, so it must be cheap
    entity: str          # key | team | member | user | customer | proxy | key_model | team_model
    ident: str           # what the message names (alias/key name, team id, user id, …)
    descriptor: str      # rate-limit message and header: api_key, user, team, end_user, model_per_key…
    value: str           # the descriptor's value (hash, id, "hash:model")


@dataclass(frozen=True, slots=True)
class Plan:
    checks: tuple[Check, ...]
    meanings: tuple[_Meaning, ...]
    lazy_seeds: tuple[tuple[int, str, str | None, float], ...] = ()   # (index, kind, model, since)
    estimate_micros: int = 0
    estimate_tokens: int = 0
    key_budget_index: int | None = None
    #: (check index, entity, id, soft budget µUSD): soft_budget → a warning, never a refusal
    soft: tuple[tuple[int, str, str, int], ...] = ()


def _duration_seconds(duration: Duration) -> float:
    start = datetime(2001, 1, 1, tzinfo=UTC)
    return (duration.after(start) - start).total_seconds()


def _windowed(counter: str, limit: int, amount: int, duration_text: str | None, reset_at: datetime | None,
              spend: int, now: float) -> Check:
    """A budget check with the store's window boundaries (see the module docstring)."""
    duration = parse_budget_duration(duration_text)
    if duration is None or reset_at is None:
        return Check(counter, Kind.BUDGET, limit, amount, window=None, seed=spend)
    reset_ts = reset_at.timestamp()
    fresh = now < reset_ts
    if duration.unit == "mo":
        end = reset_at if fresh else roll_forward(reset_at, duration, datetime.fromtimestamp(now, UTC))
        start = window_start(end, duration)
        start_ts = start.timestamp()
        return Check(f"{counter}@{int(start_ts)}", Kind.BUDGET, limit, amount,
                     window=end.timestamp() - start_ts, anchor=start_ts, seed=spend if fresh else 0, seed_window=0)
    window_ms = round(_duration_seconds(duration) * 1000)
    anchor_ms = round(reset_ts * 1000) % window_ms
    anchor = anchor_ms / 1000
    effective_anchor_ms = math.floor(anchor * 1000)          # what Check derives: use the same value
    record_window = (round(reset_ts * 1000) - window_ms - effective_anchor_ms) // window_ms
    return Check(counter, Kind.BUDGET, limit, amount, window=window_ms / 1000, anchor=anchor,
                 seed=spend, seed_window=record_window)


def _epoch_window(counter: str, limit: int, amount: int, duration: Duration | None,
                  now: float) -> tuple[Check, float]:
    """A budget window aligned to the UTC epoch (proxy budget, model_max_budget); also its start."""
    if duration is None:
        return Check(counter, Kind.BUDGET, limit, amount, window=None), 0.0
    if duration.unit == "mo":
        today = datetime.fromtimestamp(now, UTC)
        month0 = today.year * 12 + today.month - 1
        first = month0 - month0 % duration.amount
        start = datetime(first // 12, first % 12 + 1, 1, tzinfo=UTC)
        end = duration.after(start)
        return (Check(f"{counter}@{int(start.timestamp())}", Kind.BUDGET, limit, amount,
                      window=(end - start).total_seconds(), anchor=start.timestamp()), start.timestamp())
    window = _duration_seconds(duration)
    start = math.floor(now / window) * window
    return Check(counter, Kind.BUDGET, limit, amount, window=window, anchor=0.0), start


def _anchored_window(counter: str, limit: int, amount: int, duration: Duration, start: float,
                     now: float) -> tuple[Check, float]:
    """A budget window in the sequence that begins at ``start`` (a stored first start); also the
    current window's start. Fixed lengths keep one counter key (anchor = ``start mod duration``);
    calendar months carry the window's start in the key, as ``_windowed`` does."""
    if duration.unit == "mo":
        # step forward from the real start (a window's end minus a month is not its start once a
        # 31st was clamped to a 28th): a few hundred steps for decades
        at, first = datetime.fromtimestamp(now, UTC), datetime.fromtimestamp(start, UTC)
        begin_dt, end = first, duration.after(first)
        while end <= at:
            begin_dt, end = end, duration.after(end)
        begin = begin_dt.timestamp()
        return (Check(f"{counter}@{int(begin)}", Kind.BUDGET, limit, amount, window=end.timestamp() - begin,
                      anchor=begin), begin)
    window_ms = round(_duration_seconds(duration) * 1000)
    anchor = (round(start * 1000) % window_ms) / 1000
    anchor_ms = math.floor(anchor * 1000)                   # what Check derives: use the same value
    now_ms = math.floor(now * 1000)
    begin_ms = now_ms - (now_ms - anchor_ms) % window_ms
    return Check(counter, Kind.BUDGET, limit, amount, window=window_ms / 1000, anchor=anchor), begin_ms / 1000


def _proxy_window(limit: int, amount: int, settings: AdmissionSettings, now: float) -> tuple[Check, float]:
    duration = parse_budget_duration(settings.proxy_budget_duration)
    start = settings.proxy_anchor.start
    if duration is not None and start is not None:
        return _anchored_window("proxy", limit, amount, duration, start, now)
    return _epoch_window("proxy", limit, amount, duration, now)


def proxy_window_start(settings: AdmissionSettings, now: float) -> float:
    """Unix time the proxy budget's current window started (0: no duration, all time)."""
    _, since = _proxy_window(0, 0, settings, now)
    return since


def _key_descriptor(auth: Any) -> str:
    return f"{auth.key_alias} ({auth.key_name})" if auth.key_alias else auth.key_name


def _model_budget(spec: Any) -> tuple[int | None, Duration | None]:
    if isinstance(spec, Mapping):
        limit = spec.get("budget_limit_micros")
        if limit is None and spec.get("budget_limit") is not None:
            limit = to_micros(spec["budget_limit"])
        return (int(limit) if limit is not None else None), parse_budget_duration(spec.get("time_period"))
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return to_micros(spec), None
    return None, None


def _limit(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def plan_checks(auth: Any | None, facts: RequestFacts, settings: AdmissionSettings, *, now: float,
                customer: Any | None = None, master: bool = False) -> Plan:
    """The checks of one request (pure; no I/O). ``auth`` is a ``store.AuthRecord`` (None with
    ``master=True`` for the master key); ``customer`` the ``store.CustomerRecord`` of
    ``facts.end_user`` if one exists."""
    cost = facts.cost_micros
    tokens = facts.tokens
    checks: list[Check] = []
    meanings: list[_Meaning] = []
    lazy: list[tuple[int, str, str | None, float]] = []
    key_budget_index = None
    model = facts.model

    def add(check: Check, meaning: _Meaning) -> None:
        checks.append(check)
        meanings.append(meaning)

    if master or auth is None:
        if settings.proxy_max_budget is not None:
            check, since = _proxy_window(UNLIMITED, cost, settings, now)
            lazy.append((len(checks), "proxy", None, since))
            add(check, _Meaning("proxy", "", "proxy", "proxy"))
        return Plan(tuple(checks), tuple(meanings), tuple(lazy), cost, tokens)

    token = auth.token
    key_ident = _key_descriptor(auth)
    # --- budgets -------------------------------------------------------------------------------------
    soft: list[tuple[int, str, str, int]] = []
    if auth.max_budget is not None or auth.soft_budget is not None:
        key_budget_index = len(checks)
        if auth.soft_budget is not None:
            soft.append((len(checks), "key", key_ident, auth.soft_budget))
        limit = auth.max_budget if auth.max_budget is not None else UNLIMITED   # soft only: counted
        add(_windowed(f"key:{token}", limit, cost, auth.budget_duration, auth.budget_reset_at,
                      auth.spend, now), _Meaning("key", key_ident, "api_key", token))
    team = auth.team
    if team is not None and (team.max_budget is not None or team.soft_budget is not None):
        if team.soft_budget is not None:
            soft.append((len(checks), "team", team.team_id, team.soft_budget))
        limit = team.max_budget if team.max_budget is not None else UNLIMITED
        add(_windowed(f"team:{team.team_id}", limit, cost, team.budget_duration, team.budget_reset_at,
                      team.spend, now), _Meaning("team", team.team_id, "team", team.team_id))
    membership = auth.membership
    if team is not None and membership is not None and membership.max_budget_in_team is not None:
        add(_windowed(f"member:{team.team_id}:{auth.user_id}", membership.max_budget_in_team, cost,
                      membership.budget_duration, membership.budget_reset_at, membership.spend, now),
            _Meaning("member", f"{auth.user_id}|{team.team_id}", "team_member", f"{team.team_id}:{auth.user_id}"))
    user = auth.user
    if user is not None and user.max_budget is not None:
        add(_windowed(f"user:{user.user_id}", user.max_budget, cost, user.budget_duration, user.budget_reset_at,
                      user.spend, now), _Meaning("user", user.user_id, "user", user.user_id))
    end_user = facts.end_user
    if end_user:
        limit = customer.max_budget if customer is not None and customer.max_budget is not None \
            else settings.max_end_user_budget
        if limit is not None:
            if customer is not None and customer.max_budget is not None:
                check = _windowed(f"customer:{end_user}", limit, cost, customer.budget_duration,
                                  customer.budget_reset_at, customer.spend, now)
            else:
                check = Check(f"customer:{end_user}", Kind.BUDGET, limit, cost, window=None,
                              seed=customer.spend if customer is not None else 0)
            add(check, _Meaning("customer", end_user, "end_user", end_user))
    if settings.proxy_max_budget is not None:
        check, since = _proxy_window(settings.proxy_max_budget, cost, settings, now)
        lazy.append((len(checks), "proxy", None, since))
        add(check, _Meaning("proxy", "", "proxy", "proxy"))
    spec = auth.model_max_budget.get(model) if auth.model_max_budget else None
    if spec is not None:
        limit, duration = _model_budget(spec)
        if limit is not None:
            check, since = _epoch_window(f"key:{token}:model:{model}", limit, cost, duration, now)
            lazy.append((len(checks), "key_model", model, since))
            add(check, _Meaning("key_model", key_ident, "model_per_key", f"{token}:{model}"))
    spec = team.model_max_budget.get(model) if team is not None and team.model_max_budget else None
    if spec is not None and team is not None:
        limit, duration = _model_budget(spec)
        if limit is not None:       # one pot per model for every key of the team (like key×model)
            check, since = _epoch_window(f"team:{team.team_id}:model:{model}", limit, cost, duration, now)
            lazy.append((len(checks), "team_model", model, since))
            add(check, _Meaning("team_model", team.team_id, "model_per_team", f"{team.team_id}:{model}"))
    # --- rate limits (parallel slots first: a refusal for parallelism consumes no rpm) ---------------
    window = settings.rate_limit_window
    subjects: list[tuple[str, str, str, int | None, int | None, int | None]] = []

    def subject(counter: str, descriptor: str, value: str, parallel: Any, rpm: Any, tpm: Any) -> None:
        if parallel is not None or rpm is not None or tpm is not None:
            subjects.append((counter, descriptor, value, _limit(parallel), _limit(rpm), _limit(tpm)))

    subject(f"key:{token}", "api_key", token, auth.max_parallel_requests, auth.rpm_limit, auth.tpm_limit)
    if user is not None:
        subject(f"user:{user.user_id}", "user", user.user_id, user.max_parallel_requests, user.rpm_limit,
                user.tpm_limit)
    if team is not None:
        subject(f"team:{team.team_id}", "team", team.team_id, team.max_parallel_requests, team.rpm_limit,
                team.tpm_limit)
    if end_user and customer is not None:
        subject(f"customer:{end_user}", "end_user", end_user, customer.max_parallel_requests, customer.rpm_limit,
                customer.tpm_limit)
    if auth.model_rpm_limit or auth.model_tpm_limit:
        subject(f"key:{token}:model:{model}", "model_per_key", f"{token}:{model}", None,
                auth.model_rpm_limit.get(model), auth.model_tpm_limit.get(model))
    if team is not None and (team.model_rpm_limit or team.model_tpm_limit):
        subject(f"team:{team.team_id}:model:{model}", "model_per_team", f"{team.team_id}:{model}", None,
                team.model_rpm_limit.get(model), team.model_tpm_limit.get(model))
    for counter, descriptor, value, parallel, _rpm, _tpm in subjects:
        if parallel is not None:
            add(Check(counter, Kind.MAX_PARALLEL, parallel, window=None), _Meaning("rate", "", descriptor, value))
    for counter, descriptor, value, _parallel, rpm, tpm in subjects:
        if rpm is not None:
            add(Check(counter, Kind.RPM, rpm, window=window), _Meaning("rate", "", descriptor, value))
        if tpm is not None:
            add(Check(counter, Kind.TPM, tpm, tokens, window=window), _Meaning("rate", "", descriptor, value))
    return Plan(tuple(checks), tuple(meanings), tuple(lazy), cost, tokens, key_budget_index, tuple(soft))


# --- refusals: LiteLLM's messages --------------------------------------------------------------------

def _usd(micros: int) -> float:
    return from_micros(micros) or 0.0


def _refusal(plan: Plan, admission: Admission, settings: AdmissionSettings, now: float) -> ProxyError:
    index = admission.refused[0]
    check, meaning = plan.checks[index], plan.meanings[index]
    used = admission.used[index] if admission.used else 0
    headers = {}
    if admission.retry_after is not None:
        headers["retry-after"] = str(max(1, math.ceil(admission.retry_after)))
    if check.kind is Kind.BUDGET:
        spent, limit = _usd(used), _usd(check.limit)
        entity, ident = meaning.entity, meaning.ident
        if entity == "key":
            message = f"Budget has been exceeded! Key={ident} Current cost: {spent}, Max budget: {limit}"
        elif entity == "team":
            message = f"Budget has been exceeded! Team={ident} Current cost: {spent}, Max budget: {limit}"
        elif entity == "member":
            user_id, team_id = ident.split("|", 1)
            message = (f"Budget has been exceeded! User={user_id} in Team={team_id} "
                       f"Current cost: {spent}, Max budget: {limit}")
        elif entity == "user":
            message = f"ExceededBudget: User={ident} over budget. Spend={spent}, Budget={limit}"
        elif entity == "customer":
            message = f"ExceededBudget: End User={ident} over budget. Spend={spent}, Budget={limit}"
        elif entity == "key_model":
            model = meaning.value.split(":", 1)[1]          # "<hash>:<model>"; a model name may hold ":"
            message = (f"LiteLLM Virtual Key: {ident}, exceeded budget for model={model}. "
                       f"Current cost: {spent}, Max budget: {limit}")
        elif entity == "team_model":
            model = meaning.value[len(ident) + 1:]           # "<team_id>:<model>"
            message = (f"Budget has been exceeded! Team={ident} exceeded budget for model={model}. "
                       f"Current cost: {spent}, Max budget: {limit}")
        else:
            message = f"Budget has been exceeded! Current cost: {spent}, Max budget: {limit}"
        return BudgetExceededError(message, status_code=settings.budget_exceeded_status,
                                   code=str(settings.budget_exceeded_status), headers=headers)
    limit_type = {Kind.RPM: "requests", Kind.TPM: "tokens", Kind.MAX_PARALLEL: "max_parallel_requests"}[check.kind]
    if admission.retry_after is not None:
        resets = datetime.fromtimestamp(now + admission.retry_after, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    else:
        resets = "when a request in flight ends"
    remaining = max(0, check.limit - used)
    message = (f"Rate limit exceeded for {meaning.descriptor}: {meaning.value}. Limit type: {limit_type}. "
               f"Current limit: {check.limit}, Remaining: {remaining}. Limit resets at: {resets}")
    if "retry-after" not in headers:
        headers["retry-after"] = "1"
    return RateLimitError(message, code="429", headers=headers)


# --- seeds from the ledger ---------------------------------------------------------------------------

class SeedSource(Protocol):
    """Ledger spend for counters without a stored anchor (``SpendRepository`` implements it)."""

    async def spend_since(self, since: datetime, *, api_key: str | None = None, model: str | None = None,
                          team_id: str | None = None) -> int: ...


# --- the reservation ---------------------------------------------------------------------------------

@dataclass
class Reservation:
    """An admitted request's hold on its counters: settle once, release always."""

    limiter: Limiter
    request_id: str
    plan: Plan
    admission: Admission
    auth: Any | None = None
    settled: bool = field(default=False, init=False)
    #: (tokens, cost) of a settle that did not complete: the release applies them instead of zeros
    _actuals: tuple[int, int] | None = field(default=None, init=False, repr=False)

    @property
    def estimate_micros(self) -> int:
        return self.plan.estimate_micros

    async def settle(self, *, tokens: int, cost_micros: int) -> bool:
        """Replace the estimates by the actual tokens and cost (once; later calls are no-ops).

        Never raises for the shared state being down or slow (the answer is already paid for, and the
        integration calls ``writer.finished`` after it): the failure is logged, :meth:`release`
        repeats the settle, and failing that the reservation's lease ends it (False)."""
        if not self.plan.checks or self.settled:
            return False
        settle_now = getattr(self.limiter, "settle_now", None)
        if settle_now is not None:
            self.settled = True
            return settle_now(self.request_id, tokens, cost_micros)
        # settled only once the limiter answered: a settle that failed (lost connection, timeout,
        # cancellation) may not have been applied, and the release in the caller's ``finally`` then
        # repeats it with these actuals (settles are idempotent per request id) instead of zeros
        self._actuals = (tokens, cost_micros)
        try:
            applied = await self.limiter.settle(self.request_id, tokens=tokens, cost=cost_micros)
        except CoordinationError as exc:
            log.warning("settle of request %s failed (%s): retried by its release", self.request_id, exc)
            return False
        self.settled = True
        return applied

    def settle_at_once(self, *, tokens: int, cost_micros: int) -> bool:
        """:meth:`settle` without waiting, when the limiter can (the in-process one: its operations
        are synchronous, so the request's outcome settles its counters in the same step as it hands
        its record off). False when the limiter needs I/O: the actuals are kept, and the caller's
        shielded ``finally`` awaits :meth:`release`, which applies them."""
        if not self.plan.checks or self.settled:
            return True
        settle_now = getattr(self.limiter, "settle_now", None)
        if settle_now is None:
            self._actuals = (tokens, cost_micros)
            return False
        self.settled = True
        settle_now(self.request_id, tokens, cost_micros)
        return True

    async def release(self) -> bool:
        """Give back the estimates and the parallel slot (a failed or cancelled request). Call it in a
        shielded ``finally``; after :meth:`settle` it does nothing, after a settle that failed it
        completes that settle. Never raises for the shared state being down: logged, and the
        reservation's lease ends it (False)."""
        if not self.plan.checks or self.settled:
            return False
        self.settled = True
        tokens, cost = self._actuals or (0, 0)
        settle_now = getattr(self.limiter, "settle_now", None)
        if settle_now is not None:
            return settle_now(self.request_id, tokens, cost)
        try:
            if self._actuals is not None:
                return await self.limiter.settle(self.request_id, tokens=tokens, cost=cost)
            return await self.limiter.release(self.request_id)
        except CoordinationError as exc:
            log.warning("release of request %s failed (%s): its lease ends it", self.request_id, exc)
            return False

    def soft_budget_alerts(self) -> list[dict[str, Any]]:
        """Budgets whose ``soft_budget`` the spend before this request reached: the integration
        emits a warning event for each (LiteLLM's soft-budget alert); the request is not refused."""
        alerts = []
        used = self.admission.used
        for index, entity, ident, soft in self.plan.soft:
            if used:
                spent = used[index] - self.plan.checks[index].cost
                if spent >= soft:
                    alerts.append({"entity": entity, "id": ident, "spend": _usd(spent), "soft_budget": _usd(soft)})
        return alerts

    def headers(self) -> dict[str, str]:
        """``x-litellm-key-spend`` / ``-max-budget`` / ``-tpm-limit`` / ``-rpm-limit`` and, per limited
        subject, ``x-ratelimit-<descriptor>-remaining-requests|tokens`` / ``-limit-requests|tokens``."""
        out: dict[str, str] = {}
        auth = self.auth
        plan, admission = self.plan, self.admission
        if auth is not None:
            index = plan.key_budget_index
            if index is not None and admission.used:
                spend = admission.used[index] - plan.checks[index].cost
            else:
                spend = auth.spend
            out["x-litellm-key-spend"] = str(_usd(max(0, spend)))
            if auth.max_budget is not None:
                out["x-litellm-key-max-budget"] = str(_usd(auth.max_budget))
            if auth.tpm_limit is not None:
                out["x-litellm-key-tpm-limit"] = str(auth.tpm_limit)
            if auth.rpm_limit is not None:
                out["x-litellm-key-rpm-limit"] = str(auth.rpm_limit)
        if admission.used:
            for i, check in enumerate(plan.checks):
                if check.kind is Kind.RPM:
                    unit = "requests"
                elif check.kind is Kind.TPM:
                    unit = "tokens"
                else:
                    continue
                descriptor = plan.meanings[i].descriptor
                out[f"x-ratelimit-{descriptor}-remaining-{unit}"] = str(admission.remaining(i))
                out[f"x-ratelimit-{descriptor}-limit-{unit}"] = str(check.limit)
        return out


class Admitter:
    """Plans, seeds and reserves. One per process; ``limiter`` is shared by every request."""

    def __init__(self, limiter: Limiter, settings: AdmissionSettings | None = None, *,
                 seeds: SeedSource | None = None, clock: Callable[[], float] = time.time):
        self.limiter = limiter
        self.settings = settings or AdmissionSettings()
        self.seeds = seeds
        self.clock = clock
        #: (counter, window start) already seeded from the ledger in this process
        self._seeded: dict[tuple[str, float], int] = {}
        #: seed loads in progress, one per (counter, window start): concurrent requests share it
        self._seed_flights: dict[tuple[str, float], _SeedFlight] = {}
        # the in-process limiter's synchronous operations (``reserve_now``/``settle_now``): the same
        # atomic step without its two scheduling checkpoints, ~10 µs less per request
        self._reserve_now = getattr(limiter, "reserve_now", None)

    async def admit(self, request_id: str, auth: Any | None, facts: RequestFacts, *,
                    customer: Any | None = None, master: bool = False) -> Reservation:
        """Reserve or refuse (:class:`BudgetExceededError` / :class:`~trioproxy.errors.RateLimitError`,
        or 503 when the shared state is down and ``fail_open`` is off)."""
        now = self.clock()
        plan = plan_checks(auth, facts, self.settings, now=now, customer=customer, master=master)
        if plan.lazy_seeds:
            plan = await self._with_seeds(plan)
        if self._reserve_now is not None and plan.checks:
            admission = self._reserve_now(request_id, plan.checks)    # embedded: no I/O, no checkpoint
        else:
            # checks that cannot refuse (the master key's share of the proxy budget, soft budgets) are
            # only counted: shared state being down is no reason to refuse them (fail open for them)
            fail_open = self.settings.fail_open or all(c.limit >= UNLIMITED for c in plan.checks)
            try:
                admission = await admit(self.limiter, request_id, plan.checks, fail_open=fail_open)
            except BaseException:
                # cancelled (client gone) or no reply in time: the reserve may still run on the server;
                # release by request id now, not after the lease, so its slot and estimates come back
                await self._release_unknown(request_id)
                raise
        if not admission.admitted:
            raise _refusal(plan, admission, self.settings, now)
        return Reservation(self.limiter, request_id, plan, admission, auth)

    async def _release_unknown(self, request_id: str) -> None:
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + RELEASE_WAIT
            try:
                await self.limiter.release(request_id)
            except CoordinationError as exc:
                log.debug("release of %s after a failed reserve: %s (its lease ends it)", request_id, exc)

    async def _with_seeds(self, plan: Plan) -> Plan:
        checks = list(plan.checks)
        for index, kind, model, since in plan.lazy_seeds:
            check = checks[index]
            key = (check.key, since)
            seed = self._seeded.get(key)
            if seed is None:
                seed = await self._load_seed(key, kind, check.key, model, since)
            checks[index] = Check(check.key, check.kind, check.limit, check.amount, window=check.window,
                                  anchor=check.anchor, seed=seed,
                                  seed_window=_window_of(check, since) if check.window else None)
        return Plan(tuple(checks), plan.meanings, (), plan.estimate_micros, plan.estimate_tokens,
                    plan.key_budget_index, plan.soft)

    async def _load_seed(self, key: tuple[str, float], kind: str, counter: str, model: str | None, since: float) -> int:
        """One load per counter and window (single flight): requests that arrive while it runs wait
        for it and share its outcome — its failure too, so a slow or unavailable ledger costs them
        one load's time, not one each in turn; loads of other counters never wait for it."""
        while True:
            seed = self._seeded.get(key)
            if seed is not None:
                return seed
            flight = self._seed_flights.get(key)
            if flight is None:
                break
            await flight.done.wait()
            if flight.error is not None:
                raise flight.error
        flight = self._seed_flights[key] = _SeedFlight()
        try:
            seed = 0
            if self.seeds is not None:
                start = datetime.fromtimestamp(since, UTC)
                if kind == "proxy":
                    seed = await self.seeds.spend_since(start)
                elif kind == "team_model":      # "team:<id>:model:<model>"
                    assert model is not None
                    team_id = counter[len("team:"):-len(f":model:{model}")]
                    seed = await self.seeds.spend_since(start, team_id=team_id, model=model)
                else:
                    token = counter.split(":", 2)[1]
                    seed = await self.seeds.spend_since(start, api_key=token, model=model)
        except Exception as exc:
            flight.error = exc
            raise
        finally:
            del self._seed_flights[key]
            flight.done.set()
        if len(self._seeded) > 100_000:
            self._seeded.clear()
        self._seeded[key] = seed
        return seed


class _SeedFlight:
    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.error: Exception | None = None


def _window_of(check: Check, since: float) -> int:
    return (math.floor(since * 1000) - check.anchor_ms) // check.window_ms
