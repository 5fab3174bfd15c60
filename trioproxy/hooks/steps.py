"""Steps of the proxy itself that take a place in a phase's order, like a handler.

:class:`LimitsAndBudgets` is where a request is **admitted** (budgets and rate limits, issue #11;
``docs/spend.md``): a built-in step of the pre-call phase. It is a handler object so that the
scheduler's one rule decides where it runs — after the ``general_settings`` request policies,
before the guardrails and the callbacks — and so that ``trioproxy check`` lists it in the hook
table. The request's run (``core/run.py``, ``RequestRun.invoke``) recognises it and admits the
request in its place, with what a hook cannot see (the request id, the key's cached record, the
customer); its hook method itself does nothing, so calling it outside a request is harmless.

Why there: a request that fails the cheap checks (key rules, a blocked customer, a missing
``user`` under ``enforce_user_param``) is refused before it consumes a rate limit or gets a spend
record; one that is over a limit is refused before any guardrail or callback spends time (or a
moderation service's money) on it; and everything after it — a pre-call hook's rejection or string
answer, the moderation race, the upstream, the post-call hooks — happens to an admitted request,
which therefore has exactly one spend record.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LIMITS_AND_BUDGETS", "LimitsAndBudgets"]

#: the step's name in the hook table and in errors
LIMITS_AND_BUDGETS = "limits_and_budgets"


class LimitsAndBudgets:
    """The admission step (see the module docstring). Present when a database is configured."""

    #: reads no content: a /v1/responses request may be forwarded natively with it
    handles_responses_api = True

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: Any, call_type: Any) -> None:
        """Nothing: the request's run admits the request when it reaches this step."""
        return None
