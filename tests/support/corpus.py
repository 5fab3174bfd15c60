"""The LiteLLM compatibility corpus: load every real config and handler file, say what happens.

``tests/data/litellm_corpus`` holds configs and handler files collected from LiteLLM's repository
and docs (sources in their headers, ``handlers/manifest.yaml`` and ``SOURCES.md``). This module is
the evidence machine behind issue #15: for each config it does what ``trioproxy check`` and
``trioproxy run`` do at startup (validate, load handlers and logging callbacks, build the app) and
records the outcome; for each handler file it rewrites the imports only, loads it the way LiteLLM's
docs wire it, and serves a plain and a streaming chat request through a real ``trioproxy run``.
``bench/corpus_report.py`` prints the numbers and writes ``REPORT.md``;
``tests/e2e/test_litellm_corpus.py`` asserts what is true today.

Why in-process for configs: 220 configs, several rounds each, in seconds rather than minutes of
subprocess start-up; each load runs with its own environment (``os.environ/NAME`` references get
placeholder values, as a real deployment would have them set, and so do the variables LiteLLM's docs
tell the user to set for a feature the config uses: :data:`DOCUMENTED_ENV`), its own copy of the handler files
and its ``sys.path``/``sys.modules``/``os.environ`` restored afterwards. The trioproxy functions
are found by name (:func:`proxy_api`), not by module path, so the harness keeps working when the
modules move (issue #9); only when none is found does it fall back to ``python -m trioproxy check``.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import importlib
import importlib.util
import io
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

__all__ = [
    "CORPUS_DIR",
    "ConfigCase",
    "ConfigReport",
    "HandlerCase",
    "HandlerReport",
    "LoadOutcome",
    "ProblemCause",
    "classify_problem",
    "config_cases",
    "explore_config",
    "handler_cases",
    "load_config_case",
    "ignored_warnings",
    "proxy_api",
    "rewrite_imports",
    "run_handler_case",
    "static_gaps",
]

CORPUS_DIR = Path(__file__).resolve().parent.parent / "data" / "litellm_corpus"

# ---------------------------------------------------------------------------------------------
# The trioproxy API the harness drives, found by name so a restructure only moves it
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProxyAPI:
    load_config: Callable[[Path], Any]
    config_error: type[Exception]
    load_handlers: Callable[[Any], Any]
    load_callbacks: Callable[[Any, Any], Any]
    create_app: Callable[[Any], Any] | None   # what `trioproxy run` builds after `check`'s steps
    package: ModuleType                       # what handler files import from
    #: every problem at once (issue #15): a config's problems plus its handlers' (``proxy.config_problems``)
    config_problems: Callable[[Any], list[str]] | None = None
    #: handlers and logging callbacks checked together (``proxy.check_handlers``)
    check_handlers: Callable[[Any], Any] | None = None


_WANTED = ("load_config", "ConfigError", "load_handlers", "load_callbacks", "create_app", "config_problems",
           "check_handlers")
_api: ProxyAPI | None = None


def proxy_api() -> ProxyAPI:
    """The functions ``trioproxy check`` calls (``cli._check``), wherever they live now."""
    global _api
    if _api is not None:
        return _api
    package = importlib.import_module("trioproxy")
    found: dict[str, Any] = {}
    known = ("trioproxy.config", "trioproxy.proxy", "trioproxy.observability.callbacks")
    names = list(known) + [m.name for m in pkgutil.walk_packages(package.__path__, "trioproxy.")
                           if m.name not in known]
    for name in names:
        if all(w in found for w in _WANTED):
            break
        try:
            module = importlib.import_module(name)
        except Exception:   # a module that cannot be imported on its own is not where these live
            continue
        for wanted in _WANTED:
            obj = getattr(module, wanted, None)
            if wanted not in found and obj is not None and getattr(obj, "__module__", "").startswith("trioproxy"):
                found[wanted] = obj
    missing = [w for w in _WANTED[:4] if w not in found]
    if missing:
        raise RuntimeError(f"trioproxy has no {', '.join(missing)}: the corpus harness needs updating")
    _api = ProxyAPI(found["load_config"], found["ConfigError"], found["load_handlers"], found["load_callbacks"],
                    found.get("create_app"), package, found.get("config_problems"), found.get("check_handlers"))
    return _api


# ---------------------------------------------------------------------------------------------
# Import rewriting: the README's table, and nothing else
# ---------------------------------------------------------------------------------------------

#: names that ``fastapi`` exports and the README maps to trioproxy (everything else stays fastapi's):
#: ``Request`` is what a ``custom_auth`` function receives (``trioproxy/auth/request.py``)
_FASTAPI_TO_TRIOPROXY = {"HTTPException", "Request"}


def _rewrite_node(node: ast.Import | ast.ImportFrom) -> str | None:
    """The replacement text of one import statement, or None to keep it."""
    def alias(a: ast.alias) -> str:
        return f"{a.name} as {a.asname}" if a.asname else a.name

    if isinstance(node, ast.Import):
        if not any(a.name == "litellm" or a.name.startswith("litellm.") for a in node.names):
            return None
        parts = []
        for a in node.names:
            if a.name == "litellm":
                parts.append(f"import trioproxy as {a.asname or 'litellm'}")
            elif a.name.startswith("litellm."):
                # `import litellm.x.y` binds `litellm`: the closest equivalent binds it to trioproxy
                parts.append(f"import trioproxy as {a.asname or 'litellm'}")
            else:
                parts.append(f"import {alias(a)}")
        return "; ".join(parts)
    module = node.module or ""
    if node.level == 0 and (module == "litellm" or module.startswith("litellm.")):
        return f"from trioproxy import {', '.join(alias(a) for a in node.names)}"
    if node.level == 0 and module == "fastapi":
        mapped = [a for a in node.names if a.name in _FASTAPI_TO_TRIOPROXY]
        if not mapped:
            return None
        rest = [a for a in node.names if a.name not in _FASTAPI_TO_TRIOPROXY]
        text = f"from trioproxy import {', '.join(alias(a) for a in mapped)}"
        if rest:
            text = f"from fastapi import {', '.join(alias(a) for a in rest)}; " + text
        return text
    return None


def rewrite_imports(source: str) -> str:
    """``source`` with every ``litellm`` import (and ``fastapi.HTTPException``) pointed at trioproxy.

    Only the import statements change, each in place (a multi-line parenthesised import becomes
    one line, so later line numbers may shift); names are kept as they are, so a name trioproxy
    lacks fails to import: that is the honest result.
    """
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, int, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            replacement = _rewrite_node(node)
            if replacement is not None:
                assert node.end_lineno is not None and node.end_col_offset is not None
                edits.append((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, replacement))
    for lineno, col, end_lineno, end_col, text in sorted(edits, reverse=True):
        first, last = lines[lineno - 1], lines[end_lineno - 1]
        lines[lineno - 1:end_lineno] = [first[:col] + text + last[end_col:]]
    return "".join(lines)


# ---------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------


@dataclass
class ConfigCase:
    name: str
    path: Path
    source: str                                  # repository path @ commit (the `# source:` header)
    handler_files: dict[str, str]                # module name -> corpus handler file playing it


@dataclass
class HandlerCase:
    name: str                                    # file name under handlers/original and rewritten
    source: str
    module: str
    wiring: dict[str, Any]

    @property
    def original(self) -> Path:
        return CORPUS_DIR / "handlers" / "original" / self.name

    @property
    def rewritten(self) -> Path:
        return CORPUS_DIR / "handlers" / "rewritten" / self.name


def config_cases(corpus: Path = CORPUS_DIR) -> list[ConfigCase]:
    cases = []
    for path in sorted((corpus / "configs").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        source = re.search(r"^# source: (.+)$", text, re.M)
        pairs = re.search(r"^# handler-files: (.+)$", text, re.M)
        handler_files = dict(p.split("=", 1) for p in pairs.group(1).split()) if pairs else {}
        cases.append(ConfigCase(path.stem, path, source.group(1) if source else "?", handler_files))
    return cases


def handler_cases(corpus: Path = CORPUS_DIR) -> list[HandlerCase]:
    manifest = yaml.safe_load((corpus / "handlers" / "manifest.yaml").read_text(encoding="utf-8"))
    return [HandlerCase(name, entry["source"], entry["module"], entry["wiring"])
            for name, entry in sorted(manifest.items())]


# ---------------------------------------------------------------------------------------------
# Loading one config in isolation
# ---------------------------------------------------------------------------------------------


@dataclass
class LoadOutcome:
    status: str                                  # "clean" | "warnings" | "rejected"
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    stage: str = ""                              # where it stopped: config, handlers, callbacks, app


_ENV_REF = re.compile(r"os\.environ/([A-Za-z_][A-Za-z0-9_]*)")


#: The environment LiteLLM's own docs tell the user to set for a feature a config uses, by feature:
#: a config is run with these set (placeholders), as its author's deployment would have them. Only
#: variables LiteLLM documents for that feature and reads with that meaning are listed:
#:
#: * ``redis-cache``: ``litellm_settings.cache`` on with ``cache_params.type: redis`` (or no type:
#:   LiteLLM's default) and no server in ``cache_params`` — docs/proxy/caching.md, "Step 2: Add
#:   Redis Credentials to .env": ``REDIS_HOST``, ``REDIS_PORT``, ``REDIS_PASSWORD``. LiteLLM's
#:   ``RedisCache`` reads them (``litellm/_redis.py`` ``_get_redis_client_logic``); so does trioproxy
#:   (``config/build.py`` ``cache_redis_url``). Loading does not connect: no server is needed.
#: * ``azure``: a deployment ``azure/…`` without ``api_base`` or ``api_key`` (an empty ``api_key:``
#:   is none, for LiteLLM as for trioproxy) — docs/providers/azure.md, "API keys" (``AZURE_API_KEY``,
#:   ``AZURE_API_BASE``, ``AZURE_API_VERSION``), which LiteLLM's Azure client reads when
#:   ``litellm_params`` does not give them; so does trioproxy (``upstream/providers/azure.py``).
DOCUMENTED_ENV: dict[str, dict[str, str]] = {
    "redis-cache": {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379",
                    "REDIS_PASSWORD": "corpus-placeholder-redis_password"},
    "azure": {"AZURE_API_BASE": "https://corpus-placeholder.openai.azure.com",
              "AZURE_API_KEY": "corpus-placeholder-azure_api_key", "AZURE_API_VERSION": "2024-10-21"},
}


def documented_features(text: str) -> list[str]:
    """The features of :data:`DOCUMENTED_ENV` a config uses (none when it is not YAML)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    if not isinstance(doc, dict):
        return []
    features = []
    litellm = doc.get("litellm_settings")
    if isinstance(litellm, dict) and litellm.get("cache"):
        params = litellm.get("cache_params")
        params = params if isinstance(params, dict) else {}
        if params.get("type", "redis") == "redis" and not any(params.get(k) for k in ("host", "url")):
            features.append("redis-cache")
    for entry in doc.get("model_list") or []:
        params = entry.get("litellm_params") if isinstance(entry, dict) else None
        if isinstance(params, dict) and str(params.get("model", "")).startswith("azure/") \
                and not (params.get("api_base") and params.get("api_key")):
            features.append("azure")
            break
    return features


