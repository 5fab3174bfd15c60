"""LiteLLM's pre-call checks (``enable_pre_call_checks``) and ``optional_pre_call_checks:
[enforce_model_rate_limits]``: deployments whose context window is too small, outside the
customer's region or at their limits are left out before the strategy chooses; the errors and
fallbacks when none is left."""

from __future__ import annotations

from trioproxy.errors import ContextWindowExceededError
from trioproxy.upstream.routing import RequestFacts, RoutingSettings
from trioproxy.upstream.routing.pre_call import region_allows
from trioproxy.upstream.routing.validate import parse_routing_config

from .routing_helpers import FakeClock, dep, routing


def attempts(plan) -> list[str]:
    """Every deployment the plan offers, each answered with success."""
    out = []
    while (attempt := plan.next_attempt()) is not None:
        out.append(attempt.candidate.target)
        attempt.succeeded()
    return out


def test_a_prompt_too_long_for_one_deployment_goes_to_the_one_it_fits():
    r = routing([dep("small", max_input_tokens=10), dep("large", max_input_tokens=1000)],
                enable_pre_call_checks=True)
    for _ in range(5):
        assert attempts(r.plan("g", RequestFacts(prompt_tokens=50))) == ["large"]


def test_a_prompt_too_long_for_every_deployment_is_litellms_context_window_error():
    r = routing([dep("a", max_input_tokens=10), dep("b", max_input_tokens=20)], enable_pre_call_checks=True)
    plan = r.plan("g", RequestFacts(prompt_tokens=50))
    assert plan.next_attempt() is None
    error = plan.error
    assert isinstance(error, ContextWindowExceededError) and error.status_code == 400
    assert error.code == "context_length_exceeded"
    assert "max_input_tokens=20" in error.message and "50 tokens" in error.message


def test_it_falls_back_by_context_window_fallbacks():
    r = routing([dep("small", max_input_tokens=10), dep("big", group="long", max_input_tokens=100_000)],
                enable_pre_call_checks=True, context_window_fallbacks={"g": ("long",)},
                fallbacks={"g": ("nowhere",)})
    assert attempts(r.plan("g", RequestFacts(prompt_tokens=50))) == ["big"]


def test_unknown_windows_and_uncounted_prompts_are_never_filtered():
    r = routing([dep("unknown"), dep("small", max_input_tokens=10)], enable_pre_call_checks=True)
    assert attempts(r.plan("g", RequestFacts(prompt_tokens=50))) == ["unknown"]
    off = routing([dep("small", max_input_tokens=10)])
    assert attempts(off.plan("g", RequestFacts(prompt_tokens=50))) == ["small"]   # checks off


def test_the_customers_region_limits_the_deployments():
    r = routing([dep("us", region="us-east-1"), dep("eu", region="eu"), dep("vertex-eu", region="europe-west4"),
                 dep("nowhere")], enable_pre_call_checks=True)
    seen = set()
    for _ in range(20):
        seen.update(attempts(r.plan("g", RequestFacts(allowed_region="eu"))))
    assert seen == {"eu", "vertex-eu"}
    only_us = routing([dep("eu", region="eu")], enable_pre_call_checks=True)
    plan = only_us.plan("g", RequestFacts(allowed_region="us"))
    assert plan.next_attempt() is None
    assert plan.error.status_code == 400 and "allowed_model_region 'us'" in plan.error.message


def test_region_names():
    assert region_allows("eu", "eu") and region_allows("eu-west-1", "eu") and region_allows("europe-west4", "eu")
    assert region_allows("us-central1", "us") and region_allows("eastus2", "us")
    assert not region_allows("us-east-1", "eu") and not region_allows(None, "eu")
    assert not region_allows("australia-southeast1", "us")


def test_pre_call_checks_enforce_rpm_whatever_the_strategy():
    """LiteLLM's _pre_call_checks leaves out a deployment at its rpm this minute (simple-shuffle too)."""
    clock = FakeClock()
    r = routing([dep("a", rpm=2)], clock=clock, enable_pre_call_checks=True)
    assert attempts(r.plan("g")) == ["a"] and attempts(r.plan("g")) == ["a"]
    plan = r.plan("g")
    assert plan.next_attempt() is None and plan.error.status_code == 429
    clock.advance(60)                                 # the next calendar minute
    assert attempts(r.plan("g")) == ["a"]
    unchecked = routing([dep("a", rpm=1)], clock=FakeClock())
    assert [attempts(unchecked.plan("g")) for _ in range(3)] == [["a"]] * 3   # simple-shuffle: a weight only


def test_enforce_model_rate_limits_counts_tpm_too_and_routes_to_the_deployment_under_its_limit():
    clock = FakeClock()
    r = routing([dep("a", tpm=100, order=1), dep("b", tpm=10_000, order=2)], clock=clock,
                optional_pre_call_checks=("enforce_model_rate_limits",))
    plan = r.plan("g", RequestFacts(input_tokens=10))
    first = plan.next_attempt()
    assert first.candidate.target == "a"
    first.succeeded(total_tokens=95)
    assert attempts(r.plan("g", RequestFacts(input_tokens=10))) == ["b"]     # a: 95 + 10 > 100
    only_a = routing([dep("a", tpm=100)], clock=FakeClock(), optional_pre_call_checks=("enforce_model_rate_limits",))
    p = only_a.plan("g", RequestFacts(input_tokens=10))
    p.next_attempt().succeeded(total_tokens=100)
    p2 = only_a.plan("g", RequestFacts(input_tokens=10))
    assert p2.next_attempt() is None and p2.error.status_code == 429


def test_config_reads_the_checks_and_the_deployment_facts():
    config = parse_routing_config(
        {"enable_pre_call_checks": True, "optional_pre_call_checks": ["enforce_model_rate_limits", "prompt_caching"]},
        [{"model_name": "g", "litellm_params": {"model": "openai/x", "region_name": "eu"},
          "model_info": {"max_input_tokens": 10}},
         {"model_name": "g", "litellm_params": {"model": "vertex_ai/gemini", "vertex_location": "us-east1"}}])
    assert not isinstance(config, list)
    assert config.settings.enable_pre_call_checks
    assert config.settings.optional_pre_call_checks == ("enforce_model_rate_limits",)
    assert config.settings.enforced_limits == "rpm+tpm"
    assert (config.deployments[0].max_input_tokens, config.deployments[0].region) == (10, "eu")
    assert config.deployments[1].region == "us-east1"
    warned = "\n".join(str(w) for w in config.warnings)
    assert "optional_pre_call_checks[1]" in warned and "'prompt_caching'" in warned and "(ignored)" in warned
    bad = parse_routing_config({"optional_pre_call_checks": "enforce_model_rate_limits"},
                               [{"model_name": "g", "litellm_params": {"model": "openai/x"},
                                 "model_info": {"max_input_tokens": "many"}}])
    assert isinstance(bad, list) and "model_list[0].model_info.max_input_tokens" in str(bad[0])
    assert RoutingSettings().enforced_limits is None
