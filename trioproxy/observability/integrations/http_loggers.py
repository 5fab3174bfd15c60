"""LiteLLM's HTTP logging integrations: ``generic_api``, ``datadog``, ``langfuse``, ``langsmith``.

Each sends what LiteLLM's integration of that name sends (read from LiteLLM's
``litellm/integrations/``), to the URL and with the auth header it uses, from the environment
variables it reads. docs/logging.md has the table.
"""

from __future__ import annotations

import base64
import datetime as _dt
import gzip
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from .base import Integration, IntegrationSettings, env, parse_headers, require_env
from .standard_payload import REDACTED

__all__ = ["DatadogLogger", "GenericAPILogger", "LangfuseLogger", "LangsmithLogger"]


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat().replace("+00:00", "Z")


class GenericAPILogger(Integration):
    """``generic_api``: POST a JSON array of StandardLoggingPayloads to ``GENERIC_LOGGER_ENDPOINT``
    with ``GENERIC_LOGGER_HEADERS`` (``k=v,k2=v2``); ``generic_api_params.log_format``:
    ``json_array`` (default), ``ndjson`` or ``single`` (one object), as LiteLLM."""

    name = "generic_api"

    def __init__(self, settings: IntegrationSettings) -> None:
        super().__init__(settings)
        params = settings.litellm.get("generic_api_params") or {}
        self.endpoint = params.get("endpoint") or require_env(self.name, "GENERIC_LOGGER_ENDPOINT")
        self.headers = {"Content-Type": "application/json", **parse_headers(env("GENERIC_LOGGER_HEADERS")),
                        **{str(k): str(v) for k, v in (params.get("headers") or {}).items()}}
        self.log_format = params.get("log_format") or "json_array"
        event_types = params.get("event_types")
        if event_types is not None:
            self.logs_success = "llm_api_success" in event_types
            self.logs_failure = "llm_api_failure" in event_types

    async def send(self, payload: dict[str, Any], kwargs: Mapping[str, Any], response: Any) -> None:
        body = _dumps([payload]) if self.log_format == "json_array" else _dumps(payload)
        await self.request("POST", self.endpoint, content=body, headers=self.headers)


class DatadogLogger(Integration):
    """``datadog``: Datadog's logs intake, ``POST https://http-intake.logs.<DD_SITE>/api/v2/logs``
    (or ``LITELLM_DD_AGENT_HOST``:``LITELLM_DD_AGENT_PORT``, or ``DD_BASE_URL``), gzip, header
    ``DD-API-KEY``; each log's ``message`` is the StandardLoggingPayload as JSON text."""

    name = "datadog"

    def __init__(self, settings: IntegrationSettings) -> None:
        super().__init__(settings)
        agent = env("LITELLM_DD_AGENT_HOST")
        if agent:
            self.intake_url = f"http://{agent}:{env('LITELLM_DD_AGENT_PORT', '10518')}/api/v2/logs"
            self.api_key = env("DD_API_KEY")
        else:
            self.api_key = require_env(self.name, "DD_API_KEY")
            self.intake_url = f"https://http-intake.logs.{require_env(self.name, 'DD_SITE')}/api/v2/logs"
        base = env("DD_BASE_URL")
        if base:
            self.intake_url = f"{base.rstrip('/')}/api/v2/logs"
        self.source = env("DD_SOURCE", "litellm")
        self.service = env("DD_SERVICE", "litellm-server")
        self.hostname = env("HOSTNAME", "") or ""

    def tags(self, payload: Mapping[str, Any]) -> str:
        tags = [f"env:{env('DD_ENV', 'unknown')}", f"service:{self.service}", f"version:{env('DD_VERSION', 'unknown')}",
                f"HOSTNAME:{self.hostname}", f"POD_NAME:{env('POD_NAME', 'unknown')}"]
        tags += [f"request_tag:{t}" for t in payload.get("request_tags") or []]
        team = (payload.get("metadata") or {}).get("user_api_key_team_id")
        if team:
            tags.append(f"team:{team}")
        return ",".join(tags)

    async def send(self, payload: dict[str, Any], kwargs: Mapping[str, Any], response: Any) -> None:
        log = {
            "ddsource": self.source,
            "ddtags": self.tags(payload),
            "hostname": self.hostname,
            "message": _dumps(payload).decode(),
            "service": self.service,
            "status": "error" if payload["status"] == "failure" else "info",
        }
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        if self.api_key:
            headers["DD-API-KEY"] = self.api_key
        await self.request("POST", self.intake_url, content=gzip.compress(_dumps([log])), headers=headers)


