"""Run the LiteLLM corpus through trioproxy and write ``tests/data/litellm_corpus/REPORT.md``.

For every config: load it as ``trioproxy check`` and ``trioproxy run`` do, classify each problem
(the causes (a)–(g) of issue #15's survey), fix what was reported in a copy and load again until
nothing new appears (problems that only a later run reports are a validator finding). For every
handler file: the names it needs that trioproxy lacks, whether the import-rewritten copy imports,
loads through the loader, and serves a plain and a streaming chat request through a real
``trioproxy run`` with the fake provider. The harness is ``tests/support/corpus.py``.

    .venv/bin/python bench/corpus_report.py            # print the summary
    .venv/bin/python bench/corpus_report.py --write    # also rewrite REPORT.md
    .venv/bin/python bench/corpus_report.py --rewrite  # regenerate handlers/rewritten/ first
    options: --no-serve (skip the real proxy runs), --cli (load configs with `python -m trioproxy check`)
"""

from __future__ import annotations

import argparse
import collections
import datetime
import re
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support import corpus as C

REPORT = C.CORPUS_DIR / "REPORT.md"
CAUSES = {
    "a": "provider not supported",
    "b": "logging integration (or other built-in callback) by name",
    "c": "LiteLLM built-in guardrail",
    "d": "database / enterprise feature (#10–#13)",
    "e": "routing keys (fallbacks, aliases, cooldowns, strategies, tags, rpm/tpm)",
    "f": "validator bug or misleading message",
    "g": "other",
}
TOP_LEVEL_LITELLM = {"model_list", "litellm_settings", "general_settings", "router_settings", "environment_variables",
                     "guardrails", "mcp_servers", "search_tools", "policies", "policy_attachments", "finetune_settings",
                     "files_settings", "credential_list", "vector_store_registry", "callback_settings",
                     "prompts", "mcp_builtin_servers", "sandbox_tools"}