def placeholder_env(text: str) -> dict[str, str]:
    """A value for every ``os.environ/NAME`` a config reads, and the variables LiteLLM's docs tell
    the user to set for the features it uses (:data:`DOCUMENTED_ENV`): a deployment would have them set."""
    env = {}
    for feature in documented_features(text):
        env.update(DOCUMENTED_ENV[feature])
    if "llmguard_moderations" in text:   # the built-in reads it, in LiteLLM as in trioproxy
        env["LLM_GUARD_API_BASE"] = "http://127.0.0.1:9"
    if "presidio" in text:               # LiteLLM's presidio guardrail reads them, and so does trioproxy's
        env["PRESIDIO_ANALYZER_API_BASE"] = env["PRESIDIO_ANONYMIZER_API_BASE"] = "http://127.0.0.1:9"
    if "aporia" in text:                 # LiteLLM's aporia guardrail falls back to them (its spelling)
        env["APORIO_API_KEY"], env["APORIO_API_BASE"] = "corpus-placeholder-aporio", "http://127.0.0.1:9"
    # the built-in logging integrations read their keys from the environment, as LiteLLM's do
    from trioproxy.observability.integrations import REQUIRED_ENV
    for name, variables in REQUIRED_ENV.items():
        if re.search(rf"""["'\s\[]{name}["'\s,\]]""", text):
            env.update(variables)
    for name in _ENV_REF.findall(text):
        upper = name.upper()
        if upper.endswith("PORT"):
            env[name] = "6379"
        elif upper.endswith("REDIS_HOST"):     # a host name (LiteLLM's Redis settings), not a URL
            env[name] = "127.0.0.1"
        elif any(part in upper for part in ("BASE", "URL", "ENDPOINT", "HOST")):
            env[name] = "http://127.0.0.1:9"
        else:
            env[name] = f"corpus-placeholder-{name.lower()}"
    return env


