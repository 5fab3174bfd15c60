"""Regression tests for an audit of the project's bar (secrets, the Trio thread, bad input).

Each test failed before its fix; the docstring names what leaked, blocked or crashed.
"""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from support.inprocess import Upstream, call, chat_body, collect, make_pipeline
from trioproxy.cli import main as cli_main
from trioproxy.config import ConfigError, parse_config
from trioproxy.errors import BadRequestError
from trioproxy.masking import SecretScrubber
from trioproxy.observability.payload import standard_logging_object
from trioproxy.policies import hide_secrets

URL_PASSWORD = "urlpass-SECRET-4242"
CRED_BASE = f"http://alice:{URL_PASSWORD}@upstream.test/v1"
HEADER_SECRET = "azure-header-SECRET-777"


def _config(**params: Any) -> Any:
    raw = {"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/x", **params}}]}
    return parse_config(raw, "<test>", Path.cwd())


# -- 1. secrets ----------------------------------------------------------------------------------

def test_api_base_credentials_never_in_label_repr_or_logging_fields() -> None:
    """``Deployment.label`` (errors, logs, ``check``) and ``repr`` printed ``user:pass@`` verbatim."""
    config = _config(api_base=CRED_BASE, api_key="sk-provider-SECRET-0001",
                     extra_headers={"api-key": HEADER_SECRET})
    dep = config.deployments[0]
    assert dep.api_base == CRED_BASE                      # still used to connect
    assert dep.safe_api_base == "http://***@upstream.test/v1"
    for text in (dep.label, repr(dep), repr(config), repr(config.deployments)):
        assert URL_PASSWORD not in text and "alice" not in text and "sk-provider-SECRET" not in text
        assert HEADER_SECRET not in text
    # the scrubber knows them, so any other path (an upstream echo, a traceback) is masked too
    scrub = SecretScrubber(config.secrets()).scrub
    assert URL_PASSWORD not in scrub(f"connect to {CRED_BASE} with api-key {HEADER_SECRET}")
    assert HEADER_SECRET not in scrub(f"header was {HEADER_SECRET}")


def test_check_does_not_print_api_base_credentials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(f"""
        model_list:
          - model_name: m
            litellm_params: {{model: openai/x, api_base: "{CRED_BASE}"}}
    """))
    assert cli_main(["check", str(path)]) == 0
    out = capsys.readouterr()
    assert "upstream.test" in out.out
    assert URL_PASSWORD not in out.out + out.err


def test_config_error_does_not_echo_a_mistyped_secret() -> None:
    """A key of the wrong type (``master_key: 123456789012``) was shown in the error message."""
    raw = {"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/x", "api_key": 987654321098}}],
           "general_settings": {"master_key": 123456789012}}
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "cfg.yaml", Path.cwd())
    text = "\n".join(info.value.problems)
    assert "general_settings.master_key" in text and "model_list[0].litellm_params.api_key" in text
    assert "123456789012" not in text and "987654321098" not in text


async def test_connection_error_and_log_record_hide_api_base_credentials() -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    failed: list[Any] = []

    class Observer:
        def on_upstream_request(self, ctx: Any) -> None: ...
        def on_success(self, ctx: Any) -> None: ...
        def on_failure(self, ctx: Any) -> None:
            failed.append(ctx)

    pipeline = make_pipeline(model_params={"api_base": CRED_BASE}, settings={"num_retries": 0},
                             observers=[Observer()])
    pipeline.router._providers["openai"]._client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    response = await call(pipeline, chat_body())
    assert response.status == 502
    # the client never learns the api_base (not even its host); operators see it masked in the record
    assert b"upstream.test" not in response.body and URL_PASSWORD.encode() not in response.body
    record = standard_logging_object(failed[0], pipeline.scrubber, (None, None))
    assert URL_PASSWORD not in orjson.dumps(record).decode()
    assert record["api_base"] == "http://***@upstream.test/v1"


async def test_failure_hooks_get_a_scrubbed_traceback() -> None:
    """``traceback_str`` handed to failure hooks was the raw traceback: a key in it reached the hook."""
    seen: dict[str, Any] = {}

    class Leaky:
        async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> None:
            raise RuntimeError("upstream refused key sk-upstream-secret-000000")

    class Recorder:
        async def async_post_call_failure_hook(self, request_data: dict, original_exception: Exception,
                                               user_api_key_dict: Any, traceback_str: str) -> None:
            seen["traceback"] = traceback_str

    response = await call(make_pipeline([Leaky(), Recorder()]), chat_body())
    assert response.status == 500
    assert "RuntimeError" in seen["traceback"]
    assert "sk-upstream-secret-000000" not in seen["traceback"]


# -- 3. bad input --------------------------------------------------------------------------------

async def test_an_error_with_a_non_string_message_is_answered_and_reported() -> None:
    """``BadRequestError(12345)`` from a hook crashed the pipeline (TypeError in the scrubber): the
    client got a generic 500 and no failure was reported to the observers (logging, metrics)."""
    failed: list[Any] = []

    class Rejects:
        async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> None:
            raise BadRequestError(12345)

    class Observer:
        def on_upstream_request(self, ctx: Any) -> None: ...
        def on_success(self, ctx: Any) -> None: ...
        def on_failure(self, ctx: Any) -> None:
            failed.append(ctx)

    pipeline = make_pipeline([Rejects()], observers=[Observer()])
    response = await call(pipeline, chat_body())
    assert response.status == 400
    assert orjson.loads(response.body)["error"]["message"] == "12345"
    assert len(failed) == 1


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("n", "code"), [("two", "invalid_type"), (1.5, "invalid_type"), (True, "invalid_type"),
                                         (0, "integer_out_of_range"), (10**6, "integer_out_of_range")])
