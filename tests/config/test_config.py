"""Unit tests of ``trioproxy.config``: the seeds' layout loads, every mistake is named with its key path."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from trioproxy.config import (
    ConfigError,
    ProxyConfig,
    load_config,
    load_default_config,
    parse_config,
)

SOURCE = "cfg.yaml"


def parse(raw: Any) -> ProxyConfig:
    return parse_config(raw, SOURCE, Path("."))


def problems_of(raw: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(raw)
    assert info.value.problems, "a ConfigError must carry at least one problem"
    return info.value.problems


def one_problem(raw: Any) -> str:
    problems = problems_of(raw)
    assert len(problems) == 1, problems
    return problems[0]


def fake_model(name: str = "m", **params: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": "fake/demo", **params}}


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def unset_env(monkeypatch: pytest.MonkeyPatch):
    """Names given to this fixture are absent now and restored to absent afterwards."""

    def unset(*names: str) -> None:
        for name in names:
            monkeypatch.setenv(name, "placeholder")  # records "was not set" for the undo
            monkeypatch.delenv(name)

    return unset


# -- valid configs --------------------------------------------------------------------------------


def test_full_valid_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TP_TEST_UPSTREAM_KEY", "sk-from-the-environment-123456")
    path = write(tmp_path, """
        model_list:
          - model_name: gpt-4o
            litellm_params:
              model: openai/gpt-4o-2024
              api_base: http://127.0.0.1:8000/v1/
              api_key: os.environ/TP_TEST_UPSTREAM_KEY
              timeout: 12
              stream_timeout: 30
              max_retries: 1
              temperature: 0.2
            model_info:
              id: one
          - model_name: gpt-4o
            litellm_params:
              model: fake/gpt-4o
              mock_response: hello
          - model_name: embed
            litellm_params:
              model: fake/text-embedding-3-small
        litellm_settings:
          num_retries: 3
          request_timeout: 45
        general_settings:
          master_key: sk-1234
          graceful_shutdown_timeout: 5
        router_settings:
          routing_strategy: simple-shuffle
    """)
    config = load_config(path)
    assert config.source == str(path)
    assert config.base_dir == tmp_path.resolve()
    assert config.master_key == "sk-1234"
    assert config.num_retries == 3
    assert config.request_timeout == 45.0
    assert config.graceful_shutdown_timeout == 5.0
    assert config.warnings == []
    assert list(config.model_groups) == ["gpt-4o", "embed"]
    openai_dep, fake_dep = config.model_groups["gpt-4o"]
    assert openai_dep.provider == "openai"
    assert openai_dep.upstream_model == "gpt-4o-2024"
    assert openai_dep.api_base == "http://127.0.0.1:8000/v1"  # trailing slash dropped
    assert openai_dep.api_key == "sk-from-the-environment-123456"
    assert openai_dep.timeout == 12.0
    assert openai_dep.stream_timeout == 30.0
    assert openai_dep.max_retries == 1
    assert openai_dep.extra_params == {"temperature": 0.2}
    assert openai_dep.model_info == {"id": "one"}
    assert "sk-from" not in openai_dep.label
    assert fake_dep.provider == "fake"
    assert fake_dep.fake == {"mock_response": "hello"}
    assert config.model_groups["embed"][0].timeout == 45.0  # litellm_settings.request_timeout
    assert set(config.secrets()) == {"sk-1234", "sk-from-the-environment-123456"}


def test_minimal_config_defaults() -> None:
    config = parse({"model_list": [fake_model()]})
    assert config.master_key is None
    assert config.num_retries == 2
    assert config.graceful_shutdown_timeout == 30.0
    deployment = config.deployments[0]
    assert deployment.timeout == 600.0
    assert deployment.stream_timeout == deployment.timeout
    assert deployment.api_key is None and deployment.api_base is None
    assert config.guardrails == []


def test_bare_openai_model_name_means_the_openai_provider() -> None:
    config = parse({"model_list": [{"model_name": "gpt-3.5-turbo", "litellm_params": {"model": "gpt-3.5-turbo"}}]})
    deployment = config.deployments[0]
    assert deployment.provider == "openai"
    assert deployment.upstream_model == "gpt-3.5-turbo"
    assert deployment.api_base == "https://api.openai.com/v1"


def test_extra_litellm_params_are_passed_through() -> None:
    config = parse({"model_list": [fake_model(temperature=0.2, max_tokens=50, top_p=0.9, seed=7)]})
    assert config.deployments[0].extra_params == {"temperature": 0.2, "max_tokens": 50, "top_p": 0.9, "seed": 7}


def test_aliases_params_and_settings() -> None:
    config = parse({
        "model_list": [{"model_name": "m", "params": {"model": "fake/demo", "timeout": 3}}],
        "settings": {"num_retries": 0},
    })
    assert config.deployments[0].timeout == 3.0
    assert config.num_retries == 0


def test_guardrails_section_is_validated() -> None:
    config = parse({
        "model_list": [fake_model()],
        "guardrails": [{"guardrail_name": "g1", "litellm_params": {"guardrail": "mod.Guard", "mode": "pre_call",
                                                                   "default_on": True, "custom": 1}}],
    })
    (spec,) = config.guardrails
    assert (spec.name, spec.class_path, spec.modes, spec.default_on, spec.params) == \
        ("g1", "mod.Guard", ["pre_call"], True, {"custom": 1})
    problem = one_problem({
        "model_list": [fake_model()],
        "guardrails": [{"guardrail_name": "g1", "litellm_params": {"guardrail": "mod.Guard", "mode": "pre_cal"}}],
    })
    assert "guardrails[0].litellm_params.mode" in problem
    assert "did you mean 'pre_call'?" in problem


def test_embedded_defaults() -> None:
    config = load_default_config()
    assert config.source == "<embedded defaults>"
    assert config.master_key is None
    assert "gpt-3.5-turbo" in config.model_groups
    assert config.deployments, "the defaults serve at least one model"
    assert all(d.provider == "fake" for d in config.deployments), "the defaults need no network and no key"
    assert all(d.api_key is None for d in config.deployments)


# -- os.environ/NAME --------------------------------------------------------------------------------


def test_os_environ_reference_is_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TP_TEST_MASTER", "sk-master-from-env")
    monkeypatch.setenv("TP_TEST_BASE", "http://127.0.0.1:1234/v1")
    config = parse({
        "model_list": [{"model_name": "m", "litellm_params": {"model": "openai/x", "api_base": "os.environ/TP_TEST_BASE"}}],
        "general_settings": {"master_key": "os.environ/TP_TEST_MASTER"},
    })
    assert config.master_key == "sk-master-from-env"
    assert config.deployments[0].api_base == "http://127.0.0.1:1234/v1"


def test_missing_environment_variable_names_it_and_the_key(unset_env) -> None:
    unset_env("TP_TEST_NOT_SET")
    problem = one_problem({"model_list": [fake_model(api_key="os.environ/TP_TEST_NOT_SET")]})
    assert problem.startswith(f"{SOURCE}: ")
    assert "model_list[0].litellm_params.api_key" in problem
    assert "TP_TEST_NOT_SET" in problem
    assert "not set" in problem


def test_environment_variables_are_set_first(unset_env) -> None:
    unset_env("TP_TEST_FROM_SECTION")
    import os

    config = parse({
        "environment_variables": {"TP_TEST_FROM_SECTION": "sk-section-value-123"},
        "model_list": [fake_model(api_key="os.environ/TP_TEST_FROM_SECTION")],
    })
    assert config.deployments[0].api_key == "sk-section-value-123"
    assert os.environ["TP_TEST_FROM_SECTION"] == "sk-section-value-123"


def test_environment_variables_wrong_type() -> None:
    problem = one_problem({"environment_variables": {"TP_TEST_LIST": [1, 2]}, "model_list": [fake_model()]})
    assert "environment_variables.TP_TEST_LIST" in problem
    assert "expected a string or number" in problem


# -- unknown keys -------------------------------------------------------------------------------------


def test_unknown_top_level_key_suggests_the_closest() -> None:
    problem = one_problem({"model_list": [fake_model()], "general_setings": {}})
    assert problem.startswith(f"{SOURCE}: general_setings: ")
    assert "unknown key 'general_setings'" in problem
    assert "did you mean 'general_settings'?" in problem


def test_unknown_general_settings_key_suggests_the_closest() -> None:
    problem = one_problem({"model_list": [fake_model()], "general_settings": {"master_kye": "sk-1"}})
    assert "general_settings.master_kye" in problem
    assert "did you mean 'master_key'?" in problem


def test_litellm_params_near_miss_is_an_error_not_a_pass_through() -> None:
    problem = one_problem({"model_list": [
        {"model_name": "m", "litellm_params": {"model": "openai/x", "api_bse": "http://127.0.0.1:1/v1"}}]})
    assert "model_list[0].litellm_params.api_bse" in problem
    assert "did you mean 'api_base'?" in problem


def test_unknown_key_without_a_close_match_lists_the_known_keys() -> None:
    problem = one_problem({"model_list": [fake_model()], "general_settings": {"zzz_qqq": 1}})
    assert "general_settings.zzz_qqq" in problem
    assert "did you mean" not in problem
    assert "known keys:" in problem and "master_key" in problem


def test_seed_only_keys_are_accepted_with_a_warning() -> None:
    config = parse({
        "model_list": [fake_model()],
        "litellm_settings": {"service_callback": ["x"]},
        "general_settings": {"master_key": "sk-1234", "public_routes": ["LiteLLMRoutes.public_routes"]},
    })
    # public_routes now applies to every route (issue #12): no warning about it any more
    assert len(config.warnings) == 1
    joined = "\n".join(config.warnings)
    assert "litellm_settings.service_callback" in joined and "not implemented" in joined
    assert "public_routes" not in joined


def test_store_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``database_url``: a relative SQLite path is relative to the config file; absent, ``$DATABASE_URL``."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    base = {"model_list": [fake_model()]}
    assert parse_config(base, "c.yaml", tmp_path).database_url is None
    config = parse_config({**base, "litellm_settings": {"store_audit_logs": True},
                           "general_settings": {"database_url": "sqlite:///data/proxy.db",
                                                "database_connection_pool_limit": 8,
                                                "database_connection_timeout": 2.5,
                                                "user_api_key_cache_ttl": 5}}, "c.yaml", tmp_path)
    assert config.database_url == f"sqlite:///{tmp_path.resolve() / 'data' / 'proxy.db'}"
    assert config.litellm.store_audit_logs is True and config.warnings == []
    general = config.general
    assert (general.database_connection_pool_limit, general.database_connection_timeout,
            general.user_api_key_cache_ttl) == (8, 2.5, 5)
    absolute = parse_config({**base, "general_settings": {"database_url": "sqlite:////srv/p.db"}}, "c.yaml", tmp_path)
    assert absolute.database_url == "sqlite:////srv/p.db"
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw-SECRET@db/proxy")
    from_env = parse_config(base, "c.yaml", tmp_path)
    assert from_env.database_url == "postgresql://u:pw-SECRET@db/proxy"
    assert "pw-SECRET" in from_env.secrets()          # the scrubber knows the password


@pytest.mark.parametrize("value", ["mysql://x/y", "sqlite://", "sqlite:///:memory:", 42, "proxy.db"])
def test_bad_database_urls_are_refused_without_showing_them(tmp_path: Path, value: object) -> None:
    with pytest.raises(ConfigError, match="general_settings.database_url") as caught:
        parse_config({"model_list": [fake_model()], "general_settings": {"database_url": value}}, "c.yaml", tmp_path)
    if isinstance(value, str) and value != "sqlite://":
        assert value not in str(caught.value)


# -- wrong types, providers, several problems ----------------------------------------------------------


@pytest.mark.parametrize(("raw", "path", "expected"), [
    ({"model_list": [fake_model(timeout="soon")]}, "model_list[0].litellm_params.timeout", "expected a number"),
    ({"model_list": [fake_model(timeout=-1)]}, "model_list[0].litellm_params.timeout", "expected a number >="),
    ({"model_list": [fake_model(max_retries=1.5)]}, "model_list[0].litellm_params.max_retries",
     "expected a whole number"),
    ({"model_list": [fake_model(api_key=123)]}, "model_list[0].litellm_params.api_key", "expected a string"),
    ({"model_list": [{"model_name": 7, "litellm_params": {"model": "fake/x"}}]}, "model_list[0].model_name",
     "expected a string"),
    ({"model_list": {"m": 1}}, "model_list", "expected a list"),
    ({"model_list": [fake_model()], "general_settings": {"master_key": 1234}}, "general_settings.master_key",
     "expected a string"),
    ({"model_list": [fake_model()], "general_settings": ["master_key"]}, "general_settings", "expected a mapping"),
    ({"model_list": [fake_model()], "litellm_settings": {"num_retries": "two"}}, "litellm_settings.num_retries",
     "expected a whole number"),
    ({"model_list": [fake_model()], "general_settings": {"block_robots": "maybe"}}, "general_settings.block_robots",
     "expected true or false"),
    ({"model_list": [fake_model()], "litellm_settings": {"llm_guard_mode": "sometimes"}},
     "litellm_settings.llm_guard_mode", "expected one of"),
    ({"model_list": [{"model_name": "m"}]}, "model_list[0].litellm_params", "is required"),
    ({"model_list": [{"model_name": "m", "litellm_params": {"api_base": "http://x"}}]},
     "model_list[0].litellm_params.model", "is required"),
    ({"model_list": [fake_model()], "guardrails": [{"guardrail_name": "g", "litellm_params": {"mode": "pre_call"}}]},
     "guardrails[0].litellm_params.guardrail", "is required"),
])
def test_wrong_types_are_reported_with_the_key_path(raw: Any, path: str, expected: str) -> None:
    problem = one_problem(raw)
    assert problem.startswith(f"{SOURCE}: {path}: "), problem
    assert expected in problem


def test_unknown_provider() -> None:
    problem = one_problem({"model_list": [{"model_name": "m", "litellm_params": {"model": "sagemaker/endpoint"}}]})
    assert "model_list[0].litellm_params.model" in problem
    assert "unknown provider 'sagemaker'" in problem
    assert "openai" in problem and "fake" in problem and "anthropic" in problem and "bedrock" in problem


def test_fake_knobs_on_a_real_provider_are_an_error() -> None:
    problem = one_problem({"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/x",
                                                                                "mock_response": "hi", "latency": 1}}]})
    assert "model_list[0].litellm_params: latency only apply to the 'fake/…' provider" in problem


def test_mock_response_applies_to_every_provider() -> None:
    """LiteLLM answers a deployment's mock_response locally, whatever its provider (upstream/fake/mock.py)."""
    config = parse({"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/x", "mock_response": "hi"}}]})
    assert config.deployments[0].fake == {"mock_response": "hi"}


