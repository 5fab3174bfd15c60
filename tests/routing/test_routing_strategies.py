"""The four strategies, one test per rule of their module docstrings, in virtual time.

Randomness comes from seeded ``random.Random`` objects: a test's outcome is the same every run."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from trioproxy.upstream.routing import (
    ErrorKind,
    InMemoryUsageCounter,
    LatencyArgs,
    LatencyBased,
    LeastBusy,
    RequestFacts,
    SimpleShuffle,
    UsageBasedV2,
    UsageLimits,
)
from trioproxy.upstream.routing.latency import TIMEOUT_PENALTY

from .routing_helpers import FakeClock, dep

FACTS = RequestFacts()


def ids(candidates):
    return [c.id for c in candidates]


def first_picks(strategy, candidates, n=4000, facts=FACTS):
    return Counter(strategy.order(candidates, facts)[0].id for _ in range(n))


# -- shared: order tiers -------------------------------------------------------------------------

@pytest.mark.parametrize("strategy", [SimpleShuffle, LeastBusy, LatencyBased, UsageBasedV2])
def test_order_tiers_lowest_first_unset_last_for_every_strategy(strategy):
    s = strategy(rng=random.Random(1), clock=FakeClock())
    cands = [dep("none"), dep("two", order=2), dep("one-a", order=1), dep("one-b", order=1)]
    for _ in range(20):
        order = ids(s.order(cands, FACTS))
        assert set(order[:2]) == {"one-a", "one-b"} and order[2:] == ["two", "none"]


# -- simple-shuffle --------------------------------------------------------------------------------

def test_shuffle_first_pick_follows_weights():
    picks = first_picks(SimpleShuffle(rng=random.Random(7)), [dep("a", weight=9), dep("b", weight=1)])
    assert 0.87 < picks["a"] / 4000 < 0.93


def test_shuffle_unset_weight_counts_as_one_when_others_set_weight():
    picks = first_picks(SimpleShuffle(rng=random.Random(3)), [dep("a", weight=3), dep("b")])
    assert 0.72 < picks["a"] / 4000 < 0.78


def test_shuffle_weight_zero_is_only_a_fallback_in_config_order():
    s = SimpleShuffle(rng=random.Random(5))
    cands = [dep("z1", weight=0), dep("a", weight=1), dep("z2", weight=0), dep("b", weight=2)]
    for _ in range(50):
        order = ids(s.order(cands, FACTS))
        assert set(order[:2]) == {"a", "b"} and order[2:] == ["z1", "z2"]
    assert ids(s.order([dep("z1", weight=0), dep("z2", weight=0)], FACTS)) == ["z1", "z2"]


def test_shuffle_uses_rpm_as_weights_when_every_deployment_sets_rpm():
    picks = first_picks(SimpleShuffle(rng=random.Random(11)), [dep("a", rpm=900), dep("b", rpm=100)])
    assert 0.87 < picks["a"] / 4000 < 0.93


def test_shuffle_uses_tpm_when_every_deployment_sets_tpm_but_not_rpm():
    picks = first_picks(SimpleShuffle(rng=random.Random(13)), [dep("a", tpm=1000), dep("b", tpm=3000)])
    assert 0.72 < picks["b"] / 4000 < 0.78


def test_shuffle_is_uniform_when_limits_are_partial():
    picks = first_picks(SimpleShuffle(rng=random.Random(17)), [dep("a", rpm=900), dep("b")])
    assert 0.46 < picks["a"] / 4000 < 0.54


def test_shuffle_returns_every_candidate_once():
    s = SimpleShuffle(rng=random.Random(19))
    cands = [dep(str(i), weight=i % 3) for i in range(7)]
    assert sorted(ids(s.order(cands, FACTS))) == sorted(ids(cands))


# -- least-busy ----------------------------------------------------------------------------------

def test_least_busy_orders_by_requests_in_flight():
    s = LeastBusy(rng=random.Random(0))
    a, b, c = dep("a"), dep("b"), dep("c")
    s.on_start(a)
    s.on_start(a)
    s.on_start(b)
    assert ids(s.order([a, b, c], FACTS)) == ["c", "b", "a"]


def test_least_busy_releases_on_success_failure_and_abandon():
    s = LeastBusy(rng=random.Random(0))
    a = dep("a")
    for _ in range(3):
        s.on_start(a)
    s.on_success(a, latency=1.0, ttft=None, completion_tokens=None, total_tokens=None, stream=False)
    s.on_failure(a, ErrorKind.SERVER, latency=1.0)
    s.on_failure(a, None, latency=1.0)          # abandoned
    assert s.in_flight("a") == 0
    s.on_failure(a, None, latency=1.0)          # never below zero
    assert s.in_flight("a") == 0


def test_least_busy_breaks_ties_at_random():
    picks = first_picks(LeastBusy(rng=random.Random(23)), [dep("a"), dep("b")], n=400)
    assert picks["a"] > 150 and picks["b"] > 150


# -- latency-based-routing --------------------------------------------------------------------------

def succeed(s, c, latency, *, tokens=None, ttft=None, stream=False):
    s.on_success(c, latency=latency, ttft=ttft, completion_tokens=tokens, total_tokens=tokens, stream=stream)


def test_latency_unmeasured_deployments_come_first():
    s = LatencyBased(rng=random.Random(0), clock=FakeClock())
    a, b = dep("a"), dep("b")
    succeed(s, a, 0.5)
    assert ids(s.order([a, b], FACTS)) == ["b", "a"]


def test_latency_fastest_mean_first():
    s = LatencyBased(rng=random.Random(0), clock=FakeClock())
    a, b, c = dep("a"), dep("b"), dep("c")
    for value in (1.0, 3.0):
        succeed(s, a, value)          # mean 2
    succeed(s, b, 1.0)                # mean 1
    succeed(s, c, 4.0)
    assert ids(s.order([a, b, c], FACTS)) == ["b", "a", "c"]


def test_latency_is_per_completion_token_when_reported():
    s = LatencyBased(rng=random.Random(0), clock=FakeClock())
    a, b = dep("a"), dep("b")
    succeed(s, a, 10.0, tokens=1000)  # 0.01 s per token
    succeed(s, b, 1.0, tokens=10)     # 0.1 s per token
    assert ids(s.order([a, b], FACTS)) == ["a", "b"]
    assert s.score("a") == pytest.approx(0.01)


def test_latency_streams_compare_time_to_first_token():
    s = LatencyBased(rng=random.Random(0), clock=FakeClock())
    a, b = dep("a"), dep("b")
    succeed(s, a, 2.0, ttft=0.1, stream=True)   # slow overall, quick to start
    succeed(s, b, 1.0, ttft=0.5, stream=True)
    assert ids(s.order([a, b], RequestFacts(stream=True))) == ["a", "b"]
    assert ids(s.order([a, b], FACTS)) == ["b", "a"]


def test_latency_timeout_records_a_penalty_other_failures_nothing():
    s = LatencyBased(rng=random.Random(0), clock=FakeClock())
    a, b = dep("a"), dep("b")
    succeed(s, a, 1.0)
    succeed(s, b, 2.0)
    s.on_failure(a, ErrorKind.TIMEOUT, latency=30.0)
    s.on_failure(b, ErrorKind.SERVER, latency=0.1)
    assert s.score("a") == pytest.approx((1.0 + TIMEOUT_PENALTY) / 2)
    assert s.score("b") == 2.0


def test_latency_samples_expire_after_ttl_and_only_the_newest_are_kept():
    clock = FakeClock()
    s = LatencyBased(args=LatencyArgs(ttl=60, max_latency_list_size=2), rng=random.Random(0), clock=clock)
    a = dep("a")
    succeed(s, a, 9.0)
    clock.advance(30)
    succeed(s, a, 1.0)
    succeed(s, a, 3.0)                # 9.0 pushed out by size
    assert s.score("a") == 2.0
    clock.advance(61)
    assert s.score("a") == 0.0        # all expired: unmeasured again


def test_latency_buffer_spreads_load_among_the_near_best():
    s = LatencyBased(args=LatencyArgs(lowest_latency_buffer=0.5), rng=random.Random(29), clock=FakeClock())
    a, b, c = dep("a"), dep("b"), dep("c")
    succeed(s, a, 1.0)
    succeed(s, b, 1.4)                # within 50% of the best
    succeed(s, c, 2.0)                # not
    picks = Counter(ids(s.order([a, b, c], FACTS))[0] for _ in range(400))
    assert picks["a"] > 100 and picks["b"] > 100 and picks["c"] == 0
    assert all(ids(s.order([a, b, c], FACTS))[2] == "c" for _ in range(20))


def test_latency_skips_deployments_over_their_limits():
    clock = FakeClock()
    s = LatencyBased(rng=random.Random(0), clock=clock)
    a, b = dep("a", rpm=1), dep("b")
    s.on_start(a)
    assert ids(s.order([a, b], FACTS)) == ["b"]


# -- usage-based-routing-v2 ---------------------------------------------------------------------------

def test_usage_fewest_tokens_this_minute_first():
    s = UsageBasedV2(rng=random.Random(0), clock=FakeClock())
    a, b = dep("a"), dep("b")
    s.on_start(a)
    s.on_success(a, latency=1, ttft=None, completion_tokens=40, total_tokens=100, stream=False)
    assert ids(s.order([a, b], FACTS)) == ["b", "a"]


def test_usage_counts_requests_at_start_and_tokens_at_success():
    clock = FakeClock()
    limits = UsageLimits(clock=clock)
    s = UsageBasedV2(limits=limits, rng=random.Random(0), clock=clock)
    a = dep("a")
    s.on_start(a)
    assert limits.usage("a") == (1, 0)
    s.on_success(a, latency=1, ttft=None, completion_tokens=5, total_tokens=12, stream=False)
    assert limits.usage("a") == (1, 12)
    s.on_failure(a, ErrorKind.SERVER, latency=1)
    assert limits.usage("a") == (1, 12)


def test_usage_skips_a_deployment_at_its_rpm():
    s = UsageBasedV2(rng=random.Random(0), clock=FakeClock())
    a, b = dep("a", rpm=2), dep("b", rpm=5)
    s.on_start(a)
    assert "a" in ids(s.order([a, b], FACTS))       # 1 + 1 <= 2
    s.on_start(a)
    assert ids(s.order([a, b], FACTS)) == ["b"]     # 2 + 1 > 2


def test_usage_skips_a_deployment_whose_tpm_the_prompt_would_exceed():
    s = UsageBasedV2(rng=random.Random(0), clock=FakeClock())
    a = dep("a", tpm=1000)
    s.on_start(a)
    s.on_success(a, latency=1, ttft=None, completion_tokens=1, total_tokens=900, stream=False)
    assert ids(s.order([a], RequestFacts(input_tokens=100))) == ["a"]
    assert ids(s.order([a], RequestFacts(input_tokens=101))) == []


def test_usage_limits_reset_with_the_calendar_minute():
    clock = FakeClock()
    s = UsageBasedV2(rng=random.Random(0), clock=clock)
    a = dep("a", rpm=1)
    clock.advance(59)
    s.on_start(a)
    assert ids(s.order([a], FACTS)) == []
    clock.advance(1)                                 # the next minute
    assert ids(s.order([a], FACTS)) == ["a"]


def test_usage_counter_is_pluggable_and_drops_old_minutes():
    counter = InMemoryUsageCounter()
    counter.add("a", 10, requests=1, tokens=5)
    counter.add("a", 11, requests=2)
    assert counter.get("a", 10) == (1, 5)
    counter.add("b", 12, requests=1)                 # minute 10 is now two minutes old
    assert counter.get("a", 10) == (0, 0) and counter.get("a", 11) == (2, 0)

    class Shared:                                    # what a Redis-backed counter implements
        def __init__(self):
            self.calls = []

        def add(self, key, minute, *, requests=0, tokens=0):
            self.calls.append((key, minute, requests, tokens))

        def get(self, key, minute):
            return (0, 0)

    shared = Shared()
    clock = FakeClock()
    UsageBasedV2(limits=UsageLimits(shared, clock), clock=clock).on_start(dep("a"))
    assert shared.calls == [("a", int(clock.time() // 60), 1, 0)]
