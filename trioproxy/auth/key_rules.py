"""What a virtual key says about a request, checked before the pre-call hooks and the upstream.

Authorization of the request *body* by the key (the route is issue #12's): LiteLLM runs these in
its authentication step, so hooks receive a request the key may make.

* **Model allow-list** (:func:`check_model_access`). The key's ``models``, then its team's (a team
  key is bound by both), then — for a personal key without a team — its user's. An empty list
  allows every model; ``*`` and ``all-proxy-models`` allow every model; an entry ending in ``*``
  allows the names it prefixes (``openai/*``). The name checked is the one the client asked for
  (``model`` in the body), before any pre-call hook: a model a hook chooses is the operator's
  decision. A refusal is a 403 with LiteLLM's type and message shapes (``key_model_access_denied``,
  ``team_model_access_denied``).
* **Enforced params** (:func:`missing_param`): the key's ``enforced_params``, the same rule as
  ``general_settings.enforced_params`` (dotted paths, ``null`` counts as missing, 400).
* **Guardrails** (:func:`key_guardrails`): the key's and its team's ``guardrails`` run on every
  request of the key, as if the request named them; a client cannot opt out of them.

Pure functions of the record and the body: no I/O, no store import (the record is duck-typed).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any

from ..errors import BadRequestError, InternalServerError, PermissionDeniedError

__all__ = [
    "KeyModelAccessDenied",
    "TeamModelAccessDenied",
    "apply_key_rules",
    "check_model_access",
    "key_guardrails",
    "missing_param",
    "may_use_model",
    "model_allowed",
    "reject_client_tags",
    "require_guardrails",
    "apply_model_guardrails",
]

#: entries of a ``models`` list that allow every model (LiteLLM's special name, and a wildcard)
ALL_MODELS = frozenset({"*", "all-proxy-models"})


class KeyModelAccessDenied(PermissionDeniedError):
    error_type = "key_model_access_denied"
    default_code = "key_model_access_denied"


class TeamModelAccessDenied(PermissionDeniedError):
    error_type = "team_model_access_denied"
    default_code = "team_model_access_denied"


def model_allowed(allowed: Sequence[str], model: str) -> bool:
    """``model`` is allowed by the list ``allowed`` (empty: every model)."""
    if not allowed:
        return True
    for entry in allowed:
        if entry == model or entry in ALL_MODELS:
            return True
        if entry.endswith("*") and model.startswith(entry[:-1]):
            return True
    return False


def may_use_model(record: Any, model: str) -> bool:
    """Whether the key (and its team, or its user for a personal key) may call ``model``; ``GET
    /v1/models`` lists only those."""
    team = record.team
    if not model_allowed(record.models, model):
        return False
    if team is not None:
        return model_allowed(team.models, model)
    user = record.user
    return user is None or model_allowed(user.models, model)


def check_model_access(record: Any, model: str) -> None:
    """403 unless the key (and its team, or its user for a personal key) may call ``model``."""
    if not model_allowed(record.models, model):
        raise KeyModelAccessDenied(
            f"key not allowed to access model. This key can only access models={list(record.models)}. "
            f"Tried to access {model}", param="model")
    team = record.team
    if team is not None:
        if not model_allowed(team.models, model):
            raise TeamModelAccessDenied(
                f"team not allowed to access model. Team={team.team_id}, Model={model}. "
                f"Allowed team models = {list(team.models)}", param="model")
        return
    user = record.user
    if user is not None and not model_allowed(user.models, model):
        raise KeyModelAccessDenied(
            f"User={user.user_id} not allowed to access model. Model={model}. "
            f"Allowed user models = {list(user.models)}", param="model")


_MISSING = object()


def _lookup(data: Any, path: str) -> Any:
    current = data
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return _MISSING
        current = current[part]
    return current


def missing_param(data: dict[str, Any], paths: Iterable[str]) -> str | None:
    """The first of ``paths`` (dotted: ``metadata.generation_name``) absent or ``null`` in ``data``."""
    for path in paths:
        value = _lookup(data, path)
        if value is _MISSING or value is None:
            return path
    return None


def key_guardrails(record: Any) -> list[str]:
    """The guardrails the key and its team require, in that order, each once."""
    names: list[str] = []
    team = record.team
    for source in (record.guardrails, team.guardrails if team is not None else ()):
        for name in source:
            if isinstance(name, str) and name not in names:
                names.append(name)
    return names


def _selection(data: dict[str, Any]) -> Any:
    """The request's own guardrail selection, where ``hooks.base.requested_guardrails`` reads it."""
    found = data.get("guardrails")
    if found is None:
        metadata = data.get("metadata")
        if isinstance(metadata, dict):
            found = metadata.get("guardrails")
    return found


