"""``galileo``: LiteLLM's Galileo Observe integration (``integrations/galileo.py``).

Per successful chat or text completion one record, ``POST <GALILEO_BASE_URL>/projects/
<GALILEO_PROJECT_ID>/observe/ingest`` with ``{"records": [{latency_ms, status_code: 200, input_text
(the formatted prompt), output_text (the first choice's message as JSON, or a completion's text),
node_type (the call type), model, num_input_tokens, num_output_tokens, output_logprobs: null,
created_at ("%Y-%m-%dT%H:%M:%S", the start), tags: null, user_metadata: null}]}`` under a bearer
token from ``POST <GALILEO_BASE_URL>/login`` (form ``username`` / ``password``:
``GALILEO_USERNAME`` / ``GALILEO_PASSWORD``). Successes only and no embeddings, as LiteLLM's.

Decisions: all four variables are required at startup (LiteLLM starts without them and fails on
every request). The token is fetched at the first record and kept; a 401 from the ingest endpoint
logs in once more and retries that record (a token that expired), anything else is a failed
delivery, counted like every integration's.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import trio

from ...prompt import get_formatted_prompt
from .base import Integration, IntegrationError, IntegrationSettings, require_env

__all__ = ["GalileoLogger"]


class GalileoLogger(Integration):
    name = "galileo"
    logs_failure = False

    def __init__(self, settings: IntegrationSettings) -> None:
        super().__init__(settings)
        self.base_url = require_env(self.name, "GALILEO_BASE_URL").rstrip("/")
        self.project_id = require_env(self.name, "GALILEO_PROJECT_ID")
        self.username = require_env(self.name, "GALILEO_USERNAME")
        self.password = require_env(self.name, "GALILEO_PASSWORD")
        self._token: str | None = None
        self._login_lock = trio.Lock()

    async def _login(self, stale: str | None) -> str:
        async with self._login_lock:
            if self._token is not None and self._token != stale:
                return self._token     # another delivery logged in meanwhile
            answer = await self.request("POST", f"{self.base_url}/login",
                                        content=urlencode({"username": self.username, "password": self.password}),
                                        headers={"accept": "application/json",
                                                 "Content-Type": "application/x-www-form-urlencoded"})
            try:
                token = orjson.loads(answer.content)["access_token"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise IntegrationError("galileo: the login answer holds no access_token") from None
            self._token = str(token)
            return self._token

    def record(self, payload: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
        response = payload["response"] if isinstance(payload["response"], Mapping) else {}
        choices = response.get("choices") or []
        first = choices[0] if choices and isinstance(choices[0], Mapping) else {}
        if isinstance(first.get("message"), Mapping):
            output = orjson.dumps(first["message"], default=str).decode()
        elif isinstance(first.get("text"), str):
            output = first["text"]
        else:
            return None        # embeddings and the like: LiteLLM logs nothing
        usage = response.get("usage") if isinstance(response.get("usage"), Mapping) else {}
        call_type = str(payload["call_type"])
        if not self.message_logging:
            prompt = ""
        elif isinstance(payload["messages"], list):
            prompt = get_formatted_prompt({"messages": payload["messages"]}, "completion")
        else:
            prompt = get_formatted_prompt(dict(kwargs), "text_completion" if call_type == "atext_completion"
                                          else "completion")
        return {
            "latency_ms": int((payload["endTime"] - payload["startTime"]) * 1000), "status_code": 200,
            "input_text": prompt, "output_text": output if self.message_logging else "",
            "node_type": call_type, "model": payload["model"] or "-",
            "num_input_tokens": usage.get("prompt_tokens") or 0, "num_output_tokens": usage.get("completion_tokens") or 0,
            "output_logprobs": None,
            "created_at": _dt.datetime.fromtimestamp(payload["startTime"], _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "tags": None, "user_metadata": None,
        }

    async def send(self, payload: dict[str, Any], kwargs: Mapping[str, Any], response: Any) -> None:
        record = self.record(payload, kwargs)
        if record is None:
            return
        body = orjson.dumps({"records": [record]})
        url = f"{self.base_url}/projects/{self.project_id}/observe/ingest"
        token = self._token or await self._login(None)
        for attempt in (1, 2):
            try:
                answer = await self.client.post(url, content=body, headers={
                    "accept": "application/json", "Content-Type": "application/json",
                    "Authorization": f"Bearer {token}"})
            except httpx.HTTPError as exc:
                raise IntegrationError(f"galileo: POST {url} failed: {type(exc).__name__}") from None
            if answer.status_code == 401 and attempt == 1:
                token = await self._login(token)
                continue
            if answer.status_code >= 300:
                raise IntegrationError(f"galileo: POST {url} answered {answer.status_code}")
            return