@contextlib.contextmanager
def _isolated(env: dict[str, str], workdir: Path) -> Iterator[None]:
    """Run with ``env`` added; afterwards os.environ, sys.path and sys.modules are as before."""
    saved_env = dict(os.environ)
    saved_path = list(sys.path)
    saved_modules = dict(sys.modules)
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(io.StringIO()):   # handler files print at import
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:] = saved_path
        for name in list(sys.modules):
            module = sys.modules[name]
            file = getattr(module, "__file__", None) or ""
            if name not in saved_modules and file.startswith(str(workdir)):
                del sys.modules[name]
            elif name in saved_modules and saved_modules[name] is not module:
                sys.modules[name] = saved_modules[name]


def _load_in_process(config_path: Path, api: ProxyAPI) -> LoadOutcome:
    stage = "config"
    try:
        try:
            config = api.load_config(config_path)
        except api.config_error as exc:
            if api.config_problems is None:
                raise
            # what `trioproxy check` prints: the config's problems and its handlers' together
            return LoadOutcome("rejected", [], api.config_problems(exc), stage)
        stage = "handlers"
        if api.check_handlers is not None:
            api.check_handlers(config)
        else:
            handlers = api.load_handlers(config)
            stage = "callbacks"
            api.load_callbacks(config, handlers.loggers)
        if api.create_app is not None:
            stage = "app"           # `trioproxy run` only: what `check` does not build
            api.create_app(config)
    except api.config_error as exc:
        return LoadOutcome("rejected", [], list(getattr(exc, "problems", [str(exc)])), stage)
    except Exception as exc:        # the validator itself crashed: a bug, reported as such
        return LoadOutcome("rejected", [], [f"{config_path}: <crash>: {type(exc).__name__}: {exc}"], stage)
    warnings = list(getattr(config, "warnings", []))
    return LoadOutcome("warnings" if warnings else "clean", warnings, [], "app")


def _load_with_cli(config_path: Path, env: dict[str, str]) -> LoadOutcome:
    """``python -m trioproxy check``: the fallback when the functions cannot be found."""
    done = subprocess.run([sys.executable, "-m", "trioproxy", "check", str(config_path)], capture_output=True,
                          text=True, env={**os.environ, **env}, cwd=config_path.parent, timeout=120)
    if done.returncode != 0:
        problems = [line.strip() for line in done.stderr.splitlines() if line.startswith("  ")]
        return LoadOutcome("rejected", [], problems or [done.stderr.strip()], "check")
    warnings = [line[len("warning: "):] for line in done.stdout.splitlines() if line.startswith("warning: ")]
    return LoadOutcome("warnings" if warnings else "clean", warnings, [], "check")


