"""Admission against the in-process limiter with checks built from real auth records (both
backends): the barrier test (fifty concurrent requests, a budget that fits ten, at most eleven
admitted) for a key, a team, a team member, a user and a brand-new customer; LiteLLM's sequence
(0.05 budget, 0.026 calls: 2 served, the 3rd refused) and its messages; rate limits and parallel
slots; the master key; budget windows in virtual time; seeds from the ledger."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import trio

from trioproxy.auth import hash_key
from trioproxy.coordination import InProcessLimiter
from trioproxy.errors import RateLimitError
from trioproxy.observability.prices import Price
from trioproxy.spend import build_record
from trioproxy.spend.admission import AdmissionSettings, Admitter, BudgetExceededError, RequestFacts
from trioproxy.store import Actor, Store

from .spend_helpers import BASE, inputs

ADMIN = Actor("admin")
PRICE = Price(0.000001, 0.000002)          # 1 µUSD per prompt token, 2 per completion token
KEY = "sk-spend-test-key-0000000000000001"


class Clock:
    """Unix seconds for the limiter and the admitter (virtual: tests move it)."""

    def __init__(self) -> None:
        self.t = BASE.timestamp()

    def __call__(self) -> float:
        return self.t


def facts(cost_micros: int, *, end_user: str | None = None, model: str = "gpt-4o") -> RequestFacts:
    # prompt only: cost = prompt tokens × 1 µUSD
    return RequestFacts(model=model, end_user=end_user, prompt_tokens=cost_micros, output_tokens=0, price=PRICE)


async def _key(store: Store, **fields: Any) -> Any:
    values = {"token": hash_key(KEY), "key_name": "sk-...0001", **fields}
    await store.keys.create(values, ADMIN)
    return await store.key_cache.authenticate(KEY)


async def _setup(store: Store, entity: str) -> tuple[Any, AdmissionSettings, str | None]:
    """An auth record whose ``entity`` has a budget of 10 500 µUSD (fits ten calls of 1 000)."""
    budget = 10_500
    settings = AdmissionSettings()
    end_user = None
    await store.teams.create({"team_id": "t1", **({"max_budget": budget} if entity == "team" else {})}, [], ADMIN)
    await store.users.create({"user_id": "u1", **({"max_budget": budget} if entity == "user" else {})}, ADMIN)
    await store.teams.add_members("t1", [{"role": "user", "user_id": "u1"}], ADMIN,
                                  max_budget_in_team=budget if entity == "member" else None)
    fields: dict[str, Any] = {"team_id": "t1", "user_id": "u1"}
    if entity == "key":
        fields["max_budget"] = budget
    if entity == "customer":
        settings = AdmissionSettings(max_end_user_budget=budget)
        end_user = "brand-new-customer"
    return await _key(store, **fields), settings, end_user


@pytest.mark.parametrize("entity", ["key", "team", "member", "user", "customer"])
async def test_fifty_concurrent_requests_admit_at_most_eleven(store: Store, entity: str) -> None:
    auth, settings, end_user = await _setup(store, entity)
    clock = Clock()
    admitter = Admitter(InProcessLimiter(clock=clock), settings, clock=clock)
    customer = await store.customer_cache.get(end_user) if end_user else None
    assert customer is None                               # brand-new: no row, the default budget applies
    go = trio.Event()
    admitted: list[Any] = []
    refused: list[BudgetExceededError] = []

    async def request(i: int) -> None:
        await go.wait()                                    # the barrier: all fifty start together
        try:
            admitted.append(await admitter.admit(f"r{i}", auth, facts(1000, end_user=end_user), customer=customer))
        except BudgetExceededError as exc:
            refused.append(exc)

    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(request, i)
        await trio.testing.wait_all_tasks_blocked()
        go.set()
    # nobody settled yet: every admitted request is still in flight, its estimate reserved
    assert len(admitted) == 11 and len(refused) == 39
    assert all(e.status_code == 429 and e.error_type == "budget_exceeded" for e in refused)
    for r in admitted:
        await r.release()


async def test_the_call_that_crosses_the_line_is_served_the_next_refused(store: Store) -> None:
    auth = await _key(store, key_alias="my-key", max_budget=50_000)         # 0.05 USD
    clock = Clock()
    admitter = Admitter(InProcessLimiter(clock=clock), clock=clock)
    for i in range(2):
        r = await admitter.admit(f"c{i}", auth, facts(10_000))
        await r.settle(tokens=30, cost_micros=26_000)                       # 0.026 USD each
    with pytest.raises(BudgetExceededError) as info:
        await admitter.admit("c2", auth, facts(10_000))
    assert str(info.value) == ("Budget has been exceeded! Key=my-key (sk-...0001) Current cost: 0.052, "
                               "Max budget: 0.05")
    assert info.value.status_code == 429 and info.value.code == "429"
    assert "retry-after" not in info.value.headers                          # a lifetime budget: waiting never helps


async def test_refusal_messages_of_each_budget(store: Store) -> None:
    await store.teams.create({"team_id": "t9", "max_budget": 0}, [], ADMIN)
    await store.users.create({"user_id": "u9", "max_budget": 0}, ADMIN)
    await store.teams.add_members("t9", [{"role": "user", "user_id": "u9"}], ADMIN, max_budget_in_team=0)
    clock = Clock()
    limiter = InProcessLimiter(clock=clock)
    auth = await _key(store, team_id="t9", user_id="u9")
    with pytest.raises(BudgetExceededError, match=r"^Budget has been exceeded! Team=t9 Current cost: 0.0, Max budget: 0.0$"):
        await Admitter(limiter, clock=clock).admit("m1", auth, facts(1))
    await store.teams.update("t9", {"max_budget": None}, ADMIN)
    auth = await store.key_cache.authenticate(KEY)
    with pytest.raises(BudgetExceededError, match=r"^Budget has been exceeded! User=u9 in Team=t9 Current cost"):
        await Admitter(limiter, clock=clock).admit("m2", auth, facts(1))
    await store.teams.update_member("t9", {"user_id": "u9"}, {"max_budget_in_team": None}, ADMIN)
    auth = await store.key_cache.authenticate(KEY)
    with pytest.raises(BudgetExceededError, match=r"^ExceededBudget: User=u9 over budget. Spend=0.0, Budget=0.0$"):
        await Admitter(limiter, clock=clock).admit("m3", auth, facts(1))
    await store.users.update("u9", {"max_budget": None}, ADMIN)
    auth = await store.key_cache.authenticate(KEY)
    admitter = Admitter(limiter, AdmissionSettings(max_end_user_budget=0), clock=clock)
    with pytest.raises(BudgetExceededError, match=r"^ExceededBudget: End User=cust over budget. Spend=0.0, Budget=0.0$"):
        await admitter.admit("m4", auth, facts(1, end_user="cust"))
    admitter = Admitter(limiter, AdmissionSettings(proxy_max_budget=0, budget_exceeded_status=400), clock=clock)
    with pytest.raises(BudgetExceededError, match=r"^Budget has been exceeded! Current cost: 0.0, Max budget: 0.0$") as info:
        await admitter.admit("m5", auth, facts(1))
    assert info.value.status_code == 400 and info.value.code == "400"


async def test_rate_limits_and_parallel_slots(store: Store) -> None:
    auth = await _key(store, rpm_limit=3, max_parallel_requests=2)
    clock = Clock()
    limiter = InProcessLimiter(clock=clock)
    admitter = Admitter(limiter, clock=clock)
    a = await admitter.admit("p1", auth, facts(1))
    b = await admitter.admit("p2", auth, facts(1))
    with pytest.raises(RateLimitError) as info:
        await admitter.admit("p3", auth, facts(1))
    token = hash_key(KEY)
    assert str(info.value).startswith(f"Rate limit exceeded for api_key: {token}. Limit type: max_parallel_requests. "
                                      "Current limit: 2, Remaining: 0. Limit resets at: ")
    assert info.value.status_code == 429 and info.value.headers["retry-after"]
    await a.settle(tokens=1, cost_micros=1)
    await b.release()                                     # a failed request frees its slot too
    c = await admitter.admit("p4", auth, facts(1))        # the refusal for parallelism consumed no rpm
    assert c.headers()["x-ratelimit-api_key-remaining-requests"] == "0"
    assert c.headers()["x-ratelimit-api_key-limit-requests"] == "3"
    await c.release()
    with pytest.raises(RateLimitError) as info:
        await admitter.admit("p5", auth, facts(1))
    assert "Limit type: requests. Current limit: 3, Remaining: 0. Limit resets at: 2026-01-01 12:01:00 UTC" in str(info.value)
    assert info.value.headers["retry-after"] == "60"
    clock.t += 60                                         # exactly one window later the oldest entry left
    await (await admitter.admit("p6", auth, facts(1))).release()


async def test_the_master_key_is_never_limited_but_counted_in_the_proxy_budget(store: Store) -> None:
    auth = await _key(store)
    clock = Clock()
    admitter = Admitter(InProcessLimiter(clock=clock), AdmissionSettings(proxy_max_budget=5_000), clock=clock)
    for i in range(3):                                    # 6 000 µUSD by the master key: never refused
        r = await admitter.admit(f"m{i}", None, facts(100), master=True)
        await r.settle(tokens=1, cost_micros=2_000)
    with pytest.raises(BudgetExceededError, match="Current cost: 0.006, Max budget: 0.005"):
        await admitter.admit("v1", auth, facts(100))


async def test_a_windowed_budget_reopens_on_time_even_with_a_stale_cached_record(store: Store) -> None:
    # the admin layer sets budget_reset_at = now + duration when budget_duration is set
    auth = await _key(store, max_budget=2_000, budget_duration="30s", budget_reset_at=BASE + timedelta(seconds=30))
    clock = Clock()
    admitter = Admitter(InProcessLimiter(clock=clock), clock=clock)
    for i in range(2):
        await (await admitter.admit(f"w{i}", auth, facts(100))).settle(tokens=1, cost_micros=1_000)
    with pytest.raises(BudgetExceededError) as info:
        await admitter.admit("w2", auth, facts(100))
    assert info.value.headers["retry-after"] == "30"
    clock.t += 29.999
    with pytest.raises(BudgetExceededError):
        await admitter.admit("w3", auth, facts(100))
    clock.t += 0.001                                     # 12:00:30: the window ends exactly here
    await (await admitter.admit("w4", auth, facts(100))).settle(tokens=1, cost_micros=1_000)
    # the cached record still says budget_reset_at = 12:00:30 (the store has not rolled yet): the
    # next window's counter is seeded 0, not with the old window's spend
    assert auth.budget_reset_at == BASE + timedelta(seconds=30)
    await (await admitter.admit("w5", auth, facts(100))).settle(tokens=1, cost_micros=1_000)
    with pytest.raises(BudgetExceededError):
        await admitter.admit("w6", auth, facts(100))


async def test_a_team_member_budget_window_reopens_on_time(store: Store) -> None:
    """``max_budget_in_team`` with ``budget_duration`` (set at BASE: window ends at 12:00:30)."""
    await store.teams.create({"team_id": "t1"}, [], ADMIN)
    await store.teams.add_members("t1", [{"role": "user", "user_id": "u1"}], ADMIN, max_budget_in_team=2_000,
                                  budget_duration="30s", budget_reset_at=BASE + timedelta(seconds=30))
    auth = await _key(store, team_id="t1", user_id="u1")
    assert auth.membership.budget_duration == "30s"
    clock = Clock()
    admitter = Admitter(InProcessLimiter(clock=clock), clock=clock)
    for i in range(2):
        await (await admitter.admit(f"m{i}", auth, facts(100))).settle(tokens=1, cost_micros=1_000)
    with pytest.raises(BudgetExceededError, match="User=u1 in Team=t1") as info:
        await admitter.admit("m2", auth, facts(100))
    assert info.value.headers["retry-after"] == "30"
    clock.t += 29.999
    with pytest.raises(BudgetExceededError):
        await admitter.admit("m3", auth, facts(100))
    clock.t += 0.001                                     # the member's window ends exactly here
    await (await admitter.admit("m4", auth, facts(100))).settle(tokens=1, cost_micros=1_000)
    await (await admitter.admit("m5", auth, facts(100))).settle(tokens=1, cost_micros=1_000)
    with pytest.raises(BudgetExceededError):
        await admitter.admit("m6", auth, facts(100))


async def test_a_fresh_record_seeds_the_counter_with_its_window_spend(store: Store) -> None:
    await store.keys.create({"token": hash_key(KEY), "key_name": "sk-...0001", "max_budget": 2_000,
                             "budget_duration": "1h", "budget_reset_at": BASE + timedelta(minutes=30)}, ADMIN)
    await store.spend.write([build_record(inputs("old", spend=1_500, key=hash_key(KEY),
                                                 at=BASE - timedelta(minutes=10))).to_row()])
    auth = await store.key_cache.authenticate(KEY)
    assert auth.spend == 1_500
    clock = Clock()
    admitter = Admitter(InProcessLimiter(clock=clock), clock=clock)       # a restarted process
    await (await admitter.admit("s1", auth, facts(100))).settle(tokens=1, cost_micros=600)
    with pytest.raises(BudgetExceededError, match="Current cost: 0.0021"):
        await admitter.admit("s2", auth, facts(100))


async def test_model_max_budget_is_seeded_from_the_ledger(store: Store) -> None:
    auth = await _key(store, model_max_budget={"gpt-4o": {"budget_limit_micros": 1_000, "time_period": "1d"}})
    await store.spend.write([build_record(inputs("earlier", spend=1_000, key=hash_key(KEY), model="gpt-4o",
                                                 at=BASE - timedelta(hours=1))).to_row()])
    clock = Clock()
    admitter = Admitter(InProcessLimiter(clock=clock), clock=clock, seeds=store.spend)
    with pytest.raises(BudgetExceededError, match=r"exceeded budget for model=gpt-4o"):
        await admitter.admit("g1", auth, facts(10))
    await (await admitter.admit("g2", auth, facts(10, model="gpt-4o-mini"))).release()   # other models are free
    clock.t += 12 * 3600                                   # the next UTC day
    await (await admitter.admit("g3", auth, facts(10))).release()


async def test_a_teams_model_max_budget_is_one_pot_for_its_keys_seeded_from_the_ledger(store: Store) -> None:
    """``model_max_budget`` on a team (followups: was not enforced): every key of the team shares
    the per-model budget; the counter is seeded from the team's ledger rows of the window."""
    await store.teams.create({"team_id": "tm", "model_max_budget": {
        "gpt-4o": {"budget_limit_micros": 1_500, "time_period": "1d"}}}, [], ADMIN)
    auth = await _key(store, team_id="tm")
    await store.spend.write([build_record(inputs("team-earlier", spend=1_000, key="x" * 64, team="tm",
                                                 model="gpt-4o", at=BASE - timedelta(hours=1))).to_row(),
                             build_record(inputs("other-team", spend=5_000, key="y" * 64, team="other",
                                                 model="gpt-4o", at=BASE - timedelta(hours=1))).to_row()])
    clock = Clock()
    admitter = Admitter(InProcessLimiter(clock=clock), clock=clock, seeds=store.spend)
    first = await admitter.admit("t1", auth, facts(600))            # 1 000 recorded: room left, crosses
    await first.settle(tokens=1, cost_micros=600)
    with pytest.raises(BudgetExceededError) as refused:
        await admitter.admit("t2", auth, facts(10))
    assert str(refused.value.message) == ("Budget has been exceeded! Team=tm exceeded budget for model=gpt-4o. "
                                          "Current cost: 0.0016, Max budget: 0.0015")
    await (await admitter.admit("t3", auth, facts(10, model="gpt-4o-mini"))).release()   # other models are free
    clock.t += 12 * 3600                                   # the next UTC day: a new window
    await (await admitter.admit("t4", auth, facts(10))).release()


