"""Where an ``apply_guardrail`` guardrail finds the text of a natively forwarded ``/v1/responses``
request and answer (``prompt.text_slots``, ``hooks/apply_guardrail._answer_slots``): every place a
native body or answer carries client-visible text, not only the ones the translated path knows.

Unit tests with an in-memory guardrail object; the e2e side is tests/e2e/test_responses_native.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from trioproxy.hooks.apply_guardrail import ApplyGuardrailHooks
from trioproxy.prompt import text_slots


class Upper:
    """Rewrites every text it is given to upper case; records what it saw."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def apply_guardrail(self, inputs: dict[str, Any], request_data: dict, input_type: str,
                              logging_obj: Any = None) -> dict[str, Any]:
        self.seen += inputs["texts"]
        return {"texts": [t.upper() for t in inputs["texts"]]}


def test_request_text_in_tool_results_prompt_variables_and_call_arguments() -> None:
    body = {"model": "m", "prompt": {"id": "pmpt_1", "variables": {"a": "var one", "b": {"type": "input_text",
                                                                                        "text": "var two"}}},
            "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{\"q\": \"args\"}"},
                      {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text",
                                                                                   "text": "listed output"}]},
                      {"type": "custom_tool_call_output", "call_id": "d", "output": "custom output"},
                      {"type": "shell_call_output", "call_id": "e", "output": [{"stdout": "out", "stderr": "err"}]}]}
    assert [s.text for s in text_slots(body)] == ["var one", "var two", "listed output", "custom output", "out", "err"]
    assert "{\"q\": \"args\"}" in [s.text for s in text_slots(body, arguments=True)]
    # chat bodies are read as before: a chat body's "prompt" is not a stored prompt
    assert [s.text for s in text_slots({"messages": [{"role": "user", "content": "hi"}],
                                        "prompt": {"variables": {"a": "x"}}})] == ["hi"]


async def test_post_call_reads_and_rewrites_text_of_built_in_tool_items() -> None:
    guard = Upper()
    hooks = ApplyGuardrailHooks(guard, "upper")
    answer = {"object": "response", "output": [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thinking"}]},
        {"type": "mcp_call", "name": "lookup", "arguments": "{}", "output": "mcp result"},
        {"type": "code_interpreter_call", "outputs": [{"type": "logs", "logs": "printed"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "answer"}]}]}
    result = await hooks.async_post_call_success_hook(data={"model": "m"}, user_api_key_dict=None, response=answer)
    assert guard.seen == ["thinking", "mcp result", "printed", "answer"]
    assert result is answer
    assert answer["output"][1]["output"] == "MCP RESULT" and answer["output"][3]["content"][0]["text"] == "ANSWER"


@pytest.mark.parametrize("where", ["mcp_call", "message"])
async def test_a_blocking_post_call_guardrail_sees_tool_output(where: str) -> None:
    class Block:
        async def apply_guardrail(self, inputs: dict[str, Any], request_data: dict, input_type: str,
                                  logging_obj: Any = None) -> dict[str, Any]:
            if any("secret" in t for t in inputs["texts"]):
                raise ValueError("blocked")
            return inputs

    item = {"type": "mcp_call", "output": "a secret"} if where == "mcp_call" else \
        {"type": "message", "content": [{"type": "output_text", "text": "a secret"}]}
    with pytest.raises(ValueError, match="blocked"):
        await ApplyGuardrailHooks(Block(), "block").async_post_call_success_hook(
            data={"model": "m", "stream": True}, user_api_key_dict=None, response={"output": [item]})
