"""Turning configured logging callbacks into :class:`Callback` objects, checked at startup.

Two sources, both from ``litellm_settings``:

* ``callbacks`` handler objects (loaded by ``assembly.py``) with the seeds' ``CustomLogger``
  logging methods. For each event a handler gets one call: the ``async_`` form when it defines one,
  else the sync form (run in a worker thread). The seeds' example defines both
  ``log_success_event`` and ``async_log_success_event``; calling both would log every request twice.
* ``input_callback`` / ``success_callback`` / ``failure_callback``: dotted paths to plain functions,
  sync or async, taking ``(kwargs, completion_response, start_time, end_time)``; an input callback
  may take ``kwargs`` alone.

Everything that can be wrong is found here, before the first request, and reported as a
:class:`~trioproxy.config.ConfigError` naming the file, the key and the problem: a bad path, a
class or a string where a function belongs, a sync ``async_`` method, a signature the proxy cannot
call. A callback that silently never fires is the failure this module exists to prevent.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ALWAYS_ON_CALLBACKS, ConfigError, ProxyConfig, builtin_callback_message
from ..hooks.loader import HandlerLoadError, LoadedHandler, import_object
from .integrations import INTEGRATIONS, alerting_integrations, make_integration
from .team_logging import team_callbacks

__all__ = ["EVENT_TYPES", "Callback", "load_callbacks", "load_function_callbacks"]

#: the seeds' ``log_event_type`` values, in the order a request meets them
EVENT_TYPES = ("pre_api_call", "post_api_call", "successful_api_call", "failed_api_call")

_EVENT_ARGS = ("kwargs", "completion_response", "start_time", "end_time")

#: event → (async method, sync method, argument shape) of a CustomLogger
_HANDLER_METHODS: dict[str, tuple[str | None, str, str]] = {
    "pre_api_call": ("async_log_pre_api_call", "log_pre_api_call", "pre"),
    "post_api_call": (None, "log_post_api_call", "event"),
    "successful_api_call": ("async_log_success_event", "log_success_event", "event"),
    "failed_api_call": ("async_log_failure_event", "log_failure_event", "event"),
}

#: config key → event
_FUNCTION_KEYS = {
    "input_callback": "pre_api_call",
    "success_callback": "successful_api_call",
    "failure_callback": "failed_api_call",
}


@dataclass(frozen=True, slots=True)
class Callback:
    """One function to call for one event type.

    ``shape`` says how it is called: ``"pre"`` → ``fn(model, messages, kwargs)`` (the seeds'
    ``log_pre_api_call``); ``"event"`` → ``fn(kwargs, completion_response, start_time, end_time)``;
    ``"kwargs"`` → ``fn(kwargs)`` (an input callback written as in the seeds).
    """

    name: str               # shown in logs and metrics: "module.function" or "handler.method"
    event: str
    fn: Callable[..., Any]
    is_async: bool
    shape: str


def _is_async(fn: Any) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    return call is not None and not inspect.isfunction(fn) and inspect.iscoroutinefunction(call)


def _binds(fn: Callable[..., Any], count: int) -> str | None:
    """None when ``fn`` accepts ``count`` positional arguments, else why not."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # builtins without a signature: give them the benefit of the doubt
    try:
        signature.bind(*range(count))
    except TypeError as exc:
        return f"{getattr(fn, '__name__', 'it')}{signature}: {exc}"
    return None


def _check_function(path: str, obj: Any, event: str) -> Callback:
    if inspect.isclass(obj):
        raise HandlerLoadError(
            "is a class, not a function; name a function 'module.function' here, or list a "
            "CustomLogger instance under litellm_settings.callbacks")
    if any(callable(getattr(obj, m, None)) for m in ("log_success_event", "async_log_success_event",
                                                      "log_pre_api_call", "async_log_pre_api_call")) \
            and not inspect.isfunction(obj) and not inspect.ismethod(obj):
        raise HandlerLoadError(
            "is a CustomLogger object, not a function; list it under litellm_settings.callbacks instead")
    if inspect.ismodule(obj):
        raise HandlerLoadError(f"is a module ({obj.__name__}), not a function; name a function inside it, "
                               "'module.function'")
    if inspect.isbuiltin(obj) or isinstance(obj, types.BuiltinFunctionType | types.MethodWrapperType):
        raise HandlerLoadError("is a built-in function of Python, not a logging callback; name a function "
                               "you wrote ('def' or 'async def' taking kwargs, completion_response, "
                               "start_time, end_time)")
    if not callable(obj):
        raise HandlerLoadError(f"is a {type(obj).__name__}, not a function")
    if inspect.isasyncgenfunction(obj) or inspect.isgeneratorfunction(obj):
        raise HandlerLoadError("is a generator function; a logging callback must be a plain function "
                               "('def' or 'async def' without 'yield')")
    is_async = _is_async(obj)
    full = _binds(obj, 4)
    if full is None:
        return Callback(path, event, obj, is_async, "event")
    if event == "pre_api_call" and _binds(obj, 1) is None:
        return Callback(path, event, obj, is_async, "kwargs")
    accepted = "(kwargs) or " if event == "pre_api_call" else ""
    raise HandlerLoadError(
        f"cannot be called as {accepted}({', '.join(_EVENT_ARGS)}): {full}")


