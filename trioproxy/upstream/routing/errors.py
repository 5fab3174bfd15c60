"""The errors routing itself answers with, when no deployment of a group may take a request.

* :class:`NoDeploymentsAvailableError` (429, ``code: no_deployments_available``, ``Retry-After``):
  every deployment of the group is over its ``rpm``/``tpm`` for this minute. LiteLLM answers a 429
  with the same words, so clients (and the OpenAI SDKs' back-off on 429) behave as with LiteLLM.
* :class:`NoDeploymentsForTagsError` (400, ``code: no_deployments_with_tag``): tag filtering is on,
  the request carries tags, and no deployment of the group has them (nor a ``default`` tag).

Both start fallbacks like any other failure of a group; the client sees one only when no fallback
answered and no upstream was tried at all (otherwise the first upstream error is the answer).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ...errors import BadRequestError, RateLimitError

__all__ = ["NoDeploymentsAvailableError", "NoDeploymentsForTagsError"]


class NoDeploymentsAvailableError(RateLimitError):
    default_code = "no_deployments_available"

    def __init__(self, model: str, reason: str, retry_after: float | None = None) -> None:
        wait = max(1, math.ceil(retry_after)) if retry_after is not None else None
        again = f" Try again in {wait} seconds." if wait is not None else ""
        super().__init__(f"No deployments available for model {model!r}: {reason}.{again}",
                         param="model", model=model,
                         headers={"Retry-After": str(wait)} if wait is not None else None)
        self.reason = reason
        self.retry_after = retry_after


class NoDeploymentsForTagsError(BadRequestError):
    default_code = "no_deployments_with_tag"

    def __init__(self, model: str, tags: Sequence[str]) -> None:
        super().__init__(f"No deployment of model {model!r} serves the request's tags {list(tags)!r} "
                         "(and none is tagged 'default').", param="tags", model=model)
        self.tags = tuple(tags)
