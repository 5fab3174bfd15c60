"""LiteLLM's reusable credentials: the top-level ``credential_list`` and a deployment's
``litellm_params.litellm_credential_name``.

::

    model_list:
      - model_name: gpt-4o
        litellm_params: {model: azure/gpt-4o, litellm_credential_name: default_azure_credential}
    credential_list:
      - credential_name: default_azure_credential
        credential_values: {api_key: os.environ/AZURE_API_KEY, api_base: os.environ/AZURE_API_BASE,
                            api_version: "2023-05-15"}
        credential_info: {description: "Production credentials for EU region"}

What it means (LiteLLM's ``load_credentials_from_list``): the named credential's values fill the
deployment's ``litellm_params`` where the deployment does not set the key itself (its own value
wins). So the values are deployment settings like any other — validated as such, ``os.environ/``
references resolved, credentials masked in logs and errors, refreshed by the secret manager.

Done on the raw config, before anything else reads ``model_list`` (:func:`apply_credential_list`),
so every later stage sees ordinary deployments. ``credential_info`` is descriptive and is not used.
LiteLLM can also keep credentials in its database (``/credentials`` endpoints); trioproxy reads the
config's only.
"""

from __future__ import annotations

import difflib
from typing import Any

from .validators import Ctx, describe

__all__ = ["apply_credential_list"]

_ENTRY_KEYS = ("credential_name", "credential_values", "credential_info")


def _credentials(value: Any, ctx: Ctx) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    if value is None:
        return table
    if not isinstance(value, list):
        ctx.error("credential_list", "expected a list of {credential_name, credential_values, credential_info}, "
                                     f"got {describe(value)}")
        return table
    for i, item in enumerate(value):
        path = f"credential_list[{i}]"
        if not isinstance(item, dict):
            ctx.error(path, f"expected a mapping with credential_name and credential_values, got {describe(item)}")
            continue
        for key in item:
            if key not in _ENTRY_KEYS:
                close = difflib.get_close_matches(str(key), _ENTRY_KEYS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                ctx.error(f"{path}.{key}", f"unknown key{hint} (known: {', '.join(_ENTRY_KEYS)})")
        name = item.get("credential_name")
        values = item.get("credential_values")
        info = item.get("credential_info")
        if not isinstance(name, str) or not name:
            ctx.error(f"{path}.credential_name", f"expected a name, got {describe(name)}")
            continue
        if name in table:
            ctx.error(f"{path}.credential_name", f"{name!r} is already the name of another credential")
            continue
        if not isinstance(values, dict):
            # the values may be secrets: described by type only
            ctx.error(f"{path}.credential_values", "expected a mapping of deployment settings (api_key, api_base, "
                                                   f"…), got a value of type {type(values).__name__}")
            continue
        if info is not None and not isinstance(info, dict):
            ctx.error(f"{path}.credential_info", f"expected a mapping, got {describe(info)}")
        table[name] = dict(values)
    return table


def apply_credential_list(raw: dict[str, Any], ctx: Ctx) -> dict[str, Any]:
    """``raw`` with each deployment's ``litellm_credential_name`` replaced by that credential's
    values (the deployment's own settings win) and without ``credential_list``."""
    models = raw.get("model_list")
    models = models if isinstance(models, list) else []
    named = any(isinstance(e, dict) and isinstance(e.get("litellm_params"), dict)
                and "litellm_credential_name" in e["litellm_params"] for e in models)
    if "credential_list" not in raw and not named:
        return raw
    table = _credentials(raw.get("credential_list"), ctx)
    out = {k: v for k, v in raw.items() if k != "credential_list"}
    if not named:
        return out
    expanded = []
    for i, entry in enumerate(models):
        params = entry.get("litellm_params") if isinstance(entry, dict) else None
        if not isinstance(params, dict) or "litellm_credential_name" not in params:
            expanded.append(entry)
            continue
        own = {k: v for k, v in params.items() if k != "litellm_credential_name"}
        name = params["litellm_credential_name"]
        if not isinstance(name, str) or name not in table:
            close = difflib.get_close_matches(name, list(table), n=1) if isinstance(name, str) else []
            hint = f"; did you mean {close[0]!r}?" if close else ""
            # the value is not echoed: a name that looks like a credential is treated as one everywhere
            ctx.error(f"model_list[{i}].litellm_params.litellm_credential_name",
                      f"not the credential_name of an entry of credential_list{hint}")
            expanded.append({**entry, "litellm_params": own})
            continue
        expanded.append({**entry, "litellm_params": {**table[name], **own}})
    out["model_list"] = expanded
    return out
