"""Edits of request and answer bodies the pipeline makes: a private copy of a request, the proxy's
id spliced into an upstream's JSON answer. Kept apart from ``core/pipeline.py`` (which sequences a
request) because they are pure functions over bytes and dicts, tested on their own."""

from __future__ import annotations

import copy
from typing import Any

import orjson

__all__ = ["copy_request", "with_id"]


def copy_request(data: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON request; through orjson (C) when it is plain JSON, which it nearly always is."""
    try:
        return orjson.loads(orjson.dumps(data))
    except TypeError:
        return copy.deepcopy(data)


def with_id(raw: bytes, parsed: dict[str, Any], new: str) -> bytes:
    """The upstream's JSON body with its top-level ``id`` replaced by the proxy's request id.

    The bytes stay as the upstream sent them (a splice) when ``"id": "<old>"`` occurs exactly once;
    otherwise the parsed body is re-encoded. Why the proxy's id: it is the spend record's key and is
    known before the upstream answers; upstream ids are not unique (docs/spend.md)."""
    old = parsed.get("id")
    parsed["id"] = new
    if isinstance(old, str):
        encoded = orjson.dumps(old)
        for needle in (b'"id":' + encoded, b'"id": ' + encoded):
            if raw.count(needle) == 1:
                return raw.replace(needle, needle[:-len(encoded)] + orjson.dumps(new))
    return orjson.dumps(parsed)