def require_guardrails(data: dict[str, Any], names: list[str]) -> None:
    """Add ``names`` to the request's guardrail selection (a model's ``litellm_params.guardrails``:
    checked against the config at startup); a request's ``{"name": false}`` cannot switch them off."""
    _require_guardrails(data, names, names)


def apply_model_guardrails(data: dict[str, Any], model_groups: Mapping[str, Any]) -> None:
    """The requested model's ``litellm_params.guardrails`` run as if the request named them."""
    model = data.get("model")
    names = list(dict.fromkeys(g for d in model_groups.get(model, ()) for g in d.guardrails)) \
        if isinstance(model, str) else []
    if names:
        require_guardrails(data, names)


def _require_guardrails(data: dict[str, Any], names: list[str], configured: Container[str]) -> None:
    unknown = [name for name in names if name not in configured]
    if unknown:
        # the key (an admin's setting) names a guardrail this config does not define: fail closed
        raise InternalServerError(
            f"This key requires guardrail {', '.join(map(repr, unknown))}, which this proxy does not configure. "
            "Ask the proxy admin to fix the key's 'guardrails' or the config's 'guardrails'.",
            code="key_guardrail_not_configured")
    selection = _selection(data)
    if isinstance(selection, dict):
        # one {"name": params} mapping (or LiteLLM's pre-v1 {"name": true/false}): as a list, so the
        # key's guardrails join it (hooks.base.requested_guardrails reads both forms alike)
        selection = [{name: params} for name, params in selection.items()]
    if selection is not None and not isinstance(selection, list):
        return   # a selection of the wrong shape: the pipeline's shape check answers it (400)
    # a request's ``{"name": false}`` cannot switch off a guardrail the key requires
    items = [{n: ({} if p is False and n in names else p) for n, p in item.items()} if isinstance(item, dict)
             else item for item in selection or []]
    chosen = {name for item in items for name in ([item] if isinstance(item, str) else
                                                  list(item) if isinstance(item, dict) else [])}
    items += [name for name in names if name not in chosen]
    data["guardrails"] = items


def apply_key_rules(record: Any, data: dict[str, Any], configured_guardrails: Container[str]) -> None:
    """Every rule of the key's ``record`` on the request body ``data`` (see the module docstring):
    raises 403 / 400 / 500, or adds the key's guardrails to the request's selection."""
    model = data.get("model")
    if isinstance(model, str):
        check_model_access(record, model)
    if record.enforced_params:
        missing = missing_param(data, (p for p in record.enforced_params if isinstance(p, str)))
        if missing is not None:
            raise BadRequestError(
                f"please pass param={missing} in request body. This is a required param "
                "(the key's enforced_params).", param=missing, code="missing_required_param")
    names = key_guardrails(record)
    if names:
        _require_guardrails(data, names, configured_guardrails)


def reject_client_tags(data: Mapping[str, Any]) -> None:
    """``general_settings.reject_clientside_metadata_tags``: a request that brings its own tags —
    ``metadata.tags`` (LiteLLM's check) or the top-level ``tags`` (which LiteLLM also turns into
    spend and routing tags) — is a 400, so budgets and tag spend follow only the tags an admin put
    on the key or team."""
    metadata = data.get("metadata")
    if isinstance(metadata, Mapping) and "tags" in metadata:
        raise BadRequestError("Client-side 'metadata.tags' not allowed in request. 'reject_clientside_metadata_tags'"
                              "=True. Tags can only be set via API key metadata.", param="metadata.tags",
                              code="client_tags_not_allowed")
    if "tags" in data:
        raise BadRequestError("Client-side 'tags' not allowed in request. 'reject_clientside_metadata_tags'=True. "
                              "Tags can only be set via API key metadata.", param="tags", code="client_tags_not_allowed")
