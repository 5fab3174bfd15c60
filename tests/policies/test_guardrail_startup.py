"""Startup errors of LiteLLM's built-in guardrails: every problem in one ``trioproxy check`` run,
each naming its config key, none showing a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.proxy_process import write_config

SECRET = "lakera-secret-never-shown"


def g(name: str, kind: str, mode: Any = "pre_call", **params: Any) -> dict[str, Any]:
    return {"guardrail_name": name, "litellm_params": {"guardrail": kind, "mode": mode, **params}}


def test_every_built_in_guardrail_problem_in_one_run(tmp_path: Path) -> None:
    config = {
        "model_list": [{"model_name": "m", "litellm_params": {"model": "fake/demo"}}],
        "general_settings": {"hook_timeout_seconds": 20},
        "litellm_settings": {"callbacks": ["detect_prompt_injection", "azure_content_safety"],
                             "prompt_injection_params": {"llm_api_check": True, "llm_api_name": "nope",
                                                         "llm_api_fail_call_string": "UNSAFE"},
                             "azure_content_safety_params": {"endpoint": "http://127.0.0.1:9"}},
        "guardrails": [
            g("p-env", "presidio"),
            g("l-log", "lakera_v2", "logging_only", api_key=SECRET),
            g("p-action", "presidio", presidio_analyzer_api_base="http://a", presidio_anonymizer_api_base="http://b",
              pii_entities_config={"PERSON": "HIDE"}),
            g("b-id", "bedrock"),
            g("a-key", "aporia", "during_call"),
            g("l-flag", "lakera_v2", api_key=SECRET, on_flagged="shout"),
            g("l-timeout", "lakera_v2", api_key=SECRET, guardrail_timeout=30),
            g("l-fallback", "lakera_v2", api_key=SECRET, unreachable_fallback="maybe"),
            g("unbuilt", "pangea"),
        ],
    }
    path = write_config(tmp_path, config)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRESIDIO_", "APORIO_", "LAKERA_"))}
    done = subprocess.run([sys.executable, "-m", "trioproxy", "check", str(path)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 1
    out = done.stderr
    expected = [
        ("guardrails[0]", "needs the environment variable PRESIDIO_ANALYZER_API_BASE"),
        ("guardrails[1]", "supports the modes pre_call, during_call, post_call; not 'logging_only'"),
        ("guardrails[2]", "pii_entities_config.PERSON: the action is MASK or BLOCK, got 'HIDE'"),
        ("guardrails[3]", "needs guardrailIdentifier and guardrailVersion"),
        ("guardrails[4]", "needs api_key and api_base (or the environment variables APORIO_API_KEY"),
        ("guardrails[5]", "on_flagged is 'block' or 'monitor', got 'shout'"),
        ("guardrails[6]", "guardrail_timeout (30 s) must be below general_settings.hook_timeout_seconds (20 s)"),
        ("guardrails[7]", "unreachable_fallback must be 'fail_closed' or 'fail_open', got 'maybe'"),
        ("guardrails[8]", "'pangea' is one of LiteLLM's built-in guardrails; trioproxy has no built-in"),
        ("litellm_settings.callbacks[0]", "prompt_injection_params.llm_api_name 'nope' must be a model_name"),
        ("litellm_settings.callbacks[1]", "azure_content_safety needs litellm_settings.azure_content_safety_params"),
    ]
    for where, message in expected:
        assert any(where in line and message in line for line in out.splitlines()), (where, message, out)
    assert SECRET not in out
