"""Each secret manager's adapter against a real or faithfully faked service on loopback.

* AWS Secrets Manager and KMS: moto in server mode (a real AWS-compatible HTTP endpoint), the boto3
  client pointed at it with ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>``.
* Vault: ``support.fake_vault`` (KV v2 + AppRole HTTP API; no ``vault`` binary is installable here).
* Azure Key Vault: ``support.fake_azure`` over HTTPS (throwaway CA), with the real ``SecretClient``
  and ``DefaultAzureCredential`` (managed identity endpoint faked too).
* Google Secret Manager: ``support.fake_google`` (REST API + OAuth), with the real client on its REST
  transport and a real service-account file.

Every adapter is also checked for: ``None`` for a missing name, the typed error for a refusal and for
an endpoint that does not answer (a closed loopback port), and errors that never contain a value.
"""

from __future__ import annotations

import base64
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from support.fake_azure import IDENTITY_HEADER, FakeKeyVault, FakeManagedIdentity, tls_authority
from support.fake_google import FakeGoogle
from support.fake_vault import FakeVault
from support.moto_aws import AWS_TEST_ENV, moto_endpoint, moto_endpoint_enforcing_auth
from trioproxy.secret_managers.aws import AWSKMS, AWSSecretsManager, kms_client, kms_decrypt
from trioproxy.secret_managers.azure import AzureKeyVault, key_vault_name
from trioproxy.secret_managers.base import (
    SecretAccessDenied,
    SecretManagerError,
    SecretManagerMisconfigured,
    SecretManagerUnreachable,
    SecretUndecryptable,
)
from trioproxy.secret_managers.google import GoogleSecretManager
from trioproxy.secret_managers.managers import build_manager
from trioproxy.secret_managers.settings import KeyManagementSettings
from trioproxy.secret_managers.vault import HashicorpVault

VALUE = "sk-held-in-the-manager-0123456789"


def closed_port_url(scheme: str = "http") -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"{scheme}://127.0.0.1:{port}"   # nothing listens there once the probe is closed


def assert_no_value(error: BaseException) -> None:
    assert VALUE not in str(error) and VALUE not in repr(error.args)


# -- AWS -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def aws() -> Iterator[str]:
    with moto_endpoint() as url:
        yield url


@pytest.fixture
def aws_env(aws: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws)
    return aws


def boto(service: str, url: str):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_aws_secret_manager_reads_secret_string(aws_env: str) -> None:
    boto("secretsmanager", aws_env).create_secret(Name="SM_PLAIN_KEY", SecretString=VALUE)
    manager = AWSSecretsManager({})
    assert manager.read("SM_PLAIN_KEY") == VALUE
    assert manager.read("SM_NOT_THERE") is None


def test_aws_secret_manager_v2_with_primary_secret_name(aws_env: str) -> None:
    boto("secretsmanager", aws_env).create_secret(
        Name="litellm_secrets", SecretString=f'{{"OPENAI_API_KEY": "{VALUE}", "OTHER": "x"}}')
    manager = AWSSecretsManager({"primary_secret_name": "litellm_secrets"}, "aws_secret_manager_v2")
    assert manager.read("OPENAI_API_KEY") == VALUE
    assert manager.read("NOT_IN_IT") is None
    assert AWSSecretsManager({"primary_secret_name": "no_such_primary"}).read("OPENAI_API_KEY") is None


def test_aws_primary_secret_that_is_not_json_is_a_config_error(aws_env: str) -> None:
    boto("secretsmanager", aws_env).create_secret(Name="not_json_primary", SecretString=VALUE)
    with pytest.raises(SecretManagerMisconfigured, match="does not hold a JSON object") as caught:
        AWSSecretsManager({"primary_secret_name": "not_json_primary"}).read("OPENAI_API_KEY")
    assert_no_value(caught.value)


def test_aws_per_service_endpoint_variable_wins(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    boto("secretsmanager", aws_env).create_secret(Name="SM_PER_SERVICE", SecretString=VALUE)
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed_port_url())            # the general one is dead…
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", aws_env)      # …the per-service one is used
    assert AWSSecretsManager({}).read("SM_PER_SERVICE") == VALUE


def test_aws_region_is_required_and_named(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SecretManagerMisconfigured, match="AWS_REGION_NAME"):
        AWSSecretsManager({})
    monkeypatch.setenv("AWS_REGION", "us-east-1")   # the standard variable is honoured too
    assert AWSSecretsManager({}).read("SM_NOT_THERE") is None


def test_aws_unreachable_endpoint(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed_port_url())
    with pytest.raises(SecretManagerUnreachable, match="no answer from the AWS endpoint"):
        AWSSecretsManager({}).read("ANY")


