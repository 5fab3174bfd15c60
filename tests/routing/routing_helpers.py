"""Shared pieces of the routing tests: a clock the test moves, and candidates from plain strings."""

from __future__ import annotations

import random
from typing import Any

from trioproxy.errors import (
    APIConnectionError,
    APIError,
    BadRequestError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    RateLimitError,
    ServiceUnavailableError,
)
from trioproxy.upstream.routing import Candidate, DeploymentRouting, Routing, RoutingSettings

#: a wall-clock time at the start of a calendar minute
MINUTE_START = 60 * 28_333_334.0


class FakeClock:
    """Virtual time: ``monotonic`` and ``time`` move together, only when the test says so."""

    def __init__(self, wall: float = MINUTE_START) -> None:
        self.now = 0.0
        self.wall0 = wall

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall0 + self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def dep(id: str, group: str = "g", model: str | None = None, *, tags: tuple[str, ...] = (),
        **routing: Any) -> Candidate[str]:
    """A candidate whose target is its id (so tests can compare targets with plain strings)."""
    r = DeploymentRouting(id=id, tags=frozenset(tags), **routing)
    return Candidate(key=id, group=group, model=model or f"openai/{id}", routing=r, target=id)


def routing(candidates: list[Candidate[str]], clock: FakeClock | None = None, seed: int = 0,
            **settings: Any) -> Routing[str]:
    settings.setdefault("num_retries", 2)
    return Routing(candidates, RoutingSettings(**settings), clock=clock or FakeClock(), rng=random.Random(seed))


# errors as upstream transports make them (``retryable`` recorded where made, as after #9)

def server_error(status: int = 500) -> APIError:
    e = APIError("upstream failed", status_code=status)
    e.upstream_status = status  # type: ignore[attr-defined]
    e.retryable = status >= 500 and status not in (501, 504)
    return e


def unavailable() -> ServiceUnavailableError:
    return ServiceUnavailableError("overloaded")


def unreachable() -> APIConnectionError:
    return APIConnectionError("connection refused")


def rate_limited() -> RateLimitError:
    e = RateLimitError("slow down")
    e.upstream_status = 429  # type: ignore[attr-defined]
    e.retryable = False
    return e


def bad_request(message: str = "invalid 'temperature'") -> BadRequestError:
    e = BadRequestError(message)
    e.retryable = False
    return e


def too_long() -> ContextWindowExceededError:
    return ContextWindowExceededError("This model's maximum context length is 8192 tokens")


def filtered() -> ContentPolicyViolationError:
    return ContentPolicyViolationError("blocked by the content filter", code="content_filter")
