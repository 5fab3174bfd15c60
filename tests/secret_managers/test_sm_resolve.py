"""Settings, resolution rules and the KMS environment flow, with in-memory managers (and moto for KMS).

The rules under test are the module docstrings of ``settings.py``, ``resolve.py`` and ``kms_env.py``:
LiteLLM's ``hosted_keys`` / ``access_mode`` / environment fallback, and trioproxy's stop-at-startup
for every read that fails, with messages that name the variable, the manager and the reason and
never carry a value.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from support.moto_aws import AWS_TEST_ENV, moto_endpoint
from trioproxy.config import ConfigError, parse_config
from trioproxy.secret_managers.base import (
    SecretAccessDenied,
    SecretManagerUnreachable,
    SecretUndecryptable,
)
from trioproxy.secret_managers.kms_env import KMSEnvironmentError, decrypt_kms_environment
from trioproxy.secret_managers.resolve import (
    SecretResolver,
    find_references,
    read_all,
    resolve_config_secrets,
)
from trioproxy.secret_managers.settings import (
    KEY_MANAGEMENT_SYSTEMS,
    KeyManagementSettings,
    parse_key_management,
)

VALUE = "sk-from-the-manager-9f8e7d6c5b4a"


class MemoryManager:
    """A manager holding a dict; ``errors`` maps a name to the exception its read raises."""

    def __init__(self, values: dict[str, str], errors: dict[str, Exception] | None = None,
                 name: str = "hashicorp_vault") -> None:
        self.name = name
        self.values = values
        self.errors = errors or {}
        self.reads: list[str] = []

    def read(self, name: str) -> str | None:
        self.reads.append(name)
        if name in self.errors:
            raise self.errors[name]
        return self.values.get(name)


def settings(**kw: Any) -> KeyManagementSettings:
    return KeyManagementSettings("hashicorp_vault", **kw)


# -- settings ---------------------------------------------------------------------------------------

def test_invalid_key_management_system_lists_the_valid_ones() -> None:
    parsed, problems, _ = parse_key_management({"key_management_system": "hashicorp_vaul"}, "c.yaml")
    assert parsed is None
    assert problems == [
        "c.yaml: general_settings.key_management_system: invalid value 'hashicorp_vaul'; did you mean "
        f"'hashicorp_vault'? (valid: {', '.join(KEY_MANAGEMENT_SYSTEMS)})"]


def test_key_management_settings_are_checked() -> None:
    parsed, problems, warnings = parse_key_management({
        "key_management_system": "aws_secret_manager",
        "key_management_settings": {"hosted_keys": ["A", "os.environ/B"], "access_mode": "read_and_write",
                                    "primary_secret_name": "litellm_secrets", "store_virtual_keys": True,
                                    "refresh_interval": 60, "prefix": "x"}}, "c.yaml")
    assert problems == ["c.yaml: general_settings.key_management_settings.prefix: unknown key 'prefix'; did you "
                        "mean 'prefix_for_stored_virtual_keys'? (known keys: access_mode, aws_external_id, "
                        "aws_profile_name, aws_region_name, aws_role_name, aws_session_name, aws_sts_endpoint, "
                        "aws_web_identity_token, custom_secret_manager, description, hosted_keys, "
                        "prefix_for_stored_virtual_keys, primary_secret_name, refresh_interval, store_virtual_keys, "
                        "tags)"]
    assert parsed is not None and parsed.hosted_keys == ("A", "B") and parsed.refresh_interval == 60
    assert parsed.options == {"primary_secret_name": "litellm_secrets"}
    assert any("store_virtual_keys: accepted for compatibility" in w for w in warnings)
    _, problems, _ = parse_key_management({"key_management_system": "hashicorp_vault",
                                           "key_management_settings": {"access_mode": "sometimes",
                                                                       "primary_secret_name": "p"}}, "c.yaml")
    assert any("access_mode: expected one of read_only, write_only, read_and_write" in p for p in problems)
    assert any("primary_secret_name: only applies to aws_secret_manager" in p for p in problems)


def test_litellm_refresh_variable_is_the_default_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCP_VAULT_REFRESH_INTERVAL", "120")
    parsed, _, _ = parse_key_management({"key_management_system": "hashicorp_vault"}, "c")
    assert parsed is not None and parsed.refresh_interval == 120


# -- the rules of one read --------------------------------------------------------------------------

def test_hosted_keys_and_access_mode_decide_what_the_manager_is_asked() -> None:
    manager = MemoryManager({"A": "from-manager", "B": "from-manager"})
    env = {"A": "from-env", "B": "from-env"}
    resolver = SecretResolver(settings(hosted_keys=("A",)), manager, env)
    assert resolver.read("A") == ("from-manager", "hashicorp_vault")
    assert resolver.read("B") == ("from-env", "environment")     # not hosted: straight from the environment
    assert manager.reads == ["A"]
    write_only = SecretResolver(settings(access_mode="write_only"), manager, env)
    assert write_only.read("A") == ("from-env", "environment")


def test_a_name_the_manager_lacks_falls_back_to_the_environment() -> None:
    resolver = SecretResolver(settings(), MemoryManager({}), {"A": "from-env"})
    assert resolver.read("A") == ("from-env", "environment")
    assert resolver.read("B") == (None, "environment")
    assert resolver.missing("B") == "not in hashicorp_vault and not set in the environment"


def test_read_all_stops_at_the_deadline_and_names_what_hung() -> None:
    release = threading.Event()

    class Hanging(MemoryManager):
        def read(self, name: str) -> str | None:
            if name == "SLOW":
                release.wait(30)
            return super().read(name)

    resolver = SecretResolver(settings(), Hanging({"FAST": "v"}), {})
    try:
        results, errors = read_all(resolver, ["FAST", "SLOW"], deadline=0.2)
    finally:
        release.set()
    assert results == {"FAST": ("v", "hashicorp_vault")}
    assert isinstance(errors["SLOW"], SecretManagerUnreachable)
    assert str(errors["SLOW"]) == "reading 'SLOW' from hashicorp_vault: unreachable: no answer within 0.2 s"


# -- a whole config ----------------------------------------------------------------------------------

CONFIG = {
    "model_list": [{"model_name": "m", "litellm_params": {"model": "openai/x", "api_key": "os.environ/OPENAI_API_KEY",
                                                          "api_base": "http://127.0.0.1:9/v1"}}],
    "general_settings": {"master_key": "os.environ/MASTER", "key_management_system": "hashicorp_vault",
                         "key_management_settings": {"hosted_keys": ["OPENAI_API_KEY", "MASTER"]}},
    "environment_variables": {"UNRELATED": "os.environ/NOT_RESOLVED_HERE"},
}

#: config.py resolves references in environment_variables itself (and reports unset ones)
PARSEABLE = {k: v for k, v in CONFIG.items() if k != "environment_variables"}


@pytest.fixture
def manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryManager]:
    memory = MemoryManager({"OPENAI_API_KEY": VALUE})
    monkeypatch.setattr("trioproxy.secret_managers.managers.build_manager", lambda s, env=None: memory)
    yield memory


def test_references_are_found_outside_the_managers_own_settings() -> None:
    assert find_references(CONFIG) == {"OPENAI_API_KEY": "model_list[0].litellm_params.api_key",
                                       "MASTER": "general_settings.master_key"}


def test_resolution_replaces_references_and_returns_what_it_read(manager: MemoryManager) -> None:
    problems: list[str] = []
    raw, resolution = resolve_config_secrets(CONFIG, "c.yaml", problems, [], {"MASTER": "sk-master-from-env-123"})
    assert problems == []
    assert raw["model_list"][0]["litellm_params"]["api_key"] == VALUE
    assert raw["general_settings"]["master_key"] == "sk-master-from-env-123"
    assert resolution is not None and resolution.sources == {"OPENAI_API_KEY": "hashicorp_vault",
                                                             "MASTER": "environment"}
    assert resolution.managed_values() == [VALUE]           # the scrubber will know it (not the env's)


def test_every_failure_is_reported_at_once_naming_variable_manager_and_reason(manager: MemoryManager) -> None:
    manager.values.clear()
    manager.errors["OPENAI_API_KEY"] = SecretAccessDenied("hashicorp_vault", "reading secret/data/OPENAI_API_KEY: HTTP 403")
    problems: list[str] = []
    raw, resolution = resolve_config_secrets(CONFIG, "c.yaml", problems, [], {})
    assert resolution is None
    assert problems == [
        "c.yaml: model_list[0].litellm_params.api_key: cannot read os.environ/OPENAI_API_KEY from hashicorp_vault: "
        "access denied: reading secret/data/OPENAI_API_KEY: HTTP 403",
        "c.yaml: general_settings.master_key: os.environ/MASTER is not in hashicorp_vault and not set in the "
        "environment",
    ]
    assert raw["model_list"][0]["litellm_params"]["api_key"] == ""   # not reported twice by validation


def test_parse_config_stops_with_the_managers_problems(manager: MemoryManager, tmp_path: Path) -> None:
    manager.errors["OPENAI_API_KEY"] = SecretUndecryptable("aws_kms", "InvalidCiphertextException (HTTP 400)")
    manager.errors["MASTER"] = SecretManagerUnreachable("hashicorp_vault", "no answer within 7 s")
    with pytest.raises(ConfigError) as caught:
        parse_config(PARSEABLE, "c.yaml", tmp_path)
    assert caught.value.problems == [
        "c.yaml: model_list[0].litellm_params.api_key: cannot read os.environ/OPENAI_API_KEY from aws_kms: "
        "cannot decrypt: InvalidCiphertextException (HTTP 400)",
        "c.yaml: general_settings.master_key: cannot read os.environ/MASTER from hashicorp_vault: unreachable: "
        "no answer within 7 s",
    ]


def test_parse_config_with_a_manager_value_masks_it_in_secrets(manager: MemoryManager, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASTER", "sk-master-0123456789")
    config = parse_config(PARSEABLE, "c.yaml", tmp_path)
    assert config.deployments[0].api_key == VALUE
    assert VALUE in config.secrets()
    assert config.secret_resolution is not None and config.deployments[0].secret_refs == {"api_key": "OPENAI_API_KEY"}
    # nothing process-wide: another config read without the manager does not hold the value
    plain = parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}]}, "d.yaml",
                         tmp_path)
    assert VALUE not in plain.secrets()


def test_a_missing_required_variable_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_SECRET_MANAGER_PROJECT_ID", raising=False)
    config = {**PARSEABLE, "general_settings": {"key_management_system": "google_secret_manager"}}
    with pytest.raises(ConfigError) as caught:
        parse_config(config, "c.yaml", tmp_path)
    assert caught.value.problems[0] == ("c.yaml: general_settings.key_management_system: google_secret_manager: "
                                        "misconfigured: GOOGLE_SECRET_MANAGER_PROJECT_ID is not set")


# -- USE_AWS_KMS --------------------------------------------------------------------------------------

@pytest.fixture
def kms_env() -> Iterator[dict[str, str]]:
    with moto_endpoint() as url:
        yield {**AWS_TEST_ENV, "AWS_ENDPOINT_URL": url}


def encrypt(env: dict[str, str], plaintext: str) -> str:
    kms = boto3.client("kms", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    return base64.b64encode(kms.encrypt(KeyId=key, Plaintext=plaintext.encode())["CiphertextBlob"]).decode()


def test_use_aws_kms_decrypts_prefixed_variables(kms_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in kms_env.items():
        monkeypatch.setenv(name, value)
    env = dict(kms_env, USE_AWS_KMS="True",
               LITELLM_SECRET_AWS_KMS_DATABASE_URL=encrypt(kms_env, "postgres://u:pw@db/x"),
               OTHER="aws_kms/" + encrypt(kms_env, VALUE))
    assert decrypt_kms_environment(env) == ["DATABASE_URL", "OTHER"]
    assert env["DATABASE_URL"] == "postgres://u:pw@db/x" and env["OTHER"] == VALUE


def test_use_aws_kms_failures_name_the_variable(kms_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in kms_env.items():
        monkeypatch.setenv(name, value)
    env = dict(kms_env, USE_AWS_KMS="true", LITELLM_SECRET_AWS_KMS_DATABASE_URL="not-ciphertext!")
    with pytest.raises(KMSEnvironmentError) as caught:
        decrypt_kms_environment(env)
    assert caught.value.problems == ["LITELLM_SECRET_AWS_KMS_DATABASE_URL: cannot decrypt with aws_kms: cannot "
                                     "decrypt: the value is not base64 ciphertext"]
    assert "DATABASE_URL" not in env
    with pytest.raises(KMSEnvironmentError, match="USE_AWS_KMS: expected True or False"):
        decrypt_kms_environment({"USE_AWS_KMS": "maybe"})
    assert decrypt_kms_environment({"USE_AWS_KMS": "False", "LITELLM_SECRET_AWS_KMS_X": "y"}) == []