#: where LiteLLM defines each name its handler files import (checked in LiteLLM's source) and what it is
NAME_INFO: dict[str, tuple[str, str]] = {
    "verbose_proxy_logger": ("litellm/_logging.py", "the proxy's `logging.Logger` (\"LiteLLM Proxy\"); handlers log through it"),
    "CallTypesLiteral": ("litellm/types/utils.py", "`typing.Literal` of every call-type string (`completion`, `acompletion`, `embeddings`, …): the type of `call_type`"),
    "CallTypes": ("litellm/types/utils.py", "`Enum` of the same call types (`CallTypes.completion.value == \"completion\"`)"),
    "should_proceed_based_on_metadata": ("litellm/proxy/guardrails/guardrail_helpers.py", "`async (data, guardrail_name) -> bool`: whether a request's `metadata.guardrails` turns this guardrail on (the pre-v1 guardrail API)"),
    "PiiEntityType": ("litellm/types/guardrails.py", "`Enum` of Presidio PII entity names (`CREDIT_CARD`, `EMAIL_ADDRESS`, …): the type of `apply_guardrail`'s `entities`"),
    "GuardrailEventHooks": ("litellm/types/guardrails.py", "`Enum` of guardrail modes (`pre_call`, `during_call`, `post_call`, `logging_only`, MCP modes); trioproxy exports it at top level"),
    "get_async_httpx_client": ("litellm/llms/custom_httpx/http_handler.py", "returns LiteLLM's shared async HTTP client (`AsyncHTTPHandler`) for a provider id"),
    "httpxSpecialProvider": ("litellm/types/llms/custom_http.py", "`str` `Enum` naming LiteLLM's internal HTTP client pools (`LoggingCallback`, `GuardrailCallback`, `Caching`, …)"),
    "LitellmUserRoles": ("litellm/proxy/_types.py", "`str` `Enum` of proxy roles (`PROXY_ADMIN = \"proxy_admin\"`, `INTERNAL_USER`, …)"),
    "ProxyException": ("litellm/proxy/_types.py", "exception with `message`, `type`, `param`, `code`, rendered as the OpenAI error envelope"),
    "AgenticLoopPlan": ("litellm/types/integrations/custom_logger.py", "pydantic model a callback returns to re-run the model in an agentic loop"),
    "AgenticLoopRequestPatch": ("litellm/types/integrations/custom_logger.py", "pydantic model: the `messages`/`tools`/`model` changes for that re-run"),
    "MCPPostCallResponseObject": ("litellm/types/mcp.py", "the MCP tool-call result a post-MCP hook may change (with `hidden_params.response_cost`)"),
    "completion_cost": ("litellm/cost_calculator.py (exported as `litellm.completion_cost`)", "USD cost of a response object (`completion_response=`), from LiteLLM's price map"),
    "set_verbose": ("litellm/__init__.py", "module-level `bool`: verbose debug printing (deprecated for `LITELLM_LOG`)"),
    "GenericGuardrailAPIInputs": ("litellm/types/utils.py", "`TypedDict` (`texts`, `images`, `tools`, `tool_calls`, …): the `inputs` argument of `apply_guardrail`"),
    "async_logging_hook": ("litellm/integrations/custom_logger.py (CustomLogger)", "called before the logging callbacks with `(kwargs, result, call_type)`; returns both, changed (redaction, extra metadata)"),
    "log_stream_event": ("litellm/integrations/custom_logger.py (CustomLogger)", "sync logging method called for streamed chunks"),
    "async_post_mcp_tool_call_hook": ("litellm/integrations/custom_logger.py (CustomLogger)", "called after each MCP tool call; may change its cost and result"),
    "async_should_run_agentic_loop": ("litellm/integrations/custom_logger.py (CustomLogger)", "asks the callback whether a response's tool calls should be run by the proxy in an agentic loop"),
    "async_build_agentic_loop_plan": ("litellm/integrations/custom_logger.py (CustomLogger)", "builds that loop's follow-up request (`AgenticLoopPlan`)"),
    "apply_guardrail": ("litellm/integrations/custom_guardrail.py (CustomGuardrail)", "the guardrail API LiteLLM's custom-guardrail docs lead with: LiteLLM calls it for every mode with the request's or the answer's texts; this class defines no hook trioproxy calls, so it cannot load (issue #15 item 6)"),
    "fastapi.Request": ("fastapi (Starlette's `Request`)", "the HTTP request a `custom_auth` function receives"),
    "UserAPIKeyAuth.allowed_cache_controls": ("litellm/proxy/_types.py", "list of `cache` controls a key may send (`no-cache`, `no-store`, …); used by LiteLLM's cache-control check hook"),
}
#: names issue #15 lists that no file of this corpus imports (kept so the list stays complete)
ISSUE_NAMES = ("CallTypes", "CallTypesLiteral", "should_proceed_based_on_metadata", "GuardrailEventHooks",
               "PiiEntityType", "GenericGuardrailAPIInputs", "completion_cost", "set_verbose",
               "UserAPIKeyAuth.allowed_cache_controls")


def _md(text: str, limit: int = 220) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reference() -> dict[str, dict[str, str]]:
    path = C.CORPUS_DIR / "litellm_config_settings.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}


def _known_keys(reference: dict[str, dict[str, str]]) -> set[str]:
    keys = set(TOP_LEVEL_LITELLM)
    for section in reference.values():
        keys |= set(section)
    return keys | C.ROUTING_KEYS | set(C.ENTERPRISE_KEYS)


#: LiteLLM's meaning of keys its config_settings.md tables do not list (from the feature pages named)
EXTRA_MEANINGS = {
    ("model_list[i]", "rpm"): "requests/minute limit of the deployment: the router's simple-shuffle weights by it and "
                              "usage-based routing respects it (docs/proxy/load_balancing.md)",
    ("model_list[i]", "tpm"): "tokens/minute limit of the deployment, used like `rpm` (docs/proxy/load_balancing.md)",
    ("<top level>", "mcp_servers"): "MCP servers the proxy exposes to clients as tools (docs/mcp.md)",
    ("<top level>", "mcp_builtin_servers"): "built-in MCP server definitions (docs/mcp.md)",
    ("<top level>", "search_tools"): "web-search providers for the search API and web-search interception",
    ("<top level>", "sandbox_tools"): "code-execution sandboxes for code-interpreter interception",
    ("<top level>", "policies"): "guardrail policies: named sets of guardrails with pipelines (docs/proxy/guardrails/guardrail_policies.md)",
    ("<top level>", "policy_attachments"): "which models/teams/keys a guardrail policy applies to",
    ("<top level>", "finetune_settings"): "provider credentials for the /fine_tuning endpoints",
    ("<top level>", "files_settings"): "provider credentials for the /files endpoints",
    ("<top level>", "credential_list"): "named provider credentials models can refer to (docs/proxy/ui_credentials.md)",
    ("<top level>", "callback_settings"): "per-integration settings of logging callbacks (docs/proxy/logging.md)",
}


