"""``RoutingPlan``: one test per rule of ``plan.py``'s docstring (and docs/routing.md), virtual time.

Deployments get ``order: 1, 2, 3…`` where a test needs a known order, so no randomness is involved."""

from __future__ import annotations

import pytest

from trioproxy.errors import NotFoundError
from trioproxy.upstream.routing import (
    Alias,
    NoDeploymentsAvailableError,
    NoDeploymentsForTagsError,
    RequestFacts,
)

from .routing_helpers import (
    FakeClock,
    bad_request,
    dep,
    filtered,
    rate_limited,
    routing,
    server_error,
    too_long,
    unreachable,
)


def run(plan, outcomes):
    """Drive a plan: ``outcomes`` maps a target to the error its attempts raise (a list: one per
    attempt), anything else answers. Returns the targets tried, in order."""
    tried = []
    while (attempt := plan.next_attempt()) is not None:
        tried.append(attempt.candidate.target)
        outcome = outcomes.get(attempt.candidate.target)
        if isinstance(outcome, list):
            outcome = outcome.pop(0) if outcome else None
        if outcome is None:
            attempt.answered()
            attempt.succeeded(completion_tokens=1, total_tokens=2)
        else:
            attempt.failed(outcome)
    return tried


def group(name, *ids, **kw):
    return [dep(i, name, order=n, **kw) for n, i in enumerate(ids, 1)]


# -- resolution -------------------------------------------------------------------------------------

def test_unknown_model_is_a_404_naming_it():
    with pytest.raises(NotFoundError, match="'nope'"):
        routing(group("g", "a")).plan("nope")


def test_success_on_the_first_attempt_ends_the_plan():
    plan = routing(group("g", "a", "b")).plan("g")
    assert run(plan, {}) == ["a"]
    assert plan.answered_by.candidate.target == "a"
    assert plan.next_attempt() is None


# -- attempts in a group ------------------------------------------------------------------------------

def test_retryable_failure_moves_to_the_next_untried_deployment_then_round_again():
    plan = routing(group("g", "a", "b"), num_retries=3).plan("g")
    assert run(plan, {"a": [unreachable(), unreachable()], "b": [server_error(503)]}) == ["a", "b", "a", "b"]


def test_attempts_per_group_are_one_plus_num_retries():
    plan = routing(group("g", "a", "b"), num_retries=2).plan("g")
    assert run(plan, {"a": server_error(), "b": server_error()}) == ["a", "b", "a"]
    assert plan.answered_by is None


def test_smallest_max_retries_of_the_group_wins_over_num_retries():
    cands = [dep("a", "g", order=1, max_retries=0), dep("b", "g", order=2, max_retries=3)]
    assert run(routing(cands, num_retries=5).plan("g"), {"a": server_error()}) == ["a"]


def test_a_single_deployment_is_retried_on_retryable_errors():
    assert run(routing(group("g", "a"), num_retries=2).plan("g"), {"a": [unreachable(), unreachable()]}) \
        == ["a", "a", "a"]


def test_non_retryable_error_ends_the_group():
    plan = routing(group("g", "a", "b")).plan("g")
    error = bad_request()
    assert run(plan, {"a": error}) == ["a"]
    assert plan.error is error


def test_rate_limit_goes_to_another_deployment_never_the_same_one():
    plan = routing(group("g", "a", "b"), num_retries=5, disable_cooldowns=True).plan("g")
    assert run(plan, {"a": rate_limited(), "b": rate_limited()}) == ["a", "b"]


def test_deployments_cooling_down_are_not_tried():
    r = routing(group("g", "a", "b", "c"))
    r.cooldowns.record_failure("a", classify_rate_limit())
    assert run(r.plan("g"), {}) == ["b"]


def classify_rate_limit():
    from trioproxy.upstream.routing import ErrorKind
    return ErrorKind.RATE_LIMITED


