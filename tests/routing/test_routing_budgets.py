"""LiteLLM's budget routing (``provider_budget_config``, a deployment's ``max_budget`` /
``budget_duration``, ``tag_budget_config``): spend windows, the filter, the 429 and its
fallbacks, in virtual time."""

from __future__ import annotations

from datetime import UTC, datetime

from trioproxy.upstream.routing import RequestFacts
from trioproxy.upstream.routing.budgets import Budget, BudgetPeriod, RouterBudgets
from trioproxy.upstream.routing.validate import parse_routing_config

from .routing_helpers import FakeClock, dep, routing

DAY = BudgetPeriod(1, "d")


def first(plan) -> str | None:
    attempt = plan.next_attempt()
    if attempt is None:
        return None
    attempt.succeeded()
    return attempt.candidate.target


def test_a_provider_over_its_budget_is_routed_around_until_its_window_ends():
    clock = FakeClock()
    r = routing([dep("oai", model="openai/gpt-4o", order=1), dep("claude", model="anthropic/claude", order=2)],
                clock=clock, provider_budgets={"openai": Budget(1.0, DAY)})
    assert first(r.plan("g")) == "oai"
    r.budgets.record(deployment_id="oai", provider="openai", tags=(), cost=0.6)
    assert first(r.plan("g")) == "oai"                       # 0.6 < 1.0
    r.budgets.record(deployment_id="oai", provider="openai", tags=(), cost=0.4)
    assert r.budgets.spent("provider", "openai") == 1.0
    assert first(r.plan("g")) == "claude"                    # spend >= budget: left out
    clock.advance(86_400)                                     # the window (from the first spend) ends
    assert first(r.plan("g")) == "oai" and r.budgets.spent("provider", "openai") == 0.0


def test_every_deployment_over_budget_is_a_429_and_fallbacks_are_tried():
    clock = FakeClock()
    r = routing([dep("oai", model="openai/gpt-4o"), dep("other", group="backup", model="anthropic/claude")],
                clock=clock, provider_budgets={"openai": Budget(0.5, BudgetPeriod(1, "h"))})
    r.budgets.record(deployment_id="oai", provider="openai", tags=(), cost=0.5)
    clock.advance(600)
    plan = r.plan("g")
    assert plan.next_attempt() is None
    error = plan.error
    assert error.status_code == 429 and "crossed budget" in error.message and "'openai'" in error.message
    assert error.headers["Retry-After"] == "3000"             # the hour's window has 50 minutes left
    with_fallback = routing([dep("oai", model="openai/gpt-4o"), dep("other", group="backup", model="anthropic/x")],
                            clock=clock, provider_budgets={"openai": Budget(0.5, DAY)}, fallbacks={"g": ("backup",)})
    with_fallback.budgets.record(deployment_id="oai", provider="openai", tags=(), cost=1)
    assert first(with_fallback.plan("g")) == "other"


def test_a_deployment_budget_leaves_out_that_deployment_only():
    from trioproxy.upstream.routing import Candidate, DeploymentRouting
    limited = Candidate("a", "g", "openai/gpt-4o", DeploymentRouting(id="a", order=1, budget=Budget(0.01, DAY)), "a")
    r = routing([limited, dep("b", model="openai/gpt-4o-mini", order=2)])
    r.budgets.record(deployment_id="a", provider="openai", tags=(), cost=0.02)
    assert first(r.plan("g")) == "b"


def test_a_tag_over_its_budget_blocks_its_requests_only():
    r = routing([dep("a")], tag_budgets={"product:chat-bot": Budget(1.0, DAY)})
    r.budgets.record(deployment_id="a", provider="openai", tags=["product:chat-bot", "other"], cost=2.0)
    plan = r.plan("g", RequestFacts(tags=("product:chat-bot",)))
    assert plan.next_attempt() is None and "tag 'product:chat-bot'" in plan.error.message
    assert first(r.plan("g", RequestFacts(tags=("product:other",)))) == "a"
    assert first(r.plan("g")) == "a"


def test_a_calendar_month_period():
    jan31 = datetime(2025, 1, 31, 12, tzinfo=UTC).timestamp()
    assert datetime.fromtimestamp(BudgetPeriod(1, "mo").end(jan31), UTC) == datetime(2025, 2, 28, 12, tzinfo=UTC)
    assert BudgetPeriod(2, "w").end(0) == 14 * 86_400


def test_without_budgets_nothing_is_counted():
    assert not RouterBudgets() and RouterBudgets(tags={"t": Budget(1, DAY)})


def test_config_reads_litellms_three_budget_settings():
    config = parse_routing_config(
        {"provider_budget_config": {"openai": {"budget_limit": 0.000000000001, "time_period": "1d"},
                                    "azure": {"max_budget": 100, "budget_duration": "1mo"}}},
        [{"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "max_budget": 10,
                                                     "budget_duration": "30d"}}],
        {"tag_budget_config": {"product:chat-bot": {"max_budget": 5, "budget_duration": "1d"}}})
    assert not isinstance(config, list), config
    s = config.settings
    assert s.provider_budgets["openai"] == Budget(1e-12, DAY)
    assert s.provider_budgets["azure"] == Budget(100.0, BudgetPeriod(1, "mo"))
    assert s.tag_budgets["product:chat-bot"] == Budget(5.0, DAY)
    assert config.deployments[0].budget == Budget(10.0, BudgetPeriod(30, "d"))
    assert not config.warnings


def test_bad_budgets_are_errors_with_their_paths():
    problems = parse_routing_config(
        {"provider_budget_config": {"openai": {"budget_limit": 1}, "azure": {"max_budget": 1, "budget_duration": "1y"},
                                    "groq": {"max_budget": 1, "budget_duration": "1d", "limit": 2}}},
        [{"model_name": "m", "litellm_params": {"model": "openai/x", "max_budget": -1, "budget_duration": "1d"}}])
    text = "\n".join(map(str, problems))
    assert "router_settings.provider_budget_config.openai: needs max_budget" in text
    assert "router_settings.provider_budget_config.azure.budget_duration: expected a duration" in text
    assert "router_settings.provider_budget_config.groq.limit: unknown budget setting" in text
    assert "model_list[0].litellm_params.max_budget: expected a number >= 0" in text
