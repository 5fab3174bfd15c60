"""``guardrail: presidio`` through a real ``trioproxy run`` and the official openai client, against a
strict fake of Presidio's analyzer and anonymizer (``support.fake_guardrails.FakePresidio``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY
from support.fake_guardrails import FakePresidio
from support.fake_services import FakeService, Reply, Seen
from support.fake_upstream import Behavior, FakeUpstream
from support.proxy_process import ProxyProcess, write_config

TEXT = "I am Jane Doe, mail jane@example.com"


def guard(name: str, mode: Any, **params: Any) -> dict[str, Any]:
    return {"guardrail_name": name, "litellm_params": {"guardrail": "presidio", "mode": mode, **params}}


def make_config(fake: FakeUpstream) -> dict[str, Any]:
    return {
        "model_list": [{"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": fake.base_url,
                                                             "api_key": UPSTREAM_KEY}}
                       for m in ("plain", "tokens", "leaky")] + [
            {"model_name": "guarded", "litellm_params": {"model": "openai/plain", "api_base": fake.base_url,
                                                         "api_key": UPSTREAM_KEY, "guardrails": ["pii-mask"]}}],
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"num_retries": 0, "skip_system_message_in_guardrail": True,
                             "callbacks": ["capture.handler"]},
        "guardrails": [
            guard("pii-mask", "pre_call"),
            guard("pii-block", "pre_call", pii_entities_config={"CREDIT_CARD": "BLOCK", "EMAIL_ADDRESS": "MASK"}),
            guard("pii-threshold", "pre_call", presidio_score_thresholds={"ALL": 0.5, "PERSON": 0.7}),
            guard("pii-parse", "pre_call", output_parse_pii=True),
            guard("pii-post", "post_call"),
            guard("pii-during", "during_call", pii_entities_config={"PERSON": "BLOCK"}),
            guard("pii-logs", {"tags": {"mask-logs": "logging_only"}, "default": []}),
            guard("pii-tagged", {"tags": {"User-Agent: claude-cli": "post_call", "trusted": []},
                                 "default": "pre_call"}),
            guard("pii-adhoc", "pre_call", presidio_ad_hoc_recognizers="recognizers.json",
                  presidio_language="de", presidio_entities_deny_list=["EMAIL_ADDRESS"]),
        ],
    }


#: a logging callback that writes what it receives (a sync method: the sink runs it in a thread)
CAPTURE = """
import json, os, urllib.request
from trioproxy import CustomLogger

class Capture(CustomLogger):
    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        record = {"id": kwargs["litellm_call_id"], "messages": kwargs["messages"], "input": kwargs["input"],
                  "original_response": kwargs.get("original_response"),
                  "answer": response_obj["choices"][0]["message"]["content"]}
        request = urllib.request.Request(os.environ["CAPTURE_URL"], data=json.dumps(record).encode(),
                                         headers={"content-type": "application/json"})
        urllib.request.urlopen(request, timeout=10).read()

