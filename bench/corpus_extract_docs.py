"""Copy the config and handler blocks of LiteLLM's docs into ``tests/data/litellm_corpus``.

A one-off collection tool, kept so the corpus can be refreshed and its provenance checked: it
reads a git checkout of ``BerriAI/litellm-docs`` (the docs site's source), takes every fenced
YAML block that is a proxy config (a mapping with ``model_list``, ``litellm_settings``,
``general_settings``, ``router_settings``, ``guardrails`` or ``environment_variables`` at the top)
from the pages listed in ``CONFIG_PAGES``, and the Python blocks listed in ``HANDLER_BLOCKS``,
and writes them unchanged. Each config gets a ``# source:`` header (repository, page, line,
commit); handler files stay byte-for-byte the block's text and their source goes to
``handlers/manifest.yaml`` (written by hand for wiring, see that file).

A config that names a handler module (``custom_callbacks.proxy_handler_instance``) is paired
with the nearest handler block on the same page that defines that attribute (above the config
first, else below it): the ``# handler-files:`` header line says which corpus file plays it.

    .venv/bin/python bench/corpus_extract_docs.py /path/to/litellm-docs.git [--dry-run]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import yaml

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "litellm_corpus"
DOCS_REPO = "BerriAI/litellm-docs"

#: pages whose config blocks are taken: the brief's topics (call hooks, custom and built-in
#: guardrails, logging and custom callbacks, caching, fallbacks/routing/load balancing, virtual
#: keys, enterprise features) plus the general config reference pages
CONFIG_PAGES = (
    "docs/proxy/call_hooks.md",
    "docs/proxy/guardrails/custom_guardrail.md",
    "docs/proxy/guardrails/quick_start.md",
    "docs/proxy/guardrails/custom_code_guardrail.md",
    "docs/proxy/guardrails/guardrail_load_balancing.md",
    "docs/proxy/guardrails/aporia_api.md",
    "docs/proxy/guardrails/bedrock.md",
    "docs/proxy/guardrails/lakera_ai.md",
    "docs/proxy/guardrails/pii_masking_v2.md",
    "docs/proxy/guardrails/secret_detection.md",
    "docs/proxy/guardrails/prompt_injection.md",
    "docs/proxy/logging.md",
    "docs/proxy/team_logging.md",
    "docs/proxy/dynamic_logging.md",
    "docs/proxy/caching.md",
    "docs/proxy/reliability.md",
    "docs/proxy/load_balancing.md",
    "docs/proxy/tag_routing.md",
    "docs/proxy/timeout.md",
    "docs/proxy/provider_budget_routing.md",
    "docs/proxy/virtual_keys.md",
    "docs/enterprise.md",
    "docs/proxy/prod.md",
    "docs/proxy/public_routes.md",
    "docs/proxy/configs.md",
    "docs/proxy/quick_start.md",
    "docs/proxy/custom_auth.md",
    "docs/proxy/custom_pricing.md",
    "docs/proxy/agentic_loop_hook.md",
    "docs/mcp_cost.md",
)

#: (page, line of the opening fence) of the handler files taken from the docs
HANDLER_BLOCKS = (
    ("docs/proxy/call_hooks.md", 32),
    ("docs/proxy/call_hooks.md", 186),
    ("docs/proxy/call_hooks.md", 286),
    ("docs/proxy/call_hooks.md", 375),
    ("docs/proxy/call_hooks.md", 410),
    ("docs/proxy/guardrails/custom_guardrail.md", 19),
    ("docs/proxy/guardrails/custom_guardrail.md", 431),
    ("docs/proxy/guardrails/custom_guardrail.md", 541),
    ("docs/proxy/guardrails/guardrail_load_balancing.md", 279),
    ("docs/proxy/logging.md", 1653),
    ("docs/proxy/logging.md", 1779),
    ("docs/proxy/custom_auth.md", 11),
    ("docs/proxy/custom_auth.md", 165),
    ("docs/proxy/custom_auth.md", 255),
    ("docs/proxy/custom_auth.md", 328),
    ("docs/proxy/agentic_loop_hook.md", 15),
    ("docs/mcp_cost.md", 51),
)

CONFIG_KEYS = {"model_list", "litellm_settings", "general_settings", "router_settings", "guardrails",
               "environment_variables"}
_FENCE = re.compile(r"^([ \t]*)```(\w*)[^\n]*\n(.*?)^[ \t]*```", re.S | re.M)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={repo}", *args], capture_output=True, text=True, check=True).stdout


def _blocks(text: str) -> list[tuple[int, str, str]]:
    """(line of the opening fence, language, body with the fence's indentation removed)."""
    out = []
    for m in _FENCE.finditer(text):
        indent = m.group(1)
        body = "\n".join(line[len(indent):] if line.startswith(indent) else line
                         for line in m.group(3).split("\n"))
        out.append((text[:m.start()].count("\n") + 1, m.group(2).lower(), body))
    return out


def _slug(page: str) -> str:
    return page.removeprefix("docs/").removesuffix(".md").replace("/", "__")


def _handler_name(page: str, line: int) -> str:
    return f"docs__{_slug(page)}__L{line}.py"


def _referenced_modules(config: dict) -> set[tuple[str, str]]:
    """(module, attribute) of every dotted path a config names for code."""
    found: set[tuple[str, str]] = set()
    settings = config.get("litellm_settings") or {}
    general = config.get("general_settings") or {}
    paths: list[str] = []
    for key in ("callbacks", "success_callback", "failure_callback", "input_callback"):
        value = settings.get(key) if isinstance(settings, dict) else None
        paths += [value] if isinstance(value, str) else [v for v in value or [] if isinstance(v, str)]
    if isinstance(general, dict) and isinstance(general.get("custom_auth"), str):
        paths.append(general["custom_auth"])
    for entry in config.get("guardrails") or []:
        params = entry.get("litellm_params") if isinstance(entry, dict) else None
        if isinstance(params, dict) and isinstance(params.get("guardrail"), str):
            paths.append(params["guardrail"])
    for path in paths:
        module, dot, attr = path.rpartition(".")
        if dot and re.fullmatch(r"[A-Za-z_][\w.]*", module):   # not s3://… or gcs://… paths
            found.add((module, attr))
    return found


_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def settings_reference(text: str) -> dict[str, dict[str, str]]:
    """``config_settings.md``'s reference tables: section -> key -> "type: description"."""
    out: dict[str, dict[str, str]] = {}
    section = None
    for line in text.splitlines():
        heading = re.match(r"^### (\w+) - Reference", line)
        if heading:
            section = heading.group(1)
            out[section] = {}
            continue
        if line.startswith("## ") or line.startswith("### "):
            section = None
        if section is None or not line.startswith("| ") or line.startswith(("| Name", "|--")):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3:
            description = _LINK.sub(r"\1", " ".join(cells[2:])).replace("**", "")
            out[section][cells[0].strip("`")] = f"{cells[1]}: {description}"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("docs_git_dir")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    repo = Path(args.docs_git_dir)
    commit = _git(repo, "rev-parse", "HEAD").strip()
    handler_lines = {(page, line) for page, line in HANDLER_BLOCKS}
    written_configs = 0
    for page in sorted({p for p, _ in HANDLER_BLOCKS} | set(CONFIG_PAGES)):
        text = _git(repo, "show", f"HEAD:{page}")
        blocks = _blocks(text)
        page_handlers = [(line, _handler_name(page, line), body) for line, lang, body in blocks
                         if lang in ("python", "py") and (page, line) in handler_lines]
        index = 0
        for line, lang, body in blocks:
            if lang in ("python", "py") and (page, line) in handler_lines:
                if not args.dry_run:
                    (CORPUS / "handlers" / "original" / _handler_name(page, line)).write_text(body)
                continue
            if page not in CONFIG_PAGES or lang not in ("yaml", "yml"):
                continue
            try:
                data = yaml.safe_load(body)
            except yaml.YAMLError:
                data = None   # an invalid block is kept only if it looks like a config
                if not any(re.match(rf"^{key}\s*:", body, re.M) for key in CONFIG_KEYS):
                    continue
            else:
                if not isinstance(data, dict) or not set(data) & CONFIG_KEYS:
                    continue
            index += 1
            pairs: list[str] = []
            for module, attr in sorted(_referenced_modules(data) if isinstance(data, dict) else ()):
                # the nearest handler block above the config that defines the attribute, else below it
                above = [h for h in page_handlers if h[0] < line][::-1]
                below = [h for h in page_handlers if h[0] > line]
                for _hline, hname, hbody in above + below:
                    if re.search(rf"^(class|def|async def)\s+{re.escape(attr)}\b|^{re.escape(attr)}\s*[:=]",
                                 hbody, re.M):
                        if f"{module}={hname}" not in pairs:
                            pairs.append(f"{module}={hname}")
                        break
            header = f"# source: {DOCS_REPO} {page} (block at line {line}) @ {commit}\n"
            if pairs:
                header += f"# handler-files: {' '.join(pairs)}\n"
            name = f"docs__{_slug(page)}__{index:02d}.yaml"
            written_configs += 1
            if not args.dry_run:
                (CORPUS / "configs" / name).write_text(header + body)
    reference = settings_reference(_git(repo, "show", "HEAD:docs/proxy/config_settings.md"))
    if not args.dry_run:
        header = (f"# LiteLLM's meaning of each config key: the reference tables of {DOCS_REPO}\n"
                  f"# docs/proxy/config_settings.md @ {commit} (section -> key -> 'type: description')\n")
        (CORPUS / "litellm_config_settings.yaml").write_text(
            header + yaml.safe_dump(reference, sort_keys=True, allow_unicode=True, width=1000))
    print(f"{written_configs} configs, {len(HANDLER_BLOCKS)} handler files from {DOCS_REPO} @ {commit[:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