async def test_fake_provider_rejects_a_bad_n_with_a_400(n: Any, code: str, stream: bool) -> None:
    """``n: "two"`` was a 500 (ValueError in the fake provider); ``n: 1000000`` built a million choices
    on the Trio thread."""
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "n": n, "stream": stream}
    response = await call(make_pipeline(upstream=Upstream()), body)
    assert response.status == 400, response.body
    error = orjson.loads(response.body)["error"]
    assert error["param"] == "n" and error["code"] == code


async def test_fake_provider_accepts_content_parts_with_non_string_text() -> None:
    """A content part ``{"type": "text", "text": 5}`` was a 500 (TypeError joining the text)."""
    body = {"model": "fake-model", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}
    response = await call(make_pipeline(), body)
    assert response.status == 200, response.body
    streamed = await call(make_pipeline(), {**body, "stream": True})
    frames = b"".join(await collect(streamed))
    assert frames.endswith(b"data: [DONE]\n\n")


# -- 2. the Trio thread --------------------------------------------------------------------------

async def test_hide_secrets_scans_a_large_request_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secret detection on a multi-megabyte prompt ran on the Trio thread (~25 ms per MB)."""
    threads: list[threading.Thread] = []
    real = hide_secrets.redact_messages

    def recording(messages: list[Any]) -> list[str]:
        threads.append(threading.current_thread())
        return real(messages)

    monkeypatch.setattr(hide_secrets, "redact_messages", recording)
    policy = hide_secrets.HideSecrets()
    small = {"messages": [{"role": "user", "content": "password=hunter2!abc"}]}
    large = {"messages": [{"role": "user", "content": "x " * hide_secrets.INLINE_LIMIT + "password=hunter2!abc"}]}
    assert await policy.async_pre_call_hook(None, None, small, "completion") is small
    assert await policy.async_pre_call_hook(None, None, large, "completion") is large
    assert threads[0] is threading.main_thread()       # small: inline, no thread hop
    assert threads[1] is not threading.main_thread()
    assert large["messages"][0]["content"].endswith("password=[REDACTED]")


@pytest.mark.parametrize("field", ["metadata", "cache"])
@pytest.mark.parametrize("value", ["x", 5, [1]])
async def test_proxy_only_fields_of_the_wrong_shape_are_a_400(field: str, value: Any) -> None:
    """``metadata: "x"`` (and ``cache: "x"`` with caching off) were accepted and silently dropped."""
    response = await call(make_pipeline(), chat_body(**{field: value}))
    assert response.status == 400, response.body
    error = orjson.loads(response.body)["error"]
    assert error["param"] == field and error["code"] == "invalid_type"
    ok = await call(make_pipeline(), chat_body(**{field: None}))
    assert ok.status == 200


@pytest.mark.parametrize("stream", [False, True])
async def test_a_header_the_http_layer_cannot_send_is_skipped(stream: bool) -> None:
    """A headers hook returning ``{"x-price": "5 €"}`` reached ``asgi.py``'s latin-1 encoding (or
    h11's validation) and turned a successful request into a 500; the hook table says a
    misbehaving headers hook is logged and the other headers are kept."""

    class Headers:
        async def async_post_call_response_headers_hook(self, data: dict, user_api_key_dict: Any,
                                                        response: Any, request_headers: dict) -> dict:
            return {"x-price": "5 €", "bad name": "x", "x-nul": "a\x00b", "x-good": "yes", "x-latin": "café"}

    response = await call(make_pipeline([Headers()]), chat_body(stream=stream))
    assert response.status == 200
    assert response.headers["x-good"] == "yes" and response.headers["x-latin"] == "café"
    assert not {"x-price", "bad name", "x-nul"} & set(response.headers)
    for name, value in response.headers.items():     # what asgi.py does with them
        name.encode("latin-1"), value.encode("latin-1")
    await collect(response)


async def test_quart_routes_cap_request_bodies() -> None:
    """``/customer/block`` and the other Quart routes read bodies too: they are capped (413)."""
    from trioproxy.proxy import create_app

    raw = {"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
           "litellm_settings": {"callbacks": ["blocked_user_check"], "blocked_user_list": []},
           "general_settings": {"master_key": "sk-master-0000000000"}}
    app = create_app(parse_config(raw, "<test>", Path.cwd()))
    async with app.test_app():
        client = app.test_client()
        big = await client.post("/customer/block", data=b"x" * (1024 * 1024 + 1),
                                headers={"Authorization": "Bearer sk-master-0000000000",
                                         "Content-Type": "application/json"})
        assert big.status_code == 413
        assert (await big.get_json())["error"]["code"] == "413"
        small = await client.post("/customer/block", json={"user_ids": ["u1"]},
                                  headers={"Authorization": "Bearer sk-master-0000000000"})
        assert small.status_code == 200
