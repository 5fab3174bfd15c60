"""LiteLLM's ``openmeter`` and ``athina`` integrations (successes only, as in LiteLLM).

* ``openmeter``: a CloudEvent per answered request to ``<OPENMETER_API_ENDPOINT>/api/v1/events``
  (``https://openmeter.cloud``), ``Authorization: Bearer OPENMETER_API_KEY``, content type
  ``application/cloudevents+json``: ``type`` ``OPENMETER_EVENT_TYPE`` (``litellm_tokens``),
  ``source`` ``litellm-proxy``, ``subject`` the request's ``user`` (or, with
  ``OPENMETER_TRUST_REQUEST_USER=false`` or no ``user``, the key's user id; an event without either
  is a failed delivery, as in LiteLLM), ``data`` ``{model, cost, prompt_tokens, completion_tokens,
  total_tokens}``.
* ``athina``: ``POST <ATHINA_BASE_URL>/api/v1/log/inference`` (``https://log.athina.ai``), header
  ``athina-api-key``: ``language_model_id``, ``prompt``, ``response``, token counts,
  ``response_time`` (ms), tools/functions, Athina's metadata keys from the request's ``metadata``.
  LiteLLM also sends its whole ``kwargs`` as ``request``; trioproxy sends the call's model,
  messages, parameters, metadata, user and id there — never an exception object or a key.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

import orjson

from .base import Integration, IntegrationSettings, env, require_env

__all__ = ["AthinaLogger", "OpenMeterLogger"]


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)


class OpenMeterLogger(Integration):
    name = "openmeter"
    logs_failure = False

    def __init__(self, settings: IntegrationSettings) -> None:
        super().__init__(settings)
        self.api_key = require_env(self.name, "OPENMETER_API_KEY")
        self.url = (env("OPENMETER_API_ENDPOINT") or "https://openmeter.cloud").rstrip("/") + "/api/v1/events"
        self.event_type = env("OPENMETER_EVENT_TYPE", "litellm_tokens")
        self.trust_request_user = (env("OPENMETER_TRUST_REQUEST_USER") or "true").lower() != "false"

    def event(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        subject = payload.get("end_user") if self.trust_request_user else None
        if subject is None:
            subject = (payload.get("metadata") or {}).get("user_api_key_user_id")
        if subject is None:
            raise ValueError("openmeter: user is required (the request's 'user', or a key with a user_id)")
        response = payload.get("response")
        call_id = response.get("id") if isinstance(response, dict) and response.get("id") else payload["id"]
        return {
            "specversion": "1.0",
            "type": self.event_type,
            "id": call_id,
            "time": _dt.datetime.fromtimestamp(payload["startTime"], _dt.UTC).isoformat(),
            "subject": str(subject),
            "source": "litellm-proxy",
            "data": {"model": payload["model"], "cost": payload["response_cost"],
                     "prompt_tokens": payload["prompt_tokens"], "completion_tokens": payload["completion_tokens"],
                     "total_tokens": payload["total_tokens"]},
        }

    async def send(self, payload: dict[str, Any], kwargs: Mapping[str, Any], response: Any) -> None:
        await self.request("POST", self.url, content=_dumps(self.event(payload)), headers={
            "Content-Type": "application/cloudevents+json", "Authorization": f"Bearer {self.api_key}"})


#: the request metadata keys Athina reads (LiteLLM's ``additional_keys``)
_ATHINA_KEYS = ("environment", "prompt_slug", "customer_id", "customer_user_id", "session_id",
                "external_reference_id", "context", "expected_response", "user_query", "tags", "user_feedback",
                "model_options", "custom_attributes")


class AthinaLogger(Integration):
    name = "athina"
    logs_failure = False

    def __init__(self, settings: IntegrationSettings) -> None:
        super().__init__(settings)
        self.api_key = require_env(self.name, "ATHINA_API_KEY")
        self.url = (env("ATHINA_BASE_URL") or "https://log.athina.ai").rstrip("/") + "/api/v1/log/inference"

    def record(self, payload: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        response = payload["response"] if isinstance(payload["response"], dict) else {}
        metadata = (kwargs.get("litellm_params") or {}).get("metadata") or {}
        data: dict[str, Any] = {
            "language_model_id": payload["model"],
            "request": {"model": payload["model"], "messages": payload["messages"],
                        "optional_params": payload["model_parameters"], "metadata": metadata,
                        "user": payload["end_user"], "litellm_call_id": payload["id"],
                        "call_type": payload["call_type"], "stream": payload["stream"]},
            "response": response,
            "prompt_tokens": payload["prompt_tokens"],
            "completion_tokens": payload["completion_tokens"],
            "total_tokens": payload["total_tokens"],
            "response_time": int((payload["endTime"] - payload["startTime"]) * 1000),
            "prompt": payload["messages"],
        }
        data.update((k, v) for k, v in payload["model_parameters"].items() if k in ("tools", "functions"))
        data.update((k, metadata[k]) for k in _ATHINA_KEYS if k in metadata)
        return data

    async def send(self, payload: dict[str, Any], kwargs: Mapping[str, Any], response: Any) -> None:
        await self.request("POST", self.url, content=_dumps(self.record(payload, kwargs)), headers={
            "athina-api-key": self.api_key, "Content-Type": "application/json"})
