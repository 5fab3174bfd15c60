"""A tiny declarative schema language: validators that check and clean one value each.

Each validator takes ``(value, path, ctx)`` and returns the clean value, or :data:`INVALID` after
reporting a problem to ``ctx`` (``file: key.path: message``), so that every problem of a config is
collected in one pass. :class:`Section` validates a mapping with known keys (how a section is
declared: its ``fields``, then what it says about other keys, in this order):

1. ``fields`` (and ``aliases``): validated;
2. ``unsupported``: keys another issue is bringing, accepted with a warning (``unsupported_note``);
3. ``no_effect``: LiteLLM keys that turn off or tune something trioproxy does not do at all:
   accepted with a note (``ProxyConfig.notes``, printed by ``trioproxy check``);
4. ``litellm``: a function naming what LiteLLM means by a key trioproxy does not support
   (``litellm_catalog.unsupported_key``): an error saying so, never "did you mean" another key;
5. ``extra="passthrough"``: the rest is passed on (a guardrail's own settings), unless it is a
   likely typo of a field and not one of ``passthrough_known`` (LiteLLM's names);
6. anything else: "unknown key", with the closest known key suggested.

The sections themselves, the configuration reference in code, are in ``schema.py``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "INVALID",
    "Ctx",
    "Section",
    "Validator",
    "describe",
    "v_any",
    "v_any_dict",
    "v_bool",
    "v_choice",
    "v_coordination_redis",
    "v_int",
    "v_list_of",
    "v_list_or_file",
    "v_num",
    "v_port",
    "v_secret",
    "v_str",
    "v_str_or_list",
]

Validator = Callable[[Any, str, "Ctx"], Any]


class Ctx:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []
        self.warnings: list[str] = []
        #: accepted keys that have no effect in trioproxy (not warnings: the meaning is kept)
        self.notes: list[str] = []

    def note(self, path: str, message: str) -> None:
        self.notes.append(f"{self.source}: {path}: {message}")

    def error(self, path: str, message: str) -> None:
        self.problems.append(f"{self.source}: {path or '<top level>'}: {message}")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{self.source}: {path}: {message}")


INVALID = object()


def describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def v_str(value: Any, path: str, ctx: Ctx) -> Any:
    if isinstance(value, str):
        return value
    ctx.error(path, f"expected a string, got {describe(value)}")
    return INVALID


def v_secret(value: Any, path: str, ctx: Ctx) -> Any:
    """A string that is a credential: a wrong value is described by its type only, never shown."""
    if isinstance(value, str):
        return value
    ctx.error(path, f"expected a string, got a value of type {type(value).__name__} (not shown: it is a secret)")
    return INVALID


def v_bool(value: Any, path: str, ctx: Ctx) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    ctx.error(path, f"expected true or false, got {describe(value)}")
    return INVALID


def v_num(minimum: float | None = 0.0, maximum: float | None = None) -> Validator:
    def check(value: Any, path: str, ctx: Ctx) -> Any:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            ctx.error(path, f"expected a number, got {describe(value)}")
            return INVALID
        if minimum is not None and value < minimum:
            ctx.error(path, f"expected a number >= {minimum}, got {value}")
            return INVALID
        if maximum is not None and value > maximum:
            ctx.error(path, f"expected a number <= {maximum}, got {value}")
            return INVALID
        return float(value)

    return check


def v_int(minimum: int | None = 0) -> Validator:
    def check(value: Any, path: str, ctx: Ctx) -> Any:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            ctx.error(path, f"expected a whole number, got {describe(value)}")
            return INVALID
        if minimum is not None and value < minimum:
            ctx.error(path, f"expected a whole number >= {minimum}, got {value}")
            return INVALID
        return value

    return check


def v_choice(*choices: str) -> Validator:
    def check(value: Any, path: str, ctx: Ctx) -> Any:
        if value in choices:
            return value
        ctx.error(path, f"expected one of {', '.join(map(repr, choices))}, got {describe(value)}")
        return INVALID

    return check


def v_str_or_list(value: Any, path: str, ctx: Ctx) -> Any:
    """A string or a list of strings, always returned as a list (the seeds allow both)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            else:
                ctx.error(f"{path}[{i}]", f"expected a string, got {describe(item)}")
        return out
    ctx.error(path, f"expected a string or a list of strings, got {describe(value)}")
    return INVALID


def v_list_or_file(value: Any, path: str, ctx: Ctx) -> Any:
    """A list of strings, or a path to a ``.txt`` file with one entry per line (kept as a path)."""
    if isinstance(value, str):
        return value
    return v_str_or_list(value, path, ctx)