def test_empty_config_and_empty_model_list() -> None:
    """LiteLLM starts without a model_list (issue #15): so does trioproxy, serving no model, and says so."""
    for raw in ({}, None, {"model_list": []}):
        config = parse_config(raw, "test.yaml", Path("."))
        assert config.deployments == [] and config.model_groups == {}
        (warning,) = config.warnings
        assert "model_list: no model_list: the proxy serves no model" in warning
    assert "<top level>: expected a mapping" in one_problem(["model_list"])


def test_several_problems_are_reported_at_once(unset_env) -> None:
    unset_env("TP_TEST_ALSO_MISSING")
    problems = problems_of({
        "model_list": [
            {"model_name": "a", "litellm_params": {"model": "openai/x", "api_bse": "http://x", "timeout": "x"}},
            {"model_name": "b", "litellm_params": {"model": "nope/y", "api_key": "os.environ/TP_TEST_ALSO_MISSING"}},
        ],
        "general_settings": {"master_kye": "sk"},
        "modle_list": [],
    })
    text = "\n".join(problems)
    for fragment in ("model_list[0].litellm_params.api_bse", "model_list[0].litellm_params.timeout",
                     "model_list[1].litellm_params.model", "TP_TEST_ALSO_MISSING", "general_settings.master_kye",
                     "modle_list"):
        assert fragment in text, (fragment, problems)
    assert len(problems) == 6, problems
    assert all(p.startswith(f"{SOURCE}: ") for p in problems)


