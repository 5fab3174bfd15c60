"""Loading handler objects from dotted paths, and checking them before the first request.

A handler file is a plain Python module next to the config file (or anywhere on ``sys.path``);
the config names ``module.attribute``, where the attribute is an instance or a class (instantiated
with no arguments). Everything that can be wrong with a handler is found here, at startup, and
reported with the config key, the path and the problem: a missing file or attribute, an error while
importing the file, a hook that is not ``async def``, a misspelt hook name, a hook whose parameters
cannot be supplied, an object with no hook at all. A silent no-op at request time is the failure
mode this module exists to prevent.

Only module paths are accepted (:func:`check_dotted_path`): a filesystem path (``/dir/evil.handler``)
or a relative one (``./x.y``, ``..``) is refused, so a config can only name code next to it or on
``sys.path``. Where a handler object is expected (:func:`import_handler`), a module, a plain
function or a built-in (``os.system``, ``builtins.eval``) is refused with what is expected instead;
plain functions are the logging callbacks' business (``observability/callbacks.py``).

Each hook's signature is inspected once, here, and turned into a :class:`HookCall` that knows which
arguments to pass: handlers written against the seeds use both the long form
``async_moderation_hook(self, data, user_api_key_dict, call_type)`` and the short ``(self, data)``.
Parameters are matched by name first, then by position in the phase's documented order.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import inspect
import sys
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CALL_HOOKS",
    "LOGGING_METHODS",
    "PHASE_ARGS",
    "HandlerLoadError",
    "HookCall",
    "LoadedHandler",
    "bind_hook",
    "check_dotted_path",
    "describe_non_handler",
    "import_handler",
    "import_object",
    "inspect_handler",
    "require_some_hook",
]

#: phase → hook method name
CALL_HOOKS: dict[str, str] = {
    "pre_call": "async_pre_call_hook",
    "moderation": "async_moderation_hook",
    "post_call_success": "async_post_call_success_hook",
    "post_call_streaming": "async_post_call_streaming_hook",
    "streaming_iterator": "async_post_call_streaming_iterator_hook",
    "failure": "async_post_call_failure_hook",
    "response_headers": "async_post_call_response_headers_hook",
}

#: phase → the documented argument order (positional fallback) and accepted aliases
PHASE_ARGS: dict[str, tuple[str, ...]] = {
    "pre_call": ("user_api_key_dict", "cache", "data", "call_type"),
    "moderation": ("data", "user_api_key_dict", "call_type"),
    "post_call_success": ("data", "user_api_key_dict", "response"),
    "post_call_streaming": ("user_api_key_dict", "response"),
    "streaming_iterator": ("user_api_key_dict", "response", "request_data"),
    "failure": ("request_data", "original_exception", "user_api_key_dict", "traceback_str"),
    "response_headers": ("data", "user_api_key_dict", "response", "request_headers"),
}
#: names a hook may use for an argument, beyond the canonical one
ARG_ALIASES: dict[str, str] = {"request_data": "data", "data": "request_data", "exception": "original_exception"}

LOGGING_METHODS = (
    "log_pre_api_call",
    "log_post_api_call",
    "log_success_event",
    "log_failure_event",
    "async_log_pre_api_call",
    "async_log_success_event",
    "async_log_failure_event",
)
_KNOWN_METHODS = tuple(CALL_HOOKS.values()) + LOGGING_METHODS + (
    "log_stream_event", "async_log_stream_event", "async_post_call_streaming_deployment_hook",
)


class HandlerLoadError(Exception):
    """One problem with one handler: ``key_path: message``."""


@dataclass(frozen=True, slots=True)
class HookCall:
    """One handler's hook for one phase, with its argument mapping fixed at load time."""

    handler: str                     # the name shown in errors, logs and `trioproxy check`
    phase: str
    fn: Callable[..., Any]
    positional: tuple[str, ...]      # canonical names passed positionally, in order
    keywords: tuple[str, ...]        # canonical names passed by keyword (param name, canonical)
    keyword_params: tuple[str, ...]
    obj: Any = None
    guardrail: str | None = None     # the guardrail's name when this is a guardrail's hook

    def call(self, values: dict[str, Any]) -> Any:
        args = [values[name] for name in self.positional]
        kwargs = {param: values[name] for param, name in zip(self.keyword_params, self.keywords, strict=True)}
        return self.fn(*args, **kwargs)


