"""LiteLLM's ``aws_sqs`` logging: one SQS message per request, the StandardLoggingPayload as JSON.

As LiteLLM's ``SQSLogger``: ``POST <sqs_queue_url>`` with the form body
``Action=SendMessage&Version=2012-11-05&MessageBody=<the payload, URL-encoded>``, signed with SigV4
(service ``sqs``, botocore's signer) — settings from ``aws_sqs_callback_params`` (``sqs_queue_url``,
``sqs_region_name``, ``sqs_aws_access_key_id``, ``sqs_aws_secret_access_key``,
``sqs_aws_session_token``; else botocore's credential chain). LiteLLM's application-level
encryption, role assumption and base64 stripping are not built (their keys warn at load).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from ...hooks.loader import HandlerLoadError
from .base import Integration, IntegrationSettings, env
from .s3 import AwsCredentialSource, require_botocore

__all__ = ["SQSLogger"]


class SQSLogger(Integration):
    name = "aws_sqs"

    def __init__(self, settings: IntegrationSettings) -> None:
        super().__init__(settings)
        require_botocore(self.name)
        params: Mapping[str, Any] = settings.litellm.get("aws_sqs_callback_params") or {}
        self.queue_url = params.get("sqs_queue_url")
        if not self.queue_url:
            raise HandlerLoadError("LiteLLM's 'aws_sqs' logging integration needs "
                                   "litellm_settings.aws_sqs_callback_params.sqs_queue_url")
        self.region = (params.get("sqs_region_name") or env("AWS_REGION_NAME") or env("AWS_REGION")
                       or env("AWS_DEFAULT_REGION") or "us-east-1")
        self.credentials = AwsCredentialSource(self.name, params.get("sqs_aws_access_key_id"),
                                               params.get("sqs_aws_secret_access_key"),
                                               params.get("sqs_aws_session_token"))

    def signed_headers(self, credentials: Any, body: str) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest(method="POST", url=self.queue_url, data=body.encode(),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        SigV4Auth(Credentials(credentials.access_key, credentials.secret_key, credentials.token),
                  "sqs", self.region).add_auth(request)
        return dict(request.headers.items())

    async def send(self, payload: dict[str, Any], kwargs: Mapping[str, Any], response: Any) -> None:
        message = orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        body = "Action=SendMessage&Version=2012-11-05&MessageBody=" + quote(message, safe="")
        headers = self.signed_headers(await self.credentials.get(), body)
        await self.request("POST", self.queue_url, content=body.encode(), headers=headers)
