"""What routing needs to know of one request (``RequestFacts``), read from its body, headers and caller.

* **tags**: the body's ``tags``, ``metadata.tags`` and the ``x-litellm-tags`` header
  (``routing.request_tags``), then the caller's: the key's and the team's ``tags`` from their
  metadata (LiteLLM keeps them there). Virtual keys and teams arrive with issue #10: the
  :class:`~trioproxy.auth.UserAPIKeyAuth` the authenticator returns is read here, nothing else changes.
* **fallbacks** (LiteLLM's client-side fallbacks): ``"fallbacks": ["model", …]`` replaces the
  configured general fallbacks for this request. A name the caller may not use is refused with a
  401 before anything is sent (:func:`check_model_access`: today every caller that passed
  authentication may use every model; issue #10's keys restrict it there). Not a list of model
  names → 400.
* **disable_fallbacks**: ``true`` turns fallbacks off for the request.
* **input_tokens**: an estimate of the prompt's tokens (characters / 4 over the user's text), only
  when a strategy counts tokens per minute against ``tpm`` limits; 0 otherwise (no work spent).
* **allowed_region**: the customer's ``allowed_model_region`` (``/customer/new``), for LiteLLM's
  region check (``enable_pre_call_checks``).
* **prompt_tokens** (:func:`prompt_tokens`, awaited by the pipeline only when
  ``enable_pre_call_checks`` is on): the prompt's tokens with OpenAI's message framing
  (``observability.tokens.estimate_usage``), what LiteLLM's ``token_counter`` counts for its
  context-window check; a large prompt is counted in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import trio

from ..auth import UserAPIKeyAuth
from ..context import RequestContext
from ..errors import AuthenticationError, BadRequestError
from ..observability.tokens import estimate_usage
from ..prompt import text_slots
from ..upstream.routing import RequestFacts, request_tags

__all__ = ["caller_tags", "check_model_access", "prompt_tokens", "request_facts"]

#: characters per token in the estimate for ``tpm`` (OpenAI's rule of thumb for English)
CHARS_PER_TOKEN = 4
#: prompts longer than this (characters) are counted for the context-window check in a worker
#: thread: the estimator is linear but a megabyte of text takes long enough to stall other requests
INLINE_COUNT_CHARS = 32_768
#: worker threads counting prompts at once (CPU work: more than the cores would only queue)
COUNT_LIMITER = trio.CapacityLimiter(2)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str) and v]
    return []


def caller_tags(user: UserAPIKeyAuth | None) -> list[str]:
    """The key's and the team's routing tags (``metadata.tags``, as LiteLLM stores them)."""
    if user is None:
        return []
    tags: list[str] = []
    for metadata in (getattr(user, "metadata", None), getattr(user, "team_metadata", None)):
        if isinstance(metadata, Mapping):
            tags += _strings(metadata.get("tags"))
    return tags


def check_model_access(user: UserAPIKeyAuth | None, models: Sequence[str]) -> None:
    """Refuse (401) a model the caller may not use. The seam for issue #10's per-key ``models``: a
    caller with a non-empty ``models`` list may use only those; today's callers (the master key, an
    open proxy) have none, so every model is allowed."""
    allowed = getattr(user, "models", None) if user is not None else None
    if not allowed:
        return
    for model in models:
        if model not in allowed:
            raise AuthenticationError(f"This key cannot use the fallback model {model!r}.", param="fallbacks",
                                      code="key_model_access_denied")


def _fallbacks(data: Mapping[str, Any]) -> tuple[str, ...] | None:
    value = data.get("fallbacks")
    if value is None:
        return None
    if not isinstance(value, list):
        raise BadRequestError("'fallbacks' must be a list of model names.", param="fallbacks", code="invalid_type")
    names: list[str] = []
    for i, item in enumerate(value):
        name = item.get("model") if isinstance(item, Mapping) else item   # LiteLLM also takes {"model": …}
        if not isinstance(name, str) or not name:
            raise BadRequestError(f"'fallbacks[{i}]' must be a model name.", param="fallbacks", code="invalid_type")
        names.append(name)
    return tuple(names)


def _input_tokens(data: dict[str, Any]) -> int:
    chars = sum(len(slot.text) for slot in text_slots(data))
    return -(-chars // CHARS_PER_TOKEN)


async def prompt_tokens(body: Mapping[str, Any]) -> int:
    """The prompt's tokens for LiteLLM's context-window pre-call check (see the module docstring)."""
    chars = sum(len(slot.text) for slot in text_slots(dict(body)))
    if chars <= INLINE_COUNT_CHARS:
        return estimate_usage(body, "")[0]
    counted = await trio.to_thread.run_sync(estimate_usage, body, "", limiter=COUNT_LIMITER)
    return counted[0]


def request_facts(ctx: RequestContext, *, count_tokens: bool) -> RequestFacts:
    """The request's routing facts (see the module docstring). Raises the 400 / 401 it describes."""
    data = ctx.data
    fallbacks = _fallbacks(data)
    if fallbacks:
        check_model_access(ctx.user, fallbacks)
    disable = data.get("disable_fallbacks")
    if disable is not None and not isinstance(disable, bool):
        raise BadRequestError("'disable_fallbacks' must be true or false.", param="disable_fallbacks",
                              code="invalid_type")
    tags = list(request_tags(data, ctx.request_headers)) + caller_tags(ctx.user)
    region = getattr(ctx.customer, "allowed_model_region", None)
    headers = ctx.request_headers or {}
    agent = next((v for k, v in headers.items() if k.lower() == "user-agent"), None)
    return RequestFacts(stream=ctx.stream, input_tokens=_input_tokens(data) if count_tokens else 0,
                        tags=tuple(dict.fromkeys(tags)), disable_fallbacks=bool(disable), fallbacks=fallbacks,
                        allowed_region=region if isinstance(region, str) and region else None,
                        user_agent=agent or None)
