"""``guardrail: litellm_content_filter``: the checks (unit), and through a real ``trioproxy run`` with
the official openai client in front of the built-in ``fake`` provider, which answers with the last
user message (after a fixed prefix) — so what the model "says" is chosen by the test. No service is involved."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from conftest import MASTER_KEY
from support.proxy_process import ProxyProcess, write_config
from trioproxy.hooks.loader import HandlerLoadError
from trioproxy.policies.guardrails.content_filter import ContentFilterGuardrail

#: a category file in the shape of LiteLLM's policy templates (its words are this test's own)
POLICY = {
    "category_name": "prohibited_scoring",
    "default_action": "BLOCK",
    "identifier_words": ["build", "rank", "predict"],
    "additional_block_words": ["citizen score", "social credit"],
    "always_block_keywords": [{"keyword": "social scoring system", "severity": "high"}],
    "exceptions": ["research on", "what is"],
}
ADVICE = {
    "category_name": "denied_advice",
    "keywords": [{"keyword": "buy stocks", "severity": "high"}, {"keyword": "invest", "severity": "medium"},
                 {"keyword": "savings", "severity": "low"}],
}


def make(tmp_path: Path, **kwargs: Any) -> ContentFilterGuardrail:
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(POLICY))
    (tmp_path / "advice.yaml").write_text(yaml.safe_dump(ADVICE))
    return ContentFilterGuardrail(guardrail_name="cf", event_hook="pre_call", base_dir=tmp_path, **kwargs)


def test_patterns_and_keywords_block_or_mask(tmp_path: Path) -> None:
    g = make(tmp_path, patterns=[{"pattern_type": "prebuilt", "pattern_name": "us_ssn", "action": "BLOCK"},
                                 {"pattern_type": "prebuilt", "pattern_name": "email", "action": "MASK"},
                                 {"pattern_type": "regex", "pattern": r"\b[A-Z]{3}-\d{4}\b", "name": "employee_id",
                                  "action": "MASK"}],
             blocked_words=[{"keyword": "confidential", "action": "BLOCK", "description": "Internal information"},
                            {"keyword": "proprietary", "action": "MASK"}])
    assert g.scan("My SSN is 123-45-6789").blocked == "Content blocked: us_ssn pattern detected"
    assert g.scan("mail a@example.com or b@example.org, id abc-1234").text == \
        "mail [EMAIL_REDACTED] or [EMAIL_REDACTED], id [EMPLOYEE_ID_REDACTED]"
    assert g.scan("This is Confidential").blocked == \
        "Content blocked: keyword 'confidential' detected (Internal information)"
    assert g.scan("Proprietary data").text == "[KEYWORD_REDACTED] data"
    assert g.scan("nothing here").blocked is None


def test_categories_follow_severity_exceptions_and_conditions(tmp_path: Path) -> None:
    g = make(tmp_path, categories=[
        {"category": "prohibited_scoring", "category_file": "policy.yaml"},
        {"category": "denied_advice", "category_file": "advice.yaml", "severity_threshold": "medium"}])
    assert g.scan("Help me build a citizen score app").blocked == \
        "Content blocked: prohibited_scoring category: 'build' with 'citizen score' detected"
    assert g.scan("We run a Social Scoring System").blocked == \
        "Content blocked: prohibited_scoring category keyword 'social scoring system' detected (severity: high)"
    assert g.scan("Write research on how to build a citizen score").blocked is None   # an exception
    assert g.scan("a citizen score, explained").blocked is None                      # no identifier word
    assert g.scan("Should I invest now?").blocked == \
        "Content blocked: denied_advice category keyword 'invest' detected (severity: medium)"
    assert g.scan("my savings account").blocked is None                              # below the threshold
    assert g.scan("investigate the logs").blocked is None                            # whole words only


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"categories": [{"category": "harmful_violence"}]}, "trioproxy does not ship: give category_file"),
    ({"categories": [{"category": "x", "category_file": "policy_templates/missing.yaml"}]}, "cannot read"),
    ({"patterns": [{"pattern_type": "prebuilt", "pattern_name": "passport"}]}, "not a prebuilt pattern"),
    ({"patterns": [{"pattern_type": "regex", "pattern": "("}]}, "invalid regular expression"),
    ({"blocked_words": [{"keyword": "x", "action": "WARN"}]}, "action must be BLOCK or MASK"),
    ({"blocked_words": [{"keyword": "x"}], "pattern_redaction_format": "[X]"}, "must contain {pattern_name}"),
    ({}, "needs categories, patterns or blocked_words"),
])
def test_bad_settings_stop_startup(tmp_path: Path, kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(HandlerLoadError) as caught:
        make(tmp_path, **kwargs)
    assert problem in str(caught.value)


# -- through a real proxy ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    directory = tmp_path_factory.mktemp("content_filter")
    (directory / "policies").mkdir()
    (directory / "policies" / "scoring.yaml").write_text(yaml.safe_dump(POLICY))
    (directory / "words.yaml").write_text(yaml.safe_dump({"blocked_words": [
        {"keyword": "project_apollo", "action": "BLOCK", "description": "Confidential project codename"}]}))

    def g(name: str, mode: str, **params: Any) -> dict[str, Any]:
        return {"guardrail_name": name, "litellm_params": {"guardrail": "litellm_content_filter", "mode": mode,
                                                           **params}}

    pii = [{"pattern_type": "prebuilt", "pattern_name": "us_ssn", "action": "BLOCK"},
           {"pattern_type": "prebuilt", "pattern_name": "email", "action": "MASK"}]
    config = {
        "model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
        "general_settings": {"master_key": MASTER_KEY},
        "guardrails": [
            g("cf-pre", "pre_call", patterns=pii, blocked_words_file="words.yaml",
              categories=[{"category": "prohibited_scoring", "category_file": "policies/scoring.yaml"}]),
            g("cf-during", "during_call", patterns=pii),
            g("cf-post", "post_call", patterns=pii, keyword_redaction_tag="***", pattern_redaction_format="<{pattern_name}>"),
        ],
    }
    with ProxyProcess(write_config(directory, config)) as running:
        yield running


def chat(proxy: ProxyProcess, guardrail: str, text: str, **extra: Any) -> Any:
    client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30)
    return client.chat.completions.create(model="m", messages=[{"role": "user", "content": text}],
                                          extra_body={"guardrails": [guardrail]}, **extra)


def test_pre_call_masks_what_the_model_sees_and_blocks_the_rest(proxy: ProxyProcess) -> None:
    # the fake model echoes the last user message: its answer is what reached it
    assert chat(proxy, "cf-pre", "write to ann@example.com").choices[0].message.content.endswith(
        ": write to [EMAIL_REDACTED]")
    for text, message in (("my ssn is 123-45-6789", "Content blocked: us_ssn pattern detected"),
                          ("status of project_apollo?",
                           "Content blocked: keyword 'project_apollo' detected (Confidential project codename)"),
                          ("rank people by social credit",
                           "Content blocked: prohibited_scoring category: 'rank' with 'social credit' detected")):
        with pytest.raises(openai.BadRequestError) as caught:
            chat(proxy, "cf-pre", text)
        assert caught.value.body["message"] == message and caught.value.body["type"] == "guardrail_violation"
    assert "123-45-6789" not in proxy.logs()


def test_during_call_blocks(proxy: ProxyProcess) -> None:
    with pytest.raises(openai.BadRequestError):
        chat(proxy, "cf-during", "my ssn is 123-45-6789")
    assert chat(proxy, "cf-during", "hello").choices[0].message.content.endswith(": hello")


def test_post_call_masks_or_blocks_the_answer(proxy: ProxyProcess) -> None:
    assert chat(proxy, "cf-post", "write to ann@example.com").choices[0].message.content.endswith(": write to <EMAIL>")
    with pytest.raises(openai.BadRequestError):
        chat(proxy, "cf-post", "my ssn is 123-45-6789")
    with pytest.raises(openai.APIError):      # a stream ends with the error event instead of [DONE]
        for _ in chat(proxy, "cf-post", "my ssn is 123-45-6789", stream=True):
            pass
