"""HashiCorp Vault (``hashicorp_vault``): KV version 2, through ``hvac`` (``pip install 'trioproxy[vault]'``).

Why hvac rather than Vault's HTTP API by hand through httpx (which the core already has): hvac is
HashiCorp-community maintained and speaks the two calls we need (AppRole login, KV v2 read) with
Vault's own error mapping (403 → ``Forbidden``, 404 → ``InvalidPath``, 503 → ``VaultDown``), the
namespace header and KV v2's soft-deleted versions, so none of that is ours to keep in step with
Vault. It is an optional extra: the core install does not pull it (or its ``requests``) in.

LiteLLM's variables and conventions, read once when the manager is built:

=================================  ===========================================================
``HCP_VAULT_ADDR``                 the server (default ``http://127.0.0.1:8200``, as LiteLLM)
``HCP_VAULT_TOKEN``                token login, or
``HCP_VAULT_APPROLE_ROLE_ID`` +    AppRole login (preferred when both are set, as LiteLLM does);
``HCP_VAULT_APPROLE_SECRET_ID``    ``HCP_VAULT_APPROLE_MOUNT_PATH`` (default ``approle``)
``HCP_VAULT_NAMESPACE``            Vault Enterprise namespace, sent as ``X-Vault-Namespace``;
                                   ``HCP_VAULT_LOGIN_NAMESPACE`` / ``HCP_VAULT_SECRET_NAMESPACE``
                                   override it for the login / the reads
``HCP_VAULT_MOUNT_NAME``           the KV v2 mount (default ``secret``)
``HCP_VAULT_PATH_PREFIX``          a folder under the mount (``secret/data/<prefix>/<NAME>``)
=================================  ===========================================================

``os.environ/NAME`` reads ``GET /v1/<mount>/data/[<prefix>/]NAME`` and takes the value of the field
``key`` (``data.data.key``), as LiteLLM stores and reads it. A secret that exists without a ``key``
field is an error (LiteLLM silently falls back to the environment there). The AppRole token is
kept until its lease ends and fetched again then (and once more if Vault refuses it early).
TLS-certificate login (``HCP_VAULT_CLIENT_CERT``) is not supported: a startup error says so.
"""

from __future__ import annotations

import os
import threading
import time
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

__all__ = ["HashicorpVault"]

NAME = "hashicorp_vault"
DEFAULT_ADDR = "http://127.0.0.1:8200"


def _component(value: str | None) -> str | None:
    """LiteLLM's path sanitising: surrounding whitespace and slashes dropped, empty → None."""
    if value is None:
        return None
    value = value.strip().strip("/")
    return value or None


