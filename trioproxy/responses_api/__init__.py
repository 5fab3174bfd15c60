"""OpenAI's Responses API (``POST /v1/responses``) on top of chat completions: pure translation.

No I/O, no clock or randomness that cannot be injected: the endpoint's wiring calls these.

Request: :func:`to_chat_request` (a Responses body → a chat completions body, or a
``BadRequestError`` naming the field). Whole answers: :func:`chat_response_to_response`. Streams:
:class:`ResponsesStreamTranslator` (chat chunks in, Responses events out; :func:`encode_events`
frames them as server-sent events). Which deployments skip all this and forward the body to a
native ``/v1/responses``: :func:`responses_route`. Usage both ways (cost and logging of native
answers): :func:`responses_usage`, :func:`chat_usage`.

What is translated, ignored or refused, and why: ``docs/responses_api.md`` and ``request.py``.
"""

from .ids import new_id
from .request import (
    BUILTIN_ITEM_TYPES,
    BUILTIN_TOOL_TYPES,
    IGNORED,
    PASSED,
    REFUSED,
    TRANSLATED,
    referenced_item_ids,
    to_chat_request,
)
from .response import chat_response_to_response, referenceable_items, response_object
from .route import ResponsesRoute, responses_route
from .stream import ResponsesStreamTranslator, encode_event, encode_events
from .usage import chat_usage, responses_usage

__all__ = [
    "BUILTIN_ITEM_TYPES",
    "BUILTIN_TOOL_TYPES",
    "IGNORED",
    "PASSED",
    "REFUSED",
    "TRANSLATED",
    "ResponsesRoute",
    "ResponsesStreamTranslator",
    "chat_response_to_response",
    "chat_usage",
    "encode_event",
    "encode_events",
    "new_id",
    "referenceable_items",
    "referenced_item_ids",
    "response_object",
    "responses_route",
    "responses_usage",
    "to_chat_request",
]