def stage_config(text: str, workdir: Path, handler_files: dict[str, str], name: str = "config.yaml") -> Path:
    """Write a config and the rewritten handler files it names into ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    for module, handler in handler_files.items():
        target = workdir.joinpath(*module.split(".")).with_suffix(".py")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CORPUS_DIR / "handlers" / "rewritten" / handler, target)
    path = workdir / name
    path.write_text(text, encoding="utf-8")
    return path


def load_config_text(text: str, handler_files: dict[str, str], *, use_cli: bool = False,
                     env_text: str | None = None) -> LoadOutcome:
    """Load one config (as text) the way ``trioproxy check`` + ``run`` do, in a scratch directory.

    ``env_text``: the text whose ``os.environ/`` references set the environment (default: ``text``).
    A "fixed" config keeps the original's environment: removing a section that named a variable
    does not unset it for the deployments that read it as a fallback (``AZURE_API_BASE``…)."""
    with tempfile.TemporaryDirectory(prefix="litellm-corpus-") as tmp:
        workdir = Path(tmp).resolve()
        path = stage_config(text, workdir, handler_files)
        env = placeholder_env(text if env_text is None else env_text)
        if use_cli:
            outcome = _load_with_cli(path, env)
        else:
            api = proxy_api()
            with _isolated(env, workdir):
                outcome = _load_in_process(path, api)
    # scratch paths mean nothing to a reader (and differ per run): show stable names instead
    def clean(text: str) -> str:
        text = text.replace(str(path), "config.yaml").replace(str(workdir), "<config dir>")
        return text.replace(str(Path(proxy_api().package.__file__).parent.parent) + os.sep, "")
    outcome.problems = [clean(p) for p in outcome.problems]
    outcome.warnings = [clean(w) for w in outcome.warnings]
    return outcome


def load_config_case(case: ConfigCase, *, use_cli: bool = False) -> LoadOutcome:
    return load_config_text(case.path.read_text(encoding="utf-8"), case.handler_files, use_cli=use_cli)


# ---------------------------------------------------------------------------------------------
# Problem messages: split, classify, and "fix" (to see what a second run would report)
# ---------------------------------------------------------------------------------------------


def split_problem(problem: str) -> tuple[str, str]:
    """``file: key.path: message`` -> (key path, message)."""
    parts = problem.split(": ", 2)
    if len(parts) == 3:
        return parts[1], parts[2]
    return "", problem


def normalized(problem: str) -> str:
    """A problem without its file and list indices, to count distinct messages."""
    path, message = split_problem(problem)
    text = f"{path}: {message}" if path else message
    return re.sub(r"\[\d+\]", "[i]", text)


#: issue #16's providers (prefixes), everything else a config names is "not planned yet"
PLANNED_PROVIDERS = {
    "azure", "anthropic", "bedrock", "gemini", "vertex_ai", "ollama", "ollama_chat", "groq", "mistral",
    "deepseek", "together_ai", "fireworks_ai", "openrouter", "xai", "perplexity", "hosted_vllm", "lm_studio",
    "huggingface",
}
#: callback names that are LiteLLM built-in guardrails / moderation, not logging integrations
GUARDRAIL_CALLBACKS = {
    "presidio", "lakera_prompt_injection", "detect_prompt_injection", "llamaguard_moderations",
    "google_text_moderation", "openai_moderations", "aporia", "azure_content_safety", "llmguard_moderations",
}
#: keys whose features belong to the database / enterprise issues (#10 keys, teams, users, audit;
#: #11 budgets, rate limits, spend; #12 access control, JWT, pass-through; #13 many instances)
ENTERPRISE_KEYS = {
    "database_url": "#10", "store_model_in_db": "#10", "store_audit_logs": "#10", "disable_prisma_schema_update": "#10",
    "use_queue": "#10", "custom_team_metadata_validate": "#10", "team_metadata_validation_timeout": "#10",
    "team_metadata_validation_error_message": "#10", "default_team_settings": "#10", "default_key_generate_params": "#10",
    "upperbound_key_generate_params": "#10", "key_generation_settings": "#10", "default_internal_user_params": "#10",
    "store_prompts_in_spend_logs": "#11", "max_budget": "#11", "budget_duration": "#11", "max_end_user_budget": "#11",
    "spend_logs_metadata": "#11", "disable_spend_logs": "#11", "proxy_batch_write_at": "#11",
    "use_redis_transaction_buffer": "#13", "reject_metadata_tags": "#11", "reject_clientside_metadata_tags": "#11",
    "enable_jwt_auth": "#12", "litellm_jwtauth": "#12", "custom_auth": "#12", "public_routes": "#12",
    "allowed_routes": "#12", "admin_only_routes": "#12", "pass_through_endpoints": "#12", "allowed_ips": "#12",
    "enforce_user_param": "-", "key_management_system": "#12", "key_management_settings": "#12",
    "alerting": "#11", "alerting_threshold": "#11", "alerting_args": "#11", "alert_to_webhook_url": "#11",
    "alert_types": "#11", "ui_access_mode": "#12", "redis_host": "#13", "redis_port": "#13", "redis_password": "#13",
    "disable_master_key_return": "#12",
    "global_max_parallel_requests": "#11", "max_parallel_requests": "#11", "service_callback": "#13",
    "service_callbacks": "#13", "user_api_key_cache_ttl": "#13", "enable_redis_auth_cache": "#13",
    "maximum_spend_logs_retention_period": "#11", "maximum_spend_logs_retention_interval": "#11",
}
#: keys of LiteLLM's router: fallbacks, aliases, cooldowns, strategies, tags, per-deployment limits
ROUTING_KEYS = {
    "fallbacks", "context_window_fallbacks", "content_policy_fallbacks", "default_fallbacks", "model_group_alias",
    "allowed_fails", "cooldown_time", "allowed_fails_policy", "retry_policy", "routing_strategy",
    "routing_strategy_args", "enable_tag_filtering", "tag_filtering_match_any", "tags", "rpm", "tpm",
    "enable_pre_call_checks", "provider_budget_config", "model_group_retry_policy", "max_fallbacks",
    "disable_cooldowns", "num_retries", "retry_after", "timeout", "stream_timeout", "enable_loadbalancing_on_batch_endpoints",
}


#: keys that configure a LiteLLM logging integration (its params, tags, redaction)
LOGGING_KEYS = {
    "s3_callback_params", "aws_sqs_callback_params", "gcs_bucket_name", "gcs_path", "gcs_path_service_account",
    "langfuse_default_tags", "redact_user_api_key_info", "turn_off_message_logging", "log_raw_request_response",
    "callback_settings", "global_disable_no_log_param", "allow_dynamic_callback_disabling", "service_name",
    "datadog_params", "generic_api_params", "langsmith_batch_size",
}
#: keys that configure a LiteLLM built-in guardrail, or its pre-v1 guardrail list
GUARDRAIL_KEYS = {
    "prompt_injection_params", "azure_content_safety_params", "guardrails", "default_action", "on_disallowed_action",
    "violation_message_template", "rules", "skip_system_message_in_guardrail",
}
#: top-level sections of LiteLLM features trioproxy has no counterpart for
FEATURE_SECTIONS = {"mcp_servers", "mcp_builtin_servers", "search_tools", "sandbox_tools", "policies",
                    "policy_attachments", "finetune_settings", "files_settings", "credential_list",
                    "callback_settings", "vector_store_registry", "prompts"}


@dataclass(frozen=True)
class ProblemCause:
    letter: str          # a..g, the brief's causes
    detail: str          # the provider prefix, integration, guardrail, key, …


def _bad_name(message: str) -> str | None:
    found = re.match(r"'([^']*)'", message)
    return found.group(1) if found else None


def classify_problem(problem: str, known_litellm_keys: set[str] | None = None) -> ProblemCause:
    """Which of the brief's causes (a)–(g) a problem message belongs to."""
    path, message = split_problem(problem)
    leaf = re.sub(r"\[\d+\]$", "", path.rsplit(".", 1)[-1]) if path else ""
    provider = re.search(r"unknown provider '([^']+)'", message)
    if provider:
        prefix = provider.group(1)
        return ProblemCause("a", prefix if prefix in PLANNED_PROVIDERS else f"{prefix} (not in #16)")
    if "invalid YAML" in message:
        return ProblemCause("g", "invalid YAML (LiteLLM cannot load it either)")
    if "<crash>" in path:
        return ProblemCause("f", f"validator crashed: {message.split(':', 1)[0]}")
    builtin = ("not a dotted path", "neither a built-in", "LiteLLM's built-in guardrails", "LiteLLM's logging integrations")
    if re.match(r"litellm_settings\.(callbacks|success_callback|failure_callback|input_callback)\[\d+\]$", path):
        name = _bad_name(message) or ""
        if "." not in name and any(b in message for b in builtin):
            return ProblemCause("c" if name in GUARDRAIL_CALLBACKS or "guardrails" in message else "b", name)
        return ProblemCause("g", "handler file: " + _handler_detail(message))
    if re.match(r"guardrails\[\d+\]\.litellm_params\.guardrail$", path):
        name = _bad_name(message) or ""
        unsupported_mode = re.search(r"built-in '[^']+' guardrail supports the modes .*; not '([^']+)'", message)
        if unsupported_mode:    # a mode of a built-in trioproxy has (MCP modes are counted under (g) already)
            mode = unsupported_mode.group(1)
            return ProblemCause("g", "MCP guardrail mode") if "mcp" in mode else ProblemCause("c", f"{name} {mode}")
        if "." not in name and any(b in message for b in builtin):
            return ProblemCause("c", name)
        if "." not in name and "category_file" in message:   # a built-in's data LiteLLM ships in its package
            return ProblemCause("c", f"{name}: a category file LiteLLM ships in its package")
        return ProblemCause("g", "handler file: " + _handler_detail(message))
    if "duplicate guardrail name" in message:
        return ProblemCause("g", "the same guardrail name twice (LiteLLM load-balances them)")
    if leaf == "mode" and "guardrails[" in path:
        if "pre_mcp_call" in message or "during_mcp_call" in message:
            return ProblemCause("g", "MCP guardrail mode")
        if "tags" in message:
            return ProblemCause("g", "guardrail mode chosen by request tag")
    if "LiteLLM's MCP gateway" in message:
        return ProblemCause("g", "MCP guardrail mode")
    if "mode chosen by request tags" in message:
        return ProblemCause("g", "guardrail mode chosen by request tag")
    if "cache: true without cache_params.type" in message:
        return ProblemCause("g", "cache: true (a Redis cache in LiteLLM)")
    unknown = re.match(r"unknown key '([^']+)'(; did you mean '([^']+)'\?)?", message) or \
        re.match(r"LiteLLM's '([^']+)' (?:\(|is a setting of its non-local)()()", message)
    if unknown:
        key, hint = unknown.group(1), unknown.group(3)
        known = (known_litellm_keys or set()) | LOGGING_KEYS | GUARDRAIL_KEYS
        if hint and hint != key and key in known:
            return ProblemCause("f", f"'{key}' (a LiteLLM key) gets \"did you mean '{hint}'?\"")
        if key in ENTERPRISE_KEYS:
            return ProblemCause("d", key)
        if key in ROUTING_KEYS:
            return ProblemCause("e", key)
        if key in LOGGING_KEYS:
            return ProblemCause("b", f"{key} (a logging integration's settings)")
        if key in GUARDRAIL_KEYS:
            return ProblemCause("c", f"{key} (a built-in guardrail's settings)")
        if "cache_params" in path:
            return ProblemCause("g", "cache_params of a cache backend other than local")
        if key in FEATURE_SECTIONS:
            return ProblemCause("g", f"LiteLLM feature section `{key}`")
        if "not supported by trioproxy" in message:
            return ProblemCause("g", f"LiteLLM setting trioproxy names as not supported: {key}")
        return ProblemCause("g", f"unknown key {key}")
    if leaf == "routing_strategy":
        return ProblemCause("e", "routing_strategy value")
    if "cache_params" in path:
        return ProblemCause("g", "cache type other than local" if leaf == "type" else f"cache_params.{leaf}")
    if path == "model_list" or (path == "<top level>" and "model_list" in message):
        return ProblemCause("g", "no model_list (LiteLLM starts without one)")
    if "is required" in message:
        return ProblemCause("g", f"{leaf} is required")
    if message.startswith("expected"):
        return ProblemCause("g", f"type of {leaf}")
    return ProblemCause("g", message[:60])


