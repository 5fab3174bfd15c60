"""``logprobs`` in OpenAI's shapes (chat: ``logprobs``/``top_logprobs``; completions: ``logprobs: k``), and
the pieces (one per token, here a word) an answer is streamed and scored in."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

from ...errors import BadRequestError
from .reply import int_param

__all__ = ["chat_logprobs", "chunks", "completion_logprobs", "top_logprobs"]


def top_logprobs(body: dict[str, Any], chat: bool) -> int | None:
    """How many alternatives per token the client asked for; None when it asked for no logprobs."""
    if not chat:                                            # completions: ``logprobs: k`` (0..5)
        return None if body.get("logprobs") is None else int_param(body, "logprobs", 0, 0, 5)
    top = int_param(body, "top_logprobs", 0, 0, 20)
    wanted = body.get("logprobs")
    if wanted is not None and not isinstance(wanted, bool):
        raise BadRequestError(f"Invalid type for 'logprobs': expected a boolean, got {type(wanted).__name__}.",
                              param="logprobs", code="invalid_type")
    if not wanted:
        if top:
            raise BadRequestError("'top_logprobs' needs 'logprobs': true.", param="top_logprobs", code="invalid_value")
        return None
    return top


def _logprob(token: str, rank: int = 0) -> float:
    return round(-1.0 - hashlib.sha256(token.encode()).digest()[0] / 256 - rank, 4)


def _alternatives(token: str, top: int) -> list[str]:
    return [token, *(f"{token}~{rank}" for rank in range(1, top))][:top]


def chat_logprobs(pieces: list[str], top: int) -> dict[str, Any]:
    return {"content": [{"token": piece, "logprob": _logprob(piece), "bytes": list(piece.encode()),
                         "top_logprobs": [{"token": alt, "logprob": _logprob(piece, rank), "bytes": list(alt.encode())}
                                          for rank, alt in enumerate(_alternatives(piece, top))]}
                        for piece in pieces],
            "refusal": None}


def completion_logprobs(pieces: list[str], top: int, offset: int = 0) -> dict[str, Any]:
    return {"tokens": pieces, "token_logprobs": [_logprob(piece) for piece in pieces],
            "top_logprobs": [{alt: _logprob(piece, rank) for rank, alt in enumerate(_alternatives(piece, top))}
                             for piece in pieces],
            "text_offset": list(itertools.accumulate((len(piece) for piece in pieces[:-1]), initial=offset))}


def chunks(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]
