"""The record builder (pure): every field the issue lists, merges, tags, secrets, failures."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from trioproxy.observability.prices import Price
from trioproxy.observability.tokens import estimate_usage
from trioproxy.spend import (
    ErrorInfo,
    KeyIdentity,
    RecordInputs,
    SpendRecord,
    build_record,
    provisional_record,
)
from trioproxy.spend.estimate import (
    estimate_cost_micros,
    estimate_prompt_tokens,
    requested_output_tokens,
)
from trioproxy.spend.record import PROXY_RESTARTED, safe_api_base

from .spend_helpers import BASE

T = BASE.timestamp()


def _identity() -> KeyIdentity:
    return KeyIdentity(api_key="h" * 64, key_alias="alias", user_id="u1", team_id="t1", organization_id="o1",
                       key_metadata=MappingProxyType({"tags": ("key-tag", "shared"),
                                                      "spend_logs_metadata": MappingProxyType({"a": "key", "k": 1})}),
                       team_metadata={"tags": ["team-tag"], "spend_logs_metadata": {"a": "team", "b": "team", "t": 1}})


def test_every_field() -> None:
    rec = build_record(RecordInputs(
        request_id="chatcmpl-1", call_type="acompletion", start_time=T, end_time=T + 1.25, identity=_identity(),
        model="gpt-4o-2024-08-06", model_group="gpt-4o", custom_llm_provider="openai", model_id="dep-1",
        api_base="https://user:secret@api.example.com/v1?api-key=SECRET#x", spend_micros=1234, prompt_tokens=10,
        completion_tokens=5, completion_start_time=T + 0.5, end_user="cust",
        request_metadata={"tags": ["req-tag", "shared"], "spend_logs_metadata": {"a": "request"},
                          "litellm_session_id": "sess"},
        body_tags=["body-tag", 3], header_tags=" hdr1 , hdr2,", requester_ip_address="10.1.2.3", cache_hit=True,
        reserved_micros=5000))
    assert rec.request_id == "chatcmpl-1" and rec.call_type == "acompletion" and rec.api_key == "h" * 64
    assert (rec.spend, rec.prompt_tokens, rec.completion_tokens, rec.total_tokens) == (1234, 10, 5, 15)
    assert rec.start_time == BASE and (rec.end_time - rec.start_time).total_seconds() == 1.25
    assert rec.model == "gpt-4o-2024-08-06" and rec.model_group == "gpt-4o"
    assert rec.api_base == "https://api.example.com/v1"
    assert rec.user == "u1" and rec.team_id == "t1" and rec.organization_id == "o1" and rec.end_user == "cust"
    assert rec.request_tags == ("req-tag", "shared", "body-tag", "hdr1", "hdr2", "key-tag", "team-tag")
    assert rec.metadata["spend_logs_metadata"] == {"a": "request", "b": "team", "t": 1, "k": 1}
    assert rec.metadata["user_api_key"] == "h" * 64 and rec.metadata["user_api_key_alias"] == "alias"
    assert rec.metadata["user_api_key_team_id"] == "t1" and rec.metadata["user_api_key_user_id"] == "u1"
    assert rec.metadata["requester_ip_address"] == "10.1.2.3" == rec.requester_ip_address
    assert rec.metadata["reserved_spend"] == 0.005
    assert rec.cache_hit is True and rec.status == "success" and rec.session_id == "sess"
    row = rec.to_row()
    assert row["user_id"] == "u1" and row["cache_hit"] == "True" and row["request_duration_ms"] == 1250
    assert SpendRecord.from_json(rec.to_json()) == rec


def test_header_metadata_when_the_request_has_none_and_failures() -> None:
    rec = build_record(RecordInputs(
        request_id="r", call_type="aembedding", start_time=T, end_time=T, identity=KeyIdentity(api_key="m" * 64),
        header_spend_logs_metadata='{"from": "header"}', status="failure",
        error=ErrorInfo.from_exception(ValueError("upstream said no"), status=502, llm_provider="openai")))
    assert rec.metadata["spend_logs_metadata"] == {"from": "header"}
    assert rec.metadata["error_information"] == {"error_class": "ValueError", "error_code": "502",
                                                 "error_message": "upstream said no", "llm_provider": "openai"}
    assert rec.status == "failure" and rec.spend == 0 and rec.request_tags == ()


def test_provisional_record_of_an_admitted_request() -> None:
    rec = provisional_record(RecordInputs(request_id="r", call_type="acompletion", start_time=T, end_time=T + 9,
                                          identity=_identity(), spend_micros=99, prompt_tokens=3, reserved_micros=77))
    assert rec.status == "failure" and rec.spend == 0 and rec.total_tokens == 0
    assert rec.end_time == rec.start_time
    assert rec.metadata["error_information"]["error_message"] == PROXY_RESTARTED
    assert rec.metadata["reserved_spend"] == 0.000077


def test_api_base_never_keeps_credentials() -> None:
    assert safe_api_base("https://k:s@h.example/x?key=1&sig=2") == "https://h.example/x"
    assert safe_api_base(None) is None and safe_api_base("") is None


def test_estimate_leans_high_and_is_cheap_to_compute() -> None:
    english = {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                            {"role": "user", "content": "Please summarise the following paragraph in one line. " * 20}]}
    cjk = {"messages": [{"role": "user", "content": "今日はいい天気ですね。" * 30}]}
    for body in (english, cjk):
        assert estimate_prompt_tokens(body) >= estimate_usage(body, "")[0]
    assert estimate_prompt_tokens({"input": [1, 2, 3]}) == 3                     # token ids: one each
    assert estimate_prompt_tokens({"prompt": "abcdef"}) == 2
    assert requested_output_tokens({"max_tokens": 100, "n": 3}, 4096) == 300
    assert requested_output_tokens({"max_completion_tokens": 7, "max_tokens": 100}, 4096) == 7
    assert requested_output_tokens({}, 4096) == 4096
    assert requested_output_tokens({"max_tokens": "x"}, 16) == 16
    assert estimate_cost_micros(Price(0.0000025, 0.00001), 1, 1) == 13          # 12.5 µUSD rounds up
    assert estimate_cost_micros(None, 1000, 1000) == 0


def test_a_native_responses_body_reserves_its_items_and_max_output_tokens() -> None:
    """A natively forwarded /v1/responses body reserves like its translated chat body would: the text
    of its input items and instructions, and max_output_tokens (not the default)."""
    text = "Please summarise the following paragraph in one line. " * 20
    native = {"model": "m", "instructions": "be brief",
              "input": [{"role": "user", "content": [{"type": "input_text", "text": text}]},
                        {"type": "function_call_output", "call_id": "c", "output": text}],
              "max_output_tokens": 50_000}
    chat = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text},
                         {"role": "tool", "content": text}]}
    assert estimate_prompt_tokens(native) >= 2 * len(text) // 3 >= estimate_usage(chat, "")[0]
    assert requested_output_tokens(native, 4096) == 50_000
    assert estimate_prompt_tokens({"input": ["abcdef", "abc"]}) == 3          # embeddings: as before


def test_outbox_location_and_flush_interval(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from trioproxy.spend import default_outbox_dir, flush_interval_for

    assert default_outbox_dir(f"sqlite:///{tmp_path}/proxy.db") == tmp_path / "proxy.db.spend-outbox"
    assert default_outbox_dir("sqlite:///rel/p.db", cwd=tmp_path) == tmp_path / "rel" / "p.db.spend-outbox"
    assert default_outbox_dir("postgresql://u@h/db", cwd=tmp_path) == tmp_path / ".trioproxy" / "spend-outbox"
    assert default_outbox_dir("postgresql://u@h/db", {"spend_outbox_dir": "/var/lib/x"}) == Path("/var/lib/x")
    assert flush_interval_for(None) == 0.2
    assert flush_interval_for(10) == 0.2            # LiteLLM's default of 10 s: capped
    assert flush_interval_for(0.05) == 0.05 and flush_interval_for("junk") == 0.2
