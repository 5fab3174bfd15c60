"""Routing over native providers (issues #15 item 1 and #16): a real ``trioproxy run`` whose groups
are served by the faithful Anthropic and Azure fakes, driven with the official ``openai`` client.

The routing rules are the same whatever the provider, so what this proves is the wiring between
them: each adapter's mapped errors are what the routing rules classify — Anthropic's
``overloaded_error`` (529) is retried on the group's next deployment, its ``rate_limit_error`` (429)
cools the deployment down, Azure's content filter (400 ``content_filter``) goes to the
``content_policy_fallbacks`` — and a fallback may cross providers, for plain and streamed requests.
A stream that opens (``200``, ``message_start``) and then reports the overload is retried as well:
nothing of it reached the client (``upstream/primed.py`` reads past such announcing events).
"""

from __future__ import annotations

import json
import signal
from typing import Any

import openai

from conftest import MASTER_KEY
from support.native_fakes.anthropic_fake import AnthropicFake
from support.native_fakes.azure_fake import AzureFake

ANTHROPIC_KEY = "sk-ant-api03-SECRET-provider-routing-0123"
AZURE_KEY = "azure-SECRET-provider-routing-0123456789"
USER = [{"role": "user", "content": "hello"}]


def _claude(fake: AnthropicFake, name: str, **params: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": "anthropic/claude-haiku-4-5", "api_base": fake.base_url,
                                                   "api_key": ANTHROPIC_KEY, **params}}


def _records(proxy: Any) -> dict[str, dict[str, Any]]:
    assert proxy.terminate(signal.SIGTERM) == 0
    lines = [json.loads(line) for line in proxy.logs().splitlines() if line.startswith("{")]
    return {r["metadata"]["case"]: r for r in lines
            if r.get("logger") == "trioproxy.requests" and r.get("metadata", {}).get("case")}


def test_native_errors_drive_retries_cooldowns_and_fallbacks(start_proxy: Any) -> None:
    with AnthropicFake(ANTHROPIC_KEY) as first, AnthropicFake(ANTHROPIC_KEY) as second, \
            AzureFake(AZURE_KEY) as azure:
        models = [
            _claude(first, "claude", order=1),
            _claude(second, "claude", order=2),
            {"model_name": "azure-gpt", "litellm_params": {"model": "azure/prod-gpt4o", "api_base": azure.base_url,
                                                           "api_key": AZURE_KEY, "api_version": "2024-10-21"}},
        ]
        config = {"model_list": models, "general_settings": {"master_key": MASTER_KEY},
                  "litellm_settings": {"num_retries": 0},
                  "router_settings": {"num_retries": 1, "cooldown_time": 600,
                                      "content_policy_fallbacks": [{"azure-gpt": ["claude"]}]}}
        proxy = start_proxy(config, args=["--log-format", "json"])
        client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30)

        def ask(case: str, model: str = "claude") -> str | None:
            answer = client.chat.completions.create(model=model, messages=USER, extra_body={"metadata": {"case": case}})
            return answer.choices[0].message.content

        # overloaded (529): retried on the group's next deployment; one 5xx does not cool `first` down
        first.script.fail = (529, "overloaded_error", "Overloaded")
        assert ask("overloaded") == second.script.text
        assert (len(first.exchanges), len(second.exchanges)) == (1, 1)
        # a streamed request is retried the same way, before its first byte
        chunks = list(client.chat.completions.create(model="claude", messages=USER, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == second.script.text
        assert (len(first.exchanges), len(second.exchanges)) == (2, 2)

        # a 200 whose stream reports the overload right after message_start (as Anthropic does):
        # nothing reached the client, so it is retried too
        first.script.fail = None
        first.script.stream_error, first.script.error_at_start = ("overloaded_error", "Overloaded"), True
        chunks = list(client.chat.completions.create(model="claude", messages=USER, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == second.script.text
        assert (len(first.exchanges), len(second.exchanges)) == (3, 3)
        first.script.stream_error, first.script.error_at_start = None, False

        # rate limited (429): retried, and `first` cools down at once: the next requests skip it
        first.script.fail = (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute limit")
        assert ask("rate-limited") == second.script.text
        assert ask("cooling") == second.script.text
        assert (len(first.exchanges), len(second.exchanges)) == (4, 5)

        # Azure's content filter: the content-policy fallback, served by another provider
        azure.script.content_filter = True
        assert ask("filtered", "azure-gpt") == second.script.text
        assert len(azure.exchanges) == 1 and len(second.exchanges) == 6
        streamed = list(client.chat.completions.create(model="azure-gpt", messages=USER, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == second.script.text

        records = _records(proxy)
        assert not (first.violations or second.violations or azure.violations)
    assert records["overloaded"]["attempts"] == 2 and records["overloaded"]["status"] == "success"
    assert records["cooling"]["attempts"] == 1
    filtered = records["filtered"]
    assert filtered["model"] == "azure-gpt" and filtered["model_group"] == "claude"
    assert filtered["provider"] == "anthropic" and filtered["status"] == "success"
    for secret in (ANTHROPIC_KEY, AZURE_KEY):
        assert secret not in proxy.logs()
