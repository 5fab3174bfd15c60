"""The built-in handlers, by the names configs use for them.

Built-ins are ordinary handler objects: they go through the same loader checks and the same
scheduler as user handlers, so their order and behaviour follow the README's hook table. One
:class:`Builtins` per proxy makes them (``hooks/assembly.py`` asks it by name):

* callbacks usable in ``litellm_settings.callbacks`` (``hide_secrets``, ``banned_keywords``, …);
* guardrails usable as ``guardrails[].litellm_params.guardrail`` (``hide-secrets``);
* :meth:`Builtins.policies`: the request policies switched on in ``general_settings``
  (``enforce_user_param``, ``enforced_params``) and, with a database, admission
  (``limits_and_budgets``, ``hooks/steps.py``), which run before every other handler.

What a built-in needs beyond the config (the app's pooled HTTP client, the proxy's router, the
cost calculator) it receives through its constructor, from :class:`BuiltinResources` that the
composition root (``proxy.py``) fills; under ``trioproxy check`` they are ``None`` (nothing is
called there). Configuration mistakes (a missing list file, ``LLM_GUARD_API_BASE`` unset) raise
:class:`~trioproxy.hooks.loader.HandlerLoadError`, which startup reports with the config key.
Each module in :mod:`trioproxy.policies` documents its policy; ``docs/guardrails.md`` is the
reference. The routes some built-ins serve (``/customer/block``, ``/robots.txt``) are in
``http/routes/``; they find the handler here (:attr:`Builtins.blocked_users`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import ProxyConfig
from ..hooks.loader import HandlerLoadError
from ..hooks.steps import LIMITS_AND_BUDGETS, LimitsAndBudgets
from ..observability.integrations import make_integration
from .banned_keywords import BannedKeywords
from .blocked_users import BlockedUsers
from .google_text_moderation import google_text_moderation_from_config
from .guardrails import azure_content_safety_from_config, make_guardrail
from .guardrails.prompt_injection import prompt_injection_from_config
from .hide_secrets import HideSecrets
from .lists import load_list
from .llamaguard import llamaguard_from_config
from .llm_guard import LLMGuard
from .request_policies import RequiredParams

if TYPE_CHECKING:
    import httpx

    from ..observability.cost import CostCalculator
    from ..upstream.router import Router

__all__ = ["BUILTIN_CALLBACKS", "BUILTIN_GUARDRAILS", "BuiltinResources", "Builtins"]


@dataclass(frozen=True, slots=True)
class BuiltinResources:
    """What built-ins receive through their constructors (``None``: not serving, e.g. ``check``)."""

    http_client: httpx.AsyncClient | None = None
    router: Router | None = None
    cost: CostCalculator | None = None


def _banned_keywords(config: ProxyConfig) -> BannedKeywords:
    value = config.litellm.banned_keywords_list
    keywords = load_list(value, config.base_dir, "litellm_settings.banned_keywords_list")
    if not keywords:
        raise HandlerLoadError("banned_keywords needs litellm_settings.banned_keywords_list "
                               "(a list of keywords or the path of a .txt file, one per line)")
    return BannedKeywords(keywords)


def _llm_guard(config: ProxyConfig, resources: BuiltinResources) -> LLMGuard:
    settings = config.litellm
    # the fail mode must decide an outage, not the generic hook timeout (a 500 naming the handler)
    timeout = settings.llm_guard_timeout
    if timeout is None:
        timeout = config.moderation_timeout(None)
    elif timeout >= config.hook_timeout:
        raise HandlerLoadError(
            f"litellm_settings.llm_guard_timeout ({timeout:g} s) must be below "
            f"general_settings.hook_timeout_seconds ({config.hook_timeout:g} s), or an LLM Guard outage "
            "ends in a hook timeout instead of llm_guard_fail_mode")
    return LLMGuard(
        os.environ.get("LLM_GUARD_API_BASE"),
        resources.http_client,
        mode=settings.llm_guard_mode,
        fail_mode=settings.llm_guard_fail_mode,
        timeout=float(timeout),
    )


CallbackFactory = Callable[["Builtins"], Any]

#: ``litellm_settings.callbacks`` names → factories
BUILTIN_CALLBACKS: dict[str, CallbackFactory] = {
    "hide_secrets": lambda b: HideSecrets(),
    "banned_keywords": lambda b: _banned_keywords(b.config),
    "blocked_user_check": lambda b: b._blocked_user_check(),
    "llmguard_moderations": lambda b: _llm_guard(b.config, b.resources),
    # hosted moderation (docs/guardrails.md): factories in their own modules
    "llamaguard_moderations": lambda b: llamaguard_from_config(b.config, b.resources.router, b.resources.cost),
    "google_text_moderation": lambda b: google_text_moderation_from_config(b.config, b.resources.http_client),
    # LiteLLM's built-in guardrails as callbacks (policies/guardrails/)
    "azure_content_safety": lambda b: azure_content_safety_from_config(b.config, b.resources.http_client),
    "detect_prompt_injection": lambda b: prompt_injection_from_config(b.config, b.resources.router,
                                                                      b.resources.http_client),
}

#: ``guardrails[].litellm_params.guardrail`` names → classes (called with the guardrail's kwargs)
BUILTIN_GUARDRAILS: dict[str, Callable[..., Any]] = {
    # the seeds' guardrail name, and the callback's spelling so either works
    "hide-secrets": HideSecrets,
    "hide_secrets": HideSecrets,
}


class Builtins:
    """The built-in handlers of one config, made on request and remembered where routes need them."""

    def __init__(self, config: ProxyConfig, resources: BuiltinResources | None = None) -> None:
        self.config = config
        self.resources = resources or BuiltinResources()
        #: the ``blocked_user_check`` handler, when configured (its routes change its list)
        self.blocked_users: BlockedUsers | None = None

    def callback_names(self) -> list[str]:
        return sorted(BUILTIN_CALLBACKS)

    def callback(self, name: str) -> Any | None:
        """The built-in callback ``name`` (a new object), or None when there is none by that name."""
        factory = BUILTIN_CALLBACKS.get(name)
        if factory is None:   # LiteLLM's logging integrations by name (observability/integrations)
            return make_integration(name, self.config)
        return factory(self)

    def guardrail(self, class_path: str, kwargs: dict[str, Any]) -> Any | None:
        """The built-in guardrail ``class_path`` made with ``kwargs``, or None when it is not a built-in."""
        cls = BUILTIN_GUARDRAILS.get(class_path)
        if cls is not None:
            return cls(**kwargs)
        # LiteLLM's built-in guardrails (presidio, bedrock, …): policies/guardrails/
        return make_guardrail(class_path, kwargs, self.config, self.resources.http_client)

    def policies(self) -> list[tuple[str, Any]]:
        """The built-in request policies that are switched on, in their fixed order: the
        ``general_settings`` checks, then admission (``limits_and_budgets``, with a database:
        ``hooks/steps.py`` says why there)."""
        settings = self.config.general
        handlers: list[tuple[str, Any]] = []
        if settings.enforce_user_param:
            handlers.append(("enforce_user_param", RequiredParams(["user"], "enforce_user_param")))
        if settings.enforced_params:
            handlers.append(("enforced_params", RequiredParams(list(settings.enforced_params), "enforced_params")))
        if self.config.database_url is not None:
            handlers.append((LIMITS_AND_BUDGETS, LimitsAndBudgets()))
        return handlers

    def _blocked_user_check(self) -> BlockedUsers:
        if self.blocked_users is not None:
            raise HandlerLoadError("blocked_user_check is listed twice")
        value = self.config.litellm.blocked_user_list
        self.blocked_users = BlockedUsers(load_list(value, self.config.base_dir, "litellm_settings.blocked_user_list"))
        return self.blocked_users