handler = Capture()
"""

class Collector(FakeService):
    """Receives what the capture callback logged (so a test waits for it without polling)."""

    def handle(self, seen: Seen) -> Reply:
        return Reply(200, {})


RECOGNIZERS = [{"name": "Project names", "supported_language": "de", "supported_entity": "PROJECT",
                "deny_list": ["Bluebird"]}]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("presidio")
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake, FakePresidio() as presidio:
        path = write_config(directory, make_config(fake), files={"recognizers.json": json.dumps(RECOGNIZERS),
                                                                 "capture.py": CAPTURE})
        with Collector() as captured, ProxyProcess(path, env={"PRESIDIO_ANALYZER_API_BASE": presidio.url,
                                                             "PRESIDIO_ANONYMIZER_API_BASE": presidio.url,
                                                             "CAPTURE_URL": captured.url}) as proxy:
            yield {"proxy": proxy, "fake": fake, "presidio": presidio, "captured": captured}
        assert not fake.errors, fake.errors


@pytest.fixture
def ctx(env: dict[str, Any]) -> Iterator[dict[str, Any]]:
    env["fake"].reset()
    env["presidio"].requests.clear()
    env["presidio"].status = None
    env["fake"].set_behavior("tokens", Behavior(content="Hello <PERSON_1>, I wrote to <EMAIL_ADDRESS_2>.", chunks=9))
    env["fake"].set_behavior("leaky", Behavior(content="Sure Jane Doe, your card 4111 1111 1111 1111", chunks=5))
    yield env
    assert env["presidio"].problems == []


def client(ctx: dict[str, Any]) -> openai.OpenAI:
    return openai.OpenAI(base_url=ctx["proxy"].url, api_key=MASTER_KEY, max_retries=0, timeout=30)


def sent_upstream(ctx: dict[str, Any]) -> str:
    return ctx["fake"].requests[-1].json["messages"][-1]["content"]


def chat(ctx: dict[str, Any], guardrails: list[Any], text: str = TEXT, model: str = "plain", **extra: Any) -> Any:
    return client(ctx).chat.completions.create(model=model, messages=[{"role": "user", "content": text}],
                                               extra_body={"guardrails": guardrails}, **extra)


def test_pre_call_masks_what_the_upstream_sees(ctx: dict[str, Any]) -> None:
    chat(ctx, ["pii-mask"])
    assert sent_upstream(ctx) == "I am <PERSON>, mail <EMAIL_ADDRESS>"
    analyze = [s.json() for s in ctx["presidio"].seen(lambda s: s.path == "/analyze")]
    assert analyze == [{"text": TEXT, "language": "en"}]
    assert ctx["presidio"].seen(lambda s: s.path == "/anonymize")[0].json()["text"] == TEXT


def test_block_entity_rejects_and_mask_entities_are_the_only_ones_asked(ctx: dict[str, Any]) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        chat(ctx, ["pii-block"], text="card 4111 1111 1111 1111")
    error = caught.value.body
    assert error["type"] == "guardrail_violation"
    assert error["message"] == "Blocked PII entity detected: CREDIT_CARD by Guardrail: pii-block."
    assert ctx["fake"].requests == []
    chat(ctx, ["pii-block"])
    assert sent_upstream(ctx) == "I am Jane Doe, mail <EMAIL_ADDRESS>"     # PERSON not configured: kept
    assert ctx["presidio"].seen(lambda s: s.path == "/analyze")[-1].json()["entities"] == ["CREDIT_CARD",
                                                                                           "EMAIL_ADDRESS"]


def test_score_thresholds_drop_weak_detections(ctx: dict[str, Any]) -> None:
    chat(ctx, ["pii-threshold"])
    assert sent_upstream(ctx) == "I am Jane Doe, mail <EMAIL_ADDRESS>"     # PERSON scored 0.6 < 0.7


def test_output_parse_pii_restores_values_in_the_answer(ctx: dict[str, Any]) -> None:
    answer = chat(ctx, ["pii-parse"], model="tokens")
    assert sent_upstream(ctx) == "I am <PERSON_1>, mail <EMAIL_ADDRESS_2>"
    assert answer.choices[0].message.content == "Hello Jane Doe, I wrote to jane@example.com."


def test_output_parse_pii_on_a_stream_with_tokens_split_over_chunks(ctx: dict[str, Any]) -> None:
    stream = chat(ctx, ["pii-parse"], model="tokens", stream=True)
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces) == "Hello Jane Doe, I wrote to jane@example.com."
    assert not any("<" in p for p in pieces)
    request = ctx["fake"].requests[-1].json
    assert "presidio_pii_ref" not in json.dumps(request)        # metadata never goes upstream


def test_post_call_masks_the_answer_plain_and_streamed(ctx: dict[str, Any]) -> None:
    answer = chat(ctx, ["pii-post"], model="leaky")
    assert answer.choices[0].message.content == "Sure <PERSON>, your card <CREDIT_CARD>"
    assert sent_upstream(ctx) == TEXT                              # post_call leaves the request alone
    stream = chat(ctx, ["pii-post"], model="leaky", stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == \
        "Sure <PERSON>, your card <CREDIT_CARD>"


def test_during_call_blocks_but_cannot_mask(ctx: dict[str, Any]) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        chat(ctx, ["pii-during"])
    assert "Blocked PII entity detected: PERSON by Guardrail: pii-during." in caught.value.body["message"]
    chat(ctx, ["pii-during"], text="mail jane@example.com")
    assert sent_upstream(ctx) == "mail jane@example.com"


def test_ad_hoc_recognizers_language_and_deny_list(ctx: dict[str, Any]) -> None:
    chat(ctx, ["pii-adhoc"], text="Project Bluebird, mail jane@example.com")
    assert sent_upstream(ctx) == "Project <PROJECT>, mail jane@example.com"
    analyze = ctx["presidio"].seen(lambda s: s.path == "/analyze")[-1].json()
    assert analyze["language"] == "de" and analyze["ad_hoc_recognizers"] == RECOGNIZERS


def test_language_per_request(ctx: dict[str, Any]) -> None:
    chat(ctx, ["pii-mask"], metadata={"guardrail_config": {"language": "es"}})
    assert ctx["presidio"].seen(lambda s: s.path == "/analyze")[-1].json()["language"] == "es"


def test_outage_is_a_503_naming_the_guardrail(ctx: dict[str, Any]) -> None:
    ctx["presidio"].status = 500
    response = httpx.post(f"{ctx['proxy'].url}/chat/completions", timeout=30,
                          headers={"authorization": f"Bearer {MASTER_KEY}"},
                          json={"model": "plain", "messages": [{"role": "user", "content": TEXT}],
                                "guardrails": ["pii-mask"]})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "guardrail_unavailable"
    assert "'pii-mask'" in error["message"] and "it answered HTTP 500" in error["message"]
    assert ctx["fake"].requests == []
    assert "Jane" not in response.text


def test_skip_system_message_in_guardrail(ctx: dict[str, Any]) -> None:
    client(ctx).chat.completions.create(
        model="plain", extra_body={"guardrails": ["pii-mask"]},
        messages=[{"role": "system", "content": "Operator: John Smith"}, {"role": "user", "content": TEXT}])
    sent = ctx["fake"].requests[-1].json["messages"]
    assert [m["content"] for m in sent] == ["Operator: John Smith", "I am <PERSON>, mail <EMAIL_ADDRESS>"]
    assert [s.json()["text"] for s in ctx["presidio"].seen(lambda s: s.path == "/analyze")] == [TEXT]


def test_mode_chosen_by_request_tag(ctx: dict[str, Any]) -> None:
    """LiteLLM's ``mode: {tags: …, default: …}``: the User-Agent tag, a metadata tag, the default."""
    chat(ctx, ["pii-tagged"], model="leaky")                                  # default: pre_call
    assert sent_upstream(ctx) == "I am <PERSON>, mail <EMAIL_ADDRESS>"
    cli = openai.OpenAI(base_url=ctx["proxy"].url, api_key=MASTER_KEY, max_retries=0, timeout=30,
                        default_headers={"User-Agent": "claude-cli/1.0.3 (external, cli)"})
    answer = cli.chat.completions.create(model="leaky", messages=[{"role": "user", "content": TEXT}],
                                         extra_body={"guardrails": ["pii-tagged"]})
    assert sent_upstream(ctx) == TEXT                                         # post_call only
    assert answer.choices[0].message.content == "Sure <PERSON>, your card <CREDIT_CARD>"
    ctx["presidio"].requests.clear()
    chat(ctx, ["pii-tagged"], metadata={"tags": ["trusted"]})                 # no mode: does not run
    assert sent_upstream(ctx) == TEXT and ctx["presidio"].requests == []