# -- files ------------------------------------------------------------------------------------------


def test_invalid_yaml_reports_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, """
        model_list:
          - model_name: a
           litellm_params: [
    """)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert problem.startswith(str(path))
    assert "invalid YAML" in problem
    assert "line 4, column" in problem


def test_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert info.value.problems == [f"{missing}: file not found"]


def test_problems_from_a_file_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, """
        model_list:
          - model_name: a
            litellm_params:
              model: fake/a
              timeout: never
    """)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [f"{path}: model_list[0].litellm_params.timeout: expected a number, got 'never'"]


# -- the seeds' configs (indentation restored from the seed documents) ----------------------------------

SEED_CALL_HOOKS = """
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: gpt-3.5-turbo
litellm_settings:
  callbacks: custom_callbacks.proxy_handler_instance # sets litellm.callbacks = [proxy_handler_instance]
"""

SEED_GUARDRAILS = """
model_list:
  - model_name: gpt-4
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
guardrails:
  - guardrail_name: "custom-pre-guard"
    litellm_params:
      guardrail: custom_guardrail.myCustomGuardrail # 👈 Key change
      mode: "pre_call" # runs async_pre_call_hook
  - guardrail_name: "custom-during-guard"
    litellm_params:
      guardrail: custom_guardrail.myCustomGuardrail
      mode: "during_call" # runs async_moderation_hook
  - guardrail_name: "custom-post-guard"
    litellm_params:
      guardrail: custom_guardrail.myCustomGuardrail
      mode: "post_call" # runs async_post_call_success_hook
"""

