"""The built-in handlers, by the names configs use for them.

Built-ins are ordinary handler objects: they go through the same loader checks and the same
scheduler as user handlers, so their order and behaviour follow the README's hook table.

* ``BUILTIN_CALLBACKS``: names usable in ``litellm_settings.callbacks`` (``hide_secrets``, …).
* ``BUILTIN_GUARDRAILS``: names usable as ``guardrails[].litellm_params.guardrail``.
* :func:`policy_handlers`: the request policies switched on in ``general_settings``
  (``enforce_user_param``, ``enforced_params``, …), which run before every other handler.

Factories take the config and a ``shared`` dict (app-wide objects such as the HTTP client holder)
and return the handler object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .config import ProxyConfig

__all__ = ["BUILTIN_CALLBACKS", "BUILTIN_GUARDRAILS", "policy_handlers", "register_routes"]

CallbackFactory = Callable[[ProxyConfig, dict[str, Any]], Any]
GuardrailFactory = Callable[[ProxyConfig, dict[str, Any], dict[str, Any]], Any]

BUILTIN_CALLBACKS: dict[str, CallbackFactory] = {}
BUILTIN_GUARDRAILS: dict[str, GuardrailFactory] = {}


def register_routes(app: Any, state: Any) -> None:
    """HTTP routes the built-ins serve (``/robots.txt``, ``/customer/block``, …)."""


def policy_handlers(config: ProxyConfig, shared: dict[str, Any]) -> list[tuple[str, Any]]:
    """The ``general_settings`` request policies that are switched on, in their fixed order."""
    return []
