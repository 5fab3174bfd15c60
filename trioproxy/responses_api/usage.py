"""Token usage in both shapes: chat completions' ``prompt/completion`` and the Responses API's ``input/output``.

Translated answers carry the upstream's chat usage as Responses usage (:func:`responses_usage`);
answers passed through from a native ``/v1/responses`` upstream carry Responses usage, which cost
tracking and logging (written for chat usage) read through :func:`chat_usage`. Both directions
keep the cached and reasoning token counts, the parts that are priced differently.

Shapes (OpenAI's API reference; the OpenAI Python SDK's ``ResponseUsage`` requires every field
below, ``input_tokens_details.cache_write_tokens`` included)::

    chat:      {prompt_tokens, completion_tokens, total_tokens,
                prompt_tokens_details: {cached_tokens}, completion_tokens_details: {reasoning_tokens}}
    responses: {input_tokens, output_tokens, total_tokens,
                input_tokens_details: {cached_tokens, cache_write_tokens},
                output_tokens_details: {reasoning_tokens}}

Anthropic-style counts that some chat upstreams (and LiteLLM) put at the top level of ``usage``
(``cache_read_input_tokens``, ``cache_creation_input_tokens``) fill the cached/written counts when
the ``*_details`` objects do not have them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["chat_usage", "responses_usage"]


def _count(value: Any) -> int:
    """A token count: a non-negative int (bools, floats, strings and negatives count as 0)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return 0


def _details(usage: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = usage.get(key)
    return value if isinstance(value, Mapping) else {}


def responses_usage(usage: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Chat usage → Responses usage; ``None`` when the upstream reported none."""
    if not isinstance(usage, Mapping):
        return None
    prompt = _details(usage, "prompt_tokens_details")
    completion = _details(usage, "completion_tokens_details")
    input_tokens = _count(usage.get("prompt_tokens"))
    output_tokens = _count(usage.get("completion_tokens"))
    total = usage.get("total_tokens")
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {
            "cached_tokens": _count(prompt.get("cached_tokens", usage.get("cache_read_input_tokens"))),
            "cache_write_tokens": _count(prompt.get("cache_write_tokens",
                                                    usage.get("cache_creation_input_tokens"))),
        },
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": _count(completion.get("reasoning_tokens"))},
        "total_tokens": _count(total) if total is not None else input_tokens + output_tokens,
    }


def chat_usage(usage: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Responses usage → chat usage (for cost and logging of natively passed-through answers)."""
    if not isinstance(usage, Mapping):
        return None
    inputs = _details(usage, "input_tokens_details")
    outputs = _details(usage, "output_tokens_details")
    prompt_tokens = _count(usage.get("input_tokens"))
    completion_tokens = _count(usage.get("output_tokens"))
    total = usage.get("total_tokens")
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": _count(total) if total is not None else prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": _count(inputs.get("cached_tokens")),
                                  "cache_write_tokens": _count(inputs.get("cache_write_tokens"))},
        "completion_tokens_details": {"reasoning_tokens": _count(outputs.get("reasoning_tokens"))},
    }
