"""Azure Key Vault (``azure_key_vault``), through ``azure-keyvault-secrets`` + ``azure-identity``.

``pip install 'trioproxy[azure]'``. The vault is ``AZURE_KEY_VAULT_URI`` (LiteLLM's variable; unset
is a startup error naming it); credentials come from ``DefaultAzureCredential``: the environment
(``AZURE_TENANT_ID`` / ``AZURE_CLIENT_ID`` / ``AZURE_CLIENT_SECRET`` or a certificate), workload
identity, managed identity, then the developer tools' logins. The SDK's retries are off and its
timeouts short (``base.py``).

Names: Key Vault secret names may only hold letters, digits and dashes, so ``os.environ/NAME`` reads
the secret ``NAME`` with every ``_`` turned into ``-`` (``OPENAI_API_KEY`` → ``OPENAI-API-KEY``).
LiteLLM sends the name unchanged, which Key Vault refuses, and then falls back to the environment;
here the secret is really read. A name that is still invalid is a startup error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from .base import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    SecretAccessDenied,
    SecretManagerError,
    SecretManagerMisconfigured,
    SecretManagerUnreachable,
    import_client,
)

__all__ = ["AzureKeyVault", "key_vault_name"]

NAME = "azure_key_vault"
_VALID = re.compile(r"[0-9A-Za-z-]{1,127}")


def key_vault_name(name: str) -> str:
    """``OPENAI_API_KEY`` → ``OPENAI-API-KEY``; raises for a name Key Vault cannot hold."""
    candidate = name.replace("_", "-")
    if not _VALID.fullmatch(candidate):
        raise SecretManagerMisconfigured(NAME, f"{name!r} cannot be a Key Vault secret name (letters, digits "
                                               "and dashes only; '_' is read as '-')")
    return candidate


class AzureKeyVault:
    name = NAME

    def __init__(self, environ: Mapping[str, str] | None = None, credential: Any = None) -> None:
        env = environ if environ is not None else os.environ
        uri = (env.get("AZURE_KEY_VAULT_URI") or "").strip()
        if not uri:
            raise SecretManagerMisconfigured(NAME, "AZURE_KEY_VAULT_URI is not set (e.g. https://my-vault.vault.azure.net/)")
        if not uri.startswith("https://"):
            raise SecretManagerMisconfigured(NAME, "AZURE_KEY_VAULT_URI must be an https:// URL "
                                                   "(Key Vault sends its token challenge over TLS only)")
        self.uri = uri
        secrets = import_client(NAME, "azure.keyvault.secrets", "azure")
        if credential is None:
            identity = import_client(NAME, "azure.identity", "azure")
            credential = identity.DefaultAzureCredential(exclude_interactive_browser_credential=True)
        self._client = secrets.SecretClient(vault_url=uri, credential=credential, retry_total=0,
                                            connection_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT)

    def where(self, name: str) -> str:
        return f"secret {key_vault_name(name)!r} in {self.uri}"

    def read(self, name: str) -> str | None:
        from azure.core import exceptions as ax

        vault_name = key_vault_name(name)
        try:
            secret = self._client.get_secret(vault_name)
        except ax.ResourceNotFoundError:
            return None
        except Exception as exc:
            raise _map_error(exc) from None
        return secret.value


def _map_error(exc: Exception) -> SecretManagerError:
    from azure.core import exceptions as ax

    try:
        from azure.identity import CredentialUnavailableError
    except ImportError:   # pragma: no cover - the extra installs both
        CredentialUnavailableError = ()  # type: ignore[assignment,misc]
    if isinstance(exc, CredentialUnavailableError):
        return SecretManagerMisconfigured(NAME, "no Azure credential is available (set AZURE_TENANT_ID, "
                                                "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or use a managed identity)")
    if isinstance(exc, ax.ClientAuthenticationError):
        status = getattr(exc, "status_code", None)
        return SecretAccessDenied(NAME, f"authentication failed (HTTP {status})" if status
                                  else "could not get an access token")
    if isinstance(exc, ax.ServiceRequestError | ax.ServiceResponseError):
        return SecretManagerUnreachable(NAME, f"no answer from the vault ({type(exc).__name__})")
    if isinstance(exc, ax.HttpResponseError):
        status = exc.status_code
        code = getattr(getattr(exc, "error", None), "code", None)
        reason = f"HTTP {status}" + (f" ({code})" if code else "")
        if status in (401, 403):
            return SecretAccessDenied(NAME, reason)
        if isinstance(status, int) and status >= 500:
            return SecretManagerUnreachable(NAME, reason)
        return SecretManagerError(NAME, reason)
    return SecretManagerError(NAME, f"unexpected {type(exc).__name__}")
