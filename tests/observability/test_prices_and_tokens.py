"""Prices and tokens (``observability/prices.py``, ``observability/tokens.py``): price lookup, cost arithmetic, usage parsing, estimation."""

from __future__ import annotations

import json
import math
import re
from importlib import resources

import pytest

from trioproxy.observability.prices import (
    Price,
    PriceTable,
    compute_cost,
    price_for,
    usage_from_response,
)
from trioproxy.observability.tokens import estimate_tokens, estimate_usage


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.load_default()


def _raw_json() -> dict:
    ref = resources.files("trioproxy").joinpath("data", "model_prices.json")
    return json.loads(ref.read_text(encoding="utf-8"))


# --- the packaged JSON -------------------------------------------------------


def test_json_has_source_and_date() -> None:
    data = _raw_json()
    assert isinstance(data["_source"], str) and data["_source"].strip()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["_date"])


def test_json_every_model_has_both_prices_as_non_negative_floats() -> None:
    models = _raw_json()["models"]
    assert len(models) >= 35
    for name, entry in models.items():
        for key in ("input_cost_per_token", "output_cost_per_token"):
            value = entry[key]
            assert isinstance(value, float), (name, key, value)
            assert math.isfinite(value) and value >= 0, (name, key, value)
        # per-token, not per-1K/1M: every list price here is under $0.001/token
        assert entry["input_cost_per_token"] < 1e-3, name
        assert entry["output_cost_per_token"] < 1e-3, name
        assert isinstance(entry["provider"], str) and entry["provider"], name


def test_json_covers_required_models() -> None:
    required = """
        gpt-4o gpt-4o-mini gpt-4.1 gpt-4.1-mini gpt-4.1-nano gpt-4-turbo gpt-4 gpt-3.5-turbo
        o1 o1-mini o3 o3-mini o4-mini text-embedding-3-small text-embedding-3-large
        text-embedding-ada-002 claude-3-haiku claude-3-5-haiku claude-3-5-sonnet
        claude-3-7-sonnet claude-sonnet-4 claude-opus-4 claude-3-opus gemini-1.5-flash
        gemini-1.5-pro gemini-2.0-flash gemini-2.5-pro gemini-2.5-flash mistral-large
        mistral-small open-mistral-nemo codestral llama-3.1-8b-instant llama-3.3-70b-versatile
        mixtral-8x7b-32768 deepseek-chat deepseek-reasoner
    """.split()
    models = _raw_json()["models"]
    assert [m for m in required if m not in models] == []


def test_json_aliases_point_at_models() -> None:
    data = _raw_json()
    for alias, target in data["aliases"].items():
        assert target in data["models"], alias


def test_table_exposes_source_and_date(table: PriceTable) -> None:
    assert table.source == _raw_json()["_source"]
    assert table.date == _raw_json()["_date"]


def test_load_default_is_cached() -> None:
    assert PriceTable.load_default() is PriceTable.load_default()


# --- lookup ------------------------------------------------------------------


def test_lookup_plain(table: PriceTable) -> None:
    assert table.lookup("gpt-4o") == Price(2.5e-6, 1e-5)
    assert table.lookup("claude-3-5-sonnet") == Price(3e-6, 15e-6)


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("openai/gpt-4o", "gpt-4o"),
        ("groq/llama-3.1-8b-instant", "llama-3.1-8b-instant"),
        ("gemini/gemini-2.0-flash", "gemini-2.0-flash"),
        ("deepseek/deepseek-chat", "deepseek-chat"),
        ("openrouter/openai/gpt-4o-mini", "gpt-4o-mini"),
        ("GPT-4o", "gpt-4o"),
        (" gpt-4o ", "gpt-4o"),
    ],
)
def test_lookup_prefixed_and_case(table: PriceTable, name: str, base: str) -> None:
    assert table.lookup(name) is not None
    assert table.lookup(name) == table.lookup(base)


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("anthropic/claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-haiku-20240307", "claude-3-haiku"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("mistral-large-2411", "mistral-large"),
        ("openai/o3-mini-latest", "o3-mini"),
        ("mistral/mistral-large-2411", "mistral-large"),
        ("gemini-1.5-pro-002", "gemini-1.5-pro"),
        ("vertex_ai/claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),
        ("gpt-4-turbo-preview", "gpt-4-turbo"),  # alias
        ("claude-opus-4-0", "claude-opus-4"),  # alias
    ],
)
def test_lookup_snapshots_and_aliases(table: PriceTable, name: str, base: str) -> None:
    assert table.lookup(name) is not None
    assert table.lookup(name) == table.lookup(base)


