"""``deepeval``: LiteLLM's DeepEval (Confident AI) tracing integration.

What LiteLLM's ``DeepEvalLogger`` sends (``integrations/deepeval/``): per request one trace,
``POST https://api.confident-ai.com/v1/tracing`` (``CONFIDENT_REGION=EU``:
``https://eu.api.confident-ai.com``) with the header ``CONFIDENT_API_KEY`` and
``{"uuid": <trace id>, "baseSpans": [], "agentSpans": [], "llmSpans": [<span>], "retrieverSpans": [],
"toolSpans": [], "startTime", "endTime", "environment"}``; the span: ``uuid`` (the request id),
``name`` (``litellm_success_callback`` / ``litellm_failure_callback``), ``status`` (``SUCCESS`` /
``ERRORED``), ``type: llm``, ``traceUuid``, ``startTime`` / ``endTime`` (ISO, milliseconds, ``Z``),
``input`` (the messages), ``output`` (the first choice's text, or the error), ``model``,
``inputTokenCount`` / ``outputTokenCount`` (successes). Absent values are left out, as its
``exclude_none``.

``CONFIDENT_API_KEY`` is required; ``LITELM_ENVIRONMENT`` (sic, LiteLLM's name) is ``development``
(default), ``staging`` or ``production`` — another value stops startup, as in LiteLLM.
**trioproxy's addition**: ``CONFIDENT_BASE_URL`` replaces the API's base URL (a proxy or a test).
**Decision**: for a failure LiteLLM reads a key its payload does not have (``error_string``) and
sends an empty output; trioproxy sends the error message, which is what the field is for.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

import orjson

from ...hooks.loader import HandlerLoadError
from .base import Integration, IntegrationSettings, env, require_env

__all__ = ["DeepEvalLogger"]

API_BASE_URL = "https://api.confident-ai.com"
API_BASE_URL_EU = "https://eu.api.confident-ai.com"
ENVIRONMENTS = ("production", "development", "staging")


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class DeepEvalLogger(Integration):
    name = "deepeval"

    def __init__(self, settings: IntegrationSettings) -> None:
        super().__init__(settings)
        self.api_key = require_env(self.name, "CONFIDENT_API_KEY")
        self.environment = env("LITELM_ENVIRONMENT", "development") or "development"
        if self.environment not in ENVIRONMENTS:
            raise HandlerLoadError(f"LiteLLM's 'deepeval' logging integration: LITELM_ENVIRONMENT must be one of "
                                   f"{', '.join(ENVIRONMENTS)}, got {self.environment!r}")
        base = env("CONFIDENT_BASE_URL") or (API_BASE_URL_EU if (env("CONFIDENT_REGION") or "").upper() == "EU"
                                             else API_BASE_URL)
        self.url = base.rstrip("/") + "/v1/tracing"

    def trace(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        ok = payload["status"] != "failure"
        response = payload["response"] if isinstance(payload["response"], Mapping) else {}
        usage = response.get("usage") if isinstance(response.get("usage"), Mapping) else {}
        if ok:
            choices = response.get("choices") or [{}]
            message = choices[0].get("message") if isinstance(choices[0], Mapping) else None
            output = (message or {}).get("content", "NO_OUTPUT") if isinstance(message, Mapping) else "NO_OUTPUT"
        else:
            output = str(payload["error_str"] or "")
        start, end = _iso(payload["startTime"]), _iso(payload["endTime"])
        span = {
            "uuid": str(payload["id"]), "name": "litellm_success_callback" if ok else "litellm_failure_callback",
            "status": "SUCCESS" if ok else "ERRORED", "type": "llm", "traceUuid": str(payload["trace_id"]),
            "startTime": start, "endTime": end, "input": payload["messages"], "output": output,
            "model": payload["model"],
            "inputTokenCount": usage.get("prompt_tokens") if ok else None,
            "outputTokenCount": usage.get("completion_tokens") if ok else None,
        }
        return {"uuid": str(payload["trace_id"]), "baseSpans": [], "agentSpans": [],
                "llmSpans": [{k: v for k, v in span.items() if v is not None}], "retrieverSpans": [],
                "toolSpans": [], "startTime": start, "endTime": end, "environment": self.environment}

    async def send(self, payload: dict[str, Any], kwargs: Mapping[str, Any], response: Any) -> None:
        await self.request("POST", self.url, content=orjson.dumps(self.trace(payload), default=str),
                           headers={"CONFIDENT_API_KEY": self.api_key, "Content-Type": "application/json"})
