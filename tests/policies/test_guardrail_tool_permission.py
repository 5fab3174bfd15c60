"""``guardrail: tool_permission``: the rules (unit), and through a real ``trioproxy run`` with the
official openai client, the built-in ``fake`` provider answering tool calls (it calls the first tool
offered, with arguments built from its schema) — no service is involved."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from conftest import MASTER_KEY
from support.proxy_process import ProxyProcess, write_config
from trioproxy.hooks.loader import HandlerLoadError
from trioproxy.policies.guardrails.tool_permission import (
    ToolPermissionGuardrail,
    compile_tool_pattern,
)

#: LiteLLM's example (litellm/proxy/example_config_yaml/tool_permission_example.yaml), rules as written
EXAMPLE_RULES = [
    {"id": "allow_bash", "tool_name": "Bash", "decision": "allow"},
    {"id": "allow_github_mcp", "tool_name": "mcp__github_*", "decision": "allow"},
    {"id": "allow_aws_documentation", "tool_name": "mcp__aws-documentation_*_documentation", "decision": "allow"},
    {"id": "deny_read_commands", "tool_name": "Read", "decision": "Deny"},
]
MAIL_RULE = {"id": "mail-domain", "tool_name": "send_email", "decision": "allow",
             "allowed_param_patterns": {"to[]": r"^.+@berri\.ai$", "subject": "^.{1,120}$"}}


def guard(**kwargs: Any) -> ToolPermissionGuardrail:
    return ToolPermissionGuardrail(guardrail_name="tp", event_hook="post_call", **kwargs)


def test_globs_and_regexes_match_whole_names() -> None:
    assert compile_tool_pattern("mcp__github_*").fullmatch("mcp__github_create_issue")
    assert not compile_tool_pattern("mcp__github_*").fullmatch("xmcp__github_a")
    assert compile_tool_pattern("mcp__aws-documentation_*_documentation").fullmatch(
        "mcp__aws-documentation_search_documentation")
    assert compile_tool_pattern("^mcp__github_.*$").fullmatch("mcp__github_x")
    assert not compile_tool_pattern("Bash").fullmatch("Bash2")


def test_first_matching_rule_decides_then_the_default() -> None:
    g = guard(rules=EXAMPLE_RULES, default_action="deny",
              violation_message_template="this violates our org policy, we don't support executing {tool_name} commands")
    assert g.decide("Bash", "function").allowed
    assert g.decide("mcp__github_list_prs", "function").rule_id == "allow_github_mcp"
    read = g.decide("Read", "function")
    assert (read.allowed, read.rule_id) == (False, "deny_read_commands")
    assert read.message == "this violates our org policy, we don't support executing Read commands"
    other = guard(rules=EXAMPLE_RULES).decide("Write", "function")
    assert (other.allowed, other.rule_id, other.message) == (False, None, "Tool 'Write' denied by default action")
    assert guard(rules=EXAMPLE_RULES, default_action="allow").decide("Write", "function").allowed


def test_argument_patterns_constrain_an_allowed_tool() -> None:
    g = guard(rules=[MAIL_RULE])
    ok = {"to": ["a@berri.ai", "b@berri.ai"], "subject": "hi"}
    assert g.decide("send_email", "function", ok).allowed
    bad = g.decide("send_email", "function", {"to": ["a@berri.ai", "eve@evil.com"], "subject": "hi"})
    assert not bad.allowed and "to[]" in bad.message and "evil" not in bad.message
    missing = g.decide("send_email", "function", {"to": ["a@berri.ai"]})
    assert missing.message == "Missing value for path 'subject' required by rule 'mail-domain'"
    assert g.decide("send_email", "function", {}).message == \
        "Tool 'send_email' is missing arguments required by rule 'mail-domain'"


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"rules": [{"id": "a", "tool_name": "x", "decision": "maybe"}]}, "decision must be 'allow' or 'deny'"),
    ({"rules": [{"id": "a", "tool_name": "x", "decision": "allow", "tool": "y"}]}, "unknown key(s) tool"),
    ({"rules": [{"id": "a", "tool_name": "(", "decision": "allow"}]}, "invalid regular expression"),
    ({"rules": [{"id": "a", "decision": "allow"}]}, "needs tool_name or tool_type"),
    ({"default_action": "maybe"}, "default_action must be"),
    ({"on_disallowed_action": "warn"}, "on_disallowed_action must be"),
    ({"mode": "during_call"}, "supports the modes pre_call, post_call"),
])
def test_bad_settings_stop_startup(kwargs: dict[str, Any], problem: str) -> None:
    mode = kwargs.pop("mode", "post_call")
    with pytest.raises(HandlerLoadError) as caught:
        ToolPermissionGuardrail(guardrail_name="tp", event_hook=mode, **kwargs)
    assert problem in str(caught.value)


# -- through a real proxy ---------------------------------------------------------------------------

def tool(name: str, properties: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {
        "type": "object", "properties": properties or {}, "required": list(properties or {})}}}


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    def g(name: str, mode: str, **params: Any) -> dict[str, Any]:
        return {"guardrail_name": name, "litellm_params": {"guardrail": "tool_permission", "mode": mode, **params}}

    config = {
        "model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
        "general_settings": {"master_key": MASTER_KEY},
        "guardrails": [
            g("tp-post", "post_call", rules=EXAMPLE_RULES + [MAIL_RULE], default_action="deny",
              violation_message_template="we don't support executing {tool_name} commands"),
            g("tp-post-rewrite", "post_call", rules=EXAMPLE_RULES + [MAIL_RULE], on_disallowed_action="rewrite"),
            g("tp-pre", "pre_call", rules=EXAMPLE_RULES),
            g("tp-pre-rewrite", "pre_call", rules=EXAMPLE_RULES, on_disallowed_action="rewrite"),
        ],
    }
    with ProxyProcess(write_config(tmp_path_factory.mktemp("tool_permission"), config)) as running:
        yield running


def chat(proxy: ProxyProcess, guardrail: str, tools: list[dict[str, Any]], **extra: Any) -> Any:
    client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30)
    return client.chat.completions.create(model="m", messages=[{"role": "user", "content": "go"}], tools=tools,
                                          extra_body={"guardrails": [guardrail]}, **extra)


def test_post_call_lets_allowed_calls_through_and_blocks_denied_ones(proxy: ProxyProcess) -> None:
    answer = chat(proxy, "tp-post", [tool("Bash", {"command": {"type": "string"}})])
    assert answer.choices[0].message.tool_calls[0].function.name == "Bash"
    with pytest.raises(openai.BadRequestError) as caught:
        chat(proxy, "tp-post", [tool("Read")])
    assert caught.value.body["message"] == "we don't support executing Read commands"
    assert caught.value.body["type"] == "guardrail_violation"
    with pytest.raises(openai.APIError):                    # a stream ends with the error event
        for _ in chat(proxy, "tp-post", [tool("Read")], stream=True):
            pass
    allowed_stream = chat(proxy, "tp-post", [tool("mcp__github_list")], stream=True)
    names = [c.function.name for chunk in allowed_stream for c in (chunk.choices[0].delta.tool_calls or ())
             if chunk.choices and c.function and c.function.name]
    assert names == ["mcp__github_list"]


def test_post_call_checks_the_arguments(proxy: ProxyProcess) -> None:
    good = tool("send_email", {"to": {"type": "array", "items": {"enum": ["ann@berri.ai"]}, "minItems": 1},
                               "subject": {"const": "hello"}})
    assert chat(proxy, "tp-post", [good]).choices[0].message.tool_calls[0].function.name == "send_email"
    bad = tool("send_email", {"to": {"type": "array", "items": {"enum": ["eve@evil.example"]}, "minItems": 1},
                              "subject": {"const": "hello"}})
    with pytest.raises(openai.BadRequestError) as caught:
        chat(proxy, "tp-post", [bad])
    assert caught.value.body["message"] == "we don't support executing send_email commands"   # the template
    answer = chat(proxy, "tp-post-rewrite", [bad])
    assert "does not match allowed pattern" in answer.choices[0].message.content
    assert "evil" not in answer.choices[0].message.content and "evil" not in proxy.logs()


def test_post_call_rewrite_removes_the_call_and_says_why(proxy: ProxyProcess) -> None:
    answer = chat(proxy, "tp-post-rewrite", [tool("Read")])
    choice = answer.choices[0]
    assert choice.message.tool_calls is None
    assert choice.message.content == \
        "Permission denied: Tool 'Read' denied by rule 'deny_read_commands' (Rule: deny_read_commands)"
    assert choice.finish_reason == "stop"


def test_pre_call_checks_the_offered_tools(proxy: ProxyProcess) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        chat(proxy, "tp-pre", [tool("Bash"), tool("Write")])
    assert caught.value.body["message"] == "Tool 'Write' denied by default action"
    # rewrite: the denied tool is not offered to the model; the fake calls the first tool it gets
    answer = chat(proxy, "tp-pre-rewrite", [tool("Write"), tool("Bash")])
    assert answer.choices[0].message.tool_calls[0].function.name == "Bash"
    # none left: tools and tool_choice are dropped, the model answers with text
    answer = chat(proxy, "tp-pre-rewrite", [tool("Write")], tool_choice="required")
    assert answer.choices[0].message.tool_calls is None and answer.choices[0].message.content
