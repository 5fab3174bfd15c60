"""LiteLLM's ``credential_list`` and ``litellm_credential_name``: a named credential's values fill a
deployment's settings (its own win), are validated and masked like any, and a wrong name is an error
with a hint; through a real ``trioproxy run``, the upstream receives the credential's key."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY
from trioproxy.config import ConfigError, parse_config

CREDENTIALS = [{"credential_name": "default_azure_credential",
                "credential_values": {"api_key": "os.environ/CORPUS_AZURE_KEY", "api_base": "https://eu.openai.azure.com",
                                      "api_version": "2023-05-15"},
                "credential_info": {"description": "Production credentials for EU region",
                                    "custom_llm_provider": "azure"}}]


def test_a_credentials_values_become_the_deployments_settings(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("CORPUS_AZURE_KEY", "sk-from-the-credential")
    config = parse_config({"model_list": [
        {"model_name": "gpt-4o", "litellm_params": {"model": "azure/gpt-4o",
                                                    "litellm_credential_name": "default_azure_credential"}},
        {"model_name": "own", "litellm_params": {"model": "azure/gpt-4o", "api_base": "https://us.openai.azure.com",
                                                 "litellm_credential_name": "default_azure_credential"}},
    ], "credential_list": CREDENTIALS}, "c.yaml", tmp_path)
    first, second = config.deployments
    assert first.api_key == "sk-from-the-credential" and first.api_base == "https://eu.openai.azure.com"
    assert first.provider_params["api_version"] == "2023-05-15"
    assert second.api_base == "https://us.openai.azure.com"            # the deployment's own value wins
    assert not config.warnings
    assert "sk-from-the-credential" in config.secrets()                # masked like any deployment key


def test_a_name_that_is_not_in_the_list_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        parse_config({"model_list": [{"model_name": "m", "litellm_params": {
            "model": "openai/x", "litellm_credential_name": "default_azure_credentials"}}],
            "credential_list": CREDENTIALS}, "c.yaml", tmp_path)
    text = str(info.value)
    assert "model_list[0].litellm_params.litellm_credential_name" in text
    assert "did you mean 'default_azure_credential'?" in text
    assert "default_azure_credentials" not in text           # the value given is never echoed


def test_malformed_entries_are_errors_and_values_are_never_shown(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        parse_config({"model_list": [], "credential_list": [
            {"credential_name": "a", "credential_values": "sk-secret-in-the-wrong-place"},
            {"credential_name": "", "credential_values": {}},
            {"credential_name": "b", "credential_values": {}, "credentials_info": {}},
            {"credential_name": "b", "credential_values": {}}]}, "c.yaml", tmp_path)
    text = str(info.value)
    assert "credential_list[0].credential_values: expected a mapping" in text and "sk-secret" not in text
    assert "credential_list[1].credential_name: expected a name" in text
    assert "credential_list[2].credentials_info: unknown key; did you mean 'credential_info'?" in text
    assert "credential_list[3].credential_name: 'b' is already the name" in text


def test_trioproxy_run_sends_the_credentials_key(start_proxy, fake_upstream):
    config = {"model_list": [{"model_name": "gpt-test", "litellm_params": {
                  "model": "openai/up-model", "litellm_credential_name": "upstream"}}],
              "credential_list": [{"credential_name": "upstream", "credential_values": {
                  "api_key": UPSTREAM_KEY, "api_base": fake_upstream.base_url}}],
              "general_settings": {"master_key": MASTER_KEY}}
    proxy = start_proxy(config)
    client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0)
    assert client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}]).choices
    (sent,) = fake_upstream.requests
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
