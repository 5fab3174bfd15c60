"""LiteLLM's ``gcs_bucket`` logging: one JSON object per request in a Google Cloud Storage bucket.

What LiteLLM's ``GCSBucketLogger`` writes: the StandardLoggingPayload as JSON, uploaded with
``POST https://storage.googleapis.com/upload/storage/v1/b/<bucket>/o?uploadType=media&name=<object>``
and an OAuth bearer token; the object is ``<YYYY-MM-DD>/<response id>`` (UTC date; the request id
when the answer has none), ``<YYYY-MM-DD>/failure-<uuid>`` for a failure, and
``<YYYY-MM-DD>/custom-<uuid>-<gcs_log_id>`` when the request's metadata names a ``gcs_log_id``.
``GCS_BUCKET_NAME`` may carry a folder (``bucket/some/folder``), as in LiteLLM.

Credentials: the service-account JSON file at ``GCS_PATH_SERVICE_ACCOUNT``, else Application
Default Credentials; tokens from google-auth (``pip install 'trioproxy[vertex]'``), fetched and
refreshed in a worker thread (google-auth's transport is blocking). ``STORAGE_EMULATOR_HOST``
(Google's own variable for storage emulators) replaces the API's base URL.
"""

from __future__ import annotations

import base64
import datetime as _dt
import threading
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson
import trio

from ...hooks.loader import HandlerLoadError
from .base import Integration, IntegrationSettings, env, require_env

__all__ = ["GCSBucketLogger", "GCSPubSubLogger"]

#: google-auth's token refresh is a blocking HTTP call: one at a time
_TOKEN_LIMITER = trio.CapacityLimiter(1)


class _ServiceAccountTokens:
    """OAuth tokens from a service-account file, else Application Default Credentials (google-auth).
    Blocking (file read, token refresh): call only from a worker thread."""

    SCOPES: tuple[str, ...] = ("https://www.googleapis.com/auth/devstorage.read_write",)

    def __init__(self, path: str | None, scopes: tuple[str, ...] | None = None) -> None:
        self.path = path
        if scopes is not None:
            self.SCOPES = scopes
        self._credentials: Any = None
        self._lock = threading.Lock()

    def token(self) -> str:
        import google.auth
        from google.auth.transport.requests import Request
        from google.oauth2 import service_account

        with self._lock:
            if self._credentials is None:
                if self.path:
                    self._credentials = service_account.Credentials.from_service_account_file(
                        self.path, scopes=list(self.SCOPES))
                else:
                    self._credentials, _ = google.auth.default(scopes=list(self.SCOPES))
            if not self._credentials.valid:
                self._credentials.refresh(Request())
            return str(self._credentials.token)


def _safe(component: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in component)[:200]


class GCSBucketLogger(Integration):
    name = "gcs_bucket"

    def __init__(self, settings: IntegrationSettings) -> None:
        super().__init__(settings)
        try:
            import google.auth  # noqa: F401 - checked now: a missing extra is a startup error
        except ImportError:
            raise HandlerLoadError("LiteLLM's 'gcs_bucket' logging integration needs google-auth: "
                                   "pip install 'trioproxy[vertex]'") from None
        bucket = require_env(self.name, "GCS_BUCKET_NAME").strip("/")
        self.bucket, _, self.folder = bucket.partition("/")
        self.tokens = _ServiceAccountTokens(env("GCS_PATH_SERVICE_ACCOUNT"))
        self.api_base = (env("STORAGE_EMULATOR_HOST") or "https://storage.googleapis.com").rstrip("/")

    def object_name(self, payload: Mapping[str, Any], kwargs: Mapping[str, Any]) -> str:
        day = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d")
        metadata = ((kwargs.get("litellm_params") or {}).get("metadata") or {})
        log_id = metadata.get("gcs_log_id")
        if isinstance(log_id, str) and _safe(log_id):
            name = f"{day}/custom-{uuid.uuid4().hex}-{_safe(log_id)}"
        elif payload["status"] == "failure":
            name = f"{day}/failure-{uuid.uuid4().hex}"
        else:
            response = payload["response"]
            response_id = response.get("id") if isinstance(response, dict) else None
            name = f"{day}/{_safe(str(response_id or payload['id']))}"
        return f"{self.folder}/{name}" if self.folder else name

    async def send(self, payload: dict[str, Any], kwargs: Mapping[str, Any], response: Any) -> None:
        token = await trio.to_thread.run_sync(self.tokens.token, limiter=_TOKEN_LIMITER)
        name = quote(self.object_name(payload, kwargs), safe="")
        url = f"{self.api_base}/upload/storage/v1/b/{self.bucket}/o?uploadType=media&name={name}"
        await self.request("POST", url, content=orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS),
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


class GCSPubSubLogger(Integration):
    """``gcs_pubsub``: LiteLLM's ``GcsPubSubLogger`` — each successful request's
    StandardLoggingPayload (LiteLLM's default; ``gcs_pub_sub_use_v1``'s older spend-log shape is not
    built) as one Pub/Sub message: ``POST https://pubsub.googleapis.com/v1/projects/<project>/topics/
    <topic>:publish`` with ``{"messages": [{"data": <base64 of the JSON>}]}`` and an OAuth bearer.
    ``GCS_PUBSUB_PROJECT_ID`` and ``GCS_PUBSUB_TOPIC_ID`` (required), ``GCS_PATH_SERVICE_ACCOUNT``
    (else Application Default Credentials), ``PUBSUB_EMULATOR_HOST`` (Google's variable) replaces the
    API's base URL. Successes only, as LiteLLM's. One publish per request (LiteLLM batches in memory:
    see docs/logging.md for why not here)."""

    name = "gcs_pubsub"
    logs_failure = False

    def __init__(self, settings: IntegrationSettings) -> None:
        super().__init__(settings)
        try:
            import google.auth  # noqa: F401 - checked now: a missing extra is a startup error
        except ImportError:
            raise HandlerLoadError("LiteLLM's 'gcs_pubsub' logging integration needs google-auth: "
                                   "pip install 'trioproxy[vertex]'") from None
        project = require_env(self.name, "GCS_PUBSUB_PROJECT_ID")
        topic = require_env(self.name, "GCS_PUBSUB_TOPIC_ID")
        self.tokens = _ServiceAccountTokens(env("GCS_PATH_SERVICE_ACCOUNT"),
                                            ("https://www.googleapis.com/auth/pubsub",))
        emulator = env("PUBSUB_EMULATOR_HOST")
        base = (emulator if "://" in emulator else f"http://{emulator}") if emulator else "https://pubsub.googleapis.com"
        self.url = f"{base.rstrip('/')}/v1/projects/{quote(project, safe='')}/topics/{quote(topic, safe='')}:publish"

    async def send(self, payload: dict[str, Any], kwargs: Mapping[str, Any], response: Any) -> None:
        token = await trio.to_thread.run_sync(self.tokens.token, limiter=_TOKEN_LIMITER)
        data = base64.b64encode(orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS)).decode()
        await self.request("POST", self.url, content=orjson.dumps({"messages": [{"data": data}]}),
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
