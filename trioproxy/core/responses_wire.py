"""``POST /v1/responses``: translated to a chat completion first, answered in the Responses API's shape.

OpenAI's Responses API (the Vercel AI SDK's default, new OpenAI examples) is served on top of the
chat pipeline, in this order, so that nothing of the chat path is skipped:

1. the Responses body is translated to a chat completions body (``responses_api.to_chat_request``:
   a 400 naming the field for what cannot be translated);
2. from then on the request *is* a chat completion: the same pre-call, moderation, post-call,
   streaming and failure hooks run on the chat body (``call_type`` ``completion``), so a guardrail
   that reads ``messages`` sees the text a client sent as ``input`` and cannot be bypassed; the
   same routing, retries, cache, logging and cost (the upstream's chat usage);
3. the answer is written in the Responses shape: a whole answer with
   ``chat_response_to_response``, a stream event by event with a ``ResponsesStreamTranslator``
   (this module's :class:`ResponsesWire` is the relay's encoder), an error as the same OpenAI
   envelope (before the first byte) or an ``error`` + ``response.failed`` pair (after it).

This is the path of every request that ``core/responses_native.py`` does not forward untranslated
(a deployment without a native ``/v1/responses``, or a hook that reads only chat bodies). A
translated request using what only OpenAI's own Responses API has (built-in tools,
``previous_response_id``) is a 400 naming the field.

``max_output_tokens`` becomes ``max_completion_tokens`` when every deployment of the model is at
OpenAI itself (its reasoning models refuse ``max_tokens``), ``max_tokens`` otherwise (what every
OpenAI-compatible server takes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import ProxyError
from ..responses_api import (
    ResponsesStreamTranslator,
    chat_response_to_response,
    encode_events,
    to_chat_request,
)
from ..responses_api.route import OPENAI_API_HOST

if TYPE_CHECKING:
    from ..config import Deployment

__all__ = ["ResponsesWire"]


def _at_openai(deployment: Deployment) -> bool:
    return deployment.provider == "openai" and OPENAI_API_HOST in (deployment.api_base or "")


class ResponsesWire:
    """One ``/v1/responses`` request: its translation, and the encoding of its answer."""

    def __init__(self, request: dict[str, Any], *, response_id: str | None = None) -> None:
        self.request = request
        #: the Responses object's ``id``: the request's id (the spend record's key), or a new one
        self.response_id = response_id
        self._translator: ResponsesStreamTranslator | None = None

    def chat_body(self, deployments: Sequence[Deployment]) -> dict[str, Any]:
        """The chat completions body the rest of the pipeline serves (a 400 for what cannot be translated)."""
        field = "max_completion_tokens" if deployments and all(map(_at_openai, deployments)) else "max_tokens"
        return to_chat_request(self.request, max_tokens_field=field)

    def whole(self, chat_answer: Any) -> bytes:
        """A whole chat answer (after the post-call hooks) as the Responses ``response`` object."""
        return orjson.dumps(chat_response_to_response(chat_answer, self.request, response_id=self.response_id))

    # -- the stream relay's encoder (core/relay.py) -------------------------------------------------
    @property
    def translator(self) -> ResponsesStreamTranslator:
        if self._translator is None:
            self._translator = ResponsesStreamTranslator(self.request, response_id=self.response_id)
        return self._translator

    def chunk(self, chunk: Any) -> bytes:
        return encode_events(self.translator.feed(chunk))

    def done(self) -> bytes:
        return encode_events(self.translator.finish())

    def error(self, error: ProxyError) -> bytes:
        return encode_events(self.translator.fail(error))

    def chunks(self, chunks: Sequence[Any]) -> bytes:
        """Several chunks and the end (a pre-call hook's text streamed as the answer)."""
        return b"".join(self.chunk(c) for c in chunks) + self.done()