SEED_ENTERPRISE = """
model_list:
  - model_name: fake-openai-endpoint
    litellm_params:
      model: openai/fake
      api_key: fake-key
      api_base: https://exampleopenaiendpoint-production.up.railway.app/
litellm_settings:
  store_audit_logs: true
  callbacks: ["llmguard_moderations"]
  llm_guard_mode: "key-specific"
  google_moderation_confidence_threshold: 0.4
general_settings:
  master_key: sk-1234
  enforce_user_param: True
  block_robots: true
  enforced_params:
    - user
    - metadata.generation_name
  public_routes: ["LiteLLMRoutes.public_routes", "/spend/calculate"] # routes that can be accessed without any auth
  admin_only_routes: ["/key/generate"] # Optional - routes that can only be accessed by Proxy Admin
  allowed_routes: ["/chat/completions", "/spend/calculate", "LiteLLMRoutes.public_routes"]
  # Security controls
  max_request_size_mb: 0.000000001 # 👈 Key Change - Max Request Size in MB. Set this very low for testing
  max_response_size_mb: 100 # 👈 Key Change - Max Response Size in MB
"""


def test_seed_call_hooks_config_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SEED_CALL_HOOKS))
    assert config.litellm_settings["callbacks"] == ["custom_callbacks.proxy_handler_instance"]
    assert config.deployments[0].provider == "openai"


