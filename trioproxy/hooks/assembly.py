"""Building the proxy's parts from a validated config: handlers, the hook plan, the providers.

Everything here runs once, at startup, before the first request: a broken handler stops startup
with a :class:`~trioproxy.config.ConfigError` naming the config key, the path and the problem.

Scheduling order (the README states it): built-in request policies from ``general_settings``, then
guardrails in config order, then ``litellm_settings.callbacks`` in config order (built-in callbacks
such as ``hide_secrets`` take their place in that list).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import ConfigError, ProxyConfig
from ..policies import builtins
from .loader import (
    CALL_HOOKS,
    HandlerLoadError,
    LoadedHandler,
    import_handler,
    inspect_handler,
    require_some_hook,
)
from .scheduler import GUARDRAIL_MODE_PHASES, HookPlan

__all__ = ["Handlers", "load_handlers"]


@dataclass
class Handlers:
    plan: HookPlan
    #: every handler object with logging methods (for the logging sink), in order
    loggers: list[LoadedHandler] = field(default_factory=list)
    #: objects the app must start/stop with its lifetime (built-ins that own resources)
    lifecycle: list[Any] = field(default_factory=list)


def load_handlers(config: ProxyConfig, shared: dict[str, Any] | None = None) -> Handlers:
    """Import, instantiate and check every handler the config names. Raises ConfigError."""
    problems: list[str] = []
    loaded: list[LoadedHandler] = []
    shared = shared if shared is not None else {}

    def fail(key_path: str, message: str) -> None:
        problems.append(f"{config.source}: {key_path}: {message}")

    # 1. built-in request policies (general_settings)
    for name, obj in builtins.policy_handlers(config, shared):
        try:
            loaded.append(inspect_handler(name, obj, f"general_settings ({name})"))
        except HandlerLoadError as exc:  # a bug in a built-in; still reported, never silent
            fail(f"general_settings ({name})", str(exc))

    # 2. guardrails, in config order
    for index, spec in enumerate(config.guardrails):
        key_path = f"guardrails[{index}].litellm_params.guardrail"
        kwargs = {"guardrail_name": spec.name, "event_hook": spec.modes[0] if len(spec.modes) == 1 else spec.modes,
                  "default_on": spec.default_on, **spec.params}
        try:
            if spec.class_path in builtins.BUILTIN_GUARDRAILS:
                obj = builtins.BUILTIN_GUARDRAILS[spec.class_path](config, shared, kwargs)
            else:
                obj = import_handler(spec.class_path, config.base_dir, kwargs=kwargs)
            phases = tuple(p for mode in spec.modes for p in GUARDRAIL_MODE_PHASES.get(mode, ()))
            handler = inspect_handler(spec.name, obj, key_path, phases=phases, guardrail=spec)
            for mode in spec.modes:  # a mode whose hook the class lacks would be a silent no-op
                mode_phases = GUARDRAIL_MODE_PHASES.get(mode, ())
                if mode_phases and not any(p in handler.hooks for p in mode_phases):
                    hooks = " or ".join(CALL_HOOKS[p] for p in mode_phases)
                    raise HandlerLoadError(f"mode {mode!r} runs {hooks}, which the class does not define")
            loaded.append(handler)
        except HandlerLoadError as exc:
            fail(key_path, f"{spec.class_path!r}: {exc}")

    # 3. callbacks, in config order
    for index, path in enumerate(config.litellm_settings.get("callbacks", [])):
        key_path = f"litellm_settings.callbacks[{index}]"
        try:
            if "." not in path:
                factory = builtins.BUILTIN_CALLBACKS.get(path)
                if factory is None:
                    known = ", ".join(sorted(builtins.BUILTIN_CALLBACKS)) or "none"
                    raise HandlerLoadError(
                        f"{path!r} is neither a built-in callback ({known}) nor a dotted path 'module.attribute'")
                obj = factory(config, shared)
            else:
                obj = import_handler(path, config.base_dir)
            handler = inspect_handler(path, obj, key_path)
            require_some_hook(handler)
            loaded.append(handler)
        except HandlerLoadError as exc:
            fail(key_path, f"{path!r}: {exc}")

    if problems:
        raise ConfigError(problems)
    plan = HookPlan(loaded)
    lifecycle = [h.obj for h in loaded if hasattr(h.obj, "serve")]
    return Handlers(plan=plan, loggers=[h for h in loaded if h.logging], lifecycle=lifecycle)
