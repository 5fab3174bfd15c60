"""The fake provider's embeddings, in OpenAI's shapes (float or base64, token-id inputs, ``dimensions``)."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

import trio

from ...errors import BadRequestError
from .reply import count_tokens, int_param

__all__ = ["DEFAULT_DIMENSIONS", "MAX_DIMENSIONS", "MAX_EMBEDDING_INPUTS", "embeddings"]

#: OpenAI's limits on one embeddings request; the fake's vectors are short unless ``dimensions`` asks
MAX_EMBEDDING_INPUTS = 2048
MAX_DIMENSIONS = 3072
DEFAULT_DIMENSIONS = 16


def _is_tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and \
        all(isinstance(t, int) and not isinstance(t, bool) for t in value)


def _embedding_inputs(value: Any) -> list[tuple[str, int]]:
    """``input`` as (seed, token count) per embedding, in OpenAI's four shapes; else a 400."""
    if isinstance(value, str):
        return [(value, count_tokens(value))]
    if _is_tokens(value):                                   # one token-id array is ONE input
        return [("tokens:" + ",".join(map(str, value)), len(value))]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return [(v, count_tokens(v)) for v in value]
    if isinstance(value, list) and value and all(_is_tokens(v) for v in value):
        return [("tokens:" + ",".join(map(str, v)), len(v)) for v in value]
    raise BadRequestError("Invalid 'input': expected a string, an array of strings, an array of token ids "
                          "(integers) or an array of token-id arrays, none of them empty.",
                          param="input", code="invalid_type")


def _embedding(text: str, dims: int = DEFAULT_DIMENSIONS) -> list[float]:
    """A unit vector seeded by ``text`` (like OpenAI's, length 1), made of float32 numbers: the JSON
    floats and the base64 bytes of one vector decode to exactly the same values."""
    blocks = -(-dims * 2 // 32)
    digest = b"".join(hashlib.sha256(text.encode() + (i.to_bytes(4, "little") if i else b"")).digest()
                      for i in range(blocks))
    raw = [v / 32768.0 - 1.0 for v in struct.unpack(f">{dims}H", digest[: dims * 2])]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return list(struct.unpack(f"<{dims}f", struct.pack(f"<{dims}f", *(v / norm for v in raw))))


async def embeddings(body: dict[str, Any], model: str) -> dict[str, Any]:
    items = _embedding_inputs(body.get("input"))
    if len(items) > MAX_EMBEDDING_INPUTS:
        raise BadRequestError(f"Invalid 'input': at most {MAX_EMBEDDING_INPUTS} inputs per request, got {len(items)}.",
                              param="input", code="array_above_max_length")
    dims = int_param(body, "dimensions", DEFAULT_DIMENSIONS, 1, MAX_DIMENSIONS)
    encoding = body.get("encoding_format")
    if encoding not in (None, "float", "base64"):
        raise BadRequestError(f"Invalid value for 'encoding_format': expected 'float' or 'base64', got {encoding!r}.",
                              param="encoding_format", code="invalid_value")
    data: list[dict[str, Any]] = []
    for i, (seed, _) in enumerate(items):
        vector: Any = _embedding(seed, dims)
        if encoding == "base64":                            # OpenAI's bytes: little-endian float32
            vector = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": vector})
        if i % 64 == 63:                                    # 2,048 long vectors: let others run
            await trio.lowlevel.checkpoint()
    tokens = max(1, sum(count for _, count in items))
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