def test_snapshot_with_own_entry_keeps_its_price(table: PriceTable) -> None:
    assert table.lookup("gpt-4o-2024-05-13") == Price(5e-6, 15e-6)
    assert table.lookup("gpt-4o-2024-05-13") != table.lookup("gpt-4o")


@pytest.mark.parametrize(
    "name",
    [
        "",
        "no-such-model",
        "openai/no-such-model",
        "gpt-5-turbo-ultra",
        "claude-opus-4-1-20250805",  # a different model, not a snapshot of claude-opus-4
        "ft:gpt-4o-mini-2024-07-18:acme::abc123",  # fine-tunes are priced differently
    ],
)
def test_lookup_unknown_is_none(table: PriceTable, name: str) -> None:
    assert table.lookup(name) is None
    assert name not in table


def test_lookup_never_prefix_matches_a_sibling(table: PriceTable) -> None:
    assert table.lookup("gpt-4o-mini") != table.lookup("gpt-4o")
    assert table.lookup("gpt-4-turbo") != table.lookup("gpt-4")
    assert table.lookup("gpt-4.1-nano") != table.lookup("gpt-4.1")


def test_from_dict_rejects_bad_documents() -> None:
    good = {"provider": "x", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    assert PriceTable.from_dict({"models": {"m": good}}).lookup("m") == Price(1e-6, 2e-6)
    with pytest.raises(ValueError):
        PriceTable.from_dict({"models": {}})
    with pytest.raises(ValueError):
        PriceTable.from_dict({"models": {"m": {**good, "input_cost_per_token": -1.0}}})
    with pytest.raises(ValueError):
        PriceTable.from_dict({"models": {"m": {**good, "output_cost_per_token": None}}})
    with pytest.raises(ValueError):
        PriceTable.from_dict({"models": {"m": {**good, "provider": None}}})
    with pytest.raises(ValueError):
        PriceTable.from_dict({"models": {"m": good}, "aliases": {"a": "missing"}})


# --- compute_cost ------------------------------------------------------------


def test_compute_cost_arithmetic() -> None:
    price = Price(input_cost_per_token=2.5e-6, output_cost_per_token=1e-5)
    # 1000 * 2.5e-6 + 500 * 1e-5 = 0.0025 + 0.005
    assert compute_cost(price, 1000, 500) == pytest.approx(0.0075)
    assert compute_cost(price, 0, 0) == 0.0
    assert compute_cost(price, 1_000_000, 0) == pytest.approx(2.5)
    assert compute_cost(price, 0, 1_000_000) == pytest.approx(10.0)


def test_compute_cost_unknown_is_none_not_zero() -> None:
    price = Price(1e-6, 2e-6)
    assert compute_cost(None, 100, 100) is None
    assert compute_cost(price, None, None) is None


def test_compute_cost_one_side_known() -> None:
    price = Price(1e-6, 2e-6)
    assert compute_cost(price, 100, None) == pytest.approx(1e-4)  # embeddings
    assert compute_cost(price, None, 100) == pytest.approx(2e-4)


def test_compute_cost_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        compute_cost(Price(1e-6, 1e-6), -1, 10)


def test_compute_cost_with_table_price(table: PriceTable) -> None:
    cost = compute_cost(table.lookup("openai/gpt-4o-mini-2024-07-18"), 2000, 1000)
    assert cost == pytest.approx(2000 * 0.15e-6 + 1000 * 0.60e-6)


# --- overrides ---------------------------------------------------------------


def test_price_for_without_overrides_is_table(table: PriceTable) -> None:
    assert price_for(table, "gpt-4o", {}) == table.lookup("gpt-4o")
    assert price_for(table, "gpt-4o", None) == table.lookup("gpt-4o")
    assert price_for(table, "unknown-model", {"api_base": "http://x"}) is None


def test_price_for_both_overrides_win(table: PriceTable) -> None:
    overrides = {"input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7}
    assert price_for(table, "gpt-4o", overrides) == Price(1e-7, 2e-7)
    assert price_for(table, "my-private-model", overrides) == Price(1e-7, 2e-7)


def test_price_for_one_override_falls_back_to_table(table: PriceTable) -> None:
    base = table.lookup("gpt-4o")
    assert base is not None
    assert price_for(table, "gpt-4o", {"input_cost_per_token": 0.0}) == Price(
        0.0, base.output_cost_per_token
    )
    assert price_for(table, "gpt-4o", {"output_cost_per_token": 3e-5}) == Price(
        base.input_cost_per_token, 3e-5
    )


def test_price_for_one_override_unknown_model_other_side_zero(table: PriceTable) -> None:
    assert price_for(table, "my-private-model", {"input_cost_per_token": 1e-6}) == Price(1e-6, 0.0)
    assert price_for(table, "my-private-model", {"output_cost_per_token": 1e-6}) == Price(0.0, 1e-6)


def test_price_for_none_override_is_absent_and_strings_coerce(table: PriceTable) -> None:
    assert price_for(table, "gpt-4o", {"input_cost_per_token": None}) == table.lookup("gpt-4o")
    # PyYAML loads `1e-6` (no dot) as the string "1e-6"
    assert price_for(table, "m", {"input_cost_per_token": "1e-6"}) == Price(1e-6, 0.0)
    assert price_for(table, "m", {"input_cost_per_token": 0}) == Price(0.0, 0.0)


@pytest.mark.parametrize("bad", ["cheap", -1e-6, float("nan"), float("inf"), True, [1]])
def test_price_for_rejects_bad_override(table: PriceTable, bad: object) -> None:
    with pytest.raises(ValueError):
        price_for(table, "gpt-4o", {"output_cost_per_token": bad})


# --- usage_from_response -----------------------------------------------------


def test_usage_chat() -> None:
    body = {
        "object": "chat.completion",
        "choices": [{"message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }
    assert usage_from_response(body) == (12, 3)


def test_usage_embeddings() -> None:
    body = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1]}],
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    assert usage_from_response(body) == (8, 0)
    # even without total_tokens, the known side is reported and costs something
    prompt, completion = usage_from_response({"usage": {"prompt_tokens": 8}})
    assert (prompt, completion) == (8, None)
    assert compute_cost(Price(1e-6, 0.0), prompt, completion) == pytest.approx(8e-6)


def test_usage_responses_api_names() -> None:
    body = {"usage": {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}}
    assert usage_from_response(body) == (5, 7)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"usage": None},
        {"usage": "lots"},
        {"usage": {}},
        {"choices": []},
    ],
)
def test_usage_missing(body: dict) -> None:
    assert usage_from_response(body) == (None, None)


