"""Reading one deployment's provider settings: ``litellm_params`` first, then the environment.

LiteLLM resolves most provider settings from ``litellm_params`` and falls back to well-known
environment variables (``ANTHROPIC_API_KEY``, ``AWS_REGION_NAME``…). The helpers here do that and
collect every problem, so a config with three mistakes is reported once, not three restarts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .adapter import ProviderConfigError

__all__ = ["SettingsReader"]


class SettingsReader:
    def __init__(self, provider: str, model: str, params: Mapping[str, Any], environ: Mapping[str, str]) -> None:
        self.provider = provider
        self.model = model
        self.params = params
        self.environ = environ
        self.problems: list[str] = []

    def text(self, name: str, env: Iterable[str] = (), default: str | None = None) -> str | None:
        """A string setting: ``litellm_params[name]``, else the first set variable of ``env``."""
        value = self.params.get(name)
        if value is not None and not isinstance(value, str):
            self.problems.append(f"{self.provider}/{self.model}: '{name}' must be a string")
            return None
        if value:
            return value
        for variable in env:
            found = self.environ.get(variable)
            if found:
                return found
        return default

    def required(self, name: str, env: Iterable[str] = (), hint: str = "") -> str:
        env = tuple(env)
        value = self.text(name, env)
        if not value:
            where = f" or the environment variable {' / '.join(env)}" if env else ""
            self.problems.append(f"{self.provider}/{self.model} needs '{name}' in litellm_params{where}"
                                 f"{'; ' + hint if hint else ''}")
            return ""
        return value

    def number(self, name: str) -> int | None:
        value = self.params.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.problems.append(f"{self.provider}/{self.model}: '{name}' must be a number")
            return None
        try:
            return int(value)
        except ValueError:
            self.problems.append(f"{self.provider}/{self.model}: '{name}' must be a number")
            return None

    def mapping(self, name: str) -> dict[str, Any]:
        value = self.params.get(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problems.append(f"{self.provider}/{self.model}: '{name}' must be a mapping")
            return {}
        return dict(value)

    def check(self) -> None:
        if self.problems:
            raise ProviderConfigError(self.problems)
