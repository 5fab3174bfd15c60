"""``call_with_plan`` and ``RoutedRouter`` driven by fake providers, in Trio's virtual time
(``autojump_clock``): what ``upstream/router.py`` will do once routing is wired in."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio

from trioproxy.errors import BadRequestError
from trioproxy.upstream.base import UpstreamResponse
from trioproxy.upstream.routing import (
    Candidate,
    DeploymentRouting,
    RequestFacts,
    Routing,
    RoutingSettings,
)
from trioproxy.upstream.routing.adapter import RoutedRouter, TrioClock, call_with_plan

from .routing_helpers import MINUTE_START, rate_limited, unreachable


@dataclass(frozen=True)
class FakeDeployment:
    """The fields ``RoutedRouter`` reads from the config's ``Deployment``."""

    label: str
    provider: str
    upstream_model: str
    extra_params: dict[str, Any] = field(default_factory=dict)


class FakeProvider:
    """Answers after ``latency[label]`` virtual seconds, or raises the next scripted error."""

    def __init__(self, errors: dict[str, list[Exception]] | None = None, latency: dict[str, float] | None = None):
        self.errors = errors or {}
        self.latency = latency or {}
        self.calls: list[tuple[float, str, dict[str, Any]]] = []

    async def send(self, deployment: FakeDeployment, endpoint: str, body: dict[str, Any]) -> UpstreamResponse:
        self.calls.append((trio.current_time(), deployment.label, body))
        await trio.sleep(self.latency.get(deployment.label, 0.0))
        pending = self.errors.get(deployment.label)
        if pending:
            raise pending.pop(0)
        return UpstreamResponse(200, {}, b'{"usage": {"completion_tokens": 1, "total_tokens": 3}}')

    async def open_stream(self, deployment, endpoint, body):
        return await self.send(deployment, endpoint, body)


def candidate(label: str, group: str, model: str, **routing: Any) -> Candidate[FakeDeployment]:
    provider, _, name = model.partition("/")
    return Candidate(label, group, model, DeploymentRouting(id=label, **routing),
                     FakeDeployment(label, provider, name, {"temperature": 0.1}))


def router(cands, providers, **settings) -> RoutedRouter[FakeDeployment]:
    settings.setdefault("num_retries", 1)
    routing = Routing(cands, RoutingSettings(**settings), clock=TrioClock(MINUTE_START), rng=random.Random(0))
    return RoutedRouter(routing, providers)


async def test_retry_on_another_deployment_at_exact_times(autojump_clock):
    fake = FakeProvider(errors={"a": [unreachable()]}, latency={"a": 1.0, "b": 2.0})
    r = router([candidate("a", "gpt", "openai/up-a", order=1), candidate("b", "gpt", "openai/up-b", order=2)],
               {"openai": fake})
    seen = []
    start = trio.current_time()
    attempt, answer = await r.send("gpt", "chat/completions", {"messages": [], "temperature": 0.7},
                                   on_attempt=lambda d, body: seen.append((d.label, body["model"])))
    assert [(t - start, label) for t, label, _ in fake.calls] == [(0.0, "a"), (1.0, "b")]
    assert trio.current_time() - start == 3.0
    assert seen == [("a", "up-a"), ("b", "up-b")]
    assert fake.calls[1][2] == {"temperature": 0.7, "messages": [], "model": "up-b"}   # the client's value wins
    assert attempt.candidate.target.label == "b" and attempt.state == "answered" and answer.status == 200
    attempt.succeeded(completion_tokens=1, total_tokens=3)


async def test_fallback_group_after_the_group_refused(autojump_clock):
    fake = FakeProvider(errors={"a": [rate_limited()]})
    r = router([candidate("a", "big", "openai/big"), candidate("m", "mini", "openai/mini")], {"openai": fake},
               fallbacks={"big": ("mini",)})
    attempt, _ = await r.send("big", "chat/completions", {})
    assert [label for _, label, _ in fake.calls] == ["a", "m"]
    assert attempt.is_fallback and attempt.group == "mini"
    assert r.routing.cooldowns.is_cooling("a")


