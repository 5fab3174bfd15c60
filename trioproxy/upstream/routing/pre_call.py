"""LiteLLM's pre-call checks (``router_settings.enable_pre_call_checks: true``): which deployments of a
group can take this request at all, before the strategy chooses among them.

LiteLLM's ``Router._pre_call_checks`` leaves out a deployment when

* **the prompt does not fit its context window**: the prompt's tokens (LiteLLM's ``token_counter``
  over the messages; here :func:`trioproxy.observability.tokens.estimate_usage`, the same
  accounting with an estimated tokenizer) exceed its ``max_input_tokens`` — ``model_info``'s, else
  the model's entry in the price table (LiteLLM's model cost map). A deployment whose window is
  unknown is never left out. When every deployment is left out for this, the request fails with
  LiteLLM's ``ContextWindowExceededError`` (400, ``context_length_exceeded``) and the group's
  ``context_window_fallbacks`` are tried, as for an upstream's own context-window error;
* **it is outside the customer's region**: a customer (``/customer/new``) with
  ``allowed_model_region: eu`` (or ``us``) may only use deployments in that region — the
  deployment's ``region_name``, else its ``vertex_location`` / ``aws_region_name``; a deployment
  with no region is left out for such a customer (LiteLLM's ``is_region_allowed``). None left: 400;
* **it is at its ``rpm`` this minute**: done by the plan with the rest of the limits
  (``RoutingSettings.enforced_limits``), whatever the strategy.

Not done (LiteLLM's other checks): the ``response_format`` support check and the Azure / OpenAI
``supports_*`` checks; trioproxy leaves such a request to the upstream, which answers it itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import BadRequestError, ContextWindowExceededError, ProxyError
from .types import Candidate, RequestFacts, T

__all__ = ["PreCallChecks", "region_allows"]

#: region name prefixes of each of LiteLLM's ``allowed_model_region`` values (AWS ``eu-west-1``,
#: Vertex ``europe-west4``, Azure-style names), besides the bare ``eu`` / ``us``
_REGION_PREFIXES = {
    "eu": ("eu", "europe", "france", "germany", "sweden", "switzerland", "norway", "poland", "italy",
           "spain", "westeurope", "northeurope", "uksouth", "ukwest"),
    "us": ("us", "eastus", "westus", "centralus", "northcentralus", "southcentralus", "westcentralus"),
}


def region_allows(region: str | None, allowed: str) -> bool:
    """Whether a deployment in ``region`` may serve a customer restricted to ``allowed`` (eu / us)."""
    if region is None:
        return False
    name = region.strip().lower()
    prefixes = _REGION_PREFIXES.get(allowed.lower(), (allowed.lower(),))
    return any(name == p or name.startswith((p + "-", p + "_")) or (len(p) > 2 and name.startswith(p))
               for p in prefixes)


class PreCallChecks:
    """Stateless: :meth:`filter` is called by the plan for each group it enters."""

    def filter(self, requested: str, candidates: Sequence[Candidate[T]],
               facts: RequestFacts) -> tuple[list[Candidate[T]], ProxyError | None]:
        """The deployments that pass, and when none does, the error that says why."""
        kept = list(candidates)
        tokens = facts.prompt_tokens
        if tokens is not None:
            too_small = [c for c in kept if c.routing.max_input_tokens is not None
                         and tokens > c.routing.max_input_tokens]
            if too_small and len(too_small) == len(kept):
                largest = max(too_small, key=lambda c: c.routing.max_input_tokens or 0)
                return [], ContextWindowExceededError(
                    f"Context window exceeded for given call: no deployment of model {requested!r} has a context "
                    f"window large enough for this call (model={largest.model}, max_input_tokens="
                    f"{largest.routing.max_input_tokens}, prompt ≈ {tokens} tokens; LiteLLM's pre-call check).",
                    param="messages", model=requested)
            kept = [c for c in kept if c not in too_small]
        if facts.allowed_region is not None:
            kept = [c for c in kept if region_allows(c.routing.region, facts.allowed_region)]
            if not kept:
                return [], BadRequestError(
                    f"No deployment of model {requested!r} is in this customer's allowed_model_region "
                    f"{facts.allowed_region!r} (a deployment's region: litellm_params.region_name, else "
                    "vertex_location / aws_region_name).", param="model", code="no_deployments_in_region")
        return kept, None