def _handler_detail(message: str) -> str:
    cannot = re.search(r"cannot import name '([^']+)' from 'trioproxy'", message)
    if cannot:
        return f"trioproxy lacks {cannot.group(1)}"
    missing = re.search(r"No module named '([^']+)'", message)
    if missing:
        return f"needs module {missing.group(1)}"
    if "cannot find module" in message:
        return "handler file not in the corpus"
    if "NameError" in message:
        return "the published file uses a name it never imports"
    return re.sub(r"\(.*\)$", "", message)[:80]


_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _path_tokens(path: str) -> list[str | int]:
    return [int(index) if index else name for name, index in _PATH_TOKEN.findall(path)]


def _nearest_item(tokens: list[str | int]) -> list[str | int]:
    """The path of the closest list element containing ``tokens`` (the whole entry to drop)."""
    for cut in range(len(tokens), 0, -1):
        if isinstance(tokens[cut - 1], int):
            return tokens[:cut]
    return tokens


def fix_problems(raw: Any, problems: list[str]) -> tuple[Any, bool]:
    """A copy of the YAML document with each reported problem removed, as a user would fix it.

    The edit is the simplest one that makes the problem go away without adding a new meaning:
    unknown or mistyped keys are dropped, an unsupported provider becomes ``openai/``, an entry
    whose handler or guardrail cannot load is dropped, a setting a native provider needs gets a
    placeholder, a missing ``model_list`` gets one fake model.
    """
    doc = copy.deepcopy(raw)
    deletions: list[list[str | int]] = []
    changed = False
    for problem in problems:
        path, message = split_problem(problem)
        if "invalid YAML" in message or not isinstance(doc, dict):
            continue
        if path in ("model_list", "<top level>") and ("is required" in message or "at least one" in message):
            doc["model_list"] = [{"model_name": "corpus-fake", "litellm_params": {"model": "fake/corpus"}}]
            changed = True
            continue
        tokens = _path_tokens(path)
        if not tokens:
            continue
        if "unknown provider" in message:
            parent = _walk(doc, tokens[:-1])
            if isinstance(parent, dict) and isinstance(parent.get(tokens[-1]), str):
                parent[tokens[-1]] = "openai/" + parent[tokens[-1]].partition("/")[2]
                changed = True
            continue
        if path == "litellm_settings.cache_params.type" or "cache: true without cache_params.type" in message:
            # the fix a user makes: the cache trioproxy has (deleting the type would mean Redis again)
            settings = doc.get("litellm_settings")
            if isinstance(settings, dict):
                params = settings.get("cache_params") if isinstance(settings.get("cache_params"), dict) else {}
                settings["cache_params"] = {**params, "type": "local"}
                changed = True
            continue
        if "only apply to the 'fake/" in message:
            params = _walk(doc, tokens)
            if isinstance(params, dict):
                for key in ("mock_response", "latency", "chunk_latency", "fail_rate", "fail_status"):
                    changed |= params.pop(key, None) is not None
            continue
        if re.fullmatch(r"model_list\[\d+\]\.litellm_params", path):
            # a native provider's settings (``proxy.check_providers``): "needs 'api_base' …" is fixed
            # as a user would, by giving the setting (a placeholder); anything else drops the deployment
            params = _walk(doc, tokens)
            needed = re.search(r"needs '(\w+)'", message)
            if isinstance(params, dict) and needed and needed.group(1) not in params:
                name = needed.group(1)
                params[name] = "http://127.0.0.1:9" if "base" in name or "endpoint" in name else f"corpus-{name}"
                changed = True
            else:
                deletions.append(_nearest_item(tokens))
            continue
        if "is required" in message or path.startswith(("litellm_settings.callbacks", "guardrails[")) \
                or re.match(r"litellm_settings\.\w+_callback\[", path):
            deletions.append(_nearest_item(tokens))
        else:
            deletions.append(tokens)
    for tokens in sorted(deletions, key=lambda t: [str(x).zfill(6) for x in t], reverse=True):
        parent = _walk(doc, tokens[:-1])
        last = tokens[-1]
        if isinstance(parent, dict) and last in parent:
            del parent[last]
            changed = True
        elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
            del parent[last]
            changed = True
    return doc, changed


