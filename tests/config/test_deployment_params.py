"""The ``litellm_params`` lists (``config/deployment_params.py``): what is a setting, a body default, a LiteLLM setting not implemented (never sent), a credential."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trioproxy.config import MODEL_PARAMS, ConfigError, parse_config
from trioproxy.config.deployment_params import (
    IMPLEMENTED,
    LITELLM_NOT_IMPLEMENTED,
    OPENAI_REQUEST_FIELDS,
    looks_like_credential,
)
from trioproxy.masking import SecretScrubber

KEY = "sk-unit-SECRET-0123456789abcdef"
scrubber = SecretScrubber([KEY])


def test_the_lists_do_not_overlap_and_name_what_they_should() -> None:
    assert not set(IMPLEMENTED) & OPENAI_REQUEST_FIELDS
    assert not set(IMPLEMENTED) & LITELLM_NOT_IMPLEMENTED
    assert not OPENAI_REQUEST_FIELDS & LITELLM_NOT_IMPLEMENTED
    assert set(IMPLEMENTED) | OPENAI_REQUEST_FIELDS == set(MODEL_PARAMS.fields)   # the validator knows them all
    assert not [name for name in OPENAI_REQUEST_FIELDS if looks_like_credential(name)]
    assert {"temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "presence_penalty",
            "frequency_penalty", "logit_bias", "response_format", "tools", "tool_choice", "user", "n", "logprobs",
            "top_logprobs", "parallel_tool_calls", "reasoning_effort"} <= OPENAI_REQUEST_FIELDS
    # native providers' settings, the parameter policy and routing are implemented (issues #15, #16)
    assert {"api_version", "azure_ad_token", "tags", "rpm", "tpm", "order", "cooldown_time", "drop_params",
            "additional_drop_params", "aws_secret_access_key", "aws_region_name", "vertex_credentials",
            "vertex_project", "base_model", "tag_regex", "region_name", "max_budget",
            "budget_duration"} <= set(IMPLEMENTED)
    assert {"aws_role_name", "azure_ad_token_provider"} <= LITELLM_NOT_IMPLEMENTED
    assert "litellm_credential_name" not in LITELLM_NOT_IMPLEMENTED   # config/credentials.py consumes it


@pytest.mark.parametrize(("name", "credential"), [
    ("aws_secret_access_key", True), ("azure_ad_token", True), ("vertex_credentials", True),
    ("my_api_key", True), ("apikey", True), ("monkey", False), ("api-key", True), ("azure_password", True), ("client_secret", True),
    ("aws_session_token", True), ("private_key", True),
    ("max_tokens", False), ("max_completion_tokens", False), ("top_logprobs", False), ("top_k", False),
    ("temperature", False), ("tags", False), ("aws_region_name", False),
])
def test_looks_like_credential(name: str, credential: bool) -> None:
    assert looks_like_credential(name) is credential


def test_ignored_credential_settings_are_known_to_the_scrubber_and_not_sent() -> None:
    # provider settings another provider reads: ignored on this one (a warning), scrubbed, never sent
    config = _params(aws_secret_access_key="aws-SECRET-xyz-123", temperature=0.1,
                     vertex_credentials={"private_key": "pk-SECRET-456", "project_id": "p"})
    dep = config.deployments[0]
    assert dep.extra_params == {"temperature": 0.1} and dict(dep.provider_params) == {}
    secrets = config.secrets()
    assert "aws-SECRET-xyz-123" in secrets and "pk-SECRET-456" in secrets and "p" not in secrets
    warnings = sorted(config.warnings)
    assert len(warnings) == 2
    assert "litellm_params.aws_secret_access_key: read by bedrock/ models only; ignored for 'openai/x'" in warnings[0]
    assert "litellm_params.vertex_credentials: read by vertex_ai/ models only" in warnings[1]
    # litellm_credential_name is implemented since (tests/config/test_credential_list.py)


def test_a_native_providers_settings_are_kept_for_it_and_not_sent() -> None:
    config = parse_config({"model_list": [{"model_name": "m", "litellm_params": {
        "model": "azure/my-deployment", "api_base": "https://r.openai.azure.com", "api_key": KEY,
        "api_version": "2024-10-21", "azure_ad_token": "ad-SECRET-token-123", "drop_params": True,
        "additional_drop_params": "logit_bias", "temperature": 0.2}}]}, "c.yaml", Path.cwd())
    dep = config.deployments[0]
    assert dep.provider == "azure" and dep.upstream_model == "my-deployment"
    assert dict(dep.provider_params) == {"api_version": "2024-10-21", "azure_ad_token": "ad-SECRET-token-123",
                                         "drop_params": True, "additional_drop_params": ["logit_bias"]}
    assert dep.extra_params == {"temperature": 0.2}
    assert "ad-SECRET-token-123" in config.secrets() and config.warnings == []


def test_organization_becomes_a_header_and_a_query_survives_the_endpoint() -> None:
    dep = _params(organization="org-1", api_base=f"https://gw.example/v1/?key={KEY}").deployments[0]
    assert dep.extra_headers == {"OpenAI-Organization": "org-1"}
    assert dep.url("chat/completions") == f"https://gw.example/v1/chat/completions?key={KEY}"
    assert dep.public_label == "openai/x" and "gw.example" not in dep.public_label


def test_an_unknown_key_lists_no_values() -> None:
    with pytest.raises(ConfigError) as info:
        _params(aws_secret_acess_key="aws-SECRET-typo-789")
    text = "\n".join(info.value.problems)
    assert "did you mean 'aws_secret_access_key'?" in text and "aws-SECRET-typo-789" not in text


def _params(**params: Any) -> Any:
    return parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/x", **params}}]},
                        "cfg.yaml", Path.cwd())
