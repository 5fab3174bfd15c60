"""Google Secret Manager (``google_secret_manager``), through ``google-cloud-secret-manager``.

``pip install 'trioproxy[google]'``. ``os.environ/NAME`` reads
``projects/$GOOGLE_SECRET_MANAGER_PROJECT_ID/secrets/NAME/versions/latest`` (LiteLLM's variable and
path; an unset project id is a startup error naming it) with application default credentials
(``GOOGLE_APPLICATION_CREDENTIALS``, the gcloud login, or the metadata server).

The client uses its REST transport (plain HTTPS through google-auth's session: no gRPC channel to
keep alive, and the per-call timeout really bounds the call) with the library's retry turned off.
``GOOGLE_SECRET_MANAGER_API_BASE`` (trioproxy's; ``https://secretmanager.googleapis.com`` by default)
points it at a private or local endpoint.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .base import (
    READ_TIMEOUT,
    SecretAccessDenied,
    SecretManagerError,
    SecretManagerMisconfigured,
    SecretManagerUnreachable,
    SecretUndecryptable,
    import_client,
)

__all__ = ["GoogleSecretManager"]

NAME = "google_secret_manager"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


class GoogleSecretManager:
    name = NAME

    def __init__(self, environ: Mapping[str, str] | None = None, credentials: Any = None) -> None:
        env = environ if environ is not None else os.environ
        self.project = (env.get("GOOGLE_SECRET_MANAGER_PROJECT_ID") or "").strip()
        if not self.project:
            raise SecretManagerMisconfigured(NAME, "GOOGLE_SECRET_MANAGER_PROJECT_ID is not set")
        secretmanager = import_client(NAME, "google.cloud.secretmanager", "google")
        google_auth = import_client(NAME, "google.auth", "google")
        if credentials is None:
            try:
                credentials, _project = google_auth.default(scopes=list(SCOPES))
            except Exception as exc:
                raise _map_error(exc) from None
        options: dict[str, Any] = {}
        base = (env.get("GOOGLE_SECRET_MANAGER_API_BASE") or "").strip().rstrip("/")
        if base:
            options["api_endpoint"] = base
        self._client = secretmanager.SecretManagerServiceClient(credentials=credentials, transport="rest",
                                                                client_options=options or None)

    def where(self, name: str) -> str:
        return f"projects/{self.project}/secrets/{name}"

    def read(self, name: str) -> str | None:
        from google.api_core import exceptions as gx

        path = f"projects/{self.project}/secrets/{name}/versions/latest"
        try:
            answer = self._client.access_secret_version(request={"name": path}, retry=None, timeout=READ_TIMEOUT)
        except gx.NotFound:
            return None
        except Exception as exc:
            raise _map_error(exc) from None
        try:
            return bytes(answer.payload.data).decode("utf-8")
        except UnicodeDecodeError:
            raise SecretUndecryptable(NAME, "the secret's payload is not UTF-8 text") from None


def _map_error(exc: Exception) -> SecretManagerError:
    from google.api_core import exceptions as gx
    from google.auth import exceptions as ga

    if isinstance(exc, ga.DefaultCredentialsError):
        return SecretManagerMisconfigured(NAME, "no Google application default credentials (set "
                                                "GOOGLE_APPLICATION_CREDENTIALS to a service account file)")
    if isinstance(exc, ga.RefreshError):
        return SecretAccessDenied(NAME, "could not get an access token for the credentials")
    if isinstance(exc, ga.TransportError):
        return SecretManagerUnreachable(NAME, f"no answer while getting an access token ({type(exc).__name__})")
    if isinstance(exc, gx.PermissionDenied | gx.Unauthenticated | gx.Forbidden | gx.Unauthorized):
        return SecretAccessDenied(NAME, f"HTTP {exc.code} ({type(exc).__name__})")
    if isinstance(exc, gx.ServerError | gx.DeadlineExceeded | gx.RetryError | gx.ServiceUnavailable):
        return SecretManagerUnreachable(NAME, type(exc).__name__)
    if isinstance(exc, gx.GoogleAPICallError):
        return SecretManagerError(NAME, f"HTTP {exc.code} ({type(exc).__name__})")
    requests = import_client(NAME, "requests", "google")
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return SecretManagerUnreachable(NAME, f"no answer from the API ({type(exc).__name__})")
    return SecretManagerError(NAME, f"unexpected {type(exc).__name__}")
