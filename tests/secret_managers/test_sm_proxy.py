"""End to end: a real ``trioproxy run`` whose provider key (and master key) live only in a secret manager.

Each manager is a real local endpoint (moto server for AWS) or a loopback fake of its HTTP API
(Vault, Azure Key Vault over HTTPS, Google). The fake upstream accepts only ``UPSTREAM_KEY``, so a
200 proves the key really came from the manager. Then: the value is in no log line, no response and
not in ``trioproxy check``'s output; and every way startup can fail exits non-zero with a message
naming the variable, the manager and the reason (and never a value).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY
from support.fake_azure import IDENTITY_HEADER, FakeKeyVault, FakeManagedIdentity, tls_authority
from support.fake_google import FakeGoogle
from support.fake_upstream import FakeUpstream
from support.fake_vault import FakeVault
from support.moto_aws import AWS_TEST_ENV, moto_endpoint
from support.proxy_process import ProxyProcess, write_config

KEY_NAME = "TRIOPROXY_TEST_PROVIDER_KEY"     # set nowhere but in the manager
MASTER_NAME = "TRIOPROXY_TEST_MASTER_KEY"


def config(fake: FakeUpstream, system: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    general: dict[str, Any] = {"master_key": f"os.environ/{MASTER_NAME}", "key_management_system": system}
    if settings is not None:
        general["key_management_settings"] = settings
    return {"model_list": [{"model_name": "gpt-test", "litellm_params": {
                "model": "openai/up-model", "api_base": fake.base_url, "api_key": f"os.environ/{KEY_NAME}"}}],
            "litellm_settings": {"num_retries": 0}, "general_settings": general}


def chat_through(proxy: ProxyProcess) -> Any:
    client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert UPSTREAM_KEY not in raw.http_response.text and UPSTREAM_KEY not in str(raw.headers)
    return raw.parse()


def check_output(path: Path, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "trioproxy", "check", str(path)], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def assert_served_with_the_managers_key(proxy: ProxyProcess, fake: FakeUpstream, env: dict[str, str]) -> None:
    answer = chat_through(proxy)
    assert answer.choices[0].message.content == "Hello from the fake upstream."
    assert fake.requests[-1].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    output = check_output(proxy.config_path, env)
    assert "config OK" in output and UPSTREAM_KEY not in output and MASTER_KEY not in output
    assert proxy.terminate() == 0
    logs = proxy.logs()
    assert "secrets: " in logs and KEY_NAME in logs          # the startup line names what was read…
    assert UPSTREAM_KEY not in logs and MASTER_KEY not in logs   # …never the values


# -- success, one per manager ----------------------------------------------------------------------

def test_vault_held_keys(fake_upstream: FakeUpstream, start_proxy: Callable[..., ProxyProcess]) -> None:
    with FakeVault(token="hvs.proxy", namespace="admin", mount="kv") as vault:
        vault.put(f"litellm/{KEY_NAME}", key=UPSTREAM_KEY)
        vault.put(f"litellm/{MASTER_NAME}", key=MASTER_KEY)
        env = {"HCP_VAULT_ADDR": vault.url, "HCP_VAULT_TOKEN": "hvs.proxy", "HCP_VAULT_NAMESPACE": "admin",
               "HCP_VAULT_MOUNT_NAME": "kv", "HCP_VAULT_PATH_PREFIX": "litellm"}
        proxy = start_proxy(config(fake_upstream, "hashicorp_vault"), env=env)
        assert_served_with_the_managers_key(proxy, fake_upstream, env)


@pytest.fixture(scope="module")
def aws() -> Iterator[dict[str, str]]:
    with moto_endpoint() as url:
        yield {**AWS_TEST_ENV, "AWS_ENDPOINT_URL": url}


def aws_client(env: dict[str, str], service: str) -> Any:
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_aws_secret_manager_v2_primary_secret(aws: dict[str, str], fake_upstream: FakeUpstream,
                                              start_proxy: Callable[..., ProxyProcess]) -> None:
    aws_client(aws, "secretsmanager").create_secret(
        Name="proxy_secrets", SecretString=f'{{"{KEY_NAME}": "{UPSTREAM_KEY}", "{MASTER_NAME}": "{MASTER_KEY}"}}')
    proxy = start_proxy(config(fake_upstream, "aws_secret_manager_v2", {"primary_secret_name": "proxy_secrets"}),
                        env=aws)
    assert_served_with_the_managers_key(proxy, fake_upstream, aws)


def test_aws_secret_manager_one_secret_per_name_with_hosted_keys(
        aws: dict[str, str], fake_upstream: FakeUpstream, start_proxy: Callable[..., ProxyProcess]) -> None:
    aws_client(aws, "secretsmanager").create_secret(Name=KEY_NAME, SecretString=UPSTREAM_KEY)
    env = {**aws, MASTER_NAME: MASTER_KEY}     # not hosted: read from the environment, as LiteLLM does
    proxy = start_proxy(config(fake_upstream, "aws_secret_manager", {"hosted_keys": [KEY_NAME]}), env=env)
    assert_served_with_the_managers_key(proxy, fake_upstream, env)


def encrypt(env: dict[str, str], plaintext: str) -> str:
    kms = aws_client(env, "kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    return base64.b64encode(kms.encrypt(KeyId=key, Plaintext=plaintext.encode())["CiphertextBlob"]).decode()


def test_aws_kms_values_and_use_aws_kms(aws: dict[str, str], fake_upstream: FakeUpstream,
                                        start_proxy: Callable[..., ProxyProcess]) -> None:
    # the provider key: aws_kms's convention (the variable holds base64 ciphertext, hosted_keys lists it);
    # the master key: LiteLLM's "AWS Key Manager v2" (USE_AWS_KMS + LITELLM_SECRET_AWS_KMS_<NAME>)
    env = {**aws, KEY_NAME: encrypt(aws, UPSTREAM_KEY), "USE_AWS_KMS": "True",
           f"LITELLM_SECRET_AWS_KMS_{MASTER_NAME}": encrypt(aws, MASTER_KEY)}
    proxy = start_proxy(config(fake_upstream, "aws_kms", {"hosted_keys": [KEY_NAME]}), env=env)
    assert_served_with_the_managers_key(proxy, fake_upstream, env)
    assert f"USE_AWS_KMS: decrypted 1 variable(s) with aws_kms: {MASTER_NAME}" in proxy.logs()


def test_azure_key_vault(tmp_path: Path, fake_upstream: FakeUpstream, start_proxy: Callable[..., ProxyProcess]) -> None:
    context, ca = tls_authority(tmp_path)
    with FakeManagedIdentity() as identity, FakeKeyVault(context, identity) as vault:
        vault.secrets[KEY_NAME.replace("_", "-")] = UPSTREAM_KEY
        vault.secrets[MASTER_NAME.replace("_", "-")] = MASTER_KEY
        env = {"AZURE_KEY_VAULT_URI": vault.url, "IDENTITY_ENDPOINT": identity.url,
               "IDENTITY_HEADER": IDENTITY_HEADER, "REQUESTS_CA_BUNDLE": str(ca)}
        proxy = start_proxy(config(fake_upstream, "azure_key_vault"), env=env)
        assert_served_with_the_managers_key(proxy, fake_upstream, env)


def test_google_secret_manager(tmp_path: Path, fake_upstream: FakeUpstream,
                               start_proxy: Callable[..., ProxyProcess]) -> None:
    with FakeGoogle() as google:
        google.secrets[KEY_NAME] = UPSTREAM_KEY
        google.secrets[MASTER_NAME] = MASTER_KEY
        env = {"GOOGLE_APPLICATION_CREDENTIALS": str(google.service_account_file(tmp_path)),
               "GOOGLE_SECRET_MANAGER_PROJECT_ID": google.project, "GOOGLE_SECRET_MANAGER_API_BASE": google.url}
        proxy = start_proxy(config(fake_upstream, "google_secret_manager"), env=env)
        assert_served_with_the_managers_key(proxy, fake_upstream, env)


# -- startup failures ------------------------------------------------------------------------------

def fails_to_start(directory: Path, raw: dict[str, Any], env: dict[str, str]) -> str:
    """Run the proxy; it must exit non-zero before listening. Returns its stderr."""
    path = write_config(directory, raw)
    done = subprocess.run([sys.executable, "-m", "trioproxy", "run", str(path), "--port", "0"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "listening" not in done.stdout
    assert UPSTREAM_KEY not in done.stderr and MASTER_KEY not in done.stderr
    return done.stderr


def closed_port() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_vault_refusal_stops_startup(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    with FakeVault(token="hvs.right") as vault:
        vault.put(KEY_NAME, key=UPSTREAM_KEY)
        stderr = fails_to_start(tmp_path, config(fake_upstream, "hashicorp_vault"),
                                {"HCP_VAULT_ADDR": vault.url, "HCP_VAULT_TOKEN": "hvs.wrong", MASTER_NAME: MASTER_KEY})
    assert (f"model_list[0].litellm_params.api_key: cannot read os.environ/{KEY_NAME} from hashicorp_vault: "
            f"access denied: reading secret/data/{KEY_NAME}: HTTP 403") in stderr


def test_a_name_in_neither_the_manager_nor_the_environment(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    with FakeVault(token="hvs.t") as vault:
        stderr = fails_to_start(tmp_path, config(fake_upstream, "hashicorp_vault"),
                                {"HCP_VAULT_ADDR": vault.url, "HCP_VAULT_TOKEN": "hvs.t", MASTER_NAME: MASTER_KEY})
    assert (f"model_list[0].litellm_params.api_key: os.environ/{KEY_NAME} is not in hashicorp_vault "
            f"(secret/data/{KEY_NAME}) and not set in the environment") in stderr


def test_an_unreachable_manager(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    stderr = fails_to_start(tmp_path, config(fake_upstream, "hashicorp_vault"),
                            {"HCP_VAULT_ADDR": closed_port(), "HCP_VAULT_TOKEN": "hvs.t"})
    assert f"cannot read os.environ/{KEY_NAME} from hashicorp_vault: unreachable: reading secret/data/" in stderr
    assert f"cannot read os.environ/{MASTER_NAME} from hashicorp_vault: unreachable" in stderr


def test_an_undecryptable_value(tmp_path: Path, aws: dict[str, str], fake_upstream: FakeUpstream) -> None:
    env = {**aws, KEY_NAME: base64.b64encode(b"never encrypted by this KMS").decode(), MASTER_NAME: MASTER_KEY}
    stderr = fails_to_start(tmp_path, config(fake_upstream, "aws_kms", {"hosted_keys": [KEY_NAME]}), env)
    assert (f"cannot read os.environ/{KEY_NAME} from aws_kms: cannot decrypt: InvalidCiphertextException "
            "(HTTP 400)") in stderr


def test_use_aws_kms_with_an_undecryptable_variable(tmp_path: Path, aws: dict[str, str],
                                                    fake_upstream: FakeUpstream) -> None:
    env = {**aws, "USE_AWS_KMS": "True", "LITELLM_SECRET_AWS_KMS_DATABASE_URL": "plain text"}
    stderr = fails_to_start(tmp_path, config(fake_upstream, "aws_kms"), env)
    assert ("LITELLM_SECRET_AWS_KMS_DATABASE_URL: cannot decrypt with aws_kms: cannot decrypt: the value is not "
            "base64 ciphertext") in stderr


@pytest.mark.parametrize(("system", "env", "message"), [
    ("google_secret_manager", {}, "google_secret_manager: misconfigured: GOOGLE_SECRET_MANAGER_PROJECT_ID is not set"),
    ("azure_key_vault", {}, "azure_key_vault: misconfigured: AZURE_KEY_VAULT_URI is not set"),
    ("hashicorp_vault", {}, "hashicorp_vault: misconfigured: HCP_VAULT_TOKEN is not set"),
    ("vault", {}, "general_settings.key_management_system: invalid value 'vault' (valid: hashicorp_vault, "
                  "aws_secret_manager, aws_secret_manager_v2, aws_kms, google_secret_manager, azure_key_vault)"),
])
def test_misconfiguration_is_named(tmp_path: Path, fake_upstream: FakeUpstream, system: str, env: dict[str, str],
                                   message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_SECRET_MANAGER_PROJECT_ID", "AZURE_KEY_VAULT_URI", "HCP_VAULT_TOKEN",
                 "HCP_VAULT_APPROLE_ROLE_ID"):
        monkeypatch.delenv(name, raising=False)
    stderr = fails_to_start(tmp_path, config(fake_upstream, system), {**env, MASTER_NAME: MASTER_KEY})
    assert message in stderr