def test_usage_garbage_values_are_unknown() -> None:
    body = {"usage": {"prompt_tokens": "12", "completion_tokens": -3, "total_tokens": True}}
    assert usage_from_response(body) == (None, None)


# --- estimate_tokens ---------------------------------------------------------

# Reference cl100k_base counts (from tiktoken, as published in OpenAI's
# "How to count tokens with tiktoken" cookbook and easily re-checked with
# `tiktoken.get_encoding("cl100k_base").encode(text)`):
CL100K_REFERENCE = [
    ("hello world", 2),  # "hello", " world"
    ("The quick brown fox jumps over the lazy dog.", 10),
    ("tiktoken is great!", 6),  # "t", "ik", "token", " is", " great", "!"
    ("antidisestablishmentarianism", 6),
    ("2 + 2 = 4", 7),  # "2", " +", " ", "2", " =", " ", "4"
    ("お誕生日おめでとう", 9),
]


def test_estimate_tokens_empty() -> None:
    assert estimate_tokens("") == 0


@pytest.mark.parametrize(("text", "expected"), CL100K_REFERENCE)
def test_estimate_tokens_close_to_cl100k(text: str, expected: int) -> None:
    estimate = estimate_tokens(text)
    assert abs(estimate - expected) <= 0.3 * expected, (text, estimate, expected)