def _walk(doc: Any, tokens: list[str | int]) -> Any:
    node = doc
    for token in tokens:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and isinstance(token, int) and token < len(node):
            node = node[token]
        else:
            return None
    return node


@dataclass
class ConfigReport:
    case: ConfigCase
    first: LoadOutcome
    rounds: list[LoadOutcome]                    # after each round of fixes
    later_problems: list[str]                    # problems that only a later run reported
    meaning: list[str]                           # loads, but means something else than in LiteLLM

    @property
    def final(self) -> LoadOutcome:
        return self.rounds[-1] if self.rounds else self.first


def explore_config(case: ConfigCase, *, max_rounds: int = 8, use_cli: bool = False) -> ConfigReport:
    """Load, then fix what was reported and load again until nothing new is reported."""
    text = case.path.read_text(encoding="utf-8")
    first = load_config_case(case, use_cli=use_cli)
    rounds: list[LoadOutcome] = []
    seen = {normalized(p) for p in first.problems}
    later: list[str] = []
    outcome = first
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        doc = None
    for _ in range(max_rounds):
        if outcome.status != "rejected" or doc is None:
            break
        doc, changed = fix_problems(doc, outcome.problems)
        if not changed:
            break
        outcome = load_config_text(yaml.safe_dump(doc, sort_keys=False), case.handler_files, use_cli=use_cli,
                                   env_text=text)
        rounds.append(outcome)
        for problem in outcome.problems:
            if normalized(problem) not in seen:
                seen.add(normalized(problem))
                later.append(problem)
    try:
        original = yaml.safe_load(text)
    except yaml.YAMLError:
        original = None
    meaning = meaning_differences(original, model_param_keys()) if first.status != "rejected" else []
    return ConfigReport(case, first, rounds, later, meaning)


#: request parameters of the OpenAI API: as ``litellm_params`` they are defaults sent upstream in
#: LiteLLM as in trioproxy. Any other unknown ``litellm_params`` key trioproxy also sends upstream,
#: where LiteLLM consumes it (credentials, budgets, routing, provider settings).
OPENAI_BODY_PARAMS = {
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "stop", "presence_penalty",
    "frequency_penalty", "logit_bias", "seed", "response_format", "tools", "tool_choice", "user", "logprobs",
    "top_logprobs", "parallel_tool_calls", "reasoning_effort", "stream_options", "modalities", "audio",
    "service_tier", "store", "metadata", "functions", "function_call", "extra_body",
}


@functools.cache
def model_param_keys() -> frozenset[str] | None:
    """The ``litellm_params`` keys trioproxy's schema knows (None if the schema cannot be found)."""
    package = proxy_api().package
    names = ["trioproxy.config"] + [m.name for m in pkgutil.walk_packages(package.__path__, "trioproxy.")]
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception:   # moved (#9) or not importable alone: keep looking
            continue
        section = getattr(module, "MODEL_PARAMS", None)
        fields = getattr(section, "fields", None)
        if isinstance(fields, dict):
            # keys it accepts with a warning (ignored, never sent) are known too: not sent upstream
            return frozenset(fields) | frozenset(getattr(section, "unsupported", ()))
    return None


#: what a warning says when it ignores a key (the config loads without that key's meaning)
_IGNORED = ("ignored", "not implemented", "never sent")


def ignored_warnings(outcome: LoadOutcome) -> list[str]:
    """The warnings of a load that say a key is ignored (the rest keep the config's meaning)."""
    return [w for w in outcome.warnings if any(word in w for word in _IGNORED)]


def meaning_differences(doc: Any, known_params: frozenset[str] | None = None) -> list[str]:
    """What a config that loads means in LiteLLM but not in trioproxy today (checked by hand
    against LiteLLM's docs and source; see REPORT.md). ``known_params``: the ``litellm_params``
    keys trioproxy handles itself (its schema); the others it passes upstream."""
    if not isinstance(doc, dict):
        return []
    out = []
    for entry in doc.get("model_list") or []:
        if not isinstance(entry, dict):
            continue
        params = entry.get("litellm_params") or {}
        info = entry.get("model_info") or {}
        if isinstance(info, dict):
            # base_model and input/output_cost_per_token are read (config/build.py, observability/cost.py)
            priced = sorted(k for k in info if "cost_per" in k and k not in ("input_cost_per_token",
                                                                           "output_cost_per_token"))
            if priced:
                out.append(f"model_info.{', '.join(priced)}: LiteLLM prices audio/image/per-second usage by them; "
                           "trioproxy prices tokens only")
        if isinstance(params, dict) and known_params is not None:
            consumed = sorted(k for k in params if k not in known_params and k not in OPENAI_BODY_PARAMS
                              # litellm_credential_name: consumed before validation (config/credentials.py)
                              and k not in ("tags", "rpm", "tpm", "litellm_credential_name"))
            if consumed:
                out.append(f"litellm_params.{', '.join(consumed)}: LiteLLM consumes them; trioproxy sends them "
                           "upstream as request body fields")
        # (a '*' in model_name is a wildcard in trioproxy too since routing was wired: docs/routing.md)
        if isinstance(params, dict) and "tags" in params and known_params is not None and "tags" not in known_params:
            out.append("litellm_params.tags: LiteLLM routes by tag; trioproxy sends `tags` upstream as a body field")
    # cache: true without cache_params.type is a Redis cache in LiteLLM and in trioproxy (issue #13)
    return list(dict.fromkeys(out))   # one line per difference, however many deployments share it


# ---------------------------------------------------------------------------------------------
# Handler files: what they import, whether they load, whether they serve
# ---------------------------------------------------------------------------------------------


@dataclass
class Gap:
    kind: str            # "export" | "attribute" | "auth-attribute" | "base-method" | "module" |
    #                      "apply_guardrail-only" | "uncalled-hook"
    name: str
    origin: str          # the LiteLLM module it is imported from, or where it is used


_HOOKS = ("async_pre_call_hook", "async_moderation_hook", "async_post_call_success_hook",
          "async_post_call_failure_hook", "async_post_call_streaming_hook",
          "async_post_call_streaming_iterator_hook", "async_post_call_response_headers_hook")


