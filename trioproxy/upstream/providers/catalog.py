"""Model facts from the packaged price table that are not prices (``max_output_tokens``).

The refreshed ``trioproxy/data/model_prices.json`` carries, next to each model's prices, the
``max_output_tokens`` LiteLLM's table lists. Anthropic's Messages API requires ``max_tokens``; like
LiteLLM, the Anthropic and Bedrock adapters default it to the model's maximum when known
(:data:`DEFAULT_MAX_TOKENS` otherwise). The file is read once, when this module is imported (at
startup), never on the Trio thread while serving.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

__all__ = ["DEFAULT_MAX_TOKENS", "max_output_tokens"]

DEFAULT_MAX_TOKENS = 4096


@functools.cache
def _models() -> dict[str, Any]:
    ref = resources.files("trioproxy").joinpath("data", "model_prices.json")
    data = json.loads(ref.read_text(encoding="utf-8"))
    models = data.get("models") if isinstance(data, dict) else None
    return {str(k).lower(): v for k, v in models.items()} if isinstance(models, dict) else {}


_MODELS = _models()


def max_output_tokens(model: str) -> int | None:
    """The model's output limit, trying the name, then without ``provider/`` prefixes."""
    name = model.strip().lower()
    models = _MODELS
    while name:
        entry = models.get(name)
        if isinstance(entry, dict) and isinstance(entry.get("max_output_tokens"), int):
            return int(entry["max_output_tokens"])
        _, sep, rest = name.partition("/")
        if not sep:
            return None
        name = rest
    return None