def test_a_deployment_that_cools_down_during_the_request_is_skipped_on_the_next_round():
    r = routing(group("g", "a", "b"), num_retries=3, allowed_fails=0)
    assert run(r.plan("g"), {"a": unreachable(), "b": [unreachable(), None]}) == ["a", "b"]
    # a and b both cooled down on their first failure: the retries had nowhere to go
    r2 = routing(group("g", "a", "b"), num_retries=3, allowed_fails=1)
    assert run(r2.plan("g"), {"a": [unreachable(), unreachable()], "b": [unreachable(), None]}) \
        == ["a", "b", "a", "b"]
    assert r2.cooldowns.is_cooling("a")


# -- fallbacks ------------------------------------------------------------------------------------------

def test_failed_group_falls_back_in_list_order_each_with_its_own_retries():
    cands = group("gpt-4o", "a") + group("mini", "m1", "m2") + group("claude", "c")
    r = routing(cands, num_retries=1, fallbacks={"gpt-4o": ("mini", "claude")})
    plan = r.plan("gpt-4o")
    assert run(plan, {"a": server_error(), "m1": server_error(), "m2": server_error()}) \
        == ["a", "a", "m1", "m2", "c"]
    assert [a.is_fallback for a in plan.attempts] == [False, False, True, True, True]


def test_non_retryable_errors_fall_back_too():
    r = routing(group("a", "a1") + group("b", "b1"), fallbacks={"a": ("b",)})
    assert run(r.plan("a"), {"a1": bad_request()}) == ["a1", "b1"]


def test_context_window_error_uses_context_window_fallbacks():
    cands = group("small", "s") + group("large", "l") + group("other", "o")
    r = routing(cands, fallbacks={"small": ("other",)}, context_window_fallbacks={"small": ("large",)})
    assert run(r.plan("small"), {"s": too_long()}) == ["s", "l"]
    assert run(r.plan("small"), {"s": server_error(400)}) == ["s", "o"]


def test_content_policy_error_uses_content_policy_fallbacks():
    cands = group("azure", "az") + group("claude", "c") + group("other", "o")
    r = routing(cands, fallbacks={"azure": ("other",)}, content_policy_fallbacks={"azure": ("claude",)})
    assert run(r.plan("azure"), {"az": filtered()}) == ["az", "c"]


def test_default_fallbacks_serve_any_model_without_its_own_entry():
    cands = group("a", "a1") + group("b", "b1") + group("safe", "s1")
    r = routing(cands, fallbacks={"a": ("b",)}, default_fallbacks=("safe",))
    assert run(r.plan("b"), {"b1": bad_request()}) == ["b1", "s1"]
    assert run(r.plan("a"), {"a1": bad_request()}) == ["a1", "b1"]


def test_fallback_groups_have_fallbacks_of_their_own_depth_first():
    cands = group("a", "a1") + group("b", "b1") + group("c", "c1") + group("d", "d1")
    r = routing(cands, num_retries=0, fallbacks={"a": ("b", "d"), "b": ("c",)})
    assert run(r.plan("a"), {"a1": bad_request(), "b1": bad_request(), "c1": bad_request()}) \
        == ["a1", "b1", "c1", "d1"]


def test_no_group_is_tried_twice_no_loops():
    r = routing(group("a", "a1") + group("b", "b1"), num_retries=0,
                fallbacks={"a": ("b", "a"), "b": ("a", "b")})
    plan = r.plan("a")
    assert run(plan, {"a1": bad_request(), "b1": bad_request()}) == ["a1", "b1"]


def test_alias_and_its_group_are_one_group():
    r = routing(group("gpt-4o", "a") + group("b", "b1"), num_retries=0,
                model_group_alias={"fast": Alias("gpt-4o")}, fallbacks={"fast": ("gpt-4o", "b")})
    assert run(r.plan("fast"), {"a": bad_request()}) == ["a", "b1"]


def test_max_fallbacks_bounds_the_groups_tried():
    names = [f"g{i}" for i in range(8)]
    cands = [c for n in names for c in group(n, f"{n}-d")]
    r = routing(cands, num_retries=0, max_fallbacks=3, fallbacks={"g0": tuple(names[1:])})
    plan = r.plan("g0")
    assert run(plan, {f"{n}-d": server_error() for n in names}) == ["g0-d", "g1-d", "g2-d", "g3-d"]