def static_gaps(original_source: str, package: ModuleType | None = None) -> list[Gap]:
    """What an original handler file needs from LiteLLM (and fastapi) that trioproxy lacks."""
    package = package or importlib.import_module("trioproxy")
    tree = ast.parse(original_source)
    gaps: list[Gap] = []
    litellm_aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mod = node.module
            if mod == "litellm" or mod.startswith("litellm."):
                gaps += [Gap("export", a.name, mod) for a in node.names if not hasattr(package, a.name)]
            elif mod == "fastapi":
                gaps += [Gap("module", f"fastapi.{a.name}", "fastapi") for a in node.names
                         if a.name not in _FASTAPI_TO_TRIOPROXY and importlib.util.find_spec("fastapi") is None]
            elif importlib.util.find_spec(mod.split(".")[0]) is None:
                gaps.append(Gap("module", mod, mod))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "litellm" or a.name.startswith("litellm."):
                    litellm_aliases.add(a.asname or "litellm")
                elif importlib.util.find_spec(a.name.split(".")[0]) is None:
                    gaps.append(Gap("module", a.name, a.name))
    auth_fields = _auth_fields(package)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in litellm_aliases and not hasattr(package, node.attr):
                gaps.append(Gap("attribute", node.attr, "litellm"))
            elif node.value.id == "user_api_key_dict" and node.attr not in auth_fields:
                gaps.append(Gap("auth-attribute", f"UserAPIKeyAuth.{node.attr}", "litellm.proxy._types"))
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        bases = {getattr(b, "id", getattr(b, "attr", "")) for b in cls.bases}
        base = getattr(package, "CustomGuardrail" if "CustomGuardrail" in bases else "CustomLogger", None)
        if not bases & {"CustomGuardrail", "CustomLogger"} or base is None:
            continue
        own = {n.name for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        for node in ast.walk(cls):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "self"
                    and node.func.attr not in own and not hasattr(base, node.func.attr)):
                gaps.append(Gap("base-method", f"{base.__name__}.{node.func.attr}", cls.name))
        if "CustomGuardrail" in bases and "apply_guardrail" in own and not own & set(_HOOKS):
            gaps.append(Gap("apply_guardrail-only", cls.name, "CustomGuardrail.apply_guardrail"))
        known = set(dir(base)) | {"apply_guardrail"}
        for name in sorted(own - known):
            if re.match(r"(async_|log_)", name) or "hook" in name:
                gaps.append(Gap("uncalled-hook", f"{cls.name}.{name}", "never called by trioproxy"))
    unique: dict[tuple[str, str], Gap] = {}
    for gap in gaps:
        unique.setdefault((gap.kind, gap.name), gap)
    return list(unique.values())


def _auth_fields(package: ModuleType) -> set[str]:
    auth = getattr(package, "UserAPIKeyAuth", None)
    if auth is None:
        return set()
    fields = set(getattr(auth, "__dataclass_fields__", {})) | set(getattr(auth, "model_fields", {}))
    return fields | {n for n in dir(auth) if not n.startswith("_")}


def handler_config(case: HandlerCase, model_names: tuple[str, ...] = ("gpt-3.5-turbo", "my-new-model")) -> dict:
    """A config that wires ``case`` as LiteLLM's docs do, in front of the built-in fake provider."""
    config: dict[str, Any] = {
        "model_list": [{"model_name": n, "litellm_params": {"model": f"fake/{n}"}} for n in model_names],
        "general_settings": {"master_key": "sk-corpus-master-key"},
    }
    wiring = case.wiring
    if "callbacks" in wiring:
        config["litellm_settings"] = {"callbacks": [f"{case.module}.{a}" for a in wiring["callbacks"]]}
    if "guardrails" in wiring:
        config["guardrails"] = [
            {"guardrail_name": f"corpus-{i}-{g['class']}",
             "litellm_params": {"guardrail": f"{case.module}.{g['class']}", "mode": g["mode"], "default_on": True}}
            for i, g in enumerate(wiring["guardrails"])
        ]
    if "custom_auth" in wiring:
        config["general_settings"]["custom_auth"] = f"{case.module}.{wiring['custom_auth']}"
        if "custom_auth_settings" in wiring:
            config["general_settings"]["custom_auth_settings"] = dict(wiring["custom_auth_settings"])
        if "master_key" in wiring:   # the key a custom_auth function maps its callers to
            config["general_settings"]["master_key"] = wiring["master_key"]
    return config


def handler_request_key(case: HandlerCase) -> str:
    """The key the test client sends: the master key, or the one the file's custom_auth accepts."""
    return str(case.wiring.get("api_key", "sk-corpus-master-key"))


@dataclass
class HandlerReport:
    case: HandlerCase
    gaps: list[Gap]
    imports: bool                        # the rewritten file imports
    import_error: str
    load: LoadOutcome
    plain: str = ""                      # "ok" or what went wrong
    stream: str = ""
    log_errors: list[str] = field(default_factory=list)   # ERROR lines the proxy logged meanwhile
    #: only for files that fail to import for want of a name: the same run with a stand-in for each
    #: missing name (STAND_INS), to tell "needs only the export" from "needs more"
    what_if: str = ""

    @property
    def works(self) -> bool:
        return self.plain == "ok" and self.stream == "ok"


def import_rewritten(case: HandlerCase) -> str:
    """"" when the rewritten file imports, else the exception (type, message, line)."""
    with tempfile.TemporaryDirectory(prefix="litellm-corpus-") as tmp:
        workdir = Path(tmp).resolve()
        target = workdir / f"{case.module}.py"
        shutil.copyfile(case.rewritten, target)
        with _isolated({}, workdir):
            sys.path.insert(0, str(workdir))
            try:
                spec = importlib.util.spec_from_file_location(f"corpus_{case.module}", target)
                assert spec is not None and spec.loader is not None
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            except BaseException as exc:   # anything the file raises is the finding
                if isinstance(exc, KeyboardInterrupt):
                    raise
                line = exc.__traceback__.tb_lineno if exc.__traceback__ else "?"
                tb = exc.__traceback__
                while tb is not None:
                    if tb.tb_frame.f_code.co_filename == str(target):
                        line = tb.tb_lineno
                    tb = tb.tb_next
                root = str(Path(proxy_api().package.__file__).parent.parent) + os.sep
                return f"{type(exc).__name__}: {exc} (line {line})".replace(root, "")
    return ""


