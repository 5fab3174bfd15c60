"""LiteLLM's built-in guardrails (``guardrails[].litellm_params.guardrail: presidio``, …) in trioproxy.

:data:`LITELLM_GUARDRAILS` maps each supported ``guardrail:`` value to its factory; ``policies/
builtins.py`` asks it (through :func:`make_guardrail`) before treating a name as a module path. The
objects are ordinary guardrail handlers (same loader checks, scheduler, selection and error rules
as a custom guardrail); ``service.py`` says what they share (HTTP client, time limit, outage policy).
``docs/guardrails.md`` has the table of supported names and their settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...hooks.loader import HandlerLoadError
from .aim import AimGuardrail
from .aporia import AporiaGuardrail
from .azure import AzureContentSafetyCallback, AzurePromptShield, AzureTextModeration
from .bedrock import BedrockGuardrail
from .content_filter import ContentFilterGuardrail
from .generic_api import GenericGuardrailAPI
from .guardrails_ai import GuardrailsAI
from .lakera import LakeraGuardrail
from .presidio import PresidioGuardrail
from .tool_permission import ToolPermissionGuardrail

if TYPE_CHECKING:
    import httpx

    from ...config import ProxyConfig

__all__ = ["LITELLM_GUARDRAILS", "GuardrailResources", "azure_content_safety_from_config", "make_guardrail"]


@dataclass(frozen=True, slots=True)
class GuardrailResources:
    config: ProxyConfig
    http_client: httpx.AsyncClient | None


def _timeout(kwargs: dict[str, Any], config: ProxyConfig) -> float:
    value = kwargs.pop("guardrail_timeout", None)
    if value is None:
        return config.moderation_timeout(None)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise HandlerLoadError(f"guardrail_timeout must be a positive number of seconds, got {value!r}")
    if value >= config.hook_timeout:
        raise HandlerLoadError(f"guardrail_timeout ({value:g} s) must be below general_settings.hook_timeout_seconds "
                               f"({config.hook_timeout:g} s), or an outage ends in a hook timeout instead of "
                               "unreachable_fallback")
    return float(value)


def _service(cls: type) -> Callable[[dict[str, Any], GuardrailResources], Any]:
    def make(kwargs: dict[str, Any], resources: GuardrailResources) -> Any:
        kwargs = dict(kwargs)
        timeout = _timeout(kwargs, resources.config)
        try:
            return cls(http_client=resources.http_client, timeout=timeout, base_dir=resources.config.base_dir,
                       skip_system_messages=resources.config.litellm_settings.get(
                           "skip_system_message_in_guardrail") is True, **kwargs)
        except TypeError as exc:     # a setting of the wrong type reaching a constructor
            raise HandlerLoadError(f"invalid settings: {exc}") from None
    return make


#: ``guardrail:`` value → factory(kwargs, resources)
LITELLM_GUARDRAILS: dict[str, Callable[[dict[str, Any], GuardrailResources], Any]] = {
    "presidio": _service(PresidioGuardrail),
    "lakera_v2": _service(LakeraGuardrail),
    "azure/text_moderations": _service(AzureTextModeration),
    "azure/prompt_shield": _service(AzurePromptShield),
    "guardrails_ai": _service(GuardrailsAI),
    "generic_guardrail_api": _service(GenericGuardrailAPI),
    "aim": _service(AimGuardrail),
    "aporia": _service(AporiaGuardrail),
    "bedrock": _service(BedrockGuardrail),
    "bedrock/guardrail": _service(BedrockGuardrail),
    "tool_permission": _service(ToolPermissionGuardrail),
    "litellm_content_filter": _service(ContentFilterGuardrail),
}


def make_guardrail(class_path: str, kwargs: dict[str, Any], config: ProxyConfig,
                   http_client: httpx.AsyncClient | None) -> Any | None:
    """The built-in LiteLLM guardrail ``class_path``, or None when trioproxy has none by that name."""
    factory = LITELLM_GUARDRAILS.get(class_path)
    return None if factory is None else factory(kwargs, GuardrailResources(config, http_client))


def azure_content_safety_from_config(config: ProxyConfig, http_client: httpx.AsyncClient | None) -> Any:
    """``callbacks: ["azure_content_safety"]`` with ``litellm_settings.azure_content_safety_params``."""
    params = dict(config.litellm_settings.get("azure_content_safety_params") or {})
    unknown = sorted(set(params) - {"endpoint", "key", "thresholds", "api_version"})
    if unknown:
        raise HandlerLoadError(f"litellm_settings.azure_content_safety_params: unknown key(s) {', '.join(unknown)} "
                               "(keys: endpoint, key, thresholds, api_version)")
    if not params.get("endpoint") or not params.get("key"):
        raise HandlerLoadError("azure_content_safety needs litellm_settings.azure_content_safety_params with "
                               "endpoint and key (the Content Safety resource's)")
    return AzureContentSafetyCallback(api_base=params["endpoint"], api_key=params["key"],
                                      api_version=params.get("api_version"), thresholds=params.get("thresholds"),
                                      http_client=http_client, timeout=config.moderation_timeout(None),
                                      base_dir=config.base_dir)
