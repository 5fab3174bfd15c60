"""Model prefixes → adapters, and the ``litellm_params`` each provider reads.

The wiring (config validation and the router's provider map) uses :data:`ADAPTERS` for the
prefixes it accepts and :func:`settings_names` for the ``litellm_params`` allowlist of each prefix.
"""

from __future__ import annotations

from .adapter import Adapter
from .anthropic import AnthropicAdapter
from .azure import AzureAdapter
from .bedrock import BedrockAdapter
from .gemini import GeminiAdapter
from .ollama import OllamaAdapter
from .openai_like import PRESETS, OpenAICompatibleAdapter
from .vertex import VertexAdapter

__all__ = ["ADAPTERS", "settings_names"]

_presets = OpenAICompatibleAdapter()
_ollama = OllamaAdapter()

ADAPTERS: dict[str, Adapter] = {
    "anthropic": AnthropicAdapter(),
    "azure": AzureAdapter(),
    "bedrock": BedrockAdapter(),
    "gemini": GeminiAdapter(),
    "vertex_ai": VertexAdapter(),
    "ollama": _ollama,
    "ollama_chat": _ollama,
    **{prefix: _presets for prefix in PRESETS},
}


def settings_names(prefix: str) -> frozenset[str]:
    """The ``litellm_params`` (besides the common ones) that a deployment of ``prefix`` may set."""
    return ADAPTERS[prefix].settings_names
