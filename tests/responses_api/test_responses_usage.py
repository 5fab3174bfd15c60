"""Usage in both shapes: chat → Responses (translated answers) and back (native answers' cost)."""

from __future__ import annotations

from trioproxy.responses_api import chat_usage, responses_usage


def test_chat_usage_to_responses_usage() -> None:
    assert responses_usage({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                            "prompt_tokens_details": {"cached_tokens": 3},
                            "completion_tokens_details": {"reasoning_tokens": 2}}) == {
        "input_tokens": 10, "input_tokens_details": {"cached_tokens": 3, "cache_write_tokens": 0},
        "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 15}


def test_missing_counts_and_anthropic_style_cache_counts() -> None:
    assert responses_usage({"prompt_tokens": 7, "completion_tokens": 1, "cache_read_input_tokens": 4,
                            "cache_creation_input_tokens": 2}) == {
        "input_tokens": 7, "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 2},
        "output_tokens": 1, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 8}
    assert responses_usage({})["total_tokens"] == 0
    assert responses_usage(None) is None
    assert responses_usage("12") is None  # type: ignore[arg-type]


def test_odd_values_count_as_zero() -> None:
    usage = responses_usage({"prompt_tokens": -1, "completion_tokens": 2.0, "total_tokens": True,
                             "prompt_tokens_details": None})
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (0, 2, 0)


def test_responses_usage_to_chat_usage_round_trips() -> None:
    chat = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 3, "cache_write_tokens": 1},
            "completion_tokens_details": {"reasoning_tokens": 2}}
    assert chat_usage(responses_usage(chat)) == chat
    assert chat_usage({"input_tokens": 2, "output_tokens": 3})["total_tokens"] == 5
    assert chat_usage(None) is None
