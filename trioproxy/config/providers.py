"""The providers a deployment's ``model`` may name by prefix, and the ``litellm_params`` each reads.

Why a table here and not a look at the adapters: the config layer sits below ``upstream`` (README "How
it is built") and cannot import the adapters, yet it must know, while validating, which prefixes exist
and which settings a provider takes. So this is a mirror, as data, of
``upstream/providers/registry.py`` — the adapters stay the truth (each declares the settings its
``configure`` reads in ``settings_names``) and ``tests/config/test_provider_catalog.py`` fails the
moment the two differ.

Rules the schema applies with it (``schema.py``, ``build.py``; docs/providers.md):

* ``model: <prefix>/<name>`` is accepted for :data:`BUILTIN` and every prefix of :data:`NATIVE`;
* a provider setting (:data:`PROVIDER_SETTING_NAMES`) is validated as a string and kept in the
  deployment's ``provider_params``, never sent in a request body; on a deployment whose provider does
  not read it (``api_version`` on an ``anthropic/`` model) it is ignored with a warning naming the
  providers that do — LiteLLM ignores it too, so such configs keep loading;
* ``drop_params`` / ``additional_drop_params`` (LiteLLM's parameter policy) are read by every native
  provider, and ``additional_drop_params`` by the built-in ones too (:data:`POLICY_SETTINGS`).
"""

from __future__ import annotations

__all__ = [
    "BUILTIN",
    "NATIVE",
    "POLICY_SETTINGS",
    "PROVIDER_SETTING_NAMES",
    "PROVIDERS",
    "providers_reading",
]

#: providers built into the proxy itself (``upstream/http11``, ``upstream/fake.py``)
BUILTIN = ("openai", "fake")

_KEY_AND_BASE = frozenset({"api_base", "api_key"})

#: prefix → the ``litellm_params`` its adapter reads (``Adapter.settings_names``)
NATIVE: dict[str, frozenset[str]] = {
    "anthropic": _KEY_AND_BASE,
    "azure": _KEY_AND_BASE | {"api_version", "azure_ad_token", "base_model"},
    "bedrock": _KEY_AND_BASE | {"aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                                "aws_region_name", "aws_profile_name", "aws_bedrock_runtime_endpoint"},
    "gemini": _KEY_AND_BASE,
    "vertex_ai": frozenset({"api_base", "vertex_project", "vertex_location", "vertex_credentials",
                            "vertex_ai_project", "vertex_ai_location"}),
    "ollama": _KEY_AND_BASE,
    "ollama_chat": _KEY_AND_BASE,
    # OpenAI-compatible presets (``upstream/providers/openai_like.py``)
    **dict.fromkeys(("groq", "mistral", "deepseek", "together_ai", "fireworks_ai", "openrouter", "xai",
                     "perplexity", "hosted_vllm", "lm_studio", "huggingface"), _KEY_AND_BASE),
}

#: every prefix a ``model`` may start with
PROVIDERS: tuple[str, ...] = (*BUILTIN, *sorted(NATIVE))

#: LiteLLM's parameter policy: every native provider applies it; for ``openai/`` and ``fake/`` the
#: router drops what ``additional_drop_params`` lists (docs/providers.md)
POLICY_SETTINGS = frozenset({"drop_params", "additional_drop_params"})

#: provider settings beyond the common ones (``api_base``, ``api_key``): kept as ``provider_params``
PROVIDER_SETTING_NAMES: frozenset[str] = frozenset().union(*NATIVE.values()) - _KEY_AND_BASE


def providers_reading(setting: str) -> list[str]:
    """The prefixes whose provider reads ``setting`` (for the warning when another does not)."""
    return sorted(prefix for prefix, names in NATIVE.items() if setting in names)