PROSE = (
    "Structured concurrency means that every task has a parent that waits for it, so "
    "errors propagate and nothing is left running in the background after a function "
    "returns. Trio was built around this idea from the start, and it makes cancellation "
    "and timeouts compose cleanly.\n\nIt's also why the proxy can't leak a request.\n"
)


def test_estimate_tokens_english_prose_rule_of_thumb() -> None:
    # OpenAI's rule of thumb: ~4 characters per token of English text.
    assert estimate_tokens(PROSE) == pytest.approx(len(PROSE) / 4, rel=0.3)


def test_estimate_tokens_monotone_in_length() -> None:
    samples = [
        PROSE,
        'def f(x: int) -> int:\n    return {"a": x ** 2}["a"]\n',
        "日本語のテキスト 123",
    ]
    for text in samples:
        counts = [estimate_tokens(text[:i]) for i in range(len(text) + 1)]
        assert counts == sorted(counts), text
    repeated = [estimate_tokens("word " * n) for n in range(50)]
    assert repeated == sorted(repeated)
    assert repeated[-1] > repeated[1]


def test_estimate_tokens_is_deterministic_and_positive() -> None:
    for text in ["a", " ", "\n", "!", "_", "é", "²", "\u0915\u093f", "🙂", "x" * 1000]:
        assert estimate_tokens(text) >= 1
        assert estimate_tokens(text) == estimate_tokens(text)


# --- estimate_usage ----------------------------------------------------------


def test_estimate_usage_chat_messages() -> None:
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "hello world"},
            {"role": "user", "content": [{"type": "text", "text": "hello world"}]},
        ],
    }
    prompt, completion = estimate_usage(body, "The quick brown fox jumps over the lazy dog.")
    # 2 messages * (4 overhead + 2 content) + 3 reply priming
    assert prompt == 2 * (4 + 2) + 3
    assert completion == 10


def test_estimate_usage_counts_parts_names_and_tool_calls() -> None:
    base = {"messages": [{"role": "user", "content": "hi"}]}
    richer = {
        "messages": [
            {
                "role": "user",
                "name": "alice",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "data:..."}},
                    {"type": "text", "text": "and more text here"},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"type": "function", "function": {"name": "get", "arguments": '{"x": 1}'}}
                ],
            },
        ],
        "tools": [{"type": "function", "function": {"name": "get", "parameters": {}}}],
    }
    assert estimate_usage(richer, "")[0] > estimate_usage(base, "")[0] + 4


def test_estimate_usage_prompt_and_input() -> None:
    assert estimate_usage({"prompt": "hello world"}, "") == (2, 0)
    assert estimate_usage({"prompt": ["hello world", "hello world"]}, "x") == (4, 1)
    assert estimate_usage({"input": "hello world"}, "") == (2, 0)
    # token-id inputs are counted exactly
    assert estimate_usage({"input": [1, 2, 3]}, "") == (3, 0)
    assert estimate_usage({"input": [[1, 2], [3, 4, 5]]}, "") == (5, 0)


def test_estimate_usage_empty_request() -> None:
    assert estimate_usage({}, "") == (0, 0)
    assert estimate_usage({"messages": []}, "") == (0, 0)


def test_a_native_responses_request_without_usage_is_estimated_from_its_items_and_output() -> None:
    """An upstream that serves /v1/responses natively and reports no usage is billed by estimate,
    like a chat completion: its input items and instructions, and its messages' output text."""
    from trioproxy.observability.cost import _response_text

    text = "Please summarise the following paragraph in one line. " * 10
    body = {"model": "m", "instructions": "be brief",
            "input": [{"role": "user", "content": [{"type": "input_text", "text": text}]}]}
    chat = {"model": "m", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]}
    answer = {"object": "response", "output": [{"type": "message", "role": "assistant",
                                                "content": [{"type": "output_text", "text": text}]}]}
    prompt, completion = estimate_usage(body, _response_text(answer))
    assert prompt >= estimate_usage(chat, "")[0] - 20 > 0      # the chat body adds per-message framing only
    assert completion == estimate_usage(chat, text)[1] > 0
    assert estimate_usage({"input": ["abc def"]}, "")[0] > 0      # embeddings: as before
