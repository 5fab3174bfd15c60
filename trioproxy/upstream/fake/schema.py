"""A value that satisfies a JSON schema: what the fake "model" answers to tools and ``response_format``.

Deterministic and dependency-free: enough of JSON Schema for the shapes clients send (instructor's
Pydantic models, the OpenAI SDK's ``parse``), see :func:`schema_instance`.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["schema_instance"]

_FORMATS = {"date-time": "2024-01-01T00:00:00Z", "date": "2024-01-01", "time": "00:00:00Z",
            "email": "fake@example.com", "uri": "https://example.com/", "uuid": "00000000-0000-4000-8000-000000000000"}
#: nesting past which an optional branch (``anyOf`` with null) is left empty so recursive ``$ref``s
#: end; twice that is the hard stop (objects empty, arrays at ``minItems``)
_SCHEMA_DEPTH = 16


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(schema: dict[str, Any], integer: bool) -> int | float:
    value: float = 0
    low, high = schema.get("minimum"), schema.get("maximum")
    xlow, xhigh = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    step = 1 if integer else 0.5
    if _is_number(low) and value < low:
        value = low
    if _is_number(xlow) and value <= xlow:
        value = xlow + step
    if _is_number(high) and value > high:
        value = high
    if _is_number(xhigh) and value >= xhigh:
        value = xhigh - step
    if not integer:
        return value
    up = math.ceil(value)
    return int(up if not (_is_number(high) and up > high) else math.floor(value))


def _resolve(root: Any, ref: str) -> dict[str, Any] | None:
    """A local ``$ref`` (``#/$defs/X``, ``#/definitions/X``, ``#``); remote ones are not followed."""
    if not ref.startswith("#"):
        return None
    node = root
    for part in ref[1:].split("/")[1:]:
        node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def schema_instance(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """A value valid against the JSON ``schema`` as far as simple keywords go: ``type`` (first non-null
    of a list), ``properties`` (every one filled, required or not), ``items``/``prefixItems``,
    ``enum``, ``const``, ``anyOf``/``oneOf`` (first non-null option), ``allOf`` (merged), local
    ``$ref``, ``minimum``/``maximum`` (and exclusive), ``minItems``/``maxItems``,
    ``minLength``/``maxLength`` and common string ``format``s. ``pattern`` and ``multipleOf`` are not
    honoured. Deterministic: strings are "fake", numbers 0 (or the nearest bound), booleans true."""
    root = schema if root is None else root
    if not isinstance(schema, dict):
        return None                                         # a boolean schema: ``true`` accepts null
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if isinstance(schema.get("$ref"), str) and depth < 2 * _SCHEMA_DEPTH:
        target = _resolve(root, schema["$ref"])
        if target is not None:
            return schema_instance(target, root, depth + 1)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            rest = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            if len(rest) < len(options) and depth >= _SCHEMA_DEPTH:
                return None
            return schema_instance(rest[0] if rest else options[0], root, depth + 1)
    if isinstance(schema.get("allOf"), list) and schema["allOf"]:
        parts = [schema_instance(part, root, depth + 1) for part in schema["allOf"]]
        if all(isinstance(part, dict) for part in parts):
            return {k: v for part in parts for k, v in part.items()}
        return parts[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        if "default" in schema:
            return schema["default"]
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, dict) or depth >= 2 * _SCHEMA_DEPTH:
            return {}
        return {name: schema_instance(sub, root, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        low = schema.get("minItems") if isinstance(schema.get("minItems"), int) else 0
        high = schema.get("maxItems") if isinstance(schema.get("maxItems"), int) else None
        count = low if depth >= 2 * _SCHEMA_DEPTH else max(low, 1) if high is None else min(max(low, 1), high)
        prefix = schema.get("prefixItems") if isinstance(schema.get("prefixItems"), list) else []
        return [schema_instance(prefix[i] if i < len(prefix) else schema.get("items", {}), root, depth + 1)
                for i in range(count)]
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    text = _FORMATS.get(schema.get("format"), "fake")
    min_length, max_length = schema.get("minLength"), schema.get("maxLength")
    if isinstance(min_length, int) and len(text) < min_length:
        text += "x" * (min_length - len(text))
    if isinstance(max_length, int):
        text = text[:max_length]
    return text
