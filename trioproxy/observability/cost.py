"""What one request cost, computed the same way for the response header, the logs and the metrics.

Why a separate object rather than calls to ``prices`` at each use: the price of a deployment is
resolved once (table lookup plus its ``input_cost_per_token`` / ``output_cost_per_token``
overrides) and then reused for every request.

**Settled once.** The request's final cost is computed at one moment, when its answer is complete
(before the headers of a plain answer; at the end of a stream): :meth:`CostCalculator.settle`,
called by the request's run (``core/run.py``), which records it on the request's context. The
response header, the metrics, the logging payload and (next) spend tracking all read that record;
none computes its own. This object never writes to the context.

Rules (``docs/logging.md`` states them for users):

* The upstream's reported usage is the source of truth: the JSON body's ``usage`` for a plain
  answer, the final usage chunk for a stream (the pipeline asks the upstream for it).
* A request that never reached an upstream and still succeeded (a cache hit, an answer written by
  a pre-call hook) cost nothing: ``0.0``.
* An unpriced model costs ``None``, never ``0``: a dashboard must be able to tell "free" from
  "unknown".
* When an upstream reports no usage, the settled cost is unknown (``cost_source`` ``None``) and
  :meth:`CostCalculator.estimate` counts tokens with ``tokens.estimate_usage``. That is CPU work on
  possibly large bodies, so it is only ever called from a worker thread by the logging sink, never
  on the request path; it completes the settlement (``cost_source`` ``estimate``), and the header
  carries no cost (it was not known when the headers were sent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import Deployment
from ..context import RequestContext
from .prices import Price, PriceTable, compute_cost, price_for, usage_from_response
from .tokens import estimate_usage

__all__ = ["CostCalculator", "FinalCost", "Tokens"]

log = logging.getLogger("trioproxy.cost")

#: (prompt_tokens, completion_tokens); either may be unknown
Tokens = tuple[int | None, int | None]

_UNSET = object()


@dataclass(frozen=True, slots=True)
class FinalCost:
    """A request's cost: USD (``None``: unknown) and where it came from (``docs/logging.md``):
    ``usage``, ``free``, ``unpriced``, ``estimate``, or ``None`` (nothing known: a failure, or an
    answer without usage whose estimate is still to come)."""

    cost: float | None
    source: str | None


UNKNOWN = FinalCost(None, None)
FREE = FinalCost(0.0, "free")


#: ``(deployment, the model its answer names) -> the name to price it by``, or None for the configured
#: model: the composition root's, from the provider adapters (Azure prices by ``base_model``)
PricingModel = Callable[[Deployment, "str | None"], "str | None"]

#: prices kept per (deployment, model): a wildcard deployment serves any model a client names
_PRICE_CACHE_SIZE = 4096


class CostCalculator:
    def __init__(self, table: PriceTable | None = None, *, pricing_model: PricingModel | None = None) -> None:
        self.table = table or PriceTable.load_default()
        self._pricing_model = pricing_model
        self._prices: dict[tuple[int, str, str], Price | None] = {}

    def price(self, deployment: Deployment, answer_model: str | None = None) -> Price | None:
        """The deployment's price: its overrides, else the table's entry for ``provider/model``.

        The model is the configured one, or what the provider adapter prices by (``pricing_model``:
        an Azure deployment's ``base_model``, else the dated model of its answer), else any
        deployment's ``model_info.base_model`` (LiteLLM's way to price a custom name). Cached per
        deployment and model (the config is immutable for the app's life).
        """
        name = self._pricing_model(deployment, answer_model) if self._pricing_model is not None else None
        if not name:
            # model_info.base_model: the name to price by (LiteLLM's), e.g. a custom deployment of a known model
            info = deployment.model_info if isinstance(deployment.model_info, dict) else {}
            base = info.get("base_model")
            name = base if isinstance(base, str) and base else deployment.upstream_model
        key = (deployment.index, deployment.provider, name)
        cached = self._prices.get(key, _UNSET)
        if cached is not _UNSET:
            return cached  # type: ignore[return-value]
        overrides = {"input_cost_per_token": deployment.input_cost_per_token,
                     "output_cost_per_token": deployment.output_cost_per_token}
        try:
            # provider/model first (``gemini/gemini-2.5-flash`` is priced apart from Vertex's), then the
            # table's own fallbacks (without the prefix, without a snapshot date)
            price = price_for(self.table, f"{deployment.provider}/{name}", overrides)
        except ValueError as exc:  # config validation makes this unreachable; never fail a request
            log.error("cannot price %s: %s", deployment.label, exc)
            price = None
        if len(self._prices) >= _PRICE_CACHE_SIZE:
            self._prices.clear()
        self._prices[key] = price
        return price

    @staticmethod
    def reported_tokens(ctx: RequestContext) -> Tokens:
        """Tokens the upstream reported (``ctx.usage``), or ``(None, None)``."""
        if not isinstance(ctx.usage, dict):
            return None, None
        return usage_from_response({"usage": ctx.usage})

    def settle(self, ctx: RequestContext) -> FinalCost:
        """The cost from what is known when the answer is complete (cheap: safe on the Trio thread)."""
        if ctx.cache_hit or (ctx.deployment is None and ctx.error is None):
            return FREE
        if ctx.deployment is None:
            return UNKNOWN
        prompt, completion = self.reported_tokens(ctx)
        if prompt is None and completion is None:
            return UNKNOWN
        price = self.price(ctx.deployment, _answer_model(ctx))
        return FinalCost(compute_cost(price, prompt, completion), "usage" if price is not None else "unpriced")

    def needs_estimate(self, ctx: RequestContext) -> bool:
        """True when the request succeeded upstream, is priced, but the upstream reported no usage."""
        if ctx.error is not None or ctx.cost_source is not None or ctx.deployment is None:
            return False
        return self.price(ctx.deployment, _answer_model(ctx)) is not None and self.reported_tokens(ctx) == (None, None)

    def estimate(self, ctx: RequestContext) -> tuple[Tokens, FinalCost]:
        """Count tokens ourselves (worker thread only). Returns the tokens and the cost."""
        body: dict[str, Any] = ctx.upstream_body or ctx.data
        prompt, completion = estimate_usage(body, _response_text(ctx.response))
        assert ctx.deployment is not None
        price = self.price(ctx.deployment, _answer_model(ctx))
        return (prompt, completion), FinalCost(compute_cost(price, prompt, completion), "estimate")


def _answer_model(ctx: RequestContext) -> str | None:
    """The model the answer names (``gpt-4o-2024-08-06``), if any."""
    response = ctx.response
    model = dict.get(response, "model") if isinstance(response, dict) else None
    return model if isinstance(model, str) and model else None


def _response_text(response: Any) -> str:
    """All generated text of a chat or text completion, or of a Responses answer's messages (what
    completion tokens were spent on)."""
    if not isinstance(response, dict):
        return ""
    parts: list[str] = []
    for item in dict.get(response, "output") or ():     # a native Responses answer's message text
        content = item.get("content") if isinstance(item, dict) and item.get("type") == "message" else None
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
    for choice in dict.get(response, "choices") or ():
        if not isinstance(choice, dict):
            continue
        text = dict.get(choice, "text")
        if isinstance(text, str):
            parts.append(text)
        message = dict.get(choice, "message")
        if isinstance(message, dict):
            content = dict.get(message, "content")
            if isinstance(content, str):
                parts.append(content)
            for call in dict.get(message, "tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    parts.append(str(fn.get("name") or "") + str(fn.get("arguments") or ""))
    return "".join(parts)
