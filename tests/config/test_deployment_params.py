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
    assert {"api_version", "azure_ad_token", "litellm_credential_name", "tags", "rpm", "tpm",
            "aws_secret_access_key", "aws_region_name", "vertex_credentials", "vertex_project"} <= LITELLM_NOT_IMPLEMENTED


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
    config = _params(aws_secret_access_key="aws-SECRET-xyz-123", temperature=0.1,
                     vertex_credentials={"private_key": "pk-SECRET-456", "project_id": "p"})
    dep = config.deployments[0]
    assert dep.extra_params == {"temperature": 0.1}
    secrets = config.secrets()
    assert "aws-SECRET-xyz-123" in secrets and "pk-SECRET-456" in secrets and "p" not in secrets
    assert all("does not implement yet" in w for w in config.warnings) and len(config.warnings) == 2


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
