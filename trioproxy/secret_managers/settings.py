"""``general_settings.key_management_system`` and ``key_management_settings``, validated.

LiteLLM's names and defaults (its ``KeyManagementSettings``): ``hosted_keys`` (only these names are
read from the manager; every other ``os.environ/NAME`` comes from the environment), ``access_mode``
(``read_only`` by default; ``write_only`` means the manager is never read), ``primary_secret_name``
(AWS Secrets Manager: one JSON secret holding many names), ``aws_region_name`` and the AWS role
settings. Keys about *writing* virtual keys to a manager (``store_virtual_keys``,
``prefix_for_stored_virtual_keys``, ``description``, ``tags``) are accepted with a warning: trioproxy
only reads. ``refresh_interval`` (seconds) is trioproxy's own: how often the refresh service reads
the referenced secrets again (default: the manager's LiteLLM variable ``HCP_VAULT_REFRESH_INTERVAL``
or ``GOOGLE_SECRET_MANAGER_REFRESH_INTERVAL``, else 86400, LiteLLM's default).

Values here are read from the environment when written ``os.environ/NAME`` (never through the
manager: these settings are how the manager is reached).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KEY_MANAGEMENT_SYSTEMS", "KeyManagementSettings", "parse_key_management"]

#: every valid ``key_management_system`` value (LiteLLM's names; ``aws_secret_manager_v2`` is the
#: name the LiteLLM enterprise docs use for the same AWS Secrets Manager reader)
KEY_MANAGEMENT_SYSTEMS = (
    "hashicorp_vault",
    "aws_secret_manager",
    "aws_secret_manager_v2",
    "aws_kms",
    "google_secret_manager",
    "azure_key_vault",
)

ACCESS_MODES = ("read_only", "write_only", "read_and_write")
DEFAULT_REFRESH_INTERVAL = 86400.0
#: LiteLLM's per-manager refresh variables
_REFRESH_ENV = {"hashicorp_vault": "HCP_VAULT_REFRESH_INTERVAL",
                "google_secret_manager": "GOOGLE_SECRET_MANAGER_REFRESH_INTERVAL"}

_WRITE_ONLY_KEYS = ("store_virtual_keys", "prefix_for_stored_virtual_keys", "description", "tags",
                    "custom_secret_manager")
_STRING_KEYS = ("primary_secret_name", "aws_region_name", "aws_role_name", "aws_session_name",
                "aws_external_id", "aws_profile_name", "aws_web_identity_token", "aws_sts_endpoint")
_KNOWN_KEYS = ("hosted_keys", "access_mode", "refresh_interval", *_STRING_KEYS, *_WRITE_ONLY_KEYS)


@dataclass(frozen=True)
class KeyManagementSettings:
    system: str
    hosted_keys: tuple[str, ...] | None = None
    access_mode: str = "read_only"
    refresh_interval: float = DEFAULT_REFRESH_INTERVAL
    #: the string settings above, by LiteLLM's names (``primary_secret_name``, ``aws_region_name``…)
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def reads(self) -> bool:
        return self.access_mode in ("read_only", "read_and_write")

    def is_hosted(self, name: str) -> bool:
        """Is ``name`` read from the manager (rather than straight from the environment)?"""
        return self.reads and (self.hosted_keys is None or name in self.hosted_keys)


def _from_env(value: Any, path: str, problems: list[str]) -> Any:
    """``os.environ/NAME`` → the variable (an unset one is reported by config/env.py's own check)."""
    if isinstance(value, str) and value.startswith("os.environ/"):
        return os.environ.get(value[len("os.environ/"):])
    return value


def parse_key_management(general: Mapping[str, Any], source: str) -> tuple[KeyManagementSettings | None,
                                                                          list[str], list[str]]:
    """``(settings or None, problems, warnings)`` from a raw ``general_settings`` mapping."""
    problems: list[str] = []
    warnings: list[str] = []
    where = f"{source}: general_settings"
    system = _from_env(general.get("key_management_system"), f"{where}.key_management_system", problems)
    raw = general.get("key_management_settings")
    if system is None:
        if raw:
            warnings.append(f"{where}.key_management_settings: ignored, general_settings.key_management_system "
                            "is not set")
        return None, problems, warnings
    if system not in KEY_MANAGEMENT_SYSTEMS:
        close = difflib.get_close_matches(str(system), KEY_MANAGEMENT_SYSTEMS, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems.append(f"{where}.key_management_system: invalid value {system!r}{hint} "
                        f"(valid: {', '.join(KEY_MANAGEMENT_SYSTEMS)})")
        return None, problems, warnings
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.append(f"{where}.key_management_settings: expected a mapping, got {type(raw).__name__}")
        return None, problems, warnings

    path = f"{where}.key_management_settings"
    hosted: tuple[str, ...] | None = None
    access_mode = "read_only"
    refresh = _default_refresh(str(system), path, problems)
    options: dict[str, str] = {}
    for key, item in raw.items():
        sub = f"{path}.{key}"
        item = _from_env(item, sub, problems)
        if key == "hosted_keys":
            if item is None:
                continue
            if isinstance(item, str):
                item = [item]
            if not isinstance(item, list) or not all(isinstance(n, str) for n in item):
                problems.append(f"{sub}: expected a list of variable names")
                continue
            hosted = tuple(n.removeprefix("os.environ/") for n in item)
        elif key == "access_mode":
            if item not in ACCESS_MODES:
                problems.append(f"{sub}: expected one of {', '.join(ACCESS_MODES)}, got {item!r}")
                continue
            access_mode = item
        elif key == "refresh_interval":
            try:
                refresh = float(item)
            except (TypeError, ValueError):
                problems.append(f"{sub}: expected a number of seconds, got {item!r}")
                continue
            if refresh <= 0:
                problems.append(f"{sub}: expected a number of seconds > 0, got {item!r}")
        elif key in _STRING_KEYS:
            if item is None:
                continue
            if not isinstance(item, str) or not item:
                problems.append(f"{sub}: expected a non-empty string")
                continue
            options[key] = item
        elif key in _WRITE_ONLY_KEYS:
            warnings.append(f"{sub}: accepted for compatibility, but trioproxy only reads secrets from a manager "
                            "(nothing is written to it; ignored)")
        else:
            # "prefix" (a shorthand seen in issues and blog posts) → LiteLLM's prefix_for_stored_virtual_keys
            close = (difflib.get_close_matches(str(key), _KNOWN_KEYS, n=1, cutoff=0.7)
                     or [k for k in _KNOWN_KEYS if k.startswith(str(key))][:1])
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"{sub}: unknown key {key!r}{hint} (known keys: {', '.join(sorted(_KNOWN_KEYS))})")
    if access_mode == "write_only":
        warnings.append(f"{path}.access_mode: write_only: no secret is read from {system}; os.environ/ "
                        "references come from the environment")
    if "primary_secret_name" in options and not str(system).startswith("aws_secret_manager"):
        problems.append(f"{path}.primary_secret_name: only applies to aws_secret_manager, not {system}")
    settings = KeyManagementSettings(str(system), hosted, access_mode, refresh, options)
    return settings, problems, warnings


def _default_refresh(system: str, path: str, problems: list[str]) -> float:
    variable = _REFRESH_ENV.get(system)
    value = os.environ.get(variable) if variable else None
    if not value:
        return DEFAULT_REFRESH_INTERVAL
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        problems.append(f"{path}: environment variable {variable} must be a number of seconds > 0, got {value!r}")
        return DEFAULT_REFRESH_INTERVAL
    return seconds
