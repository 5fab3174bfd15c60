"""``environment_variables`` and ``os.environ/NAME`` references.

``environment_variables`` are set first (so a reference may read one), then every string of the
form ``os.environ/NAME`` anywhere in the document is replaced by the variable's value. A missing
variable is an error naming it and the key. Secret managers (``general_settings.key_management_system``,
``secret_managers/resolve.py``) resolve their references before this runs.
"""

from __future__ import annotations

import os
from typing import Any

from .validators import Ctx, describe

__all__ = ["apply_environment_variables", "resolve_env"]

PREFIX = "os.environ/"


def apply_environment_variables(raw: dict[str, Any], ctx: Ctx) -> None:
    """Set ``environment_variables`` (strings and numbers) in ``os.environ``."""
    env = raw.get("environment_variables")
    if isinstance(env, dict):
        for name, value in env.items():
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                os.environ[str(name)] = str(value)
            else:
                ctx.error(f"environment_variables.{name}", f"expected a string or number, got {describe(value)}")


def resolve_env(value: Any, path: str, ctx: Ctx) -> Any:
    """``value`` with every ``os.environ/NAME`` replaced (recursively), problems reported to ``ctx``."""
    if isinstance(value, str) and value.startswith(PREFIX):
        name = value[len(PREFIX):]
        if name not in os.environ:
            ctx.error(path, f"environment variable {name!r} is not set (referenced as {value!r})")
            return ""  # keeps the type check below from reporting the same key twice
        return os.environ[name]
    if isinstance(value, dict):
        return {k: resolve_env(v, f"{path}.{k}" if path else str(k), ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env(v, f"{path}[{i}]", ctx) for i, v in enumerate(value)]
    return value