class LangfuseLogger(Integration):
    """``langfuse``: Langfuse's public ingestion API, ``POST <LANGFUSE_HOST>/api/public/ingestion``
    with HTTP Basic auth (``LANGFUSE_PUBLIC_KEY`` : ``LANGFUSE_SECRET_KEY``): one ``trace-create``
    and one ``generation-create`` per request, named, tagged and keyed as LiteLLM's integration does
    (``trace_id``, ``generation_name``, ``generation_id``, ``trace_user_id``, ``session_id`` … from
    the request's ``metadata``; ``langfuse_default_tags``)."""

    name = "langfuse"

    def __init__(self, settings: IntegrationSettings) -> None:
        super().__init__(settings)
        public = require_env(self.name, "LANGFUSE_PUBLIC_KEY")
        secret = require_env(self.name, "LANGFUSE_SECRET_KEY")
        host = env("LANGFUSE_HOST") or env("LANGFUSE_BASE_URL") or "https://cloud.langfuse.com"
        if not host.startswith(("http://", "https://")):
            host = "http://" + host
        self.url = host.rstrip("/") + "/api/public/ingestion"
        self.auth = "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()
        tags = settings.litellm.get("langfuse_default_tags")
        self.default_tags = list(tags) if isinstance(tags, list | tuple) else []
        self.environment = env("LANGFUSE_TRACING_ENVIRONMENT")

    def _tags(self, payload: Mapping[str, Any], metadata: Mapping[str, Any]) -> list[str]:
        tags = [str(t) for t in payload.get("request_tags") or []]
        meta = payload.get("metadata") or {}
        for name in self.default_tags:
            if name == "cache_hit":
                tags.append(f"cache_hit:{payload.get('cache_hit')}")
            elif name == "cache_key" and payload.get("cache_key"):
                tags.append(f"cache_key:{payload['cache_key']}")
            elif name == "proxy_base_url" and env("PROXY_BASE_URL"):
                tags.append(f"proxy_base_url:{env('PROXY_BASE_URL')}")
            elif name in meta and meta[name] is not None:
                tags.append(f"{name}:{meta[name]}")
        return list(dict.fromkeys(tags))

    def batch(self, payload: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        metadata = dict((kwargs.get("litellm_params") or {}).get("metadata") or {})
        failed = payload["status"] == "failure"
        call_type = payload["call_type"]
        output: Any = payload["response"]
        if isinstance(output, dict) and output.get("choices"):
            output = output["choices"][0].get("message", output)
        if failed:
            output = payload["error_str"] if self.message_logging else REDACTED
        trace_id = str(metadata.get("trace_id") or metadata.get("existing_trace_id") or payload["trace_id"])
        start, end = payload["startTime"], payload["endTime"]
        response_id = (payload["response"] or {}).get("id") if isinstance(payload["response"], dict) else None
        generation_id = metadata.get("generation_id") or (
            f"time-{_dt.datetime.fromtimestamp(start, _dt.UTC).strftime('%H-%M-%S-%f')}_{response_id}"
            if response_id else str(uuid.uuid4()))
        alias = (payload.get("metadata") or {}).get("user_api_key_alias")
        trace = {
            "id": trace_id,
            "timestamp": _iso(start),
            "name": metadata.get("trace_name") or f"litellm-{call_type}",
            "userId": metadata.get("trace_user_id") or payload.get("end_user"),
            "sessionId": metadata.get("session_id"),
            "input": payload["messages"],
            "output": output,
            "tags": self._tags(payload, metadata),
            "version": metadata.get("trace_version") or metadata.get("version"),
        }
        if self.environment:
            trace["environment"] = self.environment
        generation = {
            "id": str(generation_id),
            "traceId": trace_id,
            "name": metadata.get("generation_name") or (f"litellm:{alias}" if alias else f"litellm-{call_type}"),
            "startTime": _iso(start),
            "endTime": _iso(end),
            "completionStartTime": _iso(payload["completionStartTime"]),
            "model": payload["model"],
            "modelParameters": {k: v for k, v in payload["model_parameters"].items()
                                if isinstance(v, str | int | float | bool) or v is None},
            "input": payload["messages"],
            "output": output,
            "usage": {"input": payload["prompt_tokens"], "output": payload["completion_tokens"],
                      "total": payload["total_tokens"], "unit": "TOKENS"},
            "usageDetails": {"input": payload["prompt_tokens"], "output": payload["completion_tokens"],
                             "total": payload["total_tokens"]},
            "costDetails": {"total": payload["response_cost"]},
            "metadata": {**payload["metadata"], "litellm_response_cost": payload["response_cost"],
                         "hidden_params": payload["hidden_params"], "api_base": payload["api_base"],
                         "cache_hit": payload["cache_hit"], "litellm_call_id": payload["id"]},
            "level": "ERROR" if failed else "DEFAULT",
            "version": metadata.get("version"),
        }
        if failed:
            generation["statusMessage"] = output
        if metadata.get("parent_observation_id"):
            generation["parentObservationId"] = metadata["parent_observation_id"]
        now = _iso(end)
        return {"batch": [
            {"id": str(uuid.uuid4()), "timestamp": now, "type": "trace-create", "body": trace},
            {"id": str(uuid.uuid4()), "timestamp": now, "type": "generation-create", "body": generation},
        ], "metadata": {"sdk_name": "trioproxy", "public_key": None}}

    async def send(self, payload: dict[str, Any], kwargs: Mapping[str, Any], response: Any) -> None:
        body = self.batch(payload, kwargs)
        answer = await self.request("POST", self.url, content=_dumps(body), headers={
            "Authorization": self.auth, "Content-Type": "application/json"})
        # 207: the ingestion API answers per event; an event it refused is a failed delivery
        if answer.status_code == 207:
            errors = (answer.json() or {}).get("errors") or []
            if errors:
                raise RuntimeError(f"langfuse: {len(errors)} events refused: "
                                   f"{' '.join(str(errors[0].get('message', ''))[:200].split())}")


class LangsmithLogger(Integration):
    """``langsmith``: ``POST <LANGSMITH_BASE_URL>/runs/batch`` with header ``x-api-key:
    LANGSMITH_API_KEY``: one ``llm`` run in ``post``, in project ``LANGSMITH_PROJECT``
    (``litellm-completion``), named ``LANGSMITH_DEFAULT_RUN_NAME`` (``LLMRun``), as LiteLLM."""

    name = "langsmith"

    def __init__(self, settings: IntegrationSettings) -> None:
        super().__init__(settings)
        self.api_key = require_env(self.name, "LANGSMITH_API_KEY")
        self.base_url = (env("LANGSMITH_BASE_URL") or "https://api.smith.langchain.com").rstrip("/")
        self.project = env("LANGSMITH_PROJECT", "litellm-completion")
        self.run_name = env("LANGSMITH_DEFAULT_RUN_NAME", "LLMRun")
        self.tenant = env("LANGSMITH_TENANT_ID")

    def langsmith_run(self, payload: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        metadata = (kwargs.get("litellm_params") or {}).get("metadata") or {}
        run_id = str(metadata.get("run_id") or uuid.uuid5(uuid.NAMESPACE_URL, f"trioproxy:{payload['id']}"))
        start = _dt.datetime.fromtimestamp(payload["startTime"], _dt.UTC)
        dotted = f"{start.strftime('%Y%m%dT%H%M%S%fZ')}{run_id}"
        run = {
            "id": run_id,
            "name": metadata.get("run_name") or self.run_name,
            "run_type": "llm",
            "inputs": payload,
            "outputs": payload["response"] if isinstance(payload["response"], dict) else {"output": payload["response"]},
            "session_name": metadata.get("project_name") or self.project,
            "start_time": _iso(payload["startTime"]),
            "end_time": _iso(payload["endTime"]),
            "tags": payload["request_tags"],
            "extra": {"metadata": payload["metadata"]},
            "trace_id": str(metadata.get("trace_id") or run_id),
            "dotted_order": dotted,
        }
        if payload["status"] == "failure":
            run["error"] = payload["error_str"]
        return run

    async def send(self, payload: dict[str, Any], kwargs: Mapping[str, Any], response: Any) -> None:
        headers = {"x-api-key": self.api_key, "Content-Type": "application/json"}
        if self.tenant:
            headers["x-tenant-id"] = self.tenant
        await self.request("POST", f"{self.base_url}/runs/batch",
                           content=_dumps({"post": [self.langsmith_run(payload, kwargs)], "patch": []}), headers=headers)

