"""AWS Secrets Manager (``aws_secret_manager``, ``aws_secret_manager_v2``) and AWS KMS (``aws_kms``).

Both through ``boto3`` (``pip install 'trioproxy[aws]'``), so everything the AWS SDK honours works
unchanged: the standard credential chain (environment, shared files and ``AWS_PROFILE``, SSO, web
identity, container and instance roles), ``AWS_ENDPOINT_URL`` and the per-service
``AWS_ENDPOINT_URL_SECRETS_MANAGER`` / ``AWS_ENDPOINT_URL_KMS`` (a private or local endpoint). The
region is ``key_management_settings.aws_region_name``, else LiteLLM's ``AWS_REGION_NAME``, else
``AWS_REGION`` / ``AWS_DEFAULT_REGION``; none of them set is a startup error naming them.

Conventions (LiteLLM's current reader, ``AWSSecretsManagerV2``):

* a secret's value is its ``SecretString`` as stored (``SecretBinary`` is read as UTF-8 text);
* with ``primary_secret_name``, one secret holds a JSON object of ``NAME: value`` pairs and
  ``os.environ/NAME`` reads ``NAME`` from it;
* ``aws_kms``: the environment variable holds the base64 ciphertext (optionally prefixed
  ``aws_kms/``), decrypted with KMS ``Decrypt``; the plaintext is UTF-8 and surrounding whitespace
  is stripped.

Clients are built with retries off and short timeouts (``base.py``): one unanswered call fails in
seconds instead of the SDK's default minutes of backoff. The optional role settings
(``aws_role_name``, ``aws_session_name``, ``aws_external_id``, ``aws_web_identity_token``,
``aws_sts_endpoint``, ``aws_profile_name``) are LiteLLM's: the credentials of an assumed role are
fetched once, when the client is built.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from typing import Any

from .base import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    SecretAccessDenied,
    SecretManagerError,
    SecretManagerMisconfigured,
    SecretManagerUnreachable,
    SecretUndecryptable,
    import_client,
)

__all__ = ["AWSKMS", "AWSSecretsManager", "aws_region", "kms_client"]

_DENIED = {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidSignatureException",
           "ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch", "KMSAccessDeniedException"}
_UNDECRYPTABLE = {"DecryptionFailure", "InvalidCiphertextException", "IncorrectKeyException",
                  "KMSInvalidStateException", "DisabledException", "KeyUnavailableException",
                  "InvalidKeyUsageException"}
_UNREACHABLE = {"InternalServiceError", "InternalFailure", "ServiceUnavailable", "ThrottlingException",
                "KMSInternalException", "DependencyTimeoutException"}


def aws_region(options: Mapping[str, str], manager: str) -> str:
    for value in (options.get("aws_region_name"), os.environ.get("AWS_REGION_NAME"),
                  os.environ.get("AWS_REGION"), os.environ.get("AWS_DEFAULT_REGION")):
        if value:
            return value
    raise SecretManagerMisconfigured(
        manager, "no AWS region: set AWS_REGION_NAME (or AWS_REGION), or "
                 "general_settings.key_management_settings.aws_region_name")


def _client(service: str, options: Mapping[str, str], manager: str) -> Any:
    boto3 = import_client(manager, "boto3", "aws")
    from botocore.config import Config

    region = aws_region(options, manager)
    config = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                    retries={"total_max_attempts": 1, "mode": "standard"})
    try:
        session = boto3.session.Session(profile_name=options.get("aws_profile_name"), region_name=region)
        role = options.get("aws_role_name")
        if role:
            session = _assume_role(boto3, session, role, options, config, manager)
        return session.client(service, config=config)
    except SecretManagerError:
        raise
    except Exception as exc:
        raise _map_error(manager, exc) from None


def _assume_role(boto3: Any, session: Any, role: str, options: Mapping[str, str], config: Any,
                 manager: str) -> Any:
    sts = session.client("sts", config=config, endpoint_url=options.get("aws_sts_endpoint"))
    name = options.get("aws_session_name") or "trioproxy-secret-manager"
    token = options.get("aws_web_identity_token")
    if token:
        answer = sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName=name, WebIdentityToken=token)
    else:
        kwargs = {"RoleArn": role, "RoleSessionName": name}
        if options.get("aws_external_id"):
            kwargs["ExternalId"] = options["aws_external_id"]
        answer = sts.assume_role(**kwargs)
    credentials = answer["Credentials"]
    return boto3.session.Session(aws_access_key_id=credentials["AccessKeyId"],
                                 aws_secret_access_key=credentials["SecretAccessKey"],
                                 aws_session_token=credentials["SessionToken"], region_name=session.region_name)


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def _map_error(manager: str, exc: Exception) -> SecretManagerError:
    """botocore's exceptions → ours. Reasons are codes and class names, never response text."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
        code = str(error.get("Code") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") if isinstance(exc.response, dict) else None
        reason = f"{code or 'error'} (HTTP {status})" if status else code or "error"
        if code in _DENIED or status in (401, 403):
            return SecretAccessDenied(manager, reason)
        if code in _UNDECRYPTABLE:
            return SecretUndecryptable(manager, reason)
        if code in _UNREACHABLE or (isinstance(status, int) and status >= 500):
            return SecretManagerUnreachable(manager, reason)
        return SecretManagerError(manager, reason)
    if isinstance(exc, bx.NoRegionError):
        return SecretManagerMisconfigured(manager, "no AWS region: set AWS_REGION_NAME (or AWS_REGION)")
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError | bx.ProfileNotFound):
        return SecretManagerMisconfigured(manager, f"no usable AWS credentials ({type(exc).__name__}): set "
                                                   "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or a role")
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError
                  | bx.ConnectionClosedError | bx.HTTPClientError):
        return SecretManagerUnreachable(manager, f"no answer from the AWS endpoint ({type(exc).__name__})")
    if isinstance(exc, bx.BotoCoreError):
        return SecretManagerError(manager, type(exc).__name__)
    return SecretManagerError(manager, f"unexpected {type(exc).__name__}")