def test_unknown_fallback_names_are_skipped_without_counting():
    r = routing(group("a", "a1") + group("b", "b1"), num_retries=0, max_fallbacks=1,
                fallbacks={"a": ("nope", "b")})
    assert run(r.plan("a"), {"a1": bad_request()}) == ["a1", "b1"]


def test_disable_fallbacks_per_request():
    r = routing(group("a", "a1") + group("b", "b1"), fallbacks={"a": ("b",)})
    assert run(r.plan("a", RequestFacts(disable_fallbacks=True)), {"a1": bad_request()}) == ["a1"]


def test_request_fallbacks_replace_the_configured_ones():
    r = routing(group("a", "a1") + group("b", "b1") + group("c", "c1"), fallbacks={"a": ("b",)})
    assert run(r.plan("a", RequestFacts(fallbacks=("c",))), {"a1": bad_request()}) == ["a1", "c1"]


def test_wildcard_group_fallback_found_without_the_provider_prefix():
    cands = [dep("w", "openai/*", "openai/*")] + group("claude", "c")
    r = routing(cands, num_retries=0, fallbacks={"gpt-4o": ("claude",)})
    plan = r.plan("openai/gpt-4o")
    assert run(plan, {"w": server_error()}) == ["w", "c"]
    assert plan.attempts[0].model == "openai/gpt-4o"


# -- first byte ---------------------------------------------------------------------------------------------

def test_nothing_is_tried_after_the_first_byte():
    r = routing(group("a", "a1", "a2") + group("b", "b1"), fallbacks={"a": ("b",)})
    plan = r.plan("a")
    attempt = plan.next_attempt()
    error = unreachable()
    attempt.failed(error, first_byte_sent=True)
    assert plan.next_attempt() is None and plan.error is error


def test_a_stream_that_breaks_after_its_status_line_counts_for_health_only():
    r = routing(group("a", "a1", "a2"), allowed_fails=0)
    plan = r.plan("a")
    attempt = plan.next_attempt()
    attempt.answered()
    attempt.failed(unreachable(), first_byte_sent=True)
    assert plan.next_attempt() is None
    assert r.cooldowns.is_cooling("a1")


# -- unavailable groups --------------------------------------------------------------------------------------

def test_all_cooling_goes_to_fallbacks_without_trying_the_cooling_ones():
    r = routing(group("a", "a1", "a2") + group("b", "b1"), fallbacks={"a": ("b",)})
    for key in ("a1", "a2"):
        r.cooldowns.record_failure(key, classify_rate_limit())
    assert run(r.plan("a"), {}) == ["b1"]


def test_all_cooling_and_nothing_else_answers_tries_the_soonest_back_once():
    clock = FakeClock()
    r = routing(group("a", "a1", "a2") + group("b", "b1"), clock=clock, num_retries=3, fallbacks={"a": ("b",)})
    r.cooldowns.record_failure("a1", classify_rate_limit(), cooldown_time=30)
    clock.advance(1)
    r.cooldowns.record_failure("a2", classify_rate_limit(), cooldown_time=10)
    plan = r.plan("a")
    error = bad_request()
    assert run(plan, {"b1": error, "a2": server_error()}) == ["b1", "a2"]
    assert plan.error is error                       # the first upstream error of the request


def test_last_resort_answers_when_it_can():
    r = routing(group("a", "a1"))
    r.cooldowns.record_failure("a1", classify_rate_limit())
    plan = r.plan("a")
    assert run(plan, {}) == ["a1"]
    assert plan.answered_by is not None


def test_over_rpm_everywhere_is_a_429_with_retry_after_after_fallbacks():
    clock = FakeClock()
    clock.advance(15)
    cands = [dep("a1", "a", rpm=1), dep("b1", "b", rpm=1)]
    r = routing(cands, clock=clock, routing_strategy="usage-based-routing-v2", fallbacks={"a": ("b",)})
    assert run(r.plan("a"), {}) == ["a1"]
    assert run(r.plan("a"), {}) == ["b1"]
    plan = r.plan("a")
    assert run(plan, {}) == []
    error = plan.error
    assert isinstance(error, NoDeploymentsAvailableError) and error.status_code == 429
    assert error.headers["Retry-After"] == "45" and "rpm/tpm" in error.message