def _meaning(section: str, key: str, reference: dict[str, dict[str, str]]) -> str:
    if (section, key) in EXTRA_MEANINGS:
        return EXTRA_MEANINGS[(section, key)]
    if "cache_params" in section:
        return "an argument of LiteLLM's `Cache(...)` for the cache backend named by `type` (docs/proxy/caching.md)"
    top = section.split(".")[0]
    if top in ("litellm_settings", "general_settings", "router_settings") and section == top:
        for candidate in (top, "router_settings", "litellm_settings", "general_settings"):
            if key in reference.get(candidate, {}):
                where = "" if candidate == top else f" (documented under {candidate})"
                return reference[candidate][key] + where
        if top == "litellm_settings":
            return f"not in config_settings.md; LiteLLM sets every `litellm_settings` key as `litellm.{key}`"
    if section == "<top level>" and key in reference.get("litellm_settings", {}):
        return "a `litellm_settings` key written at the top level (LiteLLM ignores it there too)"
    return "not in config_settings.md"


def _unknown_keys(reports: list[C.ConfigReport]) -> collections.Counter[tuple[str, str]]:
    """(section path, key) of every key trioproxy rejected or ignored, counted once per file."""
    seen: collections.Counter[tuple[str, str]] = collections.Counter()
    for report in reports:
        keys = set()
        for outcome in [report.first, *report.rounds]:
            for problem in outcome.problems:
                path, message = C.split_problem(problem)
                match = re.match(r"unknown key '([^']+)'", message)
                if match:
                    section = re.sub(r"\[\d+\]", "[i]", path.rpartition(".")[0]) or "<top level>"
                    keys.add((section, match.group(1)))
            for warning in outcome.warnings:
                path, _ = C.split_problem(warning)
                section, _, key = path.rpartition(".")
                keys.add((re.sub(r"\[\d+\]", "[i]", section) + " (warning: ignored)", key))
        seen.update(keys)
    return seen