class HashicorpVault:
    name = NAME

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = environ if environ is not None else os.environ
        self._hvac = import_client(NAME, "hvac", "vault")
        self.addr = (env.get("HCP_VAULT_ADDR") or DEFAULT_ADDR).strip().rstrip("/")
        if not self.addr.startswith(("http://", "https://")):
            raise SecretManagerMisconfigured(NAME, "HCP_VAULT_ADDR must be an http(s) URL")
        namespace = _component(env.get("HCP_VAULT_NAMESPACE"))
        self.login_namespace = _component(env.get("HCP_VAULT_LOGIN_NAMESPACE")) or namespace
        self.secret_namespace = _component(env.get("HCP_VAULT_SECRET_NAMESPACE")) or namespace
        self.mount = _component(env.get("HCP_VAULT_MOUNT_NAME")) or "secret"
        self.prefix = _component(env.get("HCP_VAULT_PATH_PREFIX"))
        self.role_id = env.get("HCP_VAULT_APPROLE_ROLE_ID") or ""
        self.secret_id = env.get("HCP_VAULT_APPROLE_SECRET_ID") or ""
        self.approle_mount = _component(env.get("HCP_VAULT_APPROLE_MOUNT_PATH")) or "approle"
        token = env.get("HCP_VAULT_TOKEN") or ""
        if bool(self.role_id) != bool(self.secret_id):
            missing = "HCP_VAULT_APPROLE_SECRET_ID" if self.role_id else "HCP_VAULT_APPROLE_ROLE_ID"
            raise SecretManagerMisconfigured(NAME, f"{missing} is not set (AppRole login needs both "
                                                   "HCP_VAULT_APPROLE_ROLE_ID and HCP_VAULT_APPROLE_SECRET_ID)")
        self.approle = bool(self.role_id)
        if not token and not self.approle:
            cert = " (TLS certificate login, HCP_VAULT_CLIENT_CERT, is not supported)" \
                if env.get("HCP_VAULT_CLIENT_CERT") else ""
            raise SecretManagerMisconfigured(NAME, "HCP_VAULT_TOKEN is not set: set it, or "
                                                   f"HCP_VAULT_APPROLE_ROLE_ID and HCP_VAULT_APPROLE_SECRET_ID{cert}")
        # "" and not None: hvac would otherwise pick VAULT_TOKEN or ~/.vault-token up by itself
        self._client = self._new_client(self.secret_namespace, "" if self.approle else token)
        self._token_expires = float("inf")
        self._lock = threading.Lock()

    def _new_client(self, namespace: str | None, token: str | None) -> Any:
        return self._hvac.Client(url=self.addr, token=token, namespace=namespace,
                                 timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))

    # -- AppRole -----------------------------------------------------------------------------------
    def _login(self, force: bool = False) -> None:
        with self._lock:
            if not force and self._client.token and time.monotonic() < self._token_expires:
                return
            login = self._new_client(self.login_namespace, "")
            try:
                answer = login.auth.approle.login(role_id=self.role_id, secret_id=self.secret_id,
                                                  mount_point=self.approle_mount, use_token=False)
            except Exception as exc:
                raise self._map_error(exc, "AppRole login") from None
            finally:
                login.adapter.close()
            auth = answer.get("auth") if isinstance(answer, dict) else None
            token = auth.get("client_token") if isinstance(auth, dict) else None
            if not isinstance(token, str) or not token:
                raise SecretAccessDenied(NAME, "AppRole login answered without a client token")
            lease = auth.get("lease_duration") if isinstance(auth, dict) else None
            # renew a little before the lease ends; 0 means the token does not expire
            self._token_expires = (time.monotonic() + max(float(lease) - 10.0, 1.0)
                                   if isinstance(lease, int | float) and lease > 0 else float("inf"))
            self._client.token = token

    # -- reading -----------------------------------------------------------------------------------
    def path_of(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def where(self, name: str) -> str:
        return f"{self.mount}/data/{self.path_of(name)}"

    def read(self, name: str) -> str | None:
        if self.approle:
            self._login()
        try:
            return self._read(name)
        except SecretAccessDenied:
            if not self.approle:
                raise
            self._login(force=True)   # a token revoked before its lease ended: one fresh login
            return self._read(name)

    def _read(self, name: str) -> str | None:
        path = self.path_of(name)
        exceptions = self._hvac.exceptions
        try:
            answer = self._client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self.mount, raise_on_deleted_version=True)
        except exceptions.InvalidPath:
            return None
        except Exception as exc:
            raise self._map_error(exc, f"reading {self.mount}/data/{path}") from None
        data = answer.get("data") if isinstance(answer, dict) else None
        fields = data.get("data") if isinstance(data, dict) else None
        value = fields.get("key") if isinstance(fields, dict) else None
        if value is None:
            raise SecretManagerMisconfigured(
                NAME, f"{self.mount}/data/{path} exists but has no field 'key' (the value must be stored "
                      "in the field 'key', as LiteLLM writes it)")
        return value if isinstance(value, str) else str(value)

    def _map_error(self, exc: Exception, what: str) -> SecretManagerError:
        exceptions = self._hvac.exceptions
        status = next((code for cls, code in (
            (exceptions.InvalidRequest, 400), (exceptions.Unauthorized, 401), (exceptions.Forbidden, 403),
            (exceptions.InvalidPath, 404), (exceptions.RateLimitExceeded, 429),
            (exceptions.InternalServerError, 500), (exceptions.BadGateway, 502), (exceptions.VaultDown, 503),
        ) if isinstance(exc, cls)), None)
        suffix = f"HTTP {status}" if status else type(exc).__name__
        if isinstance(exc, exceptions.Forbidden | exceptions.Unauthorized):
            return SecretAccessDenied(NAME, f"{what}: {suffix}")
        if isinstance(exc, exceptions.VaultDown | exceptions.InternalServerError | exceptions.BadGateway
                      | exceptions.VaultNotInitialized | exceptions.RateLimitExceeded):
            return SecretManagerUnreachable(NAME, f"{what}: {suffix}")
        requests_exceptions = getattr(import_client(NAME, "requests", "vault"), "exceptions", None)
        if requests_exceptions is not None and isinstance(
                exc, requests_exceptions.ConnectionError | requests_exceptions.Timeout):
            return SecretManagerUnreachable(NAME, f"{what}: no answer from {self.addr} ({type(exc).__name__})")
        return SecretManagerError(NAME, f"{what}: {suffix}")
