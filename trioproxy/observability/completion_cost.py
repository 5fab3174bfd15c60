"""``completion_cost``: LiteLLM's ``litellm.completion_cost`` for handler files, on trioproxy's price table.

Handler files call it in their logging methods (``litellm.completion_cost(completion_response=
response_obj)``) to price an answer. Same arguments and result as LiteLLM's (USD, a ``float``):
the model is the response's ``model`` (or ``model=``), the tokens its ``usage``; without usage the
tokens are estimated from ``messages``/``prompt`` and ``completion``, as LiteLLM counts them. A
model the price table does not know raises, as in LiteLLM ("isn't mapped yet"): a guessed price
would be worse than none. The table is the one the proxy bills with (``prices.py``), parsed once
per process (the proxy parses it at startup, so a hook's call does no file I/O).

For the request being logged, ``kwargs["response_cost"]`` already holds the proxy's settled cost
(``docs/logging.md``); this function is for answers a handler holds itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .prices import PriceTable, compute_cost, usage_from_response
from .tokens import estimate_usage

__all__ = ["completion_cost"]


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _as_mapping(obj: Any) -> Mapping[str, Any]:
    if isinstance(obj, Mapping):
        return obj
    dump = getattr(obj, "model_dump", None) or getattr(obj, "dict", None)
    return dump() if callable(dump) else {}


def completion_cost(completion_response: Any = None, model: str | None = None, prompt: str = "",
                    messages: list[dict[str, Any]] | None = None, completion: str = "",
                    custom_llm_provider: str | None = None, **_litellm_kwargs: Any) -> float:
    """USD cost of ``completion_response`` (or of ``prompt``/``messages`` and ``completion``)."""
    response = _as_mapping(completion_response) if completion_response is not None else {}
    name = model or _field(response, "model")
    if not isinstance(name, str) or not name:
        raise ValueError("completion_cost: no model (pass model=, or a response with a 'model' field)")
    if custom_llm_provider and "/" not in name:
        name = f"{custom_llm_provider}/{name}"
    price = PriceTable.load_default().lookup(name)
    if price is None:
        raise ValueError(f"This model isn't mapped yet. model={name}: trioproxy's price table has no price for "
                         "it (set input_cost_per_token / output_cost_per_token on the deployment)")
    prompt_tokens, completion_tokens = usage_from_response(response)
    if prompt_tokens is None and completion_tokens is None:
        text = completion or _answer_text(response)
        body = {"messages": messages} if messages else {"prompt": prompt}
        prompt_tokens, completion_tokens = estimate_usage(body, text)
    return compute_cost(price, prompt_tokens, completion_tokens) or 0.0


def _answer_text(response: Mapping[str, Any]) -> str:
    parts = []
    for choice in _field(response, "choices") or ():
        message = _field(choice, "message")
        text = _field(message, "content") if message is not None else _field(choice, "text")
        if isinstance(text, str):
            parts.append(text)
    return "".join(parts)