def _passthrough_params(cases: list[C.ConfigCase]) -> collections.Counter[str]:
    """``litellm_params`` keys trioproxy does not know: sent upstream as request body fields."""
    schema = C.model_param_keys()
    if schema is None:   # the schema moved out of reach: leave the table out rather than guess
        return collections.Counter()
    known = set(schema) | {"model"}
    found: collections.Counter[str] = collections.Counter()
    for case in cases:
        try:
            doc = yaml.safe_load(case.path.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            continue
        keys = set()
        for entry in (doc or {}).get("model_list") or [] if isinstance(doc, dict) else []:
            params = entry.get("litellm_params") if isinstance(entry, dict) else None
            if isinstance(params, dict):
                keys |= {k for k in params if k not in known}
        found.update(keys)
    return found


def _without_model_list(case: C.ConfigCase) -> bool:
    try:
        doc = yaml.safe_load(case.path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return False
    return isinstance(doc, dict) and not doc.get("model_list")


def _handler_cause(report: C.HandlerReport) -> str:
    if report.works:
        return "works"
    error = report.import_error
    if "NameError" in error:
        return "published file incomplete: uses a name it never imports (fails under LiteLLM too)"
    if "fastapi" in error or "custom_auth" in " ".join(report.load.problems):
        return "custom auth (`general_settings.custom_auth`, `fastapi.Request`): not supported"
    if "cannot import name" in error or "has no attribute" in error:
        if report.what_if.startswith("works"):
            return "imports a name trioproxy lacks; with a stand-in for each such name it works"
        return "imports a name trioproxy lacks, and needs more (see the table)"
    if report.load.status == "rejected":
        return "rejected by the loader: " + _md(" ".join(report.load.problems), 120)
    return "serves wrongly"


def render(reports: list[C.ConfigReport], handlers: list[C.HandlerReport], reference: dict[str, dict[str, str]],
           known: set[str]) -> str:
    out: list[str] = []
    add = out.append
    n = len(reports)
    by_origin = collections.Counter("repository" if r.case.name.startswith("repo__") else "docs" for r in reports)
    status = collections.Counter(r.first.status for r in reports)
    rejected = [r for r in reports if r.first.status == "rejected"]
    loads = [r for r in reports if r.first.status != "rejected"]
    meaning = [r for r in loads if r.meaning]
    ignoring = [r for r in loads if not r.meaning and C.ignored_warnings(r.first)]
    intended = len(loads) - len(meaning) - len(ignoring)
    later = [r for r in reports if r.later_problems]
    working = [h for h in handlers if h.works]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=C.CORPUS_DIR).stdout.strip()

    add("# LiteLLM corpus: what trioproxy does with real LiteLLM configs and handler files\n")
    add(f"Generated by `bench/corpus_report.py` on {datetime.date.today()} against trioproxy at `{commit}` "
        "(harness: `tests/support/corpus.py`; sources: `SOURCES.md`). Regenerate with "
        "`.venv/bin/python bench/corpus_report.py --write`; the numbers below are that run's.\n")
    add("## Counts\n")
    add(f"**Configs: {n}** ({by_origin['repository']} from LiteLLM's repository, {by_origin['docs']} from its docs' "
        "config blocks). Each is loaded as `trioproxy check` and `trioproxy run` do (validation, handlers, logging "
        "callbacks, building the app), with a placeholder value for every `os.environ/NAME` it reads and for "
        "the environment variables LiteLLM's docs tell the user to set for a feature the config uses (a Redis "
        "cache without a server in `cache_params`: `REDIS_HOST`, `REDIS_PORT`, `REDIS_PASSWORD`; an `azure/` "
        "deployment without `api_base` or `api_key`: `AZURE_API_BASE`, `AZURE_API_KEY`, `AZURE_API_VERSION`; "
        "`DOCUMENTED_ENV` in the harness). Loading connects to nothing.\n")
    add("| outcome | configs |\n|---|---:|")
    add(f"| loads cleanly | {status['clean']} |")
    add(f"| loads with warnings (a key ignored) | {status['warnings']} |")
    add(f"| rejected | {status['rejected']} |")
    add(f"| of those that load: the meaning differs from LiteLLM's (see below) | {len(meaning)} |")
    add(f"| of those that load: a key is ignored with a warning (the feature another issue brings) | {len(ignoring)} |")
    add(f"| of those that load: load with the meaning their author intended | {intended} |\n")

    add("Rejected configs by cause: a config counts under every cause it has, from the first run and from the "
        "runs after fixing (what stands between the file and loading, not only what the first run said):\n")
    add("| cause | configs | problems |\n|---|---:|---:|")
    files_by_cause: dict[str, set[str]] = collections.defaultdict(set)
    problems_by_cause: collections.Counter[str] = collections.Counter()
    detail_files: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for r in rejected:
        for p in [*r.first.problems, *r.later_problems]:
            cause = C.classify_problem(p, known)
            files_by_cause[cause.letter].add(r.case.name)
            problems_by_cause[cause.letter] += 1
            detail_files[(cause.letter, cause.detail)].add(r.case.name)
    for letter, title in CAUSES.items():
        add(f"| ({letter}) {title} | {len(files_by_cause[letter])} | {problems_by_cause[letter]} |")
        if letter == "f":
            add(f"| (f) more problems appear only after the first ones are fixed | {len(later)} | "
                f"{sum(len(r.later_problems) for r in later)} |")
    only = collections.Counter()
    for r in rejected:
        letters = {C.classify_problem(p, known).letter for p in [*r.first.problems, *r.later_problems]}
        if len(letters) == 1:
            only[next(iter(letters))] += 1
    add("\nRejected for one cause only: " + ", ".join(f"({k}) {v}" for k, v in sorted(only.items())) + ".\n")
    add("To find the problems a first run hides, the harness fixes each reported problem in a copy (drops the "
        "key or entry, turns an unsupported provider into `openai/`, adds a model to a config without "
        "`model_list`) and loads again, until nothing new is reported.\n")
    fragments = [r for r in reports if _without_model_list(r.case)]
    alone = [r for r in fragments if r.first.status != "rejected"]
    add(f"{len(fragments)} of the docs' blocks have no `model_list` (they show one section of a config). "
        "LiteLLM starts without a `model_list` (models can come from its database), and so does trioproxy, with "
        f"a warning that it serves no model: {len(alone)} of them load.\n")
    providers_only = [r for r in rejected
                      if {C.classify_problem(p, known).letter for p in [*r.first.problems, *r.later_problems]} == {"a"}
                      and r.final.status != "rejected"]
    providers_intended = [r for r in providers_only if not C.ignored_warnings(r.final)]
    add(f"**Providers trioproxy lacks** (sagemaker, cohere, …; issue #16's are built): {len(providers_only)} "
        f"more configs are rejected only for their provider and would load if it were supported ({len(providers_intended)} of them "
        "without an ignored key): "
        f"{len(loads) + len(providers_only)} would load, {intended + len(providers_intended)} with the meaning "
        "their author intended.\n")

    add("### Causes in detail\n")
    add("| cause | detail | configs |\n|---|---|---:|")
    for (letter, detail), files in sorted(detail_files.items(), key=lambda kv: (kv[0][0], -len(kv[1]), kv[0][1])):
        add(f"| ({letter}) | {_md(detail, 120)} | {len(files)} |")
    providers = sorted({d for (letter, d) in detail_files if letter == "a"})
    add(f"\nProvider prefixes met: {', '.join(f'`{p}`' for p in providers)}. Issue #16 plans: "
        f"{', '.join(sorted(C.PLANNED_PROVIDERS))}.\n")

    add("### Problems that appear only after the first ones are fixed\n")
    add(f"{len(later)} configs. trioproxy reports every problem of a config in one run: the keys, each "
        "deployment and guardrail, the handler files and the logging callbacks (validation goes on past a "
        "problem and checks the valid part further). A config listed here would show its user a second list "
        "after fixing the first.\n")
    add("| config | problems reported only by a later run |\n|---|---|")
    for r in later:
        add(f"| `{r.case.name}` | {_md('; '.join(C.normalized(p) for p in r.later_problems), 400)} |")
    add("")

    add("### Every distinct problem message\n")
    add("Messages with the file name and list indices removed; first run and later runs together.\n")
    messages: dict[str, set[str]] = collections.defaultdict(set)
    letters: dict[str, str] = {}
    for r in reports:
        for p in [*r.first.problems, *r.later_problems]:
            key = C.normalized(p)
            messages[key].add(r.case.name)
            letters[key] = C.classify_problem(p, known).letter
    add("| configs | cause | message |\n|---:|---|---|")
    for message, files in sorted(messages.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        add(f"| {len(files)} | ({letters[message]}) | {_md(message, 260)} |")
    add("")

    add("### Warnings (loads, but a key is ignored)\n")
    add("From every run (a config rejected first may warn once its problems are fixed).\n")
    warned = collections.Counter()
    for r in reports:
        warned.update({re.sub(r"\[\d+\]", "[i]", C.split_problem(w)[0])
                       for outcome in [r.first, *r.rounds] for w in outcome.warnings})
    add("| key | configs |\n|---|---:|")
    for key, count in sorted(warned.items(), key=lambda kv: (-kv[1], kv[0])):
        add(f"| `{key}` | {count} |")
    add("")

    add("### Loads, but means something else than in LiteLLM\n")
    add("| config | difference |\n|---|---|")
    for r in meaning:
        add(f"| `{r.case.name}` | {_md('; '.join(r.meaning), 400)} |")
    add("")

    add("## Handler files\n")
    add(f"**{len(handlers)} handler files**; each `rewritten/` copy differs from `original/` in its import "
        "statements only (`rewrite_imports`, the README's table). Wired as LiteLLM's docs wire them "
        "(`handlers/manifest.yaml`) in front of the fake provider; \"works\" means a plain and a streaming "
        "chat request through a real `trioproxy run` both answered 200 with content.\n")
    causes = collections.Counter(_handler_cause(h) for h in handlers)
    add("| outcome | files |\n|---|---:|")
    for cause, count in sorted(causes.items(), key=lambda kv: (-kv[1], kv[0])):
        add(f"| {_md(cause, 160)} | {count} |")
    would = [h for h in handlers if h.what_if.startswith("works")]
    add(f"\nWorking: **{len(working)}** of {len(handlers)}. Importing after the rewrite: "
        f"{sum(h.imports for h in handlers)}. Loaded by the loader: "
        f"{sum(h.load.status != 'rejected' for h in handlers)}. With a stand-in for each missing name "
        f"(`STAND_INS` in the harness: a logger, a type, a function answering yes/0.0 — a what-if, not a "
        f"design) {len(would)} more serve both requests: {len(working) + len(would)} in all.\n")
    uncalled = [h for h in [*working, *would] if any(g.kind == "uncalled-hook" for g in h.gaps)]
    if uncalled:
        add("Of those, these \"work\" only because trioproxy never calls the hook that is their point "
            "(`uncalled-hook` below): " + ", ".join(f"`{h.case.name}`" for h in uncalled) + ".\n")
    add("| file | imports | loads | plain | stream | proxy log errors | with stand-ins | missing in trioproxy |\n"
        "|---|---|---|---|---|---|---|---|")
    for h in handlers:
        gaps = ", ".join(sorted({g.name for g in h.gaps})) or "—"
        add(f"| `{h.case.name}` | {'yes' if h.imports else _md(h.import_error, 120)} | "
            f"{'yes' if h.load.status != 'rejected' else 'no'} | {_md(h.plain or '—', 80)} | "
            f"{_md(h.stream or '—', 80)} | {_md('; '.join(h.log_errors), 160) or '—'} | "
            f"{_md(h.what_if or '—', 160)} | {gaps} |")
    add("")

    add("## Names LiteLLM handler files need that trioproxy lacks\n")
    add("From the original files (static: every `from litellm… import X`, every `litellm.X`, every "
        "`user_api_key_dict.X`, every `self.X(…)` not defined by the class or trioproxy's base class).\n")
    gap_files: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    origins: dict[tuple[str, str], str] = {}
    for h in handlers:
        for g in h.gaps:
            gap_files[(g.kind, g.name)].add(h.case.name)
            origins[(g.kind, g.name)] = g.origin
    add("| name | kind | imported from | files | defined in LiteLLM | what it is |\n|---|---|---|---:|---|---|")
    listed = set()
    for (kind, name), files in sorted(gap_files.items(), key=lambda kv: (-len(kv[1]), kv[0][1])):
        short = name.split(".", 1)[-1] if kind in ("module", "uncalled-hook") else name
        if kind == "apply_guardrail-only":
            short = "apply_guardrail"
        where, what = NAME_INFO.get(name, NAME_INFO.get(short, ("—", "—")))
        add(f"| `{name}` | {kind} | `{origins[(kind, name)]}` | {len(files)} | {where} | {what} |")
        listed.add(name)
    package = C.proxy_api().package
    auth_fields = C._auth_fields(package)
    rest = [n for n in ISSUE_NAMES if n not in listed
            and (n.split(".")[1] not in auth_fields if "." in n else not hasattr(package, n))]
    if rest:
        add("\nNamed in issue #15 but imported by no file of this corpus:\n")
        add("| name | defined in LiteLLM | what it is |\n|---|---|---|")
        for name in rest:
            where, what = NAME_INFO.get(name, ("—", "—"))
            add(f"| `{name}` | {where} | {what} |")
    add("")

    add("## Config keys trioproxy does not know\n")
    add("Counted once per config, from the problems and warnings of every run (so keys hidden behind "
        "an earlier problem count too). LiteLLM's meaning is its `docs/proxy/config_settings.md` reference "
        "(`litellm_config_settings.yaml`).\n")
    add("| where | key | configs | LiteLLM's meaning |\n|---|---|---:|---|")
    for (section, key), count in sorted(_unknown_keys(reports).items(), key=lambda kv: (-kv[1], kv[0])):
        add(f"| `{section}` | `{key}` | {count} | {_md(_meaning(section.split(' ')[0], key, reference), 200)} |")
    passthrough = _passthrough_params([r.case for r in reports])
    if passthrough:
        add("\n`litellm_params` keys trioproxy does not know are not errors: it sends them upstream as request "
            "body defaults. LiteLLM consumes most of these itself (provider credentials, routing):\n")
        add("| `litellm_params` key | configs |\n|---|---:|")
        for key, count in sorted(passthrough.items(), key=lambda kv: (-kv[1], kv[0])):
            add(f"| `{key}` | {count} |")
    add("")
    add("## Every config\n")
    add("| config | source | first run | causes (all runs) |\n|---|---|---|---|")
    for r in reports:
        letters_all = sorted({C.classify_problem(p, known).letter for p in [*r.first.problems, *r.later_problems]})
        note = r.first.status + (" (meaning differs)" if r.meaning else "")
        add(f"| `{r.case.name}` | {_md(r.case.source, 120)} | {note} | {', '.join(letters_all) or '—'} |")
    add("")
    # the findings in brief, placed right after the title
    top = sorted(((len(files_by_cause[k]), k) for k in CAUSES), reverse=True)
    needed = sorted(((len(f), name) for (kind, name), f in gap_files.items()
                     if kind in ("export", "attribute", "auth-attribute")), reverse=True)
    hints = [(d, len(f)) for (letter, d), f in detail_files.items() if letter == "f"]
    findings = [
        "## Findings in brief\n",
        f"- **Configs**: {len(loads)} of {n} load ({status['clean']} cleanly, {status['warnings']} with warnings); "
        f"{intended} of them with the meaning their author intended ({len(ignoring)} ignore a key with a warning, "
        f"{len(meaning)} mean something else). Rejections by cause "
        "(configs): " + ", ".join(f"({k}) {c}" for c, k in top if c) + ". "
        f"{len(fragments)} docs blocks have no `model_list` ({len(alone)} of them load). With the providers "
        f"trioproxy lacks (not in issue #16), {len(loads) + len(providers_only)} would load, "
        f"{intended + len(providers_intended)} with their intended meaning.",
        f"- **Validator**: in {len(later)} configs more problems appear only after the first ones are fixed. "
        "Misleading hints: " + ("; ".join(f"{d} ({c} configs)" for d, c in hints) or "none") + ".",
        f"- **Meaning**: {len(meaning)} configs that load mean something else than in LiteLLM (see below); "
        f"{len(ignoring)} load ignoring a key with a warning (a feature another issue brings).",
        f"- **Handler files**: {len(working)} of {len(handlers)} serve a plain and a streaming request after "
        f"rewriting imports; {len(would)} more would with only the missing names exported "
        f"({len(working) + len(would)}; {len(uncalled)} of these only because trioproxy never calls the hook "
        "that is their point); the rest: " + ", ".join(
            f"{_md(c, 90)} ({k})" for c, k in causes.most_common() if c != "works"
            and not c.startswith("imports a name trioproxy lacks; with")) + ".",
        "- **Most-needed names**: " + ", ".join(f"`{name}` ({c})" for c, name in needed[:8]) + ".",
        "",
    ]
    out[2:2] = findings
    cache_files = []
    for r in reports:
        try:
            doc = yaml.safe_load(r.case.path.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            continue
        if any("cache: true" in m for m in C.meaning_differences(doc)):
            cache_files.append(f"`{r.case.name}` ({'loads: a bug' if r.first.status != 'rejected' else 'refused'})")
    add(CACHE_SECTION.format(files=", ".join(cache_files) or "none"))
    return "\n".join(out) + "\n"


CACHE_SECTION = """## `cache: true` without `cache_params`

**LiteLLM**: a Redis cache. Its docs (`docs/proxy/caching.md`, Quick Start): "`cache: True` # set cache
responses to True, litellm defaults to using a redis cache", then "Step 2: Add Redis Credentials to .env —
set either `REDIS_URL` or the `REDIS_HOST`". Its source (`litellm/proxy/proxy_server.py`, `ProxyConfig`
loading `litellm_settings.cache`): `cache_type = cache_params.get("type", "redis")`, and for `redis` with no
`cache_params` it reads `REDIS_HOST`, `REDIS_PORT`, `REDIS_PASSWORD` from the environment. A `cache_params`
without `type` is Redis too. So the cache is shared by every worker and instance and survives restarts; the
per-request controls (`cache: {{no-cache, no-store, ttl, s-maxage, namespace}}`) apply to it; with no Redis
reachable LiteLLM logs connection errors and answers uncached.

**trioproxy** (`trioproxy/config/build.py` `cache_redis_url`, `docs/logging.md` "Response cache"): the same —
a Redis cache whose server comes from `cache_params` (`url`, or `host`, `port`, `password`…), else from
`REDIS_URL` or `REDIS_HOST` / `REDIS_PORT` / `REDIS_PASSWORD`; refused, saying what to write, when neither names
one. Loading connects to nothing (a Redis that is down means misses). So the harness runs such configs with
the environment LiteLLM's caching docs tell their user to set (`REDIS_HOST`, `REDIS_PORT`, `REDIS_PASSWORD`:
placeholders, `DOCUMENTED_ENV` in `tests/support/corpus.py`). `type: local` is the in-process cache, `type:
disk` LiteLLM's disk cache; LiteLLM's semantic caches, `s3` and `gcs`, Redis Cluster and Sentinel are refused
naming them: cause (g) above.

Configs in this corpus with `cache: true` and no `cache_params.type` that mean something else: {files}.
"""


def render_sources(cases: list[C.ConfigCase], handlers: list[C.HandlerCase]) -> str:
    """SOURCES.md: where every file of the corpus comes from (from the headers and the manifest)."""
    out = ["# Sources of the LiteLLM corpus\n",
           "Collected for issue #15 as test data. Configs carry their source in a `# source:` header (and, "
           "where they name a handler module, a `# handler-files:` line saying which corpus file plays it); "
           "handler files are kept byte-for-byte as published in `handlers/original/`, their sources are in "
           "`handlers/manifest.yaml`. Repository files were read at the commit named (a stored version, not "
           "necessarily the newest); docs blocks come from `BerriAI/litellm-docs` (the docs site's source) "
           "via `bench/corpus_extract_docs.py`. Five repository configs have comment lines shortened (their "
           "header says so); no key or value is changed anywhere.\n",
           f"## Configs ({len(cases)})\n", "| file | source |", "|---|---|"]
    out += [f"| `configs/{c.path.name}` | {_md(c.source, 300)} |" for c in cases]
    out += ["", f"## Handler files ({len(handlers)})\n", "| file | module | source |", "|---|---|---|"]
    out += [f"| `handlers/original/{h.name}` | `{h.module}` | {_md(h.source, 300)} |" for h in handlers]
    out.append("\n`litellm_config_settings.yaml`: the reference tables of `docs/proxy/config_settings.md` "
               "(BerriAI/litellm-docs), LiteLLM's meaning of each config key.")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite REPORT.md")
    parser.add_argument("--rewrite", action="store_true", help="regenerate handlers/rewritten/ from original/")
    parser.add_argument("--no-serve", action="store_true", help="skip the real `trioproxy run` requests")
    parser.add_argument("--cli", action="store_true", help="load configs with `python -m trioproxy check`")
    args = parser.parse_args(argv)
    if args.rewrite:
        for case in C.handler_cases():
            case.rewritten.parent.mkdir(parents=True, exist_ok=True)
            case.rewritten.write_text(C.rewrite_imports(case.original.read_text(encoding="utf-8")), encoding="utf-8")
    reference = _reference()
    known = _known_keys(reference)
    reports = [C.explore_config(case, use_cli=args.cli) for case in C.config_cases()]
    handlers = [C.run_handler_case(case, serve=not args.no_serve) for case in C.handler_cases()]
    text = render(reports, handlers, reference, known)
    status = collections.Counter(r.first.status for r in reports)
    print(f"configs: {len(reports)}: clean {status['clean']}, warnings {status['warnings']}, "
          f"rejected {status['rejected']}; later problems in {sum(bool(r.later_problems) for r in reports)}")
    print(f"handlers: {len(handlers)}: working {sum(h.works for h in handlers)}, "
          f"importing {sum(h.imports for h in handlers)}")
    if args.write:
        REPORT.write_text(text, encoding="utf-8")
        (C.CORPUS_DIR / "SOURCES.md").write_text(render_sources(C.config_cases(), C.handler_cases()), encoding="utf-8")
        print(f"wrote {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
