"""LiteLLM's ``s3`` / ``s3_v2`` logging: one JSON object per request, ``PUT`` with AWS SigV4.

What LiteLLM's ``S3Logger`` writes: the StandardLoggingPayload as JSON, at
``<s3_path>/<YYYY-MM-DD>/time-<HH-MM-SS-microseconds>_<id>.json`` (UTC), in
``s3_callback_params.s3_bucket_name``; the virtual-hosted URL
``https://<bucket>.s3.<region>.amazonaws.com/<key>``, or ``<s3_endpoint_url>/<bucket>/<key>``
(MinIO, R2, a local endpoint). Signed by botocore's ``S3SigV4Auth`` (the maintained signer; the
signing is CPU only, a few microseconds, on the Trio thread) and sent with httpx.

Credentials: ``s3_aws_access_key_id`` / ``s3_aws_secret_access_key`` / ``s3_aws_session_token``
(``os.environ/…`` references, as in the seeds), else botocore's credential chain (the
``AWS_ACCESS_KEY_ID`` … variables, profiles, instance roles), read in a worker thread because the
chain may make network calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson
import trio

from ...hooks.loader import HandlerLoadError
from .base import Integration, IntegrationSettings, env
from .standard_payload import logging_id

__all__ = ["AwsCredentialSource", "S3Logger", "require_botocore"]

#: botocore's credential chain may call the instance metadata service: one thread at a time
_CREDENTIALS_LIMITER = trio.CapacityLimiter(1)


def require_botocore(integration: str) -> None:
    """Checked at startup: a missing extra is a startup error, not a failure at the first request."""
    try:
        import botocore.auth
        import botocore.credentials  # noqa: F401
    except ImportError:
        raise HandlerLoadError(f"LiteLLM's {integration!r} logging integration needs botocore: "
                               "pip install 'trioproxy[s3]'") from None


class AwsCredentialSource:
    """Static keys from the config, else botocore's credential chain (read in a worker thread)."""

    def __init__(self, integration: str, key_id: str | None, secret: str | None, token: str | None) -> None:
        self.integration = integration
        self._static = None
        if key_id and secret:
            from botocore.credentials import Credentials
            self._static = Credentials(key_id, secret, token).get_frozen_credentials()
        self._chain: Any = None

    async def get(self) -> Any:
        """Frozen credentials (access key, secret, token: one consistent snapshot)."""
        if self._static is not None:
            return self._static

        def resolve() -> Any:
            if self._chain is None:
                import botocore.session
                self._chain = botocore.session.Session().get_credentials()
            if self._chain is None:
                raise RuntimeError(f"{self.integration}: no AWS credentials (the integration's access key "
                                   "settings, AWS_ACCESS_KEY_ID, a profile or an instance role)")
            return self._chain.get_frozen_credentials()

        return await trio.to_thread.run_sync(resolve, limiter=_CREDENTIALS_LIMITER)


class S3Logger(Integration):
    name = "s3"

    def __init__(self, settings: IntegrationSettings, name: str = "s3") -> None:
        self.name = name
        super().__init__(settings)
        require_botocore(name)
        params: Mapping[str, Any] = settings.litellm.get("s3_callback_params") or {}
        self.bucket = params.get("s3_bucket_name") or env("AWS_S3_BUCKET_NAME")
        if not self.bucket:
            raise HandlerLoadError(f"LiteLLM's {name!r} logging integration needs "
                                   "litellm_settings.s3_callback_params.s3_bucket_name")
        self.region = (params.get("s3_region_name") or env("AWS_REGION_NAME") or env("AWS_REGION")
                       or env("AWS_DEFAULT_REGION") or "us-east-1")
        self.path = params.get("s3_path") or ""
        # LiteLLM's s3_v2 prefixes: <team alias>/ and <key alias>/ (trioproxy's key alias is the masked key)
        self.team_prefix = params.get("s3_use_team_prefix") is True
        self.key_prefix = params.get("s3_use_key_prefix") is True
        self.endpoint = (params.get("s3_endpoint_url") or "").rstrip("/")
        self.credentials = AwsCredentialSource(self.name, params.get("s3_aws_access_key_id"),
                                               params.get("s3_aws_secret_access_key"),
                                               params.get("s3_aws_session_token"))

    def object_key(self, payload: Mapping[str, Any]) -> str:
        import datetime as _dt
        day = _dt.datetime.fromtimestamp(payload["startTime"], _dt.UTC).strftime("%Y-%m-%d")
        name = logging_id(payload).replace("/", "_").replace(":", "_")
        metadata = payload.get("metadata") or {}
        prefix = "".join(f"{str(part).replace('/', '_')}/" for part in (
            metadata.get("user_api_key_team_alias") if self.team_prefix else None,
            metadata.get("user_api_key_alias") if self.key_prefix else None) if part)
        return (f"{self.path.rstrip('/')}/" if self.path else "") + f"{prefix}{day}/{name}.json"

    def url(self, key: str) -> str:
        encoded = quote(key, safe="/")
        if self.endpoint:
            return f"{self.endpoint}/{self.bucket}/{encoded}"
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{encoded}"

    def signed_headers(self, credentials: Any, url: str, body: bytes) -> dict[str, str]:
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest(method="PUT", url=url, data=body, headers={
            "Content-Type": "application/json",
            "x-amz-content-sha256": hashlib.sha256(body).hexdigest()})
        S3SigV4Auth(Credentials(credentials.access_key, credentials.secret_key, credentials.token),
                    "s3", self.region).add_auth(request)
        return {k: v for k, v in request.headers.items()}

    async def send(self, payload: dict[str, Any], kwargs: Mapping[str, Any], response: Any) -> None:
        body = orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS)
        url = self.url(self.object_key(payload))
        headers = self.signed_headers(await self.credentials.get(), url, body)
        await self.request("PUT", url, content=body, headers=headers)