def v_any_dict(value: Any, path: str, ctx: Ctx) -> Any:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    ctx.error(path, f"expected a mapping, got {describe(value)}")
    return INVALID


def v_any(value: Any, path: str, ctx: Ctx) -> Any:
    return value


@dataclass
class Section:
    """A mapping with known keys. ``extra`` decides what happens to other keys."""

    fields: dict[str, Validator]
    required: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    unsupported: tuple[str, ...] | frozenset[str] = ()   # documented by the seeds, accepted with a warning
    extra: str = "error"                # "error" | "passthrough"
    #: the warning for an unsupported key (default: "accepted for compatibility…")
    unsupported_note: str | None = None
    #: keep unsupported keys' values under ``"__unsupported__"`` (e.g. to feed the secret scrubber)
    keep_unsupported: bool = False
    #: what an unknown key's error says instead of listing every known key (long sections)
    known_hint: str | None = None
    #: LiteLLM keys with no effect in trioproxy → why (accepted, with a note)
    no_effect: Mapping[str, str] = field(default_factory=dict)
    #: the error for a LiteLLM key trioproxy does not support, or None (``litellm_catalog``)
    litellm: Callable[[str], str | None] | None = None
    #: with ``extra="passthrough"``: names passed on even when they look like a field's typo
    passthrough_known: frozenset[str] = frozenset()

    def __call__(self, value: Any, path: str, ctx: Ctx) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            ctx.error(path, f"expected a mapping, got {describe(value)}")
            return INVALID
        out: dict[str, Any] = {}
        extras: dict[str, Any] = {}
        unsupported: dict[str, Any] = {}
        for raw_key, item in value.items():
            key = self.aliases.get(raw_key, raw_key)
            sub = f"{path}.{raw_key}" if path else str(raw_key)
            if key in self.fields:
                checked = self.fields[key](item, sub, ctx)
                if checked is not INVALID:
                    out[key] = checked
            elif key in self.unsupported:
                ctx.warn(sub, self.unsupported_note or
                         "accepted for compatibility with the seeds' configs, but not implemented by trioproxy (ignored)")
                if self.keep_unsupported:
                    unsupported[key] = item
            elif key in self.no_effect:
                ctx.note(sub, f"LiteLLM's {raw_key!r} has no effect here: {self.no_effect[key]}")
            elif (message := self.litellm(str(key)) if self.litellm is not None else None) is not None:
                ctx.error(sub, message)
            else:
                candidates = list(self.fields) + list(self.aliases) + list(self.unsupported)
                close = difflib.get_close_matches(str(key), candidates, n=1, cutoff=0.75)
                if self.extra == "passthrough" and (not close or key in self.passthrough_known):
                    extras[key] = item
                    continue
                hint = f"; did you mean {close[0]!r}?" if close else ""
                known = self.known_hint or f"known keys: {', '.join(sorted(self.fields))}"
                ctx.error(sub, f"unknown key {raw_key!r}{hint} ({known})")
        for key in self.required:
            if key not in out and not any(self.aliases.get(k) == key for k in value if k in self.aliases):
                if key not in value:
                    ctx.error(f"{path}.{key}" if path else key, "is required")
        if self.extra == "passthrough":
            out["__extra__"] = extras
        if self.keep_unsupported:
            out["__unsupported__"] = unsupported
        return out


def v_list_of(item: Validator) -> Validator:
    def check(value: Any, path: str, ctx: Ctx) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            ctx.error(path, f"expected a list, got {describe(value)}")
            return INVALID
        out = []
        for i, element in enumerate(value):
            checked = item(element, f"{path}[{i}]", ctx)
            if checked is not INVALID:
                out.append(checked)
        return out

    return check


def v_coordination_redis(value: Any, path: str, ctx: Ctx) -> Any:
    """A Redis URL, a mapping (``url`` or ``host``/``port``/``password`` …), or a boolean
    (``false``: no shared state even when Redis is configured elsewhere). The details are checked by
    ``coordination/settings.py`` when the proxy is built; a URL holds a password: never shown."""
    if isinstance(value, str | bool | dict):
        return value
    ctx.error(path, f"expected a Redis URL, a mapping (host, port, password …) or false, got a value of type "
                    f"{type(value).__name__}")
    return INVALID


def v_port(value: Any, path: str, ctx: Ctx) -> Any:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    ctx.error(path, f"expected a port number between 1 and 65535, got {describe(value)}")
    return INVALID
