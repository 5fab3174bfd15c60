"""``lunary``: LiteLLM's Lunary integration, spoken over HTTP without Lunary's SDK.

LiteLLM's ``LunaryLogger`` (``integrations/lunary.py``) calls the ``lunary`` SDK's ``track_event``
twice per request — a ``start`` event and an ``end`` (or ``error``) event of the same run — and the
SDK's consumer thread POSTs them as ``{"events": [...]}`` to ``<LUNARY_API_URL>/v1/runs/ingest``
(``https://api.lunary.ai``) with ``Authorization: Bearer <key>``. trioproxy sends the same two
events in one POST per request from the logging queue (no SDK thread, no timer: the batching rule of
every built-in integration, docs/logging.md), so they arrive together and in order.

The key: ``LUNARY_PRIVATE_KEY``, else ``LUNARY_PUBLIC_KEY`` (what LiteLLM's docs set), else
``LUNARY_APP_ID`` — the SDK's order; none is a startup error (the SDK would only warn and drop
every event). Events, as the SDK builds them from LiteLLM's arguments:

* ``runId``: the SDK's ``uuid(sha256(<call id> + <key>))``; ``parentRunId`` the same of
  ``metadata.parent_run_id``;
* ``start``: ``type`` (``llm``, ``embed`` for embeddings), ``name`` (the model), ``userId`` (the
  request's ``user``), ``tags`` (``metadata.tags``), ``input`` (the messages cleaned to ``{role,
  content, tool_calls}``; one message alone, not in a list), ``metadata``, ``params`` (the request's
  parameters without ``user``, ``extra_body``, ``extra_headers``; non-scalar values as strings
  except ``tools``), ``templateId`` (``extra_headers["Template-Id"]``), ``runtime: litellm``;
* ``end``: ``output`` (the choices' messages, cleaned the same way), ``tokensUsage: {completion,
  prompt}``; or ``error`` with ``error: {"stack": <the error>}``.

**Decision**: the SDK also copies the key into each event's ``appId``; Lunary authenticates the
batch by the ``Authorization`` header, so trioproxy leaves ``appId`` out — the key travels in the
header only, like every integration's credential (and may be a private key).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from .base import Integration, IntegrationSettings, env, require_env

__all__ = ["LunaryLogger", "lunary_run_id", "parse_messages"]

DEFAULT_API_URL = "https://api.lunary.ai"


def lunary_run_id(seed: str, key: str) -> str:
    """The SDK's ``create_uuid_from_string(seed + key)``: the first 128 bits of SHA-256."""
    return str(uuid.UUID(hashlib.sha256(f"{seed}{key}".encode()).hexdigest()[:32]))


def _clean_message(message: Any) -> Any:
    if isinstance(message, str) or not isinstance(message, Mapping):
        return message
    if "message" in message:
        return _clean_message(message["message"])
    cleaned: dict[str, Any] = {"role": message.get("role"), "content": message.get("content")}
    calls = message.get("tool_calls")
    if calls:
        cleaned["tool_calls"] = [
            {"type": c.get("type"), "id": c.get("id"),
             "function": {"name": (c.get("function") or {}).get("name"),
                          "arguments": (c.get("function") or {}).get("arguments")}}
            for c in calls if isinstance(c, Mapping) and c.get("function")]
    return cleaned


def parse_messages(value: Any) -> Any:
    """LiteLLM's ``parse_messages``: a one-item list becomes its item."""
    if value is None:
        return None
    if isinstance(value, list):
        return _clean_message(value[0]) if len(value) == 1 else [_clean_message(m) for m in value]
    return _clean_message(value)


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat()


class LunaryLogger(Integration):
    name = "lunary"

    def __init__(self, settings: IntegrationSettings) -> None:
        super().__init__(settings)
        self.key = require_env(self.name, "LUNARY_PRIVATE_KEY", "LUNARY_PUBLIC_KEY", "LUNARY_APP_ID")
        self.url = (env("LUNARY_API_URL") or DEFAULT_API_URL).rstrip("/") + "/v1/runs/ingest"

    def events(self, payload: Mapping[str, Any], kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
        metadata = dict((kwargs.get("litellm_params") or {}).get("metadata") or {})
        params = dict(kwargs.get("optional_params") or {})
        params.pop("extra_body", None)
        params.pop("user", None)
        extra_headers = params.pop("extra_headers", None)
        template = extra_headers.get("Template-Id") if isinstance(extra_headers, Mapping) else None
        for key, value in list(params.items()):
            if not isinstance(value, str | int | bool | float) and key != "tools":
                params[key] = str(value)
        run_type = "embed" if payload["call_type"] == "aembedding" else "llm"
        run_id = lunary_run_id(str(payload["id"]), self.key)
        parent = metadata.get("parent_run_id")
        response = payload["response"] if isinstance(payload["response"], Mapping) else {}
        usage = response.get("usage") if isinstance(response.get("usage"), Mapping) else None
        failed = payload["status"] == "failure"
        start = {
            "event": "start", "type": run_type, "name": payload["model"], "userId": payload.get("end_user"),
            "userProps": None, "tags": metadata.get("tags"), "threadTags": None, "runId": run_id,
            "parentRunId": lunary_run_id(str(parent), self.key) if parent else None,
            "timestamp": _iso(payload["startTime"]), "message": None, "input": parse_messages(payload["messages"]),
            "output": None, "error": None, "feedback": None, "runtime": "litellm", "tokensUsage": None,
            "metadata": metadata, "params": params, "templateId": template,
        }
        end = {
            "event": "error" if failed else "end", "type": run_type, "name": None, "userId": None, "userProps": None,
            "tags": None, "threadTags": None, "runId": run_id, "parentRunId": None,
            "timestamp": _iso(payload["endTime"]), "message": None, "input": None,
            "output": None if failed else parse_messages(response.get("choices")),
            "error": {"stack": payload["error_str"]} if failed else None, "feedback": None, "runtime": "litellm",
            "tokensUsage": None if usage is None else {"completion": usage.get("completion_tokens", 0),
                                                       "prompt": usage.get("prompt_tokens", 0)},
            "metadata": None, "params": None, "templateId": None,
        }
        return [start, end]

    async def send(self, payload: dict[str, Any], kwargs: Mapping[str, Any], response: Any) -> None:
        body = orjson.dumps({"events": self.events(payload, kwargs)}, default=str)
        await self.request("POST", self.url, content=body,
                           headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