def test_tags_without_a_match_are_a_400_unless_a_fallback_serves_them():
    cands = [dep("free", "a", tags=("free",)), dep("gold", "b", tags=("gold",))]
    r = routing(cands, enable_tag_filtering=True, fallbacks={"a": ("b",)})
    assert run(r.plan("a", RequestFacts(tags=("gold",))), {}) == ["gold"]
    plan = r.plan("a", RequestFacts(tags=("silver",)))
    assert run(plan, {}) == []
    assert isinstance(plan.error, NoDeploymentsForTagsError) and plan.error.status_code == 400
    assert [name for name, _ in plan.skipped] == ["a", "b"]


def test_tags_choose_within_a_group():
    cands = [dep("free", "a", tags=("free",)), dep("paid", "a", tags=("paid",)), dep("dflt", "a", tags=("default",))]
    r = routing(cands, enable_tag_filtering=True)
    assert run(r.plan("a", RequestFacts(tags=("paid",))), {}) == ["paid"]
    assert run(r.plan("a"), {}) == ["dflt"]


# -- the answer and the attempt's life ------------------------------------------------------------------------

def test_the_answer_is_the_first_upstream_error():
    r = routing(group("a", "a1") + group("b", "b1"), num_retries=0, fallbacks={"a": ("b",)})
    first = server_error(500)
    plan = r.plan("a")
    run(plan, {"a1": first, "b1": bad_request()})
    assert plan.error is first


def test_abandoned_attempt_ends_the_plan_and_is_nobodys_fault():
    r = routing(group("a", "a1", "a2"), allowed_fails=0, routing_strategy="least-busy")
    plan = r.plan("a")
    attempt = plan.next_attempt()
    assert r.strategy.in_flight(attempt.candidate.key) == 1
    attempt.abandoned()
    assert plan.next_attempt() is None
    assert not r.cooldowns.is_cooling(attempt.candidate.key)
    assert r.strategy.in_flight(attempt.candidate.key) == 0


def test_an_attempt_settles_exactly_once_and_one_is_open_at_a_time():
    plan = routing(group("a", "a1", "a2")).plan("a")
    attempt = plan.next_attempt()
    with pytest.raises(RuntimeError, match="still open"):
        plan.next_attempt()
    attempt.failed(server_error())
    with pytest.raises(RuntimeError, match="already failed"):
        attempt.succeeded()
    with pytest.raises(RuntimeError):
        attempt.answered()


def test_successes_teach_the_strategy():
    clock = FakeClock()
    # one deployment each in "s" and "f"; "both" has the same two deployments (same ids)
    cands = [dep("slow", "s"), dep("fast", "f"), dep("slow", "both"), dep("fast", "both")]
    r = routing(cands, clock=clock, routing_strategy="latency-based-routing")
    for name, seconds in (("s", 3.0), ("f", 1.0)):
        attempt = r.plan(name).next_attempt()
        clock.advance(seconds)
        attempt.answered()
        attempt.succeeded()
    assert r.strategy.score("slow") == 3.0 and r.strategy.score("fast") == 1.0
    assert r.plan("both").next_attempt().candidate.target == "fast"


def test_time_to_first_token_is_measured_on_the_plans_clock():
    clock = FakeClock()
    r = routing(group("a", "a1"), clock=clock, routing_strategy="latency-based-routing")
    plan = r.plan("a", RequestFacts(stream=True))
    attempt = plan.next_attempt()
    attempt.answered()
    clock.advance(0.25)
    attempt.mark_first_token()
    clock.advance(2.0)
    attempt.succeeded()
    assert r.strategy.score("a1", stream=True) == 0.25
    assert r.strategy.score("a1") == 2.25


def test_wildcard_models_cool_down_separately():
    r = routing([dep("w", "openai/*", "openai/*")], allowed_fails=0)
    run(r.plan("openai/nope"), {"w": [server_error(404)]})
    assert r.cooldowns.is_cooling("w:openai/nope")
    assert run(r.plan("openai/gpt-4o"), {}) == ["w"]