def _text(raw: bytes, manager: str, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretUndecryptable(manager, f"{what} is not UTF-8 text") from None


class AWSSecretsManager:
    """``aws_secret_manager`` / ``aws_secret_manager_v2``: ``GetSecretValue`` per name."""

    def __init__(self, options: Mapping[str, str], name: str = "aws_secret_manager") -> None:
        self.name = name
        self.primary_secret_name = options.get("primary_secret_name")
        self._client = _client("secretsmanager", options, name)

    def _get(self, secret_id: str) -> str | None:
        try:
            answer = self._client.get_secret_value(SecretId=secret_id)
        except Exception as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                return None
            raise _map_error(self.name, exc) from None
        if answer.get("SecretString") is not None:
            return str(answer["SecretString"])
        if answer.get("SecretBinary") is not None:
            return _text(answer["SecretBinary"], self.name, "the secret's SecretBinary")
        return None

    def where(self, name: str) -> str:
        if self.primary_secret_name:
            return f"key {name!r} of the secret {self.primary_secret_name!r}"
        return f"secret {name!r}"

    def read(self, name: str) -> str | None:
        if not self.primary_secret_name:
            return self._get(name)
        document = self._get(self.primary_secret_name)
        if document is None:
            return None
        try:
            pairs = json.loads(document)
        except ValueError:
            pairs = None
        if not isinstance(pairs, dict):
            raise SecretManagerMisconfigured(
                self.name, f"primary_secret_name {self.primary_secret_name!r} does not hold a JSON object "
                           "of NAME: value pairs")
        value = pairs.get(name)
        if value is None:
            return None
        return value if isinstance(value, str) else json.dumps(value)


def kms_client(options: Mapping[str, str], manager: str = "aws_kms") -> Any:
    return _client("kms", options, manager)


def kms_decrypt(client: Any, ciphertext: str, manager: str = "aws_kms") -> str:
    """base64 (optionally ``aws_kms/``-prefixed) ciphertext → the stripped UTF-8 plaintext."""
    text = ciphertext.strip().removeprefix("aws_kms/")
    try:
        blob = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SecretUndecryptable(manager, "the value is not base64 ciphertext") from None
    if not blob:
        raise SecretUndecryptable(manager, "the value is empty")
    try:
        answer = client.decrypt(CiphertextBlob=blob)
    except Exception as exc:
        raise _map_error(manager, exc) from None
    return _text(answer["Plaintext"], manager, "the decrypted value").strip()


class AWSKMS:
    """``aws_kms``: the environment variable holds the ciphertext; reading it means decrypting it."""

    name = "aws_kms"

    def __init__(self, options: Mapping[str, str], environ: Mapping[str, str] | None = None) -> None:
        self._client = kms_client(options)
        self._environ = environ if environ is not None else os.environ

    def read(self, name: str) -> str | None:
        ciphertext = self._environ.get(name)
        if ciphertext is None:
            return None
        return kms_decrypt(self._client, ciphertext, self.name)
