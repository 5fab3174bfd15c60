"""``litellm_settings.default_team_settings``: logging callbacks per team, as in LiteLLM.

```yaml
litellm_settings:
  default_team_settings:
    - team_id: team-1
      success_callback: ["langfuse"]
      failure_callback: ["langfuse"]
      langfuse_public_key: os.environ/LANGFUSE_PROJECT1_PUBLIC
      langfuse_secret: os.environ/LANGFUSE_PROJECT1_SECRET
      langfuse_host: https://us.cloud.langfuse.com
```

Each entry adds, for the requests of keys of that team only (the team of the key that made the
request), the built-in integrations it names, built with the entry's credentials in place of the
environment's (LiteLLM's ``StandardCallbackDynamicParams``: ``langfuse_public_key``,
``langfuse_secret`` / ``langfuse_secret_key``, ``langfuse_host``, ``langsmith_api_key``,
``langsmith_project``, ``langsmith_base_url``, ``gcs_bucket_name``, ``gcs_path_service_account``,
``arize_api_key``, ``arize_space_key``; a credential the entry does not give comes from the
environment, as in LiteLLM). The config-wide callbacks still run for those requests too. Only
trioproxy's built-in integrations by name are accepted here (a dotted path to a function: LiteLLM
does not load those per team either); anything else stops startup naming the entry. Delivery,
timeouts and failure counting are those of every logging callback (``docs/logging.md``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..config import ConfigError, ProxyConfig
from ..config.logging_keys import TEAM_DYNAMIC_PARAMS
from ..hooks.loader import HandlerLoadError
from .integrations import INTEGRATIONS, make_integration
from .integrations.base import env_overrides

__all__ = ["team_callbacks"]

_EVENTS = {"success_callback": "successful_api_call", "failure_callback": "failed_api_call"}


def _team_of(kwargs: Mapping[str, Any]) -> Any:
    record = kwargs.get("standard_logging_object")
    return record.get("team_id") if isinstance(record, Mapping) else None


def _only_for(team_id: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def log_for_team(kwargs: dict[str, Any], response: Any, start_time: Any, end_time: Any) -> None:
        if _team_of(kwargs) == team_id:
            await method(kwargs, response, start_time, end_time)
    return log_for_team


def team_callbacks(config: ProxyConfig) -> list[tuple[str, str, Callable[..., Awaitable[Any]]]]:
    """The per-team callbacks as ``(name, event, async fn(kwargs, response, start, end))``;
    ``observability/callbacks.py`` makes them ``Callback`` objects. Raises ConfigError listing every problem."""
    problems: list[str] = []
    out: list[tuple[str, str, Callable[..., Awaitable[Any]]]] = []
    for index, entry in enumerate(config.litellm_settings.get("default_team_settings") or ()):
        team_id = str(entry["team_id"])
        overrides = {variable: str(entry[key]) for key, variable in TEAM_DYNAMIC_PARAMS.items() if entry.get(key)}
        for key, event in _EVENTS.items():
            for position, name in enumerate(entry.get(key) or ()):
                where = f"{config.source}: litellm_settings.default_team_settings[{index}].{key}[{position}]: {name!r}"
                if name not in INTEGRATIONS:
                    problems.append(f"{where}: per-team callbacks are trioproxy's built-in integrations by name "
                                    f"({', '.join(INTEGRATIONS)}); for another, write a callback that checks the "
                                    "team (docs/logging.md)")
                    continue
                try:
                    with env_overrides(overrides):
                        integration = make_integration(name, config)
                except HandlerLoadError as exc:
                    problems.append(f"{where}: {exc}")
                    continue
                assert integration is not None
                method = integration.async_log_success_event if event == "successful_api_call" \
                    else integration.async_log_failure_event
                out.append((f"{name}[team {team_id}]", event, _only_for(team_id, method)))
    if problems:
        raise ConfigError(problems)
    return out
