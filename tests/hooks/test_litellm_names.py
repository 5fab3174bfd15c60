"""The names LiteLLM handler files import (issue #15 item 5), with LiteLLM's values and behaviour.

Each is used the way the corpus's handler files use it (``tests/data/litellm_corpus/handlers``);
the whole files run through a real proxy in ``tests/e2e/test_litellm_corpus.py``.
"""

from __future__ import annotations

import logging
from typing import get_args

import pytest

import trioproxy
from conftest import UPSTREAM_KEY
from support.fake_upstream import FakeUpstream
from trioproxy.errors import error_body


def test_every_name_of_the_readme_table_is_exported() -> None:
    for name in ("CallTypes", "CallTypesLiteral", "GuardrailEventHooks", "GenericGuardrailAPIInputs", "PiiEntityType",
                 "should_proceed_based_on_metadata", "verbose_proxy_logger", "verbose_logger", "verbose_router_logger",
                 "LitellmUserRoles", "ProxyException", "completion_cost", "set_verbose", "get_async_httpx_client",
                 "httpxSpecialProvider", "AsyncHTTPHandler"):
        assert name in trioproxy.__all__ and hasattr(trioproxy, name), name


def test_call_types_are_litellms_strings() -> None:
    assert trioproxy.CallTypes.completion == "completion" and trioproxy.CallTypes.acompletion.value == "acompletion"
    assert "completion" in get_args(trioproxy.CallTypesLiteral) and "embeddings" in get_args(trioproxy.CallTypesLiteral)
    assert trioproxy.CallTypes("embeddings") is trioproxy.CallTypes.embeddings   # trioproxy's embeddings call type


def test_guardrail_event_hooks_compare_as_strings() -> None:
    hooks = trioproxy.GuardrailEventHooks
    assert hooks.pre_call == "pre_call" and hooks.post_call.value == "post_call" and str(hooks.during_call) == "during_call"
    guard = trioproxy.CustomGuardrail(guardrail_name="g", event_hook=hooks.pre_call, default_on=True)
    assert guard.should_run_guardrail({}, hooks.pre_call) and not guard.should_run_guardrail({}, "post_call")


async def test_should_proceed_based_on_metadata() -> None:
    proceed = trioproxy.should_proceed_based_on_metadata
    assert await proceed({"messages": []}, "rail")                    # nothing asked: LiteLLM runs it
    assert await proceed({"metadata": {"guardrails": {"rail": True, "other": False}}}, "rail")
    assert not await proceed({"metadata": {"guardrails": {"rail": False}}}, "rail")
    assert not await proceed({"metadata": {"guardrails": {"other": True}}}, "rail")
    assert await proceed({"metadata": {"guardrails": ["rail"]}}, "rail")


def test_verbose_loggers_log_where_the_proxy_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="trioproxy"):
        trioproxy.verbose_proxy_logger.info("from a handler")
    assert [r.name for r in caplog.records] == ["trioproxy.handlers.proxy"]


def test_roles_and_proxy_exception() -> None:
    assert trioproxy.LitellmUserRoles.PROXY_ADMIN == "proxy_admin"
    assert trioproxy.UserAPIKeyAuth(user_role="proxy_admin").user_role == trioproxy.LitellmUserRoles.PROXY_ADMIN
    assert trioproxy.UserAPIKeyAuth().allowed_cache_controls == []
    error = trioproxy.ProxyException(message="no access", type="auth_error", param="key", code=401)
    assert error.status_code == 401
    assert error_body(error) == {"error": {"message": "no access", "type": "auth_error", "param": "key", "code": "401"}}


def test_completion_cost_prices_a_response_like_litellm() -> None:
    response = {"model": "gpt-4o", "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}}
    cost = trioproxy.completion_cost(completion_response=response)
    assert cost == pytest.approx(1000 * 2.5e-6 + 100 * 10e-6)
    assert trioproxy.completion_cost(completion_response=trioproxy.ModelResponse(response)) == cost
    # no usage: counted from the texts, as LiteLLM does
    assert trioproxy.completion_cost(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], completion="hello") > 0
    with pytest.raises(ValueError, match="isn't mapped yet"):
        trioproxy.completion_cost(completion_response={"model": "my-private-model", "usage": response["usage"]})


async def test_get_async_httpx_client_posts_like_litellms() -> None:
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        client = trioproxy.get_async_httpx_client(llm_provider=trioproxy.httpxSpecialProvider.GuardrailCallback)
        response = await client.post(f"{fake.base_url}/chat/completions", timeout=5,
                                     headers={"Authorization": f"Bearer {UPSTREAM_KEY}"},
                                     json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        response.raise_for_status()
        assert response.json()["choices"][0]["message"]["content"] == "Hello from the fake upstream."
        assert fake.requests[-1].json["model"] == "m"
