"""The observer that feeds LiteLLM's budget routing (``upstream/routing/budgets.py``) with spend.

Routing leaves out deployments whose provider, deployment or request-tag budget is spent; what was
spent is each successful request's ``response_cost``, known when the answer ended (the pipeline
settles it before telling the observers). Installed by ``proxy.py`` only when budgets are
configured, after the logging observer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..context import RequestContext
from ..upstream.routing import request_tags
from .routing_facts import caller_tags

if TYPE_CHECKING:
    from ..upstream.router import Router

__all__ = ["RoutingBudgetObserver"]


class RoutingBudgetObserver:
    def __init__(self, router: Router) -> None:
        self.router = router

    def on_success(self, ctx: RequestContext) -> None:
        if ctx.deployment is None or ctx.cache_hit or not ctx.response_cost:
            return
        tags = list(dict.fromkeys([*request_tags(ctx.data, ctx.request_headers), *caller_tags(ctx.user)]))
        self.router.record_spend(ctx.deployment, tags, ctx.response_cost)
