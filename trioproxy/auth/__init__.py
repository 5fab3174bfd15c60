"""Authentication: who is calling, decided at one place for every route.

``identity.py``: :class:`~.identity.Identity` (the result of authentication, with a virtual key's
cached record), :class:`~.identity.UserAPIKeyAuth` (what hooks receive), ``hash_key``.
``roles.py``: ``LitellmUserRoles`` (LiteLLM's role names, for handler files).
``master.py``: :class:`~.master.Authenticator`, the one entry point (master key, virtual keys
through the store's key cache; JWT plugs in here with issue #12). ``key_rules.py``: what a
virtual key's record says about a request (model allow-list, enforced params, guardrails).
Modules are private by convention: import the names below, or the handler API's
``trioproxy.UserAPIKeyAuth``.

May import: ``errors``, ``masking``. The store implements :class:`~.identity.VirtualKeys` and is
handed in by the composition root (the store imports this package, not the other way round).
"""

from .identity import Identity, KeyRecord, UserAPIKeyAuth, VirtualKeys, hash_key, is_key_hash
from .key_rules import (
    KeyModelAccessDenied,
    TeamModelAccessDenied,
    apply_key_rules,
    apply_model_guardrails,
    check_model_access,
    key_guardrails,
    may_use_model,
    missing_param,
    model_allowed,
    reject_client_tags,
)
from .master import Authenticator, authenticate, extract_key
from .roles import LitellmUserRoles

__all__ = [
    "Authenticator",
    "Identity",
    "KeyModelAccessDenied",
    "KeyRecord",
    "LitellmUserRoles",
    "TeamModelAccessDenied",
    "UserAPIKeyAuth",
    "VirtualKeys",
    "apply_key_rules",
    "apply_model_guardrails",
    "authenticate",
    "check_model_access",
    "extract_key",
    "hash_key",
    "is_key_hash",
    "key_guardrails",
    "may_use_model",
    "missing_param",
    "model_allowed",
    "reject_client_tags",
]