def _import_function(path: str, base_dir: Path) -> Any:
    """``module.function``. The loader executes each handler file once per process, so a file that
    holds both a ``CustomLogger`` (under ``callbacks``) and plain functions (under
    ``success_callback``), as the seeds' ``custom_callbacks.py`` does, is one module with one set of
    globals."""
    return import_object(path, base_dir, instantiate=False)


def load_function_callbacks(config: ProxyConfig) -> list[Callback]:
    """The ``input/success/failure_callback`` functions. Raises ConfigError listing every problem."""
    problems: list[str] = []
    callbacks: list[Callback] = []
    for key, event in _FUNCTION_KEYS.items():
        for index, path in enumerate(getattr(config.litellm, key)):
            if path in ALWAYS_ON_CALLBACKS:   # noted when the config loaded: trioproxy always does it
                continue
            where = f"{config.source}: litellm_settings.{key}[{index}]: {path!r}"
            try:
                if path in INTEGRATIONS:   # LiteLLM's integration by name, built in (docs/logging.md)
                    callbacks.append(_integration_callback(path, event, config))
                    continue
                if "." not in path:
                    raise HandlerLoadError(builtin_callback_message(path, functions=True) or (
                        "is not a dotted path 'module.function'; trioproxy has no built-in logging "
                        "integrations by name: write a function (see docs/logging.md)"))
                obj = _import_function(path, config.base_dir)
                callbacks.append(_check_function(path, obj, event))
            except HandlerLoadError as exc:
                problems.append(f"{where}: {exc}")
    if problems:
        raise ConfigError(problems)
    return callbacks


def _integration_callback(name: str, event: str, config: ProxyConfig) -> Callback:
    """``success_callback: ["langfuse"]`` logs successes only, ``failure_callback`` failures only
    (as in LiteLLM); ``callbacks: ["langfuse"]`` (a handler, policies/builtins.py) logs both."""
    integration = make_integration(name, config)
    assert integration is not None
    method = {"successful_api_call": integration.async_log_success_event,
              "failed_api_call": integration.async_log_failure_event}.get(event)
    if method is None:
        raise HandlerLoadError("is one of LiteLLM's logging integrations: list it under callbacks, "
                               "success_callback or failure_callback")
    return Callback(name, event, method, True, "event")


def _team_callbacks(config: ProxyConfig) -> list[Callback]:
    """``litellm_settings.default_team_settings`` (``team_logging.py``). Raises ConfigError."""
    return [Callback(name, event, fn, True, "event") for name, event, fn in team_callbacks(config)]


def alerting_callbacks(config: ProxyConfig) -> list[Callback]:
    """``general_settings.alerting``: ``slack`` (both outcomes). Raises ConfigError."""
    names = list(config.general_settings.get("alerting") or ())
    other = [n for n in names if n != "slack"]
    if other:
        raise ConfigError([f"{config.source}: general_settings.alerting: {', '.join(map(repr, other))}: trioproxy "
                           "sends alerts to Slack only ('slack'); for another service write a logging callback "
                           "(docs/logging.md)"])
    try:
        found = alerting_integrations(config)
    except HandlerLoadError as exc:
        raise ConfigError([f"{config.source}: general_settings.alerting: {exc}"]) from None
    return [Callback(f"alerting.{a.name}", event, fn, True, "event") for a in found
            for event, fn in (("successful_api_call", a.async_log_success_event),
                              ("failed_api_call", a.async_log_failure_event))]


def _handler_callbacks(handler: LoadedHandler) -> tuple[list[Callback], list[str]]:
    callbacks: list[Callback] = []
    problems: list[str] = []
    for event, (async_name, sync_name, shape) in _HANDLER_METHODS.items():
        chosen = async_name if async_name in handler.logging else sync_name
        fn = handler.logging.get(chosen) if chosen else None
        if fn is None:
            continue
        count = 3 if shape == "pre" else 4
        why = _binds(fn, count)
        if why is not None:
            problems.append(f"{handler.name!r}: {chosen} cannot be called with the seeds' {count} arguments: {why}")
            continue
        callbacks.append(Callback(f"{handler.name}.{chosen}", event, fn, async_name == chosen, shape))
    return callbacks, problems


def load_callbacks(config: ProxyConfig, loggers: Iterable[LoadedHandler]) -> list[Callback]:
    """Every logging callback of the config, handlers first (config order), then functions."""
    problems: list[str] = []
    callbacks: list[Callback] = []
    for handler in loggers:
        found, wrong = _handler_callbacks(handler)
        callbacks += found
        problems += [f"{config.source}: {handler.key_path}: {p}" for p in wrong]
    for load in (load_function_callbacks, alerting_callbacks, _team_callbacks):
        try:
            callbacks += load(config)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return callbacks
