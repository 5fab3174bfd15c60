"""``general_settings.pass_through_endpoints``: validated entries → :class:`PassThroughEndpoint`.

LiteLLM's fields (``path``, ``target``, ``headers``, ``forward_headers``, ``auth``,
``include_subpath``, ``methods``, ``default_query_params``, ``timeout``, ``cost_per_request``);
what the forwarder does with them is ``http/passthrough.py``'s and ``docs/access.md``'s. Checked
here, once, so that a bad entry is a startup error naming it rather than a surprise per request:

* ``path`` is a literal path in its normalised spelling (``/bria``, not ``/bria/``, ``//bria``,
  ``/a/../bria`` or ``/bri%61``): the router matches the normalised request path against it, so
  another spelling could never match.
* ``target`` is an ``http``/``https`` URL with a host and no credentials in it (credentials go in
  ``headers``, where they are known secrets) and no fragment.
* Header names are HTTP tokens and values have no line breaks (no header injection from a
  config value). ``os.environ/NAME`` may also appear *inside* a value, as LiteLLM's docs write it
  (``Authorization: "Bearer os.environ/COHERE_API_KEY"``); a missing variable is an error.
* The same (path, method) twice is an error: which target answers would be a coin toss.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

from .model import PassThroughEndpoint
from .validators import Ctx, describe

__all__ = ["PASS_THROUGH_METHODS", "build_pass_through"]

#: what ``methods`` may name; the default is LiteLLM's (every method but HEAD and OPTIONS)
PASS_THROUGH_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_DEFAULT_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_EMBEDDED_ENV = re.compile(r"os\.environ/([A-Za-z_][A-Za-z0-9_]*)")
_BAD_PATH_CHARS = re.compile(r"[\x00-\x20\x7f%?#*{}\\]")
#: header names whose values are credentials (the same rule as a deployment's extra_headers)
_SECRET_HEADER = re.compile(r"(auth|authorization|key|token|secret|password|passwd|cookie)$", re.IGNORECASE)


def _path(value: Any, where: str, ctx: Ctx) -> str | None:
    if not isinstance(value, str) or not value.startswith("/") or value == "/":
        ctx.error(where, f"expected a path below '/' such as '/bria', got {describe(value)}")
        return None
    segments = value[1:].split("/")
    if _BAD_PATH_CHARS.search(value) or any(s in ("", ".", "..") for s in segments):
        ctx.error(where, f"{value!r} is not a plain path: write it as requests are matched, without '//', "
                         "'.', '..', a trailing '/', '%', '?', '#', '*', '{', '}', spaces or backslashes")
        return None
    return value


def _target(value: Any, where: str, ctx: Ctx) -> str | None:
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
        if parts is not None:
            _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        ctx.error(where, f"expected an http:// or https:// URL with a host, got {describe(value)}")
        return None
    if "@" in parts.netloc:
        ctx.error(where, "must not carry credentials (user:password@): put them in the endpoint's headers, "
                         "where they are kept secret")
        return None
    if parts.fragment or value.endswith("#"):
        ctx.error(where, "must not have a fragment ('#…')")
        return None
    return value


def _expand_env(value: str, where: str, ctx: Ctx, secrets: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            ctx.error(where, f"environment variable {name!r} is not set (referenced as 'os.environ/{name}')")
            return ""
        secrets.append(os.environ[name])
        return os.environ[name]

    return _EMBEDDED_ENV.sub(replace, value)


def _headers(value: Any, where: str, ctx: Ctx, secrets: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        ctx.error(where, f"expected a mapping of header names to values, got {describe(value)}")
        return {}
    out: dict[str, str] = {}
    for name, raw in value.items():
        sub = f"{where}.{name}"
        if not isinstance(name, str) or not _TOKEN.match(name):
            ctx.error(sub, "is not a valid HTTP header name")
            continue
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            ctx.error(sub, f"expected a string, got a value of type {type(raw).__name__}")
            continue
        text = _expand_env(str(raw), sub, ctx, secrets)
        if "\r" in text or "\n" in text or "\x00" in text:
            ctx.error(sub, "must not contain line breaks or NUL")
            continue
        if text and _SECRET_HEADER.search(name):
            secrets.append(text)
            scheme, space, token = text.partition(" ")
            if space and scheme.lower() in ("bearer", "basic", "token") and token.strip():
                secrets.append(token.strip())
        out[name] = text
    return out


def _methods(value: Any, where: str, ctx: Ctx) -> tuple[str, ...]:
    if value is None or value == []:
        return _DEFAULT_METHODS
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(m, str) for m in items):
        ctx.error(where, f"expected a list of HTTP methods, got {describe(value)}")
        return _DEFAULT_METHODS
    methods = tuple(dict.fromkeys(m.strip().upper() for m in items))
    bad = [m for m in methods if m not in PASS_THROUGH_METHODS]
    if bad:
        ctx.error(where, f"unknown method(s) {', '.join(bad)}; allowed: {', '.join(PASS_THROUGH_METHODS)}")
    return methods


def _query(value: Any, where: str, ctx: Ctx) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        ctx.error(where, f"expected a mapping of query parameters, got {describe(value)}")
        return {}
    out = {}
    for name, raw in value.items():
        if isinstance(raw, bool):
            raw = "true" if raw else "false"
        if not isinstance(raw, str | int | float):
            ctx.error(f"{where}.{name}", f"expected a string or number, got {describe(raw)}")
            continue
        out[str(name)] = str(raw)
    return out


def build_pass_through(entries: list[dict[str, Any]], default_timeout: float,
                       ctx: Ctx) -> tuple[PassThroughEndpoint, ...]:
    """The typed endpoints of the schema-checked entries; problems go to ``ctx``."""
    endpoints: list[PassThroughEndpoint] = []
    seen: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(entries):
        where = f"general_settings.pass_through_endpoints[{index}]"
        secrets: list[str] = []
        path = _path(entry.get("path"), f"{where}.path", ctx)
        target = _target(entry.get("target"), f"{where}.target", ctx)
        headers = _headers(entry.get("headers"), f"{where}.headers", ctx, secrets)
        methods = _methods(entry.get("methods"), f"{where}.methods", ctx)
        query = _query(entry.get("default_query_params"), f"{where}.default_query_params", ctx)
        if path is None or target is None:
            continue
        for method in methods:
            other = seen.setdefault((path, method), index)
            if other != index:
                ctx.error(f"{where}.path", f"{method} {path} is already served by pass_through_endpoints[{other}]")
        timeout = entry.get("timeout")
        endpoints.append(PassThroughEndpoint(
            path=path,
            target=target,
            headers=headers,
            forward_headers=bool(entry.get("forward_headers", False)),
            auth=bool(entry.get("auth", True)),
            include_subpath=bool(entry.get("include_subpath", False)),
            methods=methods,
            default_query_params=query,
            timeout=float(timeout) if timeout is not None else default_timeout,
            cost_per_request=float(entry.get("cost_per_request", 0.0)),
            secret_values=tuple(secrets),
        ))
    return tuple(endpoints)
