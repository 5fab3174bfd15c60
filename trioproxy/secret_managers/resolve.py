"""``os.environ/NAME`` in a raw config, read through the configured secret manager, once, at startup.

Called by ``config.parse_config`` on the raw YAML document (after ``environment_variables`` are set,
before validation), so every later step sees plain values. Without ``key_management_system`` it
returns the document unchanged and ``config/env.py`` reads the environment as before.

Rules (LiteLLM's, except the last):

* a name is read from the manager when ``access_mode`` reads (``read_only``, the default, or
  ``read_and_write``) and ``hosted_keys`` is unset or lists it; otherwise from the environment;
* a manager that does not have the name (``read`` returns None) falls back to the environment;
* **unlike LiteLLM** (which logs and carries on with the environment's value or None), a read that
  fails (refused, unreachable, undecryptable, misconfigured) or a name found neither in the manager
  nor in the environment is a startup error naming the variable, the manager, the config key and the
  reason. All names are read concurrently in daemon threads under one deadline
  (``STARTUP_DEADLINE``), so a manager that does not answer stops startup in seconds, never hangs it.

Values read from a manager are never logged (the startup log line names the variables and where
each came from); they travel in the returned :class:`Resolution`, which the config keeps
(``ProxyConfig.secret_resolution``) and the composition root hands to the scrubber and to the refresh
service — no process-global state.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .base import (
    STARTUP_DEADLINE,
    SecretManager,
    SecretManagerError,
    SecretManagerUnreachable,
)
from .settings import KeyManagementSettings, parse_key_management

__all__ = ["Resolution", "SecretResolver", "find_references", "read_all", "resolve_config_secrets"]

log = logging.getLogger("trioproxy.secrets")

PREFIX = "os.environ/"
#: subtrees that are not resolved here: ``environment_variables`` is applied literally before, and the
#: manager's own settings are how it is reached (``settings.py`` reads them from the environment)
_SKIP = {("environment_variables",), ("general_settings", "key_management_system"),
         ("general_settings", "key_management_settings")}


class SecretResolver:
    """One name → its value: the manager for hosted names (falling back to the environment)."""

    def __init__(self, settings: KeyManagementSettings, manager: SecretManager | None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.manager = manager
        self.environ = environ if environ is not None else os.environ

    @property
    def manager_name(self) -> str:
        return self.settings.system

    def hosted(self, name: str) -> bool:
        return self.manager is not None and self.settings.is_hosted(name)

    def read(self, name: str) -> tuple[str | None, str]:
        """``(value or None, where it came from)``. Blocking; raises ``SecretManagerError``."""
        if self.hosted(name):
            assert self.manager is not None
            try:
                value = self.manager.read(name)
            except SecretManagerError as exc:
                raise exc.for_secret(name) from None
            if value is not None:
                return value, self.manager_name
        return self.environ.get(name), "environment"

    def missing(self, name: str) -> str:
        """Why ``name`` has no value (for the error message)."""
        if not self.hosted(name):
            return "not set in the environment"
        where = getattr(self.manager, "where", None)
        place = f" ({where(name)})" if callable(where) else ""
        return f"not in {self.manager_name}{place} and not set in the environment"


def read_all(resolver: SecretResolver, names: Iterable[str], deadline: float = STARTUP_DEADLINE,
             clock: Callable[[], float] = time.monotonic) -> tuple[dict[str, tuple[str | None, str]],
                                                                  dict[str, SecretManagerError]]:
    """Read every name concurrently; ``(results, errors)``. Never takes longer than ``deadline``.

    Daemon threads, not an executor: a call still hanging at the deadline must not keep the
    process from exiting (an executor's threads are joined at exit).
    """
    names = list(dict.fromkeys(names))
    results: dict[str, tuple[str | None, str]] = {}
    errors: dict[str, SecretManagerError] = {}
    done: queue.Queue[tuple[str, Any, BaseException | None]] = queue.Queue()
    pending = set(names)
    slots = threading.Semaphore(8)

    def one(name: str) -> None:
        with slots:
            try:
                done.put((name, resolver.read(name), None))
            except BaseException as exc:  # reported by the caller, with the name
                done.put((name, None, exc))

    for name in names:
        threading.Thread(target=one, args=(name,), name=f"secret-read-{name}", daemon=True).start()
    end = clock() + deadline
    while pending:
        remaining = end - clock()
        if remaining <= 0:
            break
        try:
            name, value, exc = done.get(timeout=remaining)
        except queue.Empty:
            break
        pending.discard(name)
        if exc is None:
            results[name] = value
        elif isinstance(exc, SecretManagerError):
            errors[name] = exc
        else:
            errors[name] = SecretManagerError(resolver.manager_name, f"unexpected {type(exc).__name__}",
                                              secret=name)
    for name in pending:
        errors[name] = SecretManagerUnreachable(resolver.manager_name,
                                                f"no answer within {deadline:g} s", secret=name)
    return results, errors


def _call_within(fn: Callable[[], Any], deadline: float, manager: str) -> Any:
    """``fn()`` in a daemon thread; SecretManagerUnreachable when it has not returned by ``deadline``."""
    done: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue()

    def run() -> None:
        try:
            done.put((fn(), None))
        except BaseException as exc:
            done.put((None, exc))

    threading.Thread(target=run, name="secret-manager-setup", daemon=True).start()
    try:
        value, exc = done.get(timeout=deadline)
    except queue.Empty:
        raise SecretManagerUnreachable(manager, f"setting up the client took more than {deadline:g} s") from None
    if exc is not None:
        raise exc
    return value


def find_references(raw: Any) -> dict[str, str]:
    """``{NAME: first key path}`` for every ``os.environ/NAME`` string in the document."""
    found: dict[str, str] = {}

    def walk(value: Any, path: str, keys: tuple[str, ...]) -> None:
        if keys in _SKIP:
            return
        if isinstance(value, str) and value.startswith(PREFIX):
            found.setdefault(value[len(PREFIX):], path or "<top level>")
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}" if path else str(k), (*keys, str(k)))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]", (*keys, "[]"))

    walk(raw, "", ())
    return found


def _substitute(value: Any, values: Mapping[str, str], keys: tuple[str, ...] = ()) -> Any:
    if keys in _SKIP:
        return value
    if isinstance(value, str) and value.startswith(PREFIX):
        name = value[len(PREFIX):]
        return values.get(name, value)
    if isinstance(value, dict):
        return {k: _substitute(v, values, (*keys, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, values, (*keys, "[]")) for v in value]
    return value


@dataclass
class Resolution:
    """What startup read: the scrubber's values and the seam the refresh service starts from
    (``refresh.py``; the composition root builds it from this)."""

    resolver: SecretResolver
    #: every referenced name → where it came from (``environment`` or the manager's name)
    sources: dict[str, str] = field(default_factory=dict)
    #: every referenced name → its value at startup (secret: never log)
    values: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def refresh_interval(self) -> float:
        """Seconds between refresh rounds (``key_management_settings.refresh_interval``)."""
        return self.resolver.settings.refresh_interval

    def managed_values(self) -> list[str]:
        """The values read from the manager (not the environment's): secrets wherever they went."""
        return sorted(v for name, v in self.values.items() if v and self.sources.get(name) != "environment")


def resolve_config_secrets(raw: Any, source: str, problems: list[str], warnings: list[str],
                           environ: Mapping[str, str] | None = None) -> tuple[Any, Resolution | None]:
    """The raw document with ``os.environ/NAME`` replaced through the manager (see module docstring),
    and what was read (None without a manager, or when a read failed: startup stops then anyway).

    Problems and warnings are appended to the caller's lists (``config/build.py``'s, so that every problem
    of a config is reported at once); a reference that could not be resolved is replaced by ``""``
    so validation does not report it a second time.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("general_settings"), dict):
        return raw, None
    env = environ if environ is not None else os.environ
    settings, setting_problems, setting_warnings = parse_key_management(raw["general_settings"], source)
    problems += setting_problems
    warnings += setting_warnings
    if settings is None or setting_problems:
        return raw, None
    if not settings.reads:
        return raw, None

    from .managers import build_manager

    references = find_references(raw)
    started = time.monotonic()
    try:
        # building may touch the network (Google's credential discovery probes the metadata server,
        # an AWS role is assumed): under the same deadline as the reads
        manager = _call_within(lambda: build_manager(settings, env), STARTUP_DEADLINE, settings.system)
    except SecretManagerError as exc:
        problems.append(f"{source}: general_settings.key_management_system: {exc}")
        return _substitute(raw, dict.fromkeys(references, "")), None
    resolver = SecretResolver(settings, manager, env)
    remaining = max(STARTUP_DEADLINE - (time.monotonic() - started), 0.5)
    results, errors = read_all(resolver, references, deadline=remaining)
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name, path in references.items():
        if name in errors:
            error = errors[name]
            problems.append(f"{source}: {path}: cannot read os.environ/{name} from {error.manager}: "
                            f"{error.kind}: {error.reason}")
            values[name] = ""
            continue
        value, where = results[name]
        if value is None:
            problems.append(f"{source}: {path}: os.environ/{name} is {resolver.missing(name)}")
            values[name] = ""
            continue
        values[name] = value
        sources[name] = where
    resolution = None
    if not errors and len(sources) == len(references):
        from_manager = sorted(n for n, w in sources.items() if w != "environment")
        from_env = sorted(n for n, w in sources.items() if w == "environment")
        log.info("secrets: %d of %d os.environ/ references read from %s%s%s", len(from_manager), len(references),
                 settings.system, f" ({', '.join(from_manager)})" if from_manager else "",
                 f"; from the environment: {', '.join(from_env)}" if from_env else "")
        resolution = Resolution(resolver, sources, values)
    return _substitute(raw, values), resolution
