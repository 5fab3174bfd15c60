"""``guardrail: bedrock`` through a real ``trioproxy run`` and the official openai client, against a
strict fake of Bedrock's ApplyGuardrail API that verifies the SigV4 signature, and moto's STS for
``aws_role_name``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY
from support.fake_guardrails import FakeBedrockGuardrail
from support.fake_upstream import Behavior, FakeUpstream
from support.moto_aws import AWS_TEST_ENV, moto_endpoint
from support.proxy_process import ProxyProcess, write_config

ACCESS_KEY, SECRET_KEY = "AKIAGUARDTEST000001", "guard-secret-key-do-not-log"
BLOCKED = "Sorry, the model cannot answer this question. coffee guardrail applied"


def guard(name: str, mode: str, fake: FakeBedrockGuardrail, kind: str = "bedrock", **params: Any) -> dict[str, Any]:
    return {"guardrail_name": name, "litellm_params": {
        "guardrail": kind, "mode": mode, "guardrailIdentifier": "gr-1", "guardrailVersion": "DRAFT",
        "aws_region_name": "us-east-1", "aws_bedrock_runtime_endpoint": fake.url, **params}}


def make_config(fake: FakeUpstream, bedrock: FakeBedrockGuardrail, sts: str) -> dict[str, Any]:
    keys = {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}
    return {
        "model_list": [{"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": fake.base_url,
                                                             "api_key": UPSTREAM_KEY}} for m in ("plain", "barista")],
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"num_retries": 0},
        "guardrails": [
            guard("bedrock-pre", "pre_call", bedrock, mask_request_content=True, **keys),
            guard("bedrock-during", "during_call", bedrock, **keys),
            guard("bedrock-post", "post_call", bedrock, mask_response_content=True, **keys),
            guard("bedrock-soft", "pre_call", bedrock, disable_exception_on_block=True, **keys),
            guard("bedrock-latest", "pre_call", bedrock, experimental_use_latest_role_message_only=True, **keys),
            guard("bedrock-role", "pre_call", bedrock, kind="bedrock/guardrail",
                  aws_role_name="arn:aws:iam::123456789012:role/guardrail-user", aws_sts_endpoint=sts),
        ],
    }


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("bedrock")
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake, FakeBedrockGuardrail({ACCESS_KEY: SECRET_KEY}) as bedrock, \
            moto_endpoint() as sts:
        bedrock.guardrails["gr-1"] = "DRAFT"
        bedrock.allow_session_keys = True
        path = write_config(directory, make_config(fake, bedrock, sts))
        with ProxyProcess(path, env=AWS_TEST_ENV) as proxy:
            yield {"proxy": proxy, "fake": fake, "bedrock": bedrock}
        assert not fake.errors, fake.errors


@pytest.fixture
def ctx(env: dict[str, Any]) -> Iterator[dict[str, Any]]:
    env["fake"].reset()
    env["bedrock"].requests.clear()
    env["bedrock"].status = None
    env["fake"].set_behavior("barista", Behavior(content="Have a coffee!"))
    env["fake"].set_behavior("plain", Behavior(content="Write to me at bob@example.com"))
    yield env
    assert env["bedrock"].problems == []
    assert SECRET_KEY not in env["proxy"].logs()


def client(ctx: dict[str, Any]) -> openai.OpenAI:
    return openai.OpenAI(base_url=ctx["proxy"].url, api_key=MASTER_KEY, max_retries=0, timeout=30)


def chat(ctx: dict[str, Any], guardrails: list[str], messages: list[dict[str, Any]] | str,
         model: str = "plain", **extra: Any) -> Any:
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return client(ctx).chat.completions.create(model=model, messages=messages,
                                               extra_body={"guardrails": guardrails}, **extra)


def applied(ctx: dict[str, Any]) -> list[Any]:
    return [s.json() for s in ctx["bedrock"].seen(lambda s: s.path.endswith("/apply"))]


def test_pre_call_blocks_with_bedrocks_message(ctx: dict[str, Any]) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        chat(ctx, ["bedrock-pre"], "how do I brew coffee?")
    assert caught.value.body["type"] == "guardrail_violation"
    assert caught.value.body["message"] == f"Violated guardrail policy: {BLOCKED}"
    assert ctx["fake"].requests == []
    assert applied(ctx) == [{"source": "INPUT", "content": [{"text": {"text": "how do I brew coffee?"}}]}]


def test_pre_call_masks_with_mask_request_content(ctx: dict[str, Any]) -> None:
    chat(ctx, ["bedrock-pre"], [{"role": "system", "content": "be brief"},
                                {"role": "user", "content": "mail me at ann@example.com"}])
    sent = ctx["fake"].requests[-1].json["messages"]
    assert [m["content"] for m in sent] == ["be brief", "mail me at {EMAIL}"]


def test_during_call_blocks_and_never_masks(ctx: dict[str, Any]) -> None:
    with pytest.raises(openai.BadRequestError):
        chat(ctx, ["bedrock-during"], "coffee please")
    chat(ctx, ["bedrock-during"], "mail me at ann@example.com")
    assert ctx["fake"].requests[-1].json["messages"][-1]["content"] == "mail me at ann@example.com"


def test_post_call_checks_the_answer_plain_and_streamed(ctx: dict[str, Any]) -> None:
    answer = chat(ctx, ["bedrock-post"], "where can I write?")
    assert answer.choices[0].message.content == "Write to me at {EMAIL}"          # mask_response_content
    assert applied(ctx)[-1] == {"source": "OUTPUT", "content": [{"text": {"text": "Write to me at bob@example.com"}}]}
    with pytest.raises(openai.BadRequestError):
        chat(ctx, ["bedrock-post"], "a drink?", model="barista")
    stream = chat(ctx, ["bedrock-post"], "a drink?", model="barista", stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_disable_exception_on_block_answers_with_the_blocked_response(ctx: dict[str, Any]) -> None:
    answer = chat(ctx, ["bedrock-soft"], "coffee?")
    assert answer.choices[0].message.content == BLOCKED
    assert ctx["fake"].requests == []


def test_latest_user_message_only(ctx: dict[str, Any]) -> None:
    chat(ctx, ["bedrock-latest"], [{"role": "user", "content": "coffee was yesterday"},
                                   {"role": "assistant", "content": "ok"},
                                   {"role": "user", "content": "what now?"}])
    assert applied(ctx) == [{"source": "INPUT", "content": [{"text": {"text": "what now?"}}]}]


def test_assumed_role_credentials_from_sts(ctx: dict[str, Any]) -> None:
    chat(ctx, ["bedrock-role"], "hello")
    seen = ctx["bedrock"].seen(lambda s: s.path.endswith("/apply"))[-1]
    assert "Credential=ASIA" in seen.headers["authorization"] and seen.headers["x-amz-security-token"]


def test_outage_is_a_503(ctx: dict[str, Any]) -> None:
    ctx["bedrock"].status = 500
    response = httpx.post(f"{ctx['proxy'].url}/chat/completions", timeout=30,
                          headers={"authorization": f"Bearer {MASTER_KEY}"},
                          json={"model": "plain", "messages": [{"role": "user", "content": "hi"}],
                                "guardrails": ["bedrock-pre"]})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "guardrail_unavailable"
    assert "'bedrock-pre'" in response.json()["error"]["message"]
    assert ctx["fake"].requests == []


def test_the_fake_refuses_a_wrong_signature() -> None:
    """The fake's check is not vacuous: the same request signed with another secret is refused."""
    from trioproxy.upstream.providers.adapter import NativeRequest
    from trioproxy.upstream.providers.bedrock import AwsSigner

    with FakeBedrockGuardrail({ACCESS_KEY: SECRET_KEY}) as bedrock:
        bedrock.guardrails["gr-1"] = "DRAFT"
        url = f"{bedrock.url}/guardrail/gr-1/version/DRAFT/apply"
        body = b'{"source": "INPUT", "content": [{"text": {"text": "hi"}}]}'
        for secret, status in ((SECRET_KEY, 200), ("wrong", 403)):
            signed = AwsSigner("us-east-1", ACCESS_KEY, secret, None, None).sign(
                NativeRequest("POST", url, {"content-type": "application/json"}, body))
            assert httpx.post(url, content=signed.body, headers=signed.headers).status_code == status
        assert bedrock.problems == ["signature mismatch"]