async def test_wildcards_send_the_matched_model_to_the_matched_provider(autojump_clock):
    openai, anthropic = FakeProvider(), FakeProvider()
    r = router([candidate("w", "openai/*", "openai/*"), candidate("all", "*", "*")],
               {"openai": openai, "anthropic": anthropic})
    await r.send("gpt-4o", "chat/completions", {})
    await r.send("anthropic/claude-3-5-sonnet", "chat/completions", {})
    assert openai.calls[0][2]["model"] == "gpt-4o"
    assert anthropic.calls[0][2]["model"] == "claude-3-5-sonnet"
    with pytest.raises(BadRequestError, match="provider 'mystery'"):
        await r.send("mystery/model", "chat/completions", {})


async def test_client_leaving_abandons_the_attempt_without_blame(autojump_clock):
    fake = FakeProvider(latency={"a": 10.0})
    r = router([candidate("a", "g", "openai/a")], {"openai": fake}, routing_strategy="least-busy",
               allowed_fails=0)
    with trio.move_on_after(1.0) as scope:
        await r.send("g", "chat/completions", {})
    assert scope.cancelled_caught
    assert not r.routing.cooldowns.is_cooling("a")
    assert r.routing.strategy.in_flight("a") == 0


async def test_every_attempt_failing_raises_the_first_error(autojump_clock):
    first = unreachable()
    fake = FakeProvider(errors={"a": [first, unreachable()]})
    r = router([candidate("a", "g", "openai/a")], {"openai": fake})
    with pytest.raises(type(first)) as info:
        await r.send("g", "chat/completions", {})
    assert info.value is first and len(fake.calls) == 2


async def test_latency_routing_learns_in_virtual_time(autojump_clock):
    fake = FakeProvider(latency={"slow": 3.0, "fast": 1.0})
    r = router([candidate("slow", "g", "openai/slow"), candidate("fast", "g", "openai/fast")], {"openai": fake},
               routing_strategy="latency-based-routing")
    for _ in range(2):                           # unmeasured deployments go first: both get measured
        attempt, _ = await r.send("g", "chat/completions", {})
        attempt.succeeded()
    assert {label for _, label, _ in fake.calls} == {"slow", "fast"}
    assert r.routing.strategy.score("slow") == 3.0 and r.routing.strategy.score("fast") == 1.0
    attempt, _ = await r.send("g", "chat/completions", {})
    assert attempt.candidate.target.label == "fast"


async def test_stream_time_to_first_token_on_trios_clock(autojump_clock):
    fake = FakeProvider(latency={"a": 0.5})
    r = router([candidate("a", "g", "openai/a")], {"openai": fake}, routing_strategy="latency-based-routing")
    attempt, _ = await r.open_stream("g", "chat/completions", {}, facts=RequestFacts(stream=True))
    await trio.sleep(0.25)
    attempt.mark_first_token()
    await trio.sleep(2.0)
    attempt.succeeded()
    assert r.routing.strategy.score("a", stream=True) == 0.75
    assert r.routing.strategy.score("a") == 2.75


async def test_call_with_plan_is_the_loop(autojump_clock):
    routing = Routing([candidate("a", "g", "openai/a", order=1), candidate("b", "g", "openai/b", order=2)],
                      RoutingSettings(num_retries=1), clock=TrioClock(MINUTE_START))
    tried = []

    async def send(attempt):
        tried.append(attempt.candidate.id)
        if attempt.candidate.id == "a":
            raise unreachable()
        return "answer"

    attempt, answer = await call_with_plan(routing.plan("g"), send)
    assert (tried, answer, attempt.state) == (["a", "b"], "answer", "answered")


async def test_trio_clock_follows_virtual_time(autojump_clock):
    clock = TrioClock(MINUTE_START)
    t0, w0 = clock.monotonic(), clock.time()
    await trio.sleep(61)
    assert clock.monotonic() - t0 == 61 and clock.time() - w0 == 61 and w0 == MINUTE_START
