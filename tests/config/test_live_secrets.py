"""``LiveSecrets``: deployments as they are with refreshed secrets (``config/live.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trioproxy.config import parse_config
from trioproxy.config.live import LiveSecrets


@pytest.fixture
def config(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LIVE_TEST_KEY", "sk-first-0123456789")
    monkeypatch.setenv("LIVE_TEST_AWS_SECRET", "aws-first-SECRET-0123")
    return parse_config({"model_list": [
        {"model_name": "gpt", "litellm_params": {"model": "openai/x", "api_key": "os.environ/LIVE_TEST_KEY"}},
        {"model_name": "br", "litellm_params": {"model": "bedrock/m", "aws_access_key_id": "AKID",
                                                "aws_secret_access_key": "os.environ/LIVE_TEST_AWS_SECRET"}},
        {"model_name": "plain", "litellm_params": {"model": "fake/x"}}]}, "c.yaml", Path.cwd())


def test_references_are_recorded_per_setting(config) -> None:
    gpt, bedrock, plain = config.deployments
    assert dict(gpt.secret_refs) == {"api_key": "LIVE_TEST_KEY"}
    assert dict(bedrock.secret_refs) == {"aws_secret_access_key": "LIVE_TEST_AWS_SECRET"}
    assert dict(plain.secret_refs) == {}


def test_unchanged_values_give_the_configured_object(config) -> None:
    live = LiveSecrets({"LIVE_TEST_KEY": "sk-first-0123456789"})
    gpt = config.deployments[0]
    assert live.current(gpt) is gpt
    assert live.update("LIVE_TEST_KEY", "sk-first-0123456789") is False
    assert live.current(gpt) is gpt


def test_a_changed_value_gives_one_copy_until_the_next_change(config) -> None:
    gpt, bedrock, plain = config.deployments
    live = LiveSecrets()
    assert live.update("LIVE_TEST_KEY", "sk-second-0123456789")
    first = live.current(gpt)
    assert first is not gpt and first.api_key == "sk-second-0123456789" and gpt.api_key == "sk-first-0123456789"
    assert live.current(gpt) is first                      # prepared once by the providers
    assert live.current(plain) is plain and live.current(bedrock) is bedrock
    live.update("LIVE_TEST_AWS_SECRET", "aws-second-SECRET-4567")
    rotated = live.current(bedrock)
    assert rotated.provider_params["aws_secret_access_key"] == "aws-second-SECRET-4567"
    assert "aws-second-SECRET-4567" in rotated.secret_settings
    assert live.current(gpt).api_key == "sk-second-0123456789"
