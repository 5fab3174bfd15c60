"""LiteLLM configs brought to trioproxy (issue #15 items 2–4): every problem in one run, honest messages.

A LiteLLM config either loads with its author's meaning or is refused with messages that say what
LiteLLM means by each name trioproxy does not have (``config/litellm_catalog.py``), all of them in
one run: the config's own problems, its handler files' and its logging callbacks' together
(``trioproxy check`` through a real process, and in-process through ``proxy.config_problems``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from trioproxy.config import ConfigError, ProxyConfig, load_config, parse_config
from trioproxy.proxy import check_handlers, config_problems

MODEL = {"model_name": "m", "litellm_params": {"model": "fake/demo"}}


def problems_of(raw: Any, base_dir: Path = Path(".")) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "cfg.yaml", base_dir)
    return config_problems(info.value)


def parse(raw: Any) -> ProxyConfig:
    return parse_config(raw, "cfg.yaml", Path("."))


HANDLERS = '''
from trioproxy import CustomLogger

class Logger(CustomLogger):
    def log_success_event(self, kwargs, response_obj):   # two arguments short
        pass

logger = Logger()
'''


def test_check_reports_the_config_the_handlers_and_the_callbacks_in_one_run(tmp_path: Path) -> None:
    """Problems of every stage at once: a bad key, a bad deployment, a missing handler module, a
    logging method of the wrong shape, a LiteLLM integration — one ``trioproxy check``, one list."""
    (tmp_path / "handlers.py").write_text(HANDLERS)
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent("""
        model_list:
          - model_name: a
            litellm_params: {model: fake/demo, timeout: soon}
        general_settings: {master_kye: sk-1234}
        litellm_settings:
          callbacks: [handlers.logger, missing_module.handler, azure_storage]
          success_callback: [datadog]
        guardrails:
          - guardrail_name: pii
            litellm_params: {guardrail: pangea, mode: pre_call}
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    done = subprocess.run([sys.executable, "-m", "trioproxy", "check", str(config)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env=env)
    assert done.returncode == 1
    problems = [line.strip() for line in done.stderr.splitlines() if line.startswith("  ")]
    where = [p.split(": ")[1] for p in problems]
    assert where == [
        "model_list[0].litellm_params.timeout",
        "general_settings.master_kye",
        "guardrails[0].litellm_params.guardrail",
        "litellm_settings.callbacks[1]",
        "litellm_settings.callbacks[2]",
        "litellm_settings.callbacks[0]",
        "litellm_settings.success_callback[0]",
    ], problems
    text = "\n".join(problems)
    assert "did you mean 'master_key'?" in text
    assert "'pangea' is one of LiteLLM's built-in guardrails; trioproxy has no built-in 'pangea'" in text
    assert "cannot find module 'missing_module'" in text
    assert "'azure_storage' is one of LiteLLM's logging integrations; trioproxy has no built-in 'azure_storage'" in text
    assert "log_success_event cannot be called with the seeds' 4 arguments" in text
    # a built-in integration (docs/logging.md) whose key is not in the environment
    assert "'datadog' logging integration needs DD_API_KEY in the environment" in text


def test_a_valid_config_with_broken_handlers_lists_every_handler_problem(tmp_path: Path) -> None:
    (tmp_path / "handlers.py").write_text(HANDLERS)
    path = tmp_path / "config.yaml"
    path.write_text("model_list: [{model_name: m, litellm_params: {model: fake/demo}}]\n"
                    "litellm_settings: {callbacks: [handlers.logger, nope.handler], success_callback: [azure_storage]}\n")
    done = subprocess.run([sys.executable, "-m", "trioproxy", "check", str(path)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n  ") == 3, done.stderr
    assert "callbacks[0]" in done.stderr and "callbacks[1]" in done.stderr and "success_callback[0]" in done.stderr


@pytest.mark.parametrize(("section", "key", "value", "expected"), [
    ("litellm_settings", "num_retries_per_request", 2, "LiteLLM's 'num_retries_per_request' (retries per request): "
                                                       "not supported by trioproxy"),
    ("general_settings", "alert_type_config", {"llm_exceptions": {}}, "not supported by trioproxy"),
    ("litellm_settings", "log_raw_request_response", True,
     "not supported by trioproxy's built-in logging integrations (langfuse, otel"),
    ("litellm_settings", "guardrails", [{"prompt_injection": True}],
     "trioproxy does not implement this setting of LiteLLM's guardrails"),
])
def test_a_litellm_key_trioproxy_lacks_is_named_never_a_typo(section: str, key: str, value: Any, expected: str) -> None:
    (problem,) = problems_of({"model_list": [MODEL], section: {key: value}})
    assert f"{section}.{key}: " in problem and expected in problem
    assert "did you mean" not in problem


def test_litellm_feature_sections_are_named() -> None:
    (problem,) = problems_of({"model_list": [MODEL], "mcp_servers": {"x": {"url": "http://x"}}})
    assert "mcp_servers: LiteLLM's 'mcp_servers' (MCP servers offered to clients as tools" in problem
    assert "not supported by trioproxy" in problem


def test_a_typo_still_gets_the_closest_key() -> None:
    (problem,) = problems_of({"model_list": [MODEL], "litellm_settings": {"num_retrys": 3}})
    assert "unknown key 'num_retrys'; did you mean 'num_retries'?" in problem


def test_keys_with_no_effect_here_load_with_a_note_not_a_warning() -> None:
    config = parse({"model_list": [MODEL], "litellm_settings": {"telemetry": False, "callbacks": ["prometheus"],
                                                                "success_callback": ["prometheus"]},
                    "general_settings": {"litellm_license": "abc"}})
    assert config.warnings == []
    handlers, callbacks = check_handlers(config)   # nothing to load for them: trioproxy always does it
    assert handlers.plan.handlers == [] and callbacks == []
    text = "\n".join(config.notes)
    assert "litellm_settings.telemetry: LiteLLM's 'telemetry' has no effect here: trioproxy sends no telemetry" in text
    assert "general_settings.litellm_license" in text
    assert "litellm_settings.callbacks[0]: LiteLLM's 'prometheus' has no effect here: trioproxy always serves " \
           "Prometheus metrics at /metrics" in text


def test_guardrail_settings_litellm_knows_are_passed_on_not_corrected() -> None:
    """``default_action`` used to get "did you mean 'default_on'?": it is a LiteLLM guardrail setting."""
    config = parse({"model_list": [MODEL], "guardrails": [{"guardrail_name": "g", "litellm_params": {
        "guardrail": "mod.Guard", "mode": "pre_call", "default_action": "BLOCK", "on_disallowed_action": "BLOCK"}}]})
    assert config.guardrails[0].params == {"default_action": "BLOCK", "on_disallowed_action": "BLOCK"}
    problem = problems_of({"model_list": [MODEL], "guardrails": [{"guardrail_name": "g", "litellm_params": {
        "guardrail": "mod.Guard", "mode": "pre_call", "defalt_on": True}}]})[0]
    assert "did you mean 'default_on'?" in problem


def test_litellm_guardrail_modes_trioproxy_lacks() -> None:
    problems = problems_of({"model_list": [MODEL], "guardrails": [
        {"guardrail_name": "a", "litellm_params": {"guardrail": "hide-secrets", "mode": "pre_mcp_call"}},
        {"guardrail_name": "b", "litellm_params": {"guardrail": "hide-secrets",
                                                   "mode": {"tags": {"User-Agent: x": "pre_cal"}, "default": "pre_call"}}},
        {"guardrail_name": "c", "litellm_params": {"guardrail": "hide-secrets", "mode": {"tag": {}}}},
    ]})
    text = "\n".join(problems)
    assert "'pre_mcp_call' is a mode of LiteLLM's MCP gateway" in text
    assert "guardrails[1].litellm_params.mode: unknown mode 'pre_cal'; did you mean 'pre_call'?" in text
    assert "guardrails[2].litellm_params.mode: a mode chosen by request tag is {tags: {tag: mode, ...}, " \
           "default: mode}; unknown key(s) 'tag'" in text


def test_mode_chosen_by_request_tag_is_parsed() -> None:
    config = parse({"model_list": [MODEL], "guardrails": [{"guardrail_name": "b", "litellm_params": {
        "guardrail": "hide-secrets", "mode": {"tags": {"User-Agent: claude-cli": ["pre_call", "post_call"]},
                                              "default": "logging_only"}}}]})
    spec = config.guardrails[0]
    assert spec.modes == ["logging_only", "pre_call", "post_call"]
    assert spec.modes_for({"User-Agent: claude-cli", "x"}) == ["pre_call", "post_call"]
    assert spec.modes_for({"other"}) == ["logging_only"]


@pytest.mark.parametrize(("cache_type", "expected"), [
    ("redis-semantic", "LiteLLM's 'redis-semantic' cache is not in trioproxy (no semantic cache); use type: redis"),
    ("s3", "LiteLLM's 's3' cache is not supported by trioproxy; use type: local"),
    ("memcached", "unknown cache type 'memcached'"),
])
def test_cache_types_trioproxy_lacks(cache_type: str, expected: str) -> None:
    (problem,) = problems_of({"model_list": [MODEL], "litellm_settings": {"cache": True,
                                                                          "cache_params": {"type": cache_type}}})
    assert "litellm_settings.cache_params.type: " + expected in problem


def test_settings_of_other_cache_backends_are_named() -> None:
    problems = problems_of({"model_list": [MODEL], "litellm_settings": {"cache": True, "cache_params": {
        "type": "local", "similarity_threshold": 0.8, "mode": "default_off"}}})
    text = "\n".join(problems)
    assert "'similarity_threshold' is a setting of its non-local caches" in text
    assert "cache_params.mode" not in text   # LiteLLM's cache mode is trioproxy's too (test_cache_litellm_settings.py)


@pytest.mark.parametrize("name", ["noma", "pangea", "lakera", "model_armor"])
def test_litellm_builtin_guardrails_are_named(name: str) -> None:
    (problem,) = problems_of({"model_list": [MODEL, {"model_name": "m", "litellm_params": {"model": "fake/x",
                                                                                           "timeout": "x"}}],
                              "guardrails": [{"guardrail_name": "g", "litellm_params": {"guardrail": name,
                                                                                       "mode": "pre_call"}}]})[1:]
    assert f"guardrails[0].litellm_params.guardrail: {name!r}: {name!r} is one of LiteLLM's built-in guardrails" \
        in problem
    assert "not a dotted path" not in problem


def test_handler_files_in_buckets_are_named(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("model_list: [{model_name: m, litellm_params: {model: fake/demo}}]\n"
                    "litellm_settings: {callbacks: ['s3://bucket/custom_callbacks.handler']}\n"
                    "general_settings: {hook_timeout_seconds: -1}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = config_problems(info.value)
    assert len(problems) == 2
    assert "names a file in a bucket; loading handler files from gcs:// or s3:// is a LiteLLM feature" in problems[1]


def test_model_info_prices_and_base_model_price_the_deployment() -> None:
    """LiteLLM prices a deployment by ``model_info`` too (``litellm_params`` first), and looks the
    price table up by ``model_info.base_model``."""
    from trioproxy.observability.cost import CostCalculator

    config = parse({"model_list": [
        {"model_name": "a", "litellm_params": {"model": "openai/my-ft", "input_cost_per_token": 1e-6},
         "model_info": {"input_cost_per_token": 5e-6, "output_cost_per_token": 2e-6}},
        {"model_name": "b", "litellm_params": {"model": "openai/my-azure-name"}, "model_info": {"base_model": "gpt-4o"}},
    ]})
    first, second = config.deployments
    assert (first.input_cost_per_token, first.output_cost_per_token) == (1e-6, 2e-6)
    cost = CostCalculator()
    assert cost.price(second) == cost.table.lookup("gpt-4o")
    (problem,) = problems_of({"model_list": [{"model_name": "c", "litellm_params": {"model": "fake/x"},
                                              "model_info": {"input_cost_per_token": "cheap"}}]})
    assert "model_list[0].model_info.input_cost_per_token: expected a number >= 0" in problem


def test_a_callback_after_prometheus_keeps_its_position_in_messages() -> None:
    (problem,) = problems_of({"model_list": [MODEL], "litellm_settings": {"callbacks": ["prometheus", "azure_storage"],
                                                                          "num_retries": -1}})[1:]
    assert "litellm_settings.callbacks[1]: 'azure_storage': 'azure_storage' is one of LiteLLM's logging integrations" in problem


@pytest.mark.parametrize(("section", "key", "why"), [
    ("general_settings", "enforce_rbac", "always authorizes every route"),
    ("general_settings", "use_redis_transaction_buffer", "durable outbox"),
    ("litellm_settings", "enable_redis_auth_cache", "pushed to all of them through Redis"),
])
def test_litellm_keys_for_what_trioproxy_always_does_load_with_a_note(section: str, key: str, why: str) -> None:
    """Keys whose feature trioproxy has without them load, with a note saying why (not "coming")."""
    config = parse({"model_list": [MODEL], section: {key: True}})
    assert any(f"{section}.{key}" in note and why in note for note in config.notes), config.notes


def test_custom_auth_check_flags_load_with_a_note() -> None:
    """trioproxy always checks what a custom_auth function returns: LiteLLM's opt-in flags for that are notes."""
    config = parse({"model_list": [MODEL], "litellm_settings": {"enable_post_custom_auth_checks": True},
                    "general_settings": {"custom_auth_run_common_checks": True}})
    assert config.warnings == []
    text = "\n".join(config.notes)
    assert "litellm_settings.enable_post_custom_auth_checks" in text and "custom_auth_run_common_checks" in text


def test_a_models_guardrails_must_be_configured() -> None:
    (problem,) = problems_of({"model_list": [{"model_name": "m", "litellm_params": {
        "model": "fake/demo", "guardrails": ["nope"]}}]})
    assert "model_list[0].litellm_params.guardrails: 'nope' is not a guardrail_name of the guardrails section" \
        in problem
