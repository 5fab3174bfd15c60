"""The built-in ``fake/…`` provider: deterministic OpenAI-shaped answers, no network.

It produces the same bytes a real upstream would (JSON bodies, SSE streams), so everything after
the provider — hooks, streaming, logging — runs exactly as with a real one. Demos and benchmarks
use it; knobs in ``litellm_params``:

* ``mock_response``: the assistant's text (default: a sentence echoing the last user message);
* ``latency``: seconds before the answer (or before the stream's first chunk);
* ``chunk_latency``: seconds between stream chunks;
* ``fail_rate`` (0..1) and ``fail_status`` (default 500): error injection. Failures are chosen by a
  counter, not a random draw, so a rate of 0.25 fails exactly every 4th request: tests and demos
  stay deterministic.

What clients depend on behaves as OpenAI's API does (issue #15), deterministically:

* ``tools``: the answer is a call of the first function tool (or of the one ``tool_choice`` names),
  with arguments built from its JSON schema (:func:`schema_instance`), ``finish_reason:
  "tool_calls"``; streamed as OpenAI streams tool calls. ``tool_choice: "none"``, or a last message
  that is a tool's result (with ``tool_choice`` auto), gets text instead, so agent loops end;
* ``response_format``: ``json_schema`` answers an instance of the schema; ``json_object`` answers
  an instance of the first JSON schema found in the messages (what instructor's JSON mode sends),
  else ``{"answer": <the usual text>}``;
* ``n`` choices (streamed one choice per chunk, as OpenAI does), ``logprobs`` / ``top_logprobs``
  (chat) and ``logprobs: k`` (completions) in OpenAI's shapes;
* embeddings: ``input`` as a string, strings, one token-id array or token-id arrays (at most 2,048
  inputs), ``dimensions``, ``encoding_format: "base64"`` (little-endian float32, what the Node SDK
  asks by default); unit-length vectors whose float and base64 forms are the same float32 numbers.

A ``mock_response`` (the deployment's, or the request's) always wins: tools and ``response_format``
then get that text.

Modules: ``provider.py`` (the provider and its streams), ``mock.py`` (``mock_response`` answered
locally for every other provider, as LiteLLM does), ``reply.py`` (what the "model" says),
``schema.py`` (a value valid against a JSON schema), ``embeddings.py``, ``logprobs.py``.
"""

from .embeddings import MAX_EMBEDDING_INPUTS
from .mock import MockingProvider
from .provider import FakeProvider, FakeStream
from .schema import schema_instance

__all__ = ["MAX_EMBEDDING_INPUTS", "FakeProvider", "FakeStream", "MockingProvider", "schema_instance"]