def test_aws_refused_credentials_are_access_denied(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    with moto_endpoint_enforcing_auth() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        with pytest.raises(SecretAccessDenied, match="HTTP 403"):
            AWSSecretsManager({}).read("ANY")


def test_aws_kms_decrypts_base64_ciphertext(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    kms = boto("kms", aws_env)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    ciphertext = base64.b64encode(kms.encrypt(KeyId=key, Plaintext=f"  {VALUE}\n".encode())["CiphertextBlob"]).decode()
    assert kms_decrypt(kms_client({}), ciphertext) == VALUE                  # stripped, as LiteLLM does
    assert kms_decrypt(kms_client({}), "aws_kms/" + ciphertext) == VALUE     # LiteLLM's prefixed form
    manager = AWSKMS({}, {"LITELLM_MASTER_KEY": ciphertext})
    assert manager.read("LITELLM_MASTER_KEY") == VALUE
    assert manager.read("NOT_SET") is None


def test_aws_kms_refuses_what_it_cannot_decrypt(aws_env: str) -> None:
    with pytest.raises(SecretUndecryptable, match="not base64"):
        kms_decrypt(kms_client({}), "this is plain text, not ciphertext")
    with pytest.raises(SecretUndecryptable, match="InvalidCiphertextException"):
        kms_decrypt(kms_client({}), base64.b64encode(b"sixteen+ bytes that KMS never made").decode())


def test_kms_endpoint_variable(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed_port_url())
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", aws_env)
    kms = boto("kms", aws_env)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    ciphertext = base64.b64encode(kms.encrypt(KeyId=key, Plaintext=b"via-kms-endpoint")["CiphertextBlob"]).decode()
    assert kms_decrypt(kms_client({}), ciphertext) == "via-kms-endpoint"


def test_aws_assumed_role(aws_env: str) -> None:
    boto("secretsmanager", aws_env).create_secret(Name="SM_VIA_ROLE", SecretString=VALUE)
    manager = AWSSecretsManager({"aws_role_name": "arn:aws:iam::123456789012:role/proxy",
                                 "aws_session_name": "tests", "aws_external_id": "ext"})
    assert manager.read("SM_VIA_ROLE") == VALUE


# -- Vault -----------------------------------------------------------------------------------------

def test_vault_token_namespace_mount_prefix_and_field_key() -> None:
    with FakeVault(token="hvs.t", namespace="admin", mount="kv-prod") as vault:
        vault.put("litellm/OPENAI_API_KEY", key=VALUE)
        manager = HashicorpVault({"HCP_VAULT_ADDR": vault.url, "HCP_VAULT_TOKEN": "hvs.t",
                                  "HCP_VAULT_NAMESPACE": "admin/", "HCP_VAULT_MOUNT_NAME": " /kv-prod/ ",
                                  "HCP_VAULT_PATH_PREFIX": "/litellm/"})
        assert manager.read("OPENAI_API_KEY") == VALUE
        assert manager.read("MISSING") is None
        seen = vault.seen()[0]
        assert seen.path == "/v1/kv-prod/data/litellm/OPENAI_API_KEY"
        assert seen.headers["x-vault-token"] == "hvs.t" and seen.headers["x-vault-namespace"] == "admin"


def test_vault_wrong_token_is_access_denied() -> None:
    with FakeVault(token="hvs.right") as vault:
        vault.put("K", key=VALUE)
        manager = HashicorpVault({"HCP_VAULT_ADDR": vault.url, "HCP_VAULT_TOKEN": "hvs.wrong"})
        with pytest.raises(SecretAccessDenied, match="HTTP 403") as caught:
            manager.read("K")
        assert_no_value(caught.value)


def test_vault_approle_login_then_reads_with_the_issued_token() -> None:
    with FakeVault(token=None, namespace="team", role_id="role-1", secret_id="secret-1") as vault:
        vault.put("K", key=VALUE)
        manager = HashicorpVault({"HCP_VAULT_ADDR": vault.url, "HCP_VAULT_NAMESPACE": "team",
                                  "HCP_VAULT_APPROLE_ROLE_ID": "role-1", "HCP_VAULT_APPROLE_SECRET_ID": "secret-1"})
        assert manager.read("K") == VALUE
        assert manager.read("K") == VALUE
        logins = vault.seen(lambda s: s.path == "/v1/auth/approle/login")
        assert len(logins) == 1                       # the token is kept for its lease
        assert logins[0].json() == {"role_id": "role-1", "secret_id": "secret-1"}
        reads = vault.seen(lambda s: s.path.startswith("/v1/secret/"))
        assert all(r.headers["x-vault-token"] == "hvs.approle-1" for r in reads)


def test_vault_approle_wrong_secret_id() -> None:
    with FakeVault(token=None, role_id="role-1", secret_id="secret-1") as vault:
        manager = HashicorpVault({"HCP_VAULT_ADDR": vault.url, "HCP_VAULT_APPROLE_ROLE_ID": "role-1",
                                  "HCP_VAULT_APPROLE_SECRET_ID": "wrong"})
        with pytest.raises(SecretManagerError, match="AppRole login: HTTP 400"):
            manager.read("K")


def test_vault_missing_variables_are_named() -> None:
    with pytest.raises(SecretManagerMisconfigured, match="HCP_VAULT_TOKEN is not set"):
        HashicorpVault({"HCP_VAULT_ADDR": "http://127.0.0.1:1"})
    with pytest.raises(SecretManagerMisconfigured, match="HCP_VAULT_APPROLE_SECRET_ID is not set"):
        HashicorpVault({"HCP_VAULT_APPROLE_ROLE_ID": "r"})


def test_vault_secret_without_field_key() -> None:
    with FakeVault() as vault:
        vault.put("K", value=VALUE)
        manager = HashicorpVault({"HCP_VAULT_ADDR": vault.url, "HCP_VAULT_TOKEN": next(iter(vault.tokens))})
        with pytest.raises(SecretManagerMisconfigured, match="no field 'key'") as caught:
            manager.read("K")
        assert_no_value(caught.value)


def test_vault_sealed_or_unreachable() -> None:
    with FakeVault() as vault:
        vault.sealed = True
        manager = HashicorpVault({"HCP_VAULT_ADDR": vault.url, "HCP_VAULT_TOKEN": next(iter(vault.tokens))})
        with pytest.raises(SecretManagerUnreachable, match="HTTP 503"):
            manager.read("K")
    with pytest.raises(SecretManagerUnreachable, match="no answer from"):
        HashicorpVault({"HCP_VAULT_ADDR": closed_port_url(), "HCP_VAULT_TOKEN": "t"}).read("K")


# -- Azure -----------------------------------------------------------------------------------------

@pytest.fixture
def azure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKeyVault]:
    context, ca = tls_authority(tmp_path)
    with FakeManagedIdentity() as identity, FakeKeyVault(context, identity) as vault:
        for name in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AZURE_KEY_VAULT_URI", vault.url)
        monkeypatch.setenv("IDENTITY_ENDPOINT", identity.url)
        monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
        yield vault


def test_azure_key_vault_reads_with_dashes_for_underscores(azure: FakeKeyVault) -> None:
    azure.secrets["OPENAI-API-KEY"] = VALUE
    manager = AzureKeyVault()
    assert manager.read("OPENAI_API_KEY") == VALUE
    assert manager.read("NOT_THERE") is None
    assert any(s.headers.get("authorization", "").startswith("Bearer azure-token-") for s in azure.seen())


def test_azure_key_vault_refusal(azure: FakeKeyVault) -> None:
    azure.secrets["DENIED"] = VALUE
    azure.denied.add("DENIED")
    with pytest.raises(SecretAccessDenied, match="HTTP 403") as caught:
        AzureKeyVault().read("DENIED")
    assert_no_value(caught.value)


def test_azure_uri_is_required_and_names_must_fit() -> None:
    with pytest.raises(SecretManagerMisconfigured, match="AZURE_KEY_VAULT_URI is not set"):
        AzureKeyVault({})
    with pytest.raises(SecretManagerMisconfigured, match="cannot be a Key Vault secret name"):
        key_vault_name("has.dots")


def test_azure_unreachable(azure: FakeKeyVault, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_KEY_VAULT_URI", closed_port_url("https"))
    with pytest.raises(SecretManagerUnreachable):
        AzureKeyVault().read("ANY")


# -- Google ----------------------------------------------------------------------------------------

@pytest.fixture
def google(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(fake.service_account_file(tmp_path)))
        monkeypatch.setenv("GOOGLE_SECRET_MANAGER_PROJECT_ID", fake.project)
        monkeypatch.setenv("GOOGLE_SECRET_MANAGER_API_BASE", fake.url)
        yield fake


def test_google_secret_manager_reads_latest_version(google: FakeGoogle) -> None:
    google.secrets["OPENAI_API_KEY"] = VALUE
    manager = GoogleSecretManager()
    assert manager.read("OPENAI_API_KEY") == VALUE
    assert manager.read("NOT_THERE") is None
    assert google.seen()[0].path == "/v1/projects/test-project/secrets/OPENAI_API_KEY/versions/latest:access"


def test_google_refusal_and_missing_project(google: FakeGoogle, monkeypatch: pytest.MonkeyPatch) -> None:
    google.secrets["DENIED"] = VALUE
    google.denied.add("DENIED")
    with pytest.raises(SecretAccessDenied, match="HTTP 403") as caught:
        GoogleSecretManager().read("DENIED")
    assert_no_value(caught.value)
    monkeypatch.delenv("GOOGLE_SECRET_MANAGER_PROJECT_ID")
    with pytest.raises(SecretManagerMisconfigured, match="GOOGLE_SECRET_MANAGER_PROJECT_ID is not set"):
        GoogleSecretManager()


def test_google_unreachable(google: FakeGoogle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_SECRET_MANAGER_API_BASE", closed_port_url())
    with pytest.raises(SecretManagerUnreachable):
        GoogleSecretManager().read("ANY")


# -- the factory -----------------------------------------------------------------------------------

def test_a_missing_extra_is_a_config_error_with_the_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hvac", None)   # as if trioproxy[vault] were not installed
    with pytest.raises(SecretManagerMisconfigured, match=r"pip install 'trioproxy\[vault\]'"):
        build_manager(KeyManagementSettings("hashicorp_vault"), {"HCP_VAULT_TOKEN": "t"})
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(SecretManagerMisconfigured, match=r"pip install 'trioproxy\[aws\]'"):
        build_manager(KeyManagementSettings("aws_kms"), {"AWS_REGION_NAME": "us-east-1"})