async def test_headers_of_an_admitted_request(store: Store) -> None:
    auth = await _key(store, max_budget=1_000_000, tpm_limit=1000, rpm_limit=10)
    clock = Clock()
    admitter = Admitter(InProcessLimiter(clock=clock), clock=clock)
    await (await admitter.admit("h1", auth, facts(100))).settle(tokens=100, cost_micros=250_000)
    r = await admitter.admit("h2", auth, facts(100))
    h = r.headers()
    assert h["x-litellm-key-spend"] == "0.25" and h["x-litellm-key-max-budget"] == "1.0"
    assert h["x-litellm-key-tpm-limit"] == "1000" and h["x-litellm-key-rpm-limit"] == "10"
    assert h["x-ratelimit-api_key-remaining-requests"] == "8"
    assert h["x-ratelimit-api_key-remaining-tokens"] == str(1000 - 100 - 100)
    assert h["x-ratelimit-api_key-limit-tokens"] == "1000"
    await r.release()


async def test_soft_budget_warns_and_never_refuses(store: Store) -> None:
    auth = await _key(store, soft_budget=1_000)
    clock = Clock()
    admitter = Admitter(InProcessLimiter(clock=clock), clock=clock)
    first = await admitter.admit("s1", auth, facts(10))
    assert first.soft_budget_alerts() == []
    await first.settle(tokens=1, cost_micros=1_500)
    second = await admitter.admit("s2", auth, facts(10))            # over the soft budget: still admitted
    assert second.soft_budget_alerts() == [{"entity": "key", "id": "sk-...0001", "spend": 0.0015,
                                            "soft_budget": 0.001}]
    await second.release()


async def test_a_model_name_with_a_colon_is_named_whole_in_the_refusal(store: Store) -> None:
    model = "bedrock/anthropic.claude-v2:1"
    auth = await _key(store, key_alias="k", model_max_budget={model: {"budget_limit_micros": 0}})
    clock = Clock()
    admitter = Admitter(InProcessLimiter(clock=clock), clock=clock)
    with pytest.raises(BudgetExceededError, match=r"exceeded budget for model=bedrock/anthropic\.claude-v2:1\. "):
        await admitter.admit("m1", auth, facts(100, model=model))