def test_seed_guardrails_config_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-seed-openai-key-000")
    config = load_config(write(tmp_path, SEED_GUARDRAILS))
    assert [(g.name, g.modes) for g in config.guardrails] == [
        ("custom-pre-guard", ["pre_call"]), ("custom-during-guard", ["during_call"]),
        ("custom-post-guard", ["post_call"])]
    assert config.deployments[0].api_key == "sk-seed-openai-key-000"


def test_seed_guardrails_config_without_its_variable_names_it(tmp_path: Path, unset_env) -> None:
    unset_env("OPENAI_API_KEY")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, SEED_GUARDRAILS))
    (problem,) = info.value.problems
    assert "model_list[0].litellm_params.api_key" in problem and "OPENAI_API_KEY" in problem


def test_seed_enterprise_config_loads_without_warnings(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SEED_ENTERPRISE))
    assert config.master_key == "sk-1234"
    assert config.general_settings["enforced_params"] == ["user", "metadata.generation_name"]
    # public_routes, admin_only_routes, allowed_routes apply to every route now (issue #12)
    assert config.warnings == []
    assert config.litellm.store_audit_logs is True      # implemented now (docs/keys.md)
    # a setting of the google_text_moderation built-in (docs/guardrails.md): validated, not warned about
    assert config.litellm_settings["google_moderation_confidence_threshold"] == 0.4


# -- a mistyped secret is never echoed -------------------------------------------------------------

def test_config_error_does_not_echo_a_mistyped_secret() -> None:
    """A key of the wrong type (``master_key: 123456789012``) was shown in the error message."""
    raw = {"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/x", "api_key": 987654321098}}],
           "general_settings": {"master_key": 123456789012}}
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "cfg.yaml", Path.cwd())
    text = "\n".join(info.value.problems)
    assert "general_settings.master_key" in text and "model_list[0].litellm_params.api_key" in text
    assert "123456789012" not in text and "987654321098" not in text


@pytest.mark.parametrize(("url", "warned"), [("http://idp.example/certs", True), ("https://idp.example/certs", False),
                                             ("http://127.0.0.1:8080/certs", False)])
def test_a_plain_http_jwks_url_is_warned_about(monkeypatch: pytest.MonkeyPatch, url: str, warned: bool) -> None:
    """Whoever can alter plain-http JWKS traffic can publish their own key and mint admin tokens."""
    monkeypatch.setenv("JWT_PUBLIC_KEY_URL", url)
    config = parse({"model_list": [fake_model()],
                    "general_settings": {"master_key": "sk-1234", "enable_jwt_auth": True}})
    assert any("JWT_PUBLIC_KEY_URL" in w and "plain http" in w for w in config.warnings) is warned