@dataclass
class LoadedHandler:
    name: str
    obj: Any
    key_path: str
    hooks: dict[str, HookCall] = field(default_factory=dict)
    logging: dict[str, Callable[..., Any]] = field(default_factory=dict)
    guardrail: Any = None            # GuardrailSpec for guardrails


def _resolve_arg(name: str, phase_args: tuple[str, ...]) -> str | None:
    if name in phase_args:
        return name
    alias = ARG_ALIASES.get(name)
    return alias if alias in phase_args else None


def _bind(handler: str, phase: str, fn: Callable[..., Any], obj: Any, guardrail: str | None) -> HookCall:
    phase_args = PHASE_ARGS[phase]
    positional: list[str] = []
    keywords: list[str] = []
    keyword_params: list[str] = []
    used: set[str] = set()
    signature = inspect.signature(fn)
    for index, param in enumerate(signature.parameters.values()):
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            name = _resolve_arg(param.name, phase_args)
            if name is None and index < len(phase_args) and phase_args[index] not in used:
                name = phase_args[index]
            if name is None:
                if param.default is not param.empty:
                    break
                raise HandlerLoadError(
                    f"{CALL_HOOKS[phase]} has a parameter {param.name!r} the proxy cannot supply "
                    f"(it passes: {', '.join(phase_args)})"
                )
            if positional and len(positional) != index:
                break
            positional.append(name)
            used.add(name)
        elif param.kind is param.KEYWORD_ONLY:
            name = _resolve_arg(param.name, phase_args)
            if name is None:
                if param.default is param.empty:
                    raise HandlerLoadError(
                        f"{CALL_HOOKS[phase]} has a keyword-only parameter {param.name!r} the proxy cannot supply"
                    )
                continue
            keywords.append(name)
            keyword_params.append(param.name)
            used.add(name)
        elif param.kind is param.VAR_KEYWORD:
            for name in phase_args:
                if name not in used:
                    keywords.append(name)
                    keyword_params.append(name)
                    used.add(name)
    return HookCall(handler, phase, fn, tuple(positional), tuple(keywords), tuple(keyword_params), obj, guardrail)


def bind_hook(handler: str, phase: str, fn: Callable[..., Any], obj: Any, guardrail: str | None) -> HookCall:
    """``fn`` as ``obj``'s hook for ``phase`` (a hook made for the object, e.g. from ``apply_guardrail``)."""
    return _bind(handler, phase, fn, obj, guardrail)


def _is_default(obj: Any, method: str) -> bool:
    fn = getattr(type(obj), method, None)
    return fn is None or getattr(fn, "_trioproxy_default", False)