#: What-if stand-ins for names LiteLLM handler files import and trioproxy lacks. NOT a proposal for
#: the real exports: the smallest object each file's use needs (a logger, a type, a function that
#: answers "yes"/0.0), installed only in a what-if run so the report can say which files need
#: nothing but the name. Run as the ``sitecustomize`` of a what-if ``trioproxy run``.
STAND_INS = """
import enum as _enum
import logging as _logging

import trioproxy as _trioproxy


async def _proceed(data, guardrail_name):
    return True


class _Stub:
    def __init__(self, *args, **kwargs):
        self.__dict__.update(kwargs)


_names = {
    "verbose_proxy_logger": _logging.getLogger("trioproxy.corpus.stand_in"),
    "CallTypesLiteral": str,
    "CallTypes": _enum.Enum("CallTypes", {n: n for n in ("completion", "acompletion", "text_completion",
                                                          "atext_completion", "embeddings", "aembedding")}),
    "should_proceed_based_on_metadata": _proceed,
    "PiiEntityType": _enum.Enum("PiiEntityType", {"EMAIL_ADDRESS": "EMAIL_ADDRESS", "PERSON": "PERSON"}),
    "LitellmUserRoles": _enum.Enum("LitellmUserRoles", {"PROXY_ADMIN": "proxy_admin"}),
    "ProxyException": type("ProxyException", (Exception,), {}),
    "completion_cost": lambda *args, **kwargs: 0.0,
    "set_verbose": False,
    "get_async_httpx_client": lambda *args, **kwargs: _Stub(),
    "httpxSpecialProvider": _enum.Enum("httpxSpecialProvider", {"LoggingCallback": "logging_callback"}),
    "AgenticLoopPlan": _Stub,
    "AgenticLoopRequestPatch": _Stub,
    "MCPPostCallResponseObject": _Stub,
}
for _name, _value in _names.items():
    if not hasattr(_trioproxy, _name):
        setattr(_trioproxy, _name, _value)
"""


@contextlib.contextmanager
def _stand_ins_in_process() -> Iterator[None]:
    package = proxy_api().package
    before = set(vars(package))
    exec(compile(STAND_INS, "<corpus stand-ins>", "exec"), {})
    try:
        yield
    finally:
        for name in set(vars(package)) - before:
            delattr(package, name)


def run_handler_case(case: HandlerCase, *, serve: bool = True, what_if: bool = True) -> HandlerReport:
    """Static gaps, import, load through the loader, and (if it loads) a real ``trioproxy run``;
    for a file that lacks only names, the same again with stand-ins (``what_if``)."""
    api = proxy_api()
    gaps = static_gaps(case.original.read_text(encoding="utf-8"), api.package)
    error = import_rewritten(case)
    config = handler_config(case)
    text = yaml.safe_dump(config, sort_keys=False)
    files = {case.module: case.name}
    load = load_config_text(text, files)
    report = HandlerReport(case, gaps, not error, error, load)
    if serve and load.status != "rejected":
        report.plain, report.stream, report.log_errors = serve_requests(text, files, api_key=handler_request_key(case))
    if what_if and re.search(r"cannot import name|module 'trioproxy' has no attribute", error):
        with _stand_ins_in_process():
            again = load_config_text(text, files)
        if again.status == "rejected":
            report.what_if = "still rejected: " + "; ".join(split_problem(p)[1] for p in again.problems)[:300]
        elif serve:
            plain, stream, errors = serve_requests(text, files, stand_ins=True, api_key=handler_request_key(case))
            report.what_if = "works" if plain == stream == "ok" else f"plain: {plain}; stream: {stream}"
            if errors:
                report.what_if += f" (log: {'; '.join(errors)[:200]})"
        else:
            report.what_if = "loads"
    return report


def serve_requests(config_text: str, handler_files: dict[str, str], *, stand_ins: bool = False,
                   api_key: str = "sk-corpus-master-key") -> tuple[str, str, list[str]]:
    """A plain and a streaming chat request through a real ``trioproxy run``: ("ok" | why not) for
    each, and the ERROR lines the proxy logged (a logging callback that fails off the request path
    does not change the answer, but the handler does not do what its author meant)."""
    import httpx

    from support.proxy_process import ProxyProcess

    with tempfile.TemporaryDirectory(prefix="litellm-corpus-run-") as tmp:
        path = stage_config(config_text, Path(tmp), handler_files)
        env = {}
        if stand_ins:
            shim = Path(tmp) / "stand_ins"
            shim.mkdir()
            (shim / "sitecustomize.py").write_text(STAND_INS, encoding="utf-8")
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH")]))
        try:
            proxy = ProxyProcess(path, log_level="warning", env=env)
        except RuntimeError as exc:
            why = f"did not start: {str(exc).splitlines()[-1][:160]}"
            return why, why, []
        with proxy, httpx.Client(base_url=proxy.url, timeout=30,
                                 headers={"Authorization": f"Bearer {api_key}"}) as client:
            body = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "Say something nice"}]}
            plain = _check_plain(client.post("/chat/completions", json=body))
            with client.stream("POST", "/chat/completions", json={**body, "stream": True}) as response:
                stream = _check_stream(response)
            proxy.terminate()   # drains the logging queue: callback errors are in the log by now
            errors = [re.sub(r"req-[0-9a-f-]+", "req-…", line.split(": ", 1)[-1])[:200]
                      for line in proxy.logs().splitlines() if " ERROR " in line]
    return plain, stream, errors


def _check_plain(response: Any) -> str:
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return f"not a chat completion: {response.text[:200]}"
    return "ok" if isinstance(content, str) and content else f"empty answer: {response.text[:200]}"


def _check_stream(response: Any) -> str:
    if response.status_code != 200:
        response.read()
        return f"HTTP {response.status_code}: {response.text[:200]}"
    text_seen, done = False, False
    for line in response.iter_lines():
        if not line.startswith("data: "):
            continue
        data = line[len("data: "):]
        if data == "[DONE]":
            done = True
            continue
        try:
            chunk = json.loads(data)
        except ValueError:
            return f"not JSON: {data[:120]}"
        if "error" in chunk:
            return f"error event: {json.dumps(chunk['error'])[:200]}"
        for choice in chunk.get("choices") or []:
            if (choice.get("delta") or {}).get("content"):
                text_seen = True
    if not done:
        return "stream ended without [DONE]"
    return "ok" if text_seen else "no content chunk"