def test_a_models_guardrails_run_without_being_named(ctx: dict[str, Any]) -> None:
    """``litellm_params.guardrails`` on a deployment: every request to that model runs them."""
    client(ctx).chat.completions.create(model="guarded", messages=[{"role": "user", "content": TEXT}])
    assert sent_upstream(ctx) == "I am <PERSON>, mail <EMAIL_ADDRESS>"
    client(ctx).chat.completions.create(model="guarded", messages=[{"role": "user", "content": TEXT}],
                                        extra_body={"guardrails": {"pii-mask": False}})   # cannot switch it off
    assert sent_upstream(ctx) == "I am <PERSON>, mail <EMAIL_ADDRESS>"
    chat(ctx, [])
    assert sent_upstream(ctx) == TEXT                                 # another model: not guarded


def test_logging_only_masks_what_the_callbacks_receive(ctx: dict[str, Any]) -> None:
    """``logging_only`` (here chosen by the request tag ``mask-logs``): the request and the answer are
    untouched; the logging callback receives them masked, and never the raw upstream text."""
    text = TEXT + " (logged)"
    answer = client(ctx).chat.completions.create(
        model="leaky", messages=[{"role": "user", "content": text}], extra_body={"metadata": {"tags": ["mask-logs"]}})
    assert sent_upstream(ctx) == text
    assert answer.choices[0].message.content == "Sure Jane Doe, your card 4111 1111 1111 1111"

    def logged(requests: list[Seen]) -> list[Any]:
        return [r for r in (s.json() for s in requests) if "(logged)" in r["messages"][-1]["content"]]

    ctx["captured"].wait_for(lambda requests: bool(logged(requests)))
    (record,) = logged(ctx["captured"].seen())
    assert record["messages"] == [{"role": "user", "content": "I am <PERSON>, mail <EMAIL_ADDRESS> (logged)"}]
    assert record["input"] == record["messages"]
    assert record["answer"] == "Sure <PERSON>, your card <CREDIT_CARD>"
    assert record["original_response"] is None
