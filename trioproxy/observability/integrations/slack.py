"""``general_settings.alerting: ["slack"]``: LiteLLM's Slack alerts, to ``SLACK_WEBHOOK_URL``.

Built here (from the logging sink, off the request path): ``llm_exceptions`` (a failed request),
``budget_alerts`` (a request refused for a budget), ``llm_too_slow`` (a request that took longer
than ``alerting_threshold`` seconds, default 300, as LiteLLM). ``alert_types`` chooses among them
(default: all of these); ``alert_to_webhook_url`` sends an alert type to its own webhook. Not built:
LiteLLM's hanging-request, daily-report, outage, region-outage, DB-exception and spend-report
alerts (a failure of the database is in the proxy's log and metrics).

The text carries the model, the error class and message (scrubbed by the sink), the request id and
the caller's masked key alias: never a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ...config.logging_keys import SLACK_ALERT_TYPES
from .base import Integration, IntegrationSettings, require_env

__all__ = ["SLACK_ALERT_TYPES", "SlackAlerting"]

DEFAULT_THRESHOLD = 300.0


class SlackAlerting(Integration):
    name = "slack"

    def __init__(self, settings: IntegrationSettings) -> None:
        super().__init__(settings)
        general = settings.general
        routes = general.get("alert_to_webhook_url") or {}
        self.webhooks = {str(k): str(v) for k, v in routes.items()} if isinstance(routes, Mapping) else {}
        types = general.get("alert_types")
        self.alert_types = set(types) if types else set(SLACK_ALERT_TYPES)
        needed = [t for t in self.alert_types & set(SLACK_ALERT_TYPES) if t not in self.webhooks]
        self.default_webhook = require_env("slack alerting", "SLACK_WEBHOOK_URL") if needed else None
        self.threshold = float(general.get("alerting_threshold") or DEFAULT_THRESHOLD)

    def alert(self, payload: Mapping[str, Any]) -> tuple[str, str] | None:
        """(alert type, text) for this request, or None."""
        model = payload.get("model_group") or payload.get("model")
        alias = (payload.get("metadata") or {}).get("user_api_key_alias")
        who = f"\nKey: `{alias}`" if alias else ""
        if payload["status"] == "failure":
            error = payload.get("error_information") or {}
            kind = "budget_alerts" if "Budget" in str(error.get("error_class")) else "llm_exceptions"
            title = "Budget Crossed" if kind == "budget_alerts" else "LLM API call failed"
            return kind, (f"*Alert type:* `{kind}`\n*Level:* `High`\n\n*Message:* {title}: `{model}`\n"
                          f"{error.get('error_class')}: {error.get('error_message')}\nRequest id: `{payload['id']}`{who}")
        seconds = payload["endTime"] - payload["startTime"]
        if seconds > self.threshold:
            return "llm_too_slow", (f"*Alert type:* `llm_too_slow`\n*Level:* `Low`\n\n*Message:* `Responses are slow "
                                    f"- {seconds:.1f}s response time > Alerting threshold: {self.threshold:g}s`\n"
                                    f"Model: `{model}`\nRequest id: `{payload['id']}`{who}")
        return None

    async def send(self, payload: dict[str, Any], kwargs: Mapping[str, Any], response: Any) -> None:
        found = self.alert(payload)
        if found is None or found[0] not in self.alert_types:
            return
        kind, text = found
        url = self.webhooks.get(kind) or self.default_webhook
        if url:
            await self.request("POST", url, content=orjson.dumps({"text": text}),
                               headers={"Content-Type": "application/json"})
