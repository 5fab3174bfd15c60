"""The built-in handlers, by the names configs use for them.

Built-ins are ordinary handler objects: they go through the same loader checks and the same
scheduler as user handlers, so their order and behaviour follow the README's hook table.

* ``BUILTIN_CALLBACKS``: names usable in ``litellm_settings.callbacks`` (``hide_secrets``, …).
* ``BUILTIN_GUARDRAILS``: names usable as ``guardrails[].litellm_params.guardrail``.
* :func:`policy_handlers`: the request policies switched on in ``general_settings``
  (``enforce_user_param``, ``enforced_params``, …), which run before every other handler.

Factories take the config and a ``shared`` dict (app-wide objects such as the HTTP client holder)
and return the handler object. Configuration mistakes (a missing list file, ``LLM_GUARD_API_BASE``
unset) raise :class:`~trioproxy.loader.HandlerLoadError`, which startup reports with the config key.
Each module in :mod:`trioproxy.policies` documents its policy; ``docs/guardrails.md`` is the
reference.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..config import ProxyConfig
from ..hooks.loader import HandlerLoadError
from . import blocked_users, robots
from .banned_keywords import BannedKeywords
from .blocked_users import BlockedUsers
from .google_text_moderation import google_text_moderation_from_config
from .hide_secrets import HideSecrets
from .lists import load_list
from .llamaguard import llamaguard_from_config
from .llm_guard import DEFAULT_TIMEOUT, LLMGuard
from .request_policies import RequiredParams

__all__ = ["BUILTIN_CALLBACKS", "BUILTIN_GUARDRAILS", "policy_handlers", "register_routes"]

CallbackFactory = Callable[[ProxyConfig, dict[str, Any]], Any]
GuardrailFactory = Callable[[ProxyConfig, dict[str, Any], dict[str, Any]], Any]

#: where ``register_routes`` finds the block-list handler (one per app)
_BLOCKED_USERS_KEY = "blocked_user_check"


def _hide_secrets(config: ProxyConfig, shared: dict[str, Any]) -> HideSecrets:
    return HideSecrets()


def _banned_keywords(config: ProxyConfig, shared: dict[str, Any]) -> BannedKeywords:
    value = config.litellm_settings.get("banned_keywords_list")
    keywords = load_list(value, config.base_dir, "litellm_settings.banned_keywords_list")
    if not keywords:
        raise HandlerLoadError("banned_keywords needs litellm_settings.banned_keywords_list "
                               "(a list of keywords or the path of a .txt file, one per line)")
    return BannedKeywords(keywords)


def _blocked_user_check(config: ProxyConfig, shared: dict[str, Any]) -> BlockedUsers:
    if _BLOCKED_USERS_KEY in shared:
        raise HandlerLoadError("blocked_user_check is listed twice")
    value = config.litellm_settings.get("blocked_user_list")
    handler = BlockedUsers(load_list(value, config.base_dir, "litellm_settings.blocked_user_list"))
    shared[_BLOCKED_USERS_KEY] = handler
    return handler


def _llm_guard(config: ProxyConfig, shared: dict[str, Any]) -> LLMGuard:
    settings = config.litellm_settings
    # the fail mode must decide an outage, not the generic hook timeout (a 500 naming the handler)
    timeout = settings.get("llm_guard_timeout")
    if timeout is None:
        timeout = min(DEFAULT_TIMEOUT, config.hook_timeout / 2)
    elif timeout >= config.hook_timeout:
        raise HandlerLoadError(
            f"litellm_settings.llm_guard_timeout ({timeout:g} s) must be below "
            f"general_settings.hook_timeout_seconds ({config.hook_timeout:g} s), or an LLM Guard outage "
            "ends in a hook timeout instead of llm_guard_fail_mode")
    return LLMGuard(
        os.environ.get("LLM_GUARD_API_BASE"),
        shared,
        mode=settings.get("llm_guard_mode", "all"),
        fail_mode=settings.get("llm_guard_fail_mode", "closed"),
        timeout=float(timeout),
    )


BUILTIN_CALLBACKS: dict[str, CallbackFactory] = {
    "hide_secrets": _hide_secrets,
    "banned_keywords": _banned_keywords,
    "blocked_user_check": _blocked_user_check,
    "llmguard_moderations": _llm_guard,
    # hosted moderation (docs/guardrails.md): factories in their own modules
    "llamaguard_moderations": llamaguard_from_config,
    "google_text_moderation": google_text_moderation_from_config,
}


def _hide_secrets_guardrail(config: ProxyConfig, shared: dict[str, Any], kwargs: dict[str, Any]) -> HideSecrets:
    return HideSecrets(**kwargs)


BUILTIN_GUARDRAILS: dict[str, GuardrailFactory] = {
    # the seeds' guardrail name, and the callback's spelling so either works
    "hide-secrets": _hide_secrets_guardrail,
    "hide_secrets": _hide_secrets_guardrail,
}


def register_routes(app: Any, state: Any) -> None:
    """HTTP routes the built-ins serve (``/robots.txt``, ``/customer/block``, …).

    Each route exists only when its feature is configured; otherwise the path is a plain 404.
    """
    if state.config.general_settings.get("block_robots"):
        robots.register_routes(app)
    handler = state.shared.get(_BLOCKED_USERS_KEY)
    if handler is not None:
        blocked_users.register_routes(app, state, handler)


def policy_handlers(config: ProxyConfig, shared: dict[str, Any]) -> list[tuple[str, Any]]:
    """The ``general_settings`` request policies that are switched on, in their fixed order."""
    settings = config.general_settings
    handlers: list[tuple[str, Any]] = []
    if settings.get("enforce_user_param"):
        handlers.append(("enforce_user_param", RequiredParams(["user"], "enforce_user_param")))
    if settings.get("enforced_params"):
        handlers.append(("enforced_params", RequiredParams(settings["enforced_params"], "enforced_params")))
    return handlers
