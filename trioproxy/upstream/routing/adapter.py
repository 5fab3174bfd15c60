"""How ``upstream/router.py`` drives a plan: the attempt loop, once, for ``send`` and ``open_stream``.

``Router._call`` becomes::

    plan = self.routing.plan(model, facts)
    attempt, answer = await call_with_plan(plan, lambda a: self._send_one(a, endpoint, body, stream))

where ``_send_one`` builds the outgoing body from ``attempt.candidate.target`` (the config's
deployment) and ``attempt.model`` (``provider/name``; substituted for a wildcard match) and calls the
provider, as ``_call`` does today for one deployment. The caller then settles the attempt: for a
whole answer ``attempt.succeeded(completion_tokens=…, total_tokens=…)`` once its usage is read; for a
stream, ``attempt.mark_first_token()`` at the first chunk and ``succeeded(...)`` at ``[DONE]``, or
``attempt.failed(error, first_byte_sent=True)`` if it breaks, or ``attempt.abandoned()`` if the client
leaves — exactly one of them, in a ``finally``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ...errors import ProxyError
from .plan import Attempt, RoutingPlan
from .types import T

__all__ = ["call_with_plan"]

log = logging.getLogger("trioproxy.router")

R = TypeVar("R")


async def call_with_plan(plan: RoutingPlan[T], send: Callable[[Attempt[T]], Awaitable[R]]) -> tuple[Attempt[T], R]:
    """Try the plan's attempts until one answers; raise the plan's error when none does.

    ``send`` raising a :class:`ProxyError` is a failed attempt (the plan decides what comes next);
    anything else — ``trio.Cancelled`` when the client leaves, a bug — abandons the attempt (not the
    deployment's fault: no cooldown, no latency penalty) and propagates unchanged.
    """
    while (attempt := plan.next_attempt()) is not None:
        try:
            answer = await send(attempt)
        except ProxyError as error:
            attempt.failed(error)
            log.warning("attempt %d on %s (group %r) failed: %s %s", attempt.number, attempt.model,
                        attempt.group, error.status_code, type(error).__name__)
            continue
        except BaseException:
            attempt.abandoned()
            raise
        attempt.answered()
        return attempt, answer
    raise plan.error
