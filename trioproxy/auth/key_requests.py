"""What ``general_settings.custom_key_generate`` / ``custom_key_update`` functions receive (LiteLLM's
``GenerateKeyRequest`` / ``UpdateKeyRequest`` from ``litellm.proxy._types``).

LiteLLM passes a pydantic model; handler files read it as ``data.team_id``, ``data.json().get(
"team_id")`` (LiteLLM's ``json()`` returns a dict, not a string), ``data.model_dump()`` and
``data.model_fields_set`` (the fields the request sent, to tell "omitted" from "null"). These are
dicts with that interface: every field LiteLLM's model declares is present with LiteLLM's default
when the request did not send it; any other name reads as ``None``. Here rather than beside their
caller (``admin/custom_key_hooks.py``) because the handler API may import ``auth`` and not ``admin``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = ["GenerateKeyRequest", "UpdateKeyRequest"]

#: LiteLLM's ``GenerateRequestBase`` / ``KeyRequestBase`` fields and their defaults
_KEY_FIELDS: dict[str, Any] = {
    "key": None, "key_alias": None, "duration": None, "models": [], "spend": 0, "max_budget": None,
    "user_id": None, "team_id": None, "max_parallel_requests": None, "metadata": {}, "tpm_limit": None,
    "rpm_limit": None, "budget_duration": None, "allowed_cache_controls": [], "config": {}, "permissions": {},
    "model_max_budget": {}, "model_rpm_limit": None, "model_tpm_limit": None, "guardrails": None,
    "blocked": None, "aliases": {}, "soft_budget": None, "tags": None, "enforced_params": None,
    "organization_id": None, "budget_id": None, "allowed_routes": [], "send_invite_email": None,
}


class _KeyRequest(dict):
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, sent: Mapping[str, Any] | None = None, /) -> None:
        sent = dict(sent or {})
        super().__init__({**copy.deepcopy(self._defaults), **sent})
        object.__setattr__(self, "_sent", frozenset(sent))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)   # a field the request did not send and LiteLLM's model lacks: None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    @property
    def model_fields_set(self) -> set[str]:
        """The fields the request sent (pydantic's name)."""
        return set(self._sent)

    def model_dump(self, *, exclude_unset: bool = False, exclude_none: bool = False, **_: Any) -> dict[str, Any]:
        out = {k: v for k, v in dict(self).items() if not exclude_unset or k in self._sent}
        return {k: v for k, v in out.items() if v is not None} if exclude_none else out

    def json(self, **kwargs: Any) -> dict[str, Any]:   # type: ignore[override]
        """LiteLLM's ``json()``: the fields as a dict (its base model overrides pydantic's string)."""
        return self.model_dump(**kwargs)

    def dict(self, **kwargs: Any) -> dict[str, Any]:
        return self.model_dump(**kwargs)


class GenerateKeyRequest(_KeyRequest):
    """A ``/key/generate`` request as ``custom_key_generate`` sees it."""

    _defaults = _KEY_FIELDS


class UpdateKeyRequest(_KeyRequest):
    """A ``/key/update`` request as ``custom_key_update`` sees it: only what it sent is set (LiteLLM's
    update model has no defaults that would read as changes)."""

    _defaults = {name: None for name in _KEY_FIELDS}
