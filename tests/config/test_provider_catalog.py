"""The config's provider table (``config/providers.py``) mirrors the adapters (``upstream/providers``).

The config layer cannot import the adapters (it sits below them), so it keeps the prefixes and each
provider's ``litellm_params`` as data; these tests fail the moment the two differ.
"""

from __future__ import annotations

from trioproxy.config.providers import BUILTIN, NATIVE, POLICY_SETTINGS, PROVIDERS
from trioproxy.upstream.providers.params import NEVER_FORWARDED
from trioproxy.upstream.providers.registry import ADAPTERS, settings_names


def test_every_adapter_prefix_and_only_those() -> None:
    assert set(NATIVE) == set(ADAPTERS)
    assert set(PROVIDERS) == set(ADAPTERS) | set(BUILTIN)


def test_each_providers_settings_are_the_adapters() -> None:
    assert {prefix: set(NATIVE[prefix]) for prefix in NATIVE} == {prefix: set(settings_names(prefix))
                                                                 for prefix in ADAPTERS}


def test_settings_and_the_policy_never_reach_a_request_body() -> None:
    every = set().union(*NATIVE.values()) | POLICY_SETTINGS
    assert every <= NEVER_FORWARDED
