"""What one request cost, computed the same way for the response header, the logs and the metrics.

Why a separate object rather than calls to ``pricing`` at each use: the price of a deployment is
resolved once (table lookup plus its ``input_cost_per_token`` / ``output_cost_per_token``
overrides) and then reused for every request, and the three consumers must agree to the cent.

Rules (``docs/logging.md`` states them for users):

* The upstream's reported usage is the source of truth: the JSON body's ``usage`` for a plain
  answer, the final usage chunk for a stream (the pipeline asks the upstream for it).
* A request that never reached an upstream and still succeeded (a cache hit, an answer written by
  a pre-call hook) cost nothing: ``0.0``.
* An unpriced model costs ``None``, never ``0``: a dashboard must be able to tell "free" from
  "unknown".
* When an upstream reports no usage, :meth:`CostCalculator.estimate` counts tokens with
  ``pricing.estimate_usage``. That is CPU work on possibly large bodies, so it is only ever called
  from a worker thread by the logging sink, never on the request path; the header then carries no
  cost (it was not known when the headers were sent).
"""

from __future__ import annotations

import logging
from typing import Any

from ..config import Deployment
from ..context import RequestContext
from .prices import Price, PriceTable, compute_cost, estimate_usage, price_for, usage_from_response

__all__ = ["CostCalculator", "Tokens"]

log = logging.getLogger("trioproxy.cost")

#: (prompt_tokens, completion_tokens); either may be unknown
Tokens = tuple[int | None, int | None]

_UNSET = object()


class CostCalculator:
    def __init__(self, table: PriceTable | None = None) -> None:
        self.table = table or PriceTable.load_default()
        self._prices: dict[int, Price | None] = {}

    def price(self, deployment: Deployment) -> Price | None:
        """The deployment's price (cached per deployment: config is immutable for the app's life)."""
        cached = self._prices.get(deployment.index, _UNSET)
        if cached is not _UNSET:
            return cached  # type: ignore[return-value]
        overrides = {"input_cost_per_token": deployment.input_cost_per_token,
                     "output_cost_per_token": deployment.output_cost_per_token}
        try:
            price = price_for(self.table, deployment.upstream_model, overrides)
        except ValueError as exc:  # config validation makes this unreachable; never fail a request
            log.error("cannot price %s: %s", deployment.label, exc)
            price = None
        self._prices[deployment.index] = price
        return price

    @staticmethod
    def reported_tokens(ctx: RequestContext) -> Tokens:
        """Tokens the upstream reported (``ctx.usage``), or ``(None, None)``."""
        if not isinstance(ctx.usage, dict):
            return None, None
        return usage_from_response({"usage": ctx.usage})

    def __call__(self, ctx: RequestContext) -> float | None:
        """The cost from what is known now (cheap: safe on the Trio thread). Sets ``ctx.cost_source``."""
        if ctx.cache_hit or (ctx.deployment is None and ctx.error is None):
            ctx.cost_source = "free"
            return 0.0
        if ctx.deployment is None:
            return None
        prompt, completion = self.reported_tokens(ctx)
        if prompt is None and completion is None:
            return None
        price = self.price(ctx.deployment)
        ctx.cost_source = "usage" if price is not None else "unpriced"
        return compute_cost(price, prompt, completion)

    def needs_estimate(self, ctx: RequestContext) -> bool:
        """True when the request succeeded upstream, is priced, but the upstream reported no usage."""
        if ctx.error is not None or ctx.cost_source is not None or ctx.deployment is None:
            return False
        return self.price(ctx.deployment) is not None and self.reported_tokens(ctx) == (None, None)

    def estimate(self, ctx: RequestContext) -> tuple[Tokens, float | None]:
        """Count tokens ourselves (worker thread only). Returns the tokens and the cost."""
        body: dict[str, Any] = ctx.upstream_body or ctx.data
        prompt, completion = estimate_usage(body, _response_text(ctx.response))
        assert ctx.deployment is not None
        return (prompt, completion), compute_cost(self.price(ctx.deployment), prompt, completion)


def _response_text(response: Any) -> str:
    """All generated text of a chat or text completion (what completion tokens were spent on)."""
    if not isinstance(response, dict):
        return ""
    parts: list[str] = []
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
