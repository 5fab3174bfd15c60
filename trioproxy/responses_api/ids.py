"""Ids of translated responses, shaped like OpenAI's: ``resp_…``, ``msg_…``, ``fc_…``, ``rs_…``, ``call_…``.

OpenAI's ids are a prefix and 48 hex digits; clients treat them as opaque strings but some log or
match the prefix (the Vercel AI SDK keeps ``msg_…`` item ids to send back as ``item_reference``).
The prefix says what an id names, which is how :func:`is_reasoning_item_id` can tell that a
reference points at a reasoning item (the request translator drops those: see ``request.py``).

Every translator takes an ``new_id`` callable so tests can make ids deterministic; the default draws
192 random bits, so ids never collide across processes or restarts.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

__all__ = [
    "CALL",
    "FUNCTION_CALL",
    "MESSAGE",
    "REASONING",
    "RESPONSE",
    "IdFactory",
    "is_reasoning_item_id",
    "new_id",
]

RESPONSE = "resp"
MESSAGE = "msg"
FUNCTION_CALL = "fc"
REASONING = "rs"
#: a function call's ``call_id`` when the upstream's chat tool call came without an ``id``
CALL = "call"

#: ``new_id(prefix) -> "prefix_…"``
IdFactory = Callable[[str], str]


def new_id(prefix: str) -> str:
    """``prefix_`` and 48 random hex digits, as OpenAI's ids look."""
    return f"{prefix}_{secrets.token_hex(24)}"


def is_reasoning_item_id(item_id: str) -> bool:
    """Whether ``item_id`` names a reasoning item (OpenAI's and ours start with ``rs_``)."""
    return item_id.startswith(REASONING + "_")
