"""The LiteLLM corpus (issue #15): what is true today, asserted so that it can only get better.

``tests/data/litellm_corpus`` holds 220 real LiteLLM configs and 29 handler files (sources in
``SOURCES.md``); ``tests/support/corpus.py`` loads them the way ``trioproxy check``/``run`` do and
``bench/corpus_report.py`` writes ``REPORT.md`` with everything that is *not* true yet (misleading
hints such as "did you mean 'callbacks'?" for ``fallbacks``, problems reported only after the first
ones are fixed, missing exports). This test holds the floor: the counts below are today's, so a
change that loads fewer configs or breaks a handler that works fails here; raise them as more lands.
It also holds what issue #15 made true for every config: all problems in one run, and no
misleading message (no "did you mean" for a LiteLLM key, no "not a dotted path" for a built-in).
"""

from __future__ import annotations

import ast
import re

from support import corpus
from trioproxy.config import builtin_callback_message, builtin_guardrail_message

#: today's numbers (bench/corpus_report.py); raise them when more of the corpus works
CONFIGS_THAT_LOAD = 152     # 39 before routing and the native providers were wired in; 76 at the start of session 3; 145 of session 4
#: ... of which load with the meaning their author intended (no ignored key, no meaning difference)
CONFIGS_WITH_INTENDED_MEANING = 147   # 64 at the start of session 3; 139 at the start of session 4
HANDLERS_THAT_SERVE = 22   # 17 before custom_auth (its 5 LiteLLM files)


def _without_imports(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if hasattr(node, "body") and isinstance(node.body, list):
            node.body = [n for n in node.body if not isinstance(n, ast.Import | ast.ImportFrom)]
    return ast.dump(tree)


def test_litellm_corpus_loads_or_fails_clearly_and_handlers_keep_working() -> None:
    configs = corpus.config_cases()
    handlers = corpus.handler_cases()
    assert len(configs) >= 100 and len(handlers) >= 29
    assert all(case.source != "?" for case in configs), "every config names its source"

    # every config loads, or is rejected with messages that each name a place and say something;
    # every problem is in the first run (fixing what it lists brings no new one), and none misleads
    loading = intended = 0
    for case in configs:
        report = corpus.explore_config(case)
        outcome = report.first
        if outcome.status == "rejected":
            assert outcome.problems, case.name
            assert report.later_problems == [], (case.name, report.later_problems)
            for problem in outcome.problems:
                where, message = corpus.split_problem(problem)
                assert where and message.strip(), (case.name, problem)
                assert "<crash>" not in where, (case.name, problem)   # the validator never crashes
                assert corpus.classify_problem(problem).letter != "f", (case.name, problem)   # no misleading hint
                name = re.match(r"'([^']*)'", message)
                if name and (builtin_guardrail_message(name[1]) or builtin_callback_message(name[1])):
                    assert "not a dotted path" not in message, (case.name, problem)   # LiteLLM built-ins are named
        else:
            assert outcome.status in ("clean", "warnings") and not outcome.problems
            loading += 1
            intended += not report.meaning and not corpus.ignored_warnings(outcome)
    assert loading >= CONFIGS_THAT_LOAD
    assert intended >= CONFIGS_WITH_INTENDED_MEANING

    # rewritten handler files differ from the published ones in their imports and nothing else
    for case in handlers:
        original = case.original.read_text(encoding="utf-8")
        rewritten = case.rewritten.read_text(encoding="utf-8")
        assert rewritten == corpus.rewrite_imports(original), case.name
        assert _without_imports(rewritten) == _without_imports(original), case.name
        assert "litellm." not in "".join(
            line for line in rewritten.splitlines(keepends=True) if line.lstrip().startswith(("import ", "from "))
        ), case.name

    # handler files that serve a plain and a streaming request through a real `trioproxy run`
    serving = [case.name for case in handlers if corpus.run_handler_case(case, what_if=False).works]
    assert len(serving) >= HANDLERS_THAT_SERVE, serving
