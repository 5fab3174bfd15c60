"""``api_key:`` with nothing after it (LiteLLM's queue.yaml, timeout.md) is no key, as in LiteLLM:
the provider's environment variable is read instead; a real wrong type is still an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from trioproxy.config import ConfigError, parse_config
from trioproxy.proxy import create_app


def azure(**params):
    return {"model_name": "gpt", "litellm_params": {"model": "azure/chatgpt-v-2",
                                                    "api_base": "https://x.openai.azure.com", **params}}


def test_an_empty_api_key_reads_the_environment(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("AZURE_API_KEY", "from-the-environment")
    config = parse_config({"model_list": [azure(api_key=None)]}, "c.yaml", tmp_path)
    (deployment,) = config.deployments
    assert deployment.api_key is None
    assert "api_key" not in repr(config.warnings)
    create_app(config)          # the Azure provider finds its key in AZURE_API_KEY


def test_without_the_environment_it_is_the_missing_key_error(monkeypatch, tmp_path: Path):
    for name in ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_AD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    config = parse_config({"model_list": [azure(api_key=None)]}, "c.yaml", tmp_path)
    with pytest.raises(ConfigError) as info:
        create_app(config)      # the providers check their settings when the app is built
    assert "needs 'api_key' or 'azure_ad_token'" in str(info.value)
    assert "expected a string" not in str(info.value)


def test_a_wrong_type_is_still_an_error(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        parse_config({"model_list": [azure(api_key=123)]}, "c.yaml", tmp_path)
    assert "litellm_params.api_key: expected a string" in str(info.value) and "123" not in str(info.value)