def inspect_handler(name: str, obj: Any, key_path: str, phases: tuple[str, ...] | None = None,
                    guardrail: Any = None) -> LoadedHandler:
    """Check one handler object and bind its hooks. Raises HandlerLoadError naming the problem.

    ``phases`` limits which call hooks are taken (a guardrail runs only its modes' hooks).
    """
    loaded = LoadedHandler(name=name, obj=obj, key_path=key_path, guardrail=guardrail)
    problems = []
    # misspelt hook names: methods the handler defines that look like a hook but are not one
    for attr in dir(type(obj)):
        if attr.startswith("_") or attr in _KNOWN_METHODS:
            continue
        if not callable(getattr(type(obj), attr, None)):
            continue
        if attr.startswith(("async_", "log_")) or "hook" in attr:
            close = difflib.get_close_matches(attr, _KNOWN_METHODS, n=1, cutoff=0.8)
            if close:
                problems.append(f"method {attr!r} is not a hook the proxy calls; did you mean {close[0]!r}?")
    for phase, method in CALL_HOOKS.items():
        if phases is not None and phase not in phases:
            continue
        if _is_default(obj, method):
            continue
        fn = getattr(obj, method)
        if phase == "streaming_iterator":
            if not (inspect.isasyncgenfunction(fn) or inspect.iscoroutinefunction(fn)):
                problems.append(f"{method} must be an async generator function ('async def' with 'yield')")
                continue
        elif not inspect.iscoroutinefunction(fn):
            problems.append(f"{method} must be 'async def' (it is a plain function, so it would never be awaited)")
            continue
        try:
            loaded.hooks[phase] = _bind(name, phase, fn, obj, guardrail.name if guardrail else None)
        except HandlerLoadError as exc:
            problems.append(str(exc))
    for method in LOGGING_METHODS:
        if not _is_default(obj, method) and callable(getattr(obj, method, None)):
            fn = getattr(obj, method)
            if method.startswith("async_") and not inspect.iscoroutinefunction(fn):
                problems.append(f"{method} must be 'async def'; use {method[len('async_'):]} for a sync method")
                continue
            loaded.logging[method] = fn
    if problems:
        raise HandlerLoadError("; ".join(problems))
    return loaded


#: handler files already executed in this process, by resolved path: a file that a config names
#: twice (two handlers, or a handler and a callback function) is one module with one set of globals
_FILE_MODULES: dict[Path, Any] = {}


def _load_module(module_name: str, base_dir: Path) -> Any:
    """``module_name`` from next to the config first, then from ``sys.path``."""
    parts = module_name.split(".")
    candidates = [base_dir.joinpath(*parts).with_suffix(".py"), base_dir.joinpath(*parts, "__init__.py")]
    for file in candidates:
        if file.is_file():
            resolved = file.resolve()
            if resolved in _FILE_MODULES:
                return _FILE_MODULES[resolved]
            spec = importlib.util.spec_from_file_location(module_name, file)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            previous = sys.modules.get(module_name)
            sys.modules[module_name] = module
            # siblings of the handler file import like they would with `python handler.py`
            added = str(base_dir) not in sys.path
            if added:
                sys.path.insert(0, str(base_dir))
            try:
                spec.loader.exec_module(module)
            except BaseException:
                if previous is not None:
                    sys.modules[module_name] = previous
                else:
                    sys.modules.pop(module_name, None)
                raise
            _FILE_MODULES[resolved] = module
            return module
    return importlib.import_module(module_name)


