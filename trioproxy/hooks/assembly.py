"""From a validated config to the hook plan: import, instantiate and check every handler.

Everything here runs once, at startup, before the first request: a broken handler stops startup
with a :class:`~trioproxy.errors.ConfigError` naming the config key, the path and the problem.

Scheduling order (the README states it): built-in request policies from ``general_settings``, then
guardrails in config order, then ``litellm_settings.callbacks`` in config order (built-in callbacks
such as ``hide_secrets`` take their place in that list).

The built-ins themselves are not known here: the caller passes a :class:`BuiltinSource`
(``policies/builtins.py``, filled by the composition root ``proxy.py``), so the hook machinery
never imports the policies built on it.

A handler object that defines ``run`` or ``drain`` is a *service* (``proxy.Service``): it is started
in the app's nursery and drained at shutdown. It must define both, as ``async def``; one without
the other is a startup error rather than a handler whose ``run`` silently never runs.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config import (
    ALWAYS_ON_CALLBACKS,
    ConfigError,
    ProxyConfig,
    builtin_callback_message,
    builtin_guardrail_message,
)
from .apply_guardrail import ApplyGuardrailHooks, defines_apply_guardrail
from .loader import (
    CALL_HOOKS,
    HandlerLoadError,
    LoadedHandler,
    bind_hook,
    import_handler,
    inspect_handler,
    require_some_hook,
)
from .scheduler import GUARDRAIL_MODE_PHASES, HookPlan

__all__ = ["BuiltinSource", "Handlers", "assemble", "service_problem"]


class BuiltinSource(Protocol):
    """Where the built-in handlers come from (``policies.builtins.Builtins``)."""

    def policies(self) -> list[tuple[str, Any]]: ...

    def callback_names(self) -> list[str]: ...

    def callback(self, name: str) -> Any | None: ...

    def guardrail(self, class_path: str, kwargs: dict[str, Any]) -> Any | None: ...


@dataclass
class Handlers:
    plan: HookPlan
    #: every handler object with logging methods (for the logging sink), in order
    loggers: list[LoadedHandler] = field(default_factory=list)
    #: handler objects that are services (``run`` + ``drain``): started and drained with the app
    services: list[Any] = field(default_factory=list)


def service_problem(obj: Any) -> str | None:
    """Why ``obj`` is not a complete service (``async def run`` and ``async def drain``), or None."""
    missing = [name for name in ("run", "drain") if not inspect.iscoroutinefunction(getattr(obj, name, None))]
    if not missing:
        return None
    return (f"defines {' and '.join(n for n in ('run', 'drain') if n not in missing) or 'neither'} but not "
            f"{' and '.join(f'async def {n}' for n in missing)}: a service (started with the app, drained at "
            "shutdown) needs both")


def _is_service(obj: Any) -> bool:
    return callable(getattr(obj, "run", None)) or callable(getattr(obj, "drain", None))


#: the phases a hook can be made for from ``apply_guardrail`` (``apply_guardrail.py``)
_APPLY_GUARDRAIL_PHASES = ("pre_call", "moderation", "post_call_success")


def _add_apply_guardrail_hooks(handler: LoadedHandler, phases: tuple[str, ...]) -> None:
    """A guardrail with ``apply_guardrail`` gets the hooks of its modes it does not write itself."""
    if not defines_apply_guardrail(handler.obj):
        return
    try:
        made = ApplyGuardrailHooks(handler.obj, handler.name)
    except TypeError as exc:
        raise HandlerLoadError(str(exc)) from None
    for phase in phases:
        if phase in _APPLY_GUARDRAIL_PHASES and phase not in handler.hooks:
            fn = getattr(made, CALL_HOOKS[phase])
            handler.hooks[phase] = bind_hook(handler.name, phase, fn, handler.obj, handler.name)


def assemble(config: ProxyConfig, builtins: BuiltinSource) -> Handlers:
    """Import, instantiate and check every handler the config names. Raises ConfigError."""
    problems: list[str] = []
    loaded: list[LoadedHandler] = []

    def fail(key_path: str, message: str) -> None:
        problems.append(f"{config.source}: {key_path}: {message}")

    # 1. built-in request policies (general_settings)
    for name, obj in builtins.policies():
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
            obj = builtins.guardrail(spec.class_path, kwargs)
            if obj is None:
                litellm_builtin = builtin_guardrail_message(spec.class_path) if "." not in spec.class_path else None
                if litellm_builtin is not None:
                    raise HandlerLoadError(litellm_builtin)
                obj = import_handler(spec.class_path, config.base_dir, kwargs=kwargs)
            # a built-in may run in more modes than configured (presidio's output_parse_pii: post_call too)
            modes = list(dict.fromkeys([*spec.modes, *getattr(obj, "implied_modes", ())]))
            phases = tuple(p for mode in modes for p in GUARDRAIL_MODE_PHASES.get(mode, ()))
            handler = inspect_handler(spec.name, obj, key_path, phases=phases, guardrail=spec)
            _add_apply_guardrail_hooks(handler, phases)
            for mode in modes:  # a mode whose hook the class lacks would be a silent no-op
                mode_phases = GUARDRAIL_MODE_PHASES.get(mode, ())
                if mode_phases and not any(p in handler.hooks for p in mode_phases):
                    hooks = " or ".join(CALL_HOOKS[p] for p in mode_phases)
                    raise HandlerLoadError(f"mode {mode!r} runs {hooks}, which the class does not define")
            loaded.append(handler)
        except HandlerLoadError as exc:
            fail(key_path, f"{spec.class_path!r}: {exc}")

    # 3. callbacks, in config order
    for index, path in enumerate(config.litellm.callbacks):
        if path in ALWAYS_ON_CALLBACKS:   # noted when the config loaded: trioproxy always does it
            continue
        key_path = f"litellm_settings.callbacks[{index}]"
        try:
            if "." not in path:
                obj = builtins.callback(path)
                if obj is None:
                    known = ", ".join(builtins.callback_names()) or "none"
                    raise HandlerLoadError(builtin_callback_message(path) or
                        f"{path!r} is neither a built-in callback ({known}) nor a dotted path 'module.attribute'")
            else:
                obj = import_handler(path, config.base_dir)
            handler = inspect_handler(path, obj, key_path)
            require_some_hook(handler)
            loaded.append(handler)
        except HandlerLoadError as exc:
            fail(key_path, f"{path!r}: {exc}")

    services = []
    for handler in loaded:
        if _is_service(handler.obj):
            problem = service_problem(handler.obj)
            if problem is None:
                services.append(handler.obj)
            else:
                fail(handler.key_path, f"{handler.name!r} {problem}")
    handlers = Handlers(plan=HookPlan(loaded), loggers=[h for h in loaded if h.logging], services=services)
    if problems:
        # the handlers that did load: their logging methods are checked in the same run (proxy.check_handlers)
        raise ConfigError(problems, partial=handlers)
    return handlers
