"""Base classes for handler files: ``CustomLogger`` and ``CustomGuardrail``.

Handlers need not subclass anything; these exist so that handler files written for the seeds port
by changing imports only. Every hook here is a no-op marked ``_default_hook``: the loader skips
methods a handler did not override, so an empty default never costs a request anything (an
inherited no-op iterator hook would otherwise wrap every stream).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar

from .litellm_names import GuardrailEventHooks

__all__ = ["CustomGuardrail", "CustomLogger", "GuardrailEventHooks"]

F = TypeVar("F", bound=Callable[..., Any])


def _default_hook(fn: F) -> F:
    fn._trioproxy_default = True  # type: ignore[attr-defined]
    return fn


class CustomLogger:
    """The seeds' ``litellm.integrations.custom_logger.CustomLogger``: call hooks and logging methods."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    # -- call hooks (proxy only) ---------------------------------------------------------------
    @_default_hook
    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> Any:
        return None

    @_default_hook
    async def async_moderation_hook(self, data: dict, user_api_key_dict: Any, call_type: str) -> Any:
        return None

    @_default_hook
    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        return None

    @_default_hook
    async def async_post_call_failure_hook(self, request_data: dict, original_exception: Exception,
                                           user_api_key_dict: Any, traceback_str: str | None = None) -> Any:
        return None

    @_default_hook
    async def async_post_call_streaming_hook(self, user_api_key_dict: Any, response: Any) -> Any:
        return None

    @_default_hook
    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict: Any, response: Any,
                                                      request_data: dict) -> AsyncGenerator[Any, None]:
        async for item in response:
            yield item

    @_default_hook
    async def async_post_call_response_headers_hook(self, data: dict, user_api_key_dict: Any, response: Any,
                                                    request_headers: dict[str, str] | None = None) -> Any:
        return None

    # -- logging methods -----------------------------------------------------------------------
    @_default_hook
    def log_pre_api_call(self, model: Any, messages: Any, kwargs: dict) -> None:
        pass

    @_default_hook
    def log_post_api_call(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        pass

    @_default_hook
    def log_success_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        pass

    @_default_hook
    def log_failure_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        pass

    @_default_hook
    async def async_log_pre_api_call(self, model: Any, messages: Any, kwargs: dict) -> None:
        pass

    @_default_hook
    async def async_log_success_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        pass

    @_default_hook
    async def async_log_failure_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        pass


def _selection(data: dict) -> Any:
    """What the request asks for: its ``guardrails``, else ``metadata.guardrails`` (LiteLLM's order)."""
    if "guardrails" in data:
        return data["guardrails"]
    metadata = data.get("metadata")
    return metadata.get("guardrails") if isinstance(metadata, dict) else None


def requested_guardrails(data: dict) -> dict[str, dict[str, Any]]:
    """Names a request asks for → their dynamic params.

    The forms LiteLLM accepts, top-level ``guardrails`` first, else ``metadata.guardrails``:
    a list of names and ``{"name": {"extra_body": {...}}}`` objects; a mapping ``{"name": {...params}}``;
    and the pre-v1 mapping ``{"name": true, "other": false}`` (``false``: not asked for — a
    ``default_on`` guardrail still runs: a request never switches a guardrail off).
    """
    found = _selection(data)
    items: list[Any] = [found] if isinstance(found, dict) else found if isinstance(found, list) else []
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        if isinstance(item, str):
            out[item] = {}
        elif isinstance(item, dict):
            for name, params in item.items():
                if params is False:
                    continue
                out[str(name)] = params if isinstance(params, dict) else {}
    return out


class CustomGuardrail(CustomLogger):
    """The seeds' ``CustomGuardrail``. The proxy constructs it with ``guardrail_name``,
    ``event_hook`` (its mode, or list of modes), ``default_on`` and the config's extra params."""

    def __init__(self, guardrail_name: str | None = None, event_hook: Any = None, default_on: bool = False,
                 **kwargs: Any) -> None:
        super().__init__()
        self.guardrail_name = guardrail_name
        self.event_hook = event_hook
        self.default_on = default_on
        self.optional_params = kwargs

    def _modes(self) -> list[str]:
        hook = self.event_hook
        if hook is None:
            return []
        return [str(h) for h in hook] if isinstance(hook, list | tuple) else [str(hook)]

    def should_run_guardrail(self, data: dict, event_type: Any) -> bool:
        """Runs when its mode matches and it is ``default_on`` or the request names it."""
        modes = self._modes()
        if modes and str(getattr(event_type, "value", event_type)) not in modes:
            return False
        return self.default_on or self.guardrail_name in requested_guardrails(data)

    @_default_hook
    async def apply_guardrail(self, inputs: dict[str, Any], request_data: dict, input_type: str,
                              logging_obj: Any = None) -> dict[str, Any]:
        """LiteLLM's one-method guardrail API: override it instead of the hooks (``hooks/apply_guardrail.py``
        makes the hooks of the guardrail's modes from it). Raise to block; return ``inputs``, with
        changed ``texts`` to rewrite them."""
        return inputs

    def get_guardrail_dynamic_request_body_params(self, request_data: dict) -> dict[str, Any]:
        """The ``extra_body`` a request passed for this guardrail (every edition; no licence gate)."""
        params = requested_guardrails(request_data).get(self.guardrail_name or "", {})
        extra = params.get("extra_body") if isinstance(params, dict) else None
        return dict(extra) if isinstance(extra, dict) else {}