def _describe_import_error(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    for frame in reversed(frames):
        if "importlib" not in frame.filename:
            where = f" ({Path(frame.filename).name}, line {frame.lineno})"
            break
    if isinstance(exc, SyntaxError):
        where = f" ({Path(exc.filename or '?').name}, line {exc.lineno})"
        return f"SyntaxError: {exc.msg}{where}"
    return f"{type(exc).__name__}: {exc}{where}"


_DOTTED_EXAMPLE = "(e.g. 'custom_callbacks.proxy_handler_instance')"


def check_dotted_path(dotted: str) -> None:
    """Only module paths: ``package.module.attribute``, every part a Python name.

    A filesystem path would be executed as a file (``/dir/evil.handler`` ran ``/dir/evil.py``), and
    ``..`` or a leading ``.`` would climb out of the config's directory: handler files are found
    next to the config or on ``sys.path``, by module name, and nowhere else.
    """
    if "://" in dotted:
        raise HandlerLoadError(
            f"{dotted!r} names a file in a bucket; loading handler files from gcs:// or s3:// is a LiteLLM "
            "feature trioproxy does not support: copy the file next to the config and name "
            f"'module.attribute' {_DOTTED_EXAMPLE}")
    if "/" in dotted or "\\" in dotted:
        raise HandlerLoadError(
            f"{dotted!r} is a filesystem path; name a module instead, 'module.attribute' {_DOTTED_EXAMPLE}: "
            "a module.py next to the config, or a module on sys.path")
    if dotted.startswith(".") or ".." in dotted:
        raise HandlerLoadError(
            f"{dotted!r} is a relative path; name a module 'module.attribute' {_DOTTED_EXAMPLE}, looked up "
            "next to the config, then on sys.path")
    module_name, dot, attr = dotted.rpartition(".")
    if not dot or not module_name or not attr:
        raise HandlerLoadError(f"{dotted!r} is not a dotted path 'module.attribute' {_DOTTED_EXAMPLE}")
    bad = [part for part in dotted.split(".") if not part.isidentifier()]
    if bad:
        raise HandlerLoadError(
            f"{dotted!r} is not a module path: {bad[0]!r} is not a Python name (a path is "
            f"'package.module.attribute', each part a name such as 'custom_callbacks')")


def describe_non_handler(obj: Any) -> str | None:
    """Why ``obj`` cannot be a handler (an object with hook methods), or None if it can be one."""
    if inspect.ismodule(obj):
        return (f"is a module ({obj.__name__}), not a handler object; name an object inside it, "
                "'module.attribute'")
    if inspect.isbuiltin(obj) or isinstance(obj, types.BuiltinFunctionType | types.BuiltinMethodType
                                            | types.MethodWrapperType | types.WrapperDescriptorType):
        return ("is a built-in function, not a handler object; name an instance (or a class) with hook "
                "methods such as async_pre_call_hook, e.g. a CustomLogger subclass")
    if inspect.isfunction(obj) or inspect.ismethod(obj) or isinstance(obj, functools.partial):
        return ("is a function, not a handler object; name an instance (or a class) with hook methods "
                "such as async_pre_call_hook, e.g. a CustomLogger subclass. A logging function belongs "
                "under litellm_settings.success_callback / failure_callback / input_callback")
    return None


def require_some_hook(loaded: LoadedHandler) -> None:
    """A configured handler that defines no hook and no logging method would never run: an error."""
    if not loaded.hooks and not loaded.logging:
        raise HandlerLoadError(
            f"the {type(loaded.obj).__name__} object defines none of the hooks the proxy calls "
            f"({', '.join(CALL_HOOKS.values())}) and no logging method ({', '.join(LOGGING_METHODS)}), "
            "so it would never run")


def import_handler(dotted: str, base_dir: Path, *, kwargs: dict[str, Any] | None = None) -> Any:
    """Like :func:`import_object`, for a handler: refuses modules, functions and built-ins."""
    obj = import_object(dotted, base_dir, kwargs=kwargs)
    why = describe_non_handler(obj)
    if why is not None:
        raise HandlerLoadError(why)
    return obj


def import_object(dotted: str, base_dir: Path, *, instantiate: bool = True,
                  kwargs: dict[str, Any] | None = None) -> Any:
    """``module.attr`` → the object (a class is instantiated, with ``kwargs``). Raises HandlerLoadError."""
    check_dotted_path(dotted)
    module_name, _, attr = dotted.rpartition(".")
    try:
        module = _load_module(module_name, base_dir)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise HandlerLoadError(
                f"cannot find module {module_name!r}: no {module_name.replace('.', '/')}.py next to the config "
                f"({base_dir}) and no such module on sys.path"
            ) from None
        raise HandlerLoadError(f"importing {module_name!r} failed: {_describe_import_error(exc)}") from None
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise HandlerLoadError(f"importing {module_name!r} failed: {_describe_import_error(exc)}") from None
    if not hasattr(module, attr):
        names = [n for n in dir(module) if not n.startswith("_")]
        close = difflib.get_close_matches(attr, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise HandlerLoadError(f"module {module_name!r} has no attribute {attr!r}{hint}")
    obj = getattr(module, attr)
    if inspect.isclass(obj) and instantiate:
        try:
            obj = obj(**(kwargs or {}))
        except Exception as exc:
            raise HandlerLoadError(f"creating {dotted}() failed: {_describe_import_error(exc)}") from None
    return obj
