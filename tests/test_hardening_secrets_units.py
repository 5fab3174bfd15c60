"""Unit tests behind tests/test_hardening_secrets.py: the scrubber, URL masking, the litellm_params
lists, the loader's path rules, and the callback-error rate limit under an injected clock."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import trio

from trioproxy.config import MODEL_PARAMS, ConfigError, parse_config
from trioproxy.config.deployment_params import (
    IMPLEMENTED,
    LITELLM_NOT_IMPLEMENTED,
    OPENAI_REQUEST_FIELDS,
    looks_like_credential,
)
from trioproxy.errors import APIError, HookCrashedError, HTTPException, from_http_exception
from trioproxy.hooks.loader import HandlerLoadError, check_dotted_path
from trioproxy.masking import SecretScrubber, mask_secret, mask_url, url_secrets
from trioproxy.observability.callbacks import Callback
from trioproxy.observability.error_throttle import Admitted, ErrorThrottle
from trioproxy.observability.payload import LogEvent
from trioproxy.observability.sink import LoggingSink
from trioproxy.upstream.errors import MAX_ERROR_MESSAGE, upstream_error

KEY = "sk-unit-SECRET-0123456789abcdef"
scrubber = SecretScrubber([KEY])


# -- masking ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["abcdef", "x" * 12, "sk-" + "y" * 10, KEY, "z" * 200])
def test_a_masked_secret_shows_at_most_four_characters_at_each_end(secret: str) -> None:
    masked = mask_secret(secret)
    start, _, end = masked.partition("...")
    assert len(start) <= 4 and len(end) <= 4
    assert secret not in masked


def test_mask_url_hides_userinfo_and_every_query_value() -> None:
    url = f"https://alice:pw-{KEY}@gw.example:8443/v1?key={KEY}&api-version=2024-02-01&empty="
    assert mask_url(url) == (f"https://***@gw.example:8443/v1?key={mask_secret(KEY)}&api-version=****&empty=")
    assert mask_url("https://api.openai.com/v1") == "https://api.openai.com/v1"
    assert set(url_secrets(url)) >= {f"alice:pw-{KEY}", f"pw-{KEY}", KEY, "2024-02-01"}
    assert url_secrets("https://api.openai.com/v1") == []


def test_scrub_value_returns_the_same_object_when_clean_and_never_mutates() -> None:
    clean = {"a": [1, "two", {"b": "three"}], "c": ("x",)}
    assert scrubber.scrub_value(clean) is clean
    dirty = {"a": [1, {"b": f"key {KEY}"}], "keep": clean, KEY: "as a key"}
    out = scrubber.scrub_value(dirty)
    assert out["a"][1]["b"] == f"key {mask_secret(KEY)}" and out["keep"] is clean
    assert mask_secret(KEY) in out and KEY not in out
    assert dirty["a"][1]["b"] == f"key {KEY}"           # the caller's object is untouched


def test_scrub_error_cleans_every_field_and_the_whole_chain() -> None:
    upstream = APIError(f"echo {KEY}", param=KEY, code=KEY)
    try:
        try:
            raise OSError(5, f"connect {KEY}", f"/run/{KEY}")
        except OSError as inner:
            raise ValueError(f"wrapped {KEY}") from inner
    except ValueError as exc:
        handler_error = exc
    crashed = HookCrashedError("h", "a hook", handler_error)
    crashed.__context__ = from_http_exception(HTTPException(400, {"error": f"detail {KEY}"}))
    crashed.__context__.__cause__.add_note(f"note {KEY}")   # type: ignore[union-attr]
    group = ExceptionGroup("g", [upstream, crashed])
    scrubber.scrub_error(group)

    seen: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        e = pending.pop()
        seen.append(e)
        pending += [x for x in (e.__cause__, e.__context__, getattr(e, "original", None)) if x is not None]
        if isinstance(e, BaseExceptionGroup):
            pending += list(e.exceptions)
    texts = [repr(e.args) + repr(vars(e)) + str(e) for e in seen]
    texts.append(repr(handler_error.__cause__.strerror) + repr(handler_error.__cause__.filename))  # type: ignore[union-attr]
    assert {type(e).__name__ for e in seen} >= {"ExceptionGroup", "APIError", "HookCrashedError", "ValueError",
                                                "OSError", "BadRequestError", "HTTPException"}
    assert not [t for t in texts if KEY in t]
    assert upstream.param == upstream.code == mask_secret(KEY)


def test_upstream_error_scrubs_param_and_code_and_keeps_only_a_json_message() -> None:
    config = parse_config({"model_list": [{"model_name": "m", "litellm_params": {
        "model": "openai/up", "api_base": f"http://10.1.2.3:8000/v1?key={KEY}"}}]}, "<t>", Path.cwd())
    dep = config.deployments[0]
    body = (f'{{"error": {{"message": "bad key {KEY}", "param": "{KEY}", "code": 401}}}}').encode()
    err = upstream_error(401, body, dep, scrubber)
    assert (err.message, err.param, err.code) == (f"Upstream openai/up error: bad key {mask_secret(KEY)}",
                                                  mask_secret(KEY), "401")
    html = upstream_error(502, b"<html>Traceback http://10.1.2.3/admin</html>", dep, scrubber)
    assert html.message == "Upstream openai/up error: the upstream answered HTTP 502 (Bad Gateway) without an error message"
    long = upstream_error(400, b'{"error": {"message": "' + b"m" * 5000 + b'"}}', dep, scrubber)
    assert len(long.message) <= len("Upstream openai/up error: ") + MAX_ERROR_MESSAGE + 2


# -- the litellm_params lists ------------------------------------------------------------------------


def test_the_lists_do_not_overlap_and_name_what_they_should() -> None:
    assert not set(IMPLEMENTED) & OPENAI_REQUEST_FIELDS
    assert not set(IMPLEMENTED) & LITELLM_NOT_IMPLEMENTED
    assert not OPENAI_REQUEST_FIELDS & LITELLM_NOT_IMPLEMENTED
    assert set(IMPLEMENTED) | OPENAI_REQUEST_FIELDS == set(MODEL_PARAMS.fields)   # the validator knows them all
    assert not [name for name in OPENAI_REQUEST_FIELDS if looks_like_credential(name)]
    assert {"temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "presence_penalty",
            "frequency_penalty", "logit_bias", "response_format", "tools", "tool_choice", "user", "n", "logprobs",
            "top_logprobs", "parallel_tool_calls", "reasoning_effort"} <= OPENAI_REQUEST_FIELDS
    assert {"api_version", "azure_ad_token", "litellm_credential_name", "tags", "rpm", "tpm",
            "aws_secret_access_key", "aws_region_name", "vertex_credentials", "vertex_project"} <= LITELLM_NOT_IMPLEMENTED


@pytest.mark.parametrize(("name", "credential"), [
    ("aws_secret_access_key", True), ("azure_ad_token", True), ("vertex_credentials", True),
    ("my_api_key", True), ("apikey", True), ("monkey", False), ("api-key", True), ("azure_password", True), ("client_secret", True),
    ("aws_session_token", True), ("private_key", True),
    ("max_tokens", False), ("max_completion_tokens", False), ("top_logprobs", False), ("top_k", False),
    ("temperature", False), ("tags", False), ("aws_region_name", False),
])
def test_looks_like_credential(name: str, credential: bool) -> None:
    assert looks_like_credential(name) is credential


def _params(**params: Any) -> Any:
    return parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/x", **params}}]},
                        "cfg.yaml", Path.cwd())


def test_ignored_credential_settings_are_known_to_the_scrubber_and_not_sent() -> None:
    config = _params(aws_secret_access_key="aws-SECRET-xyz-123", temperature=0.1,
                     vertex_credentials={"private_key": "pk-SECRET-456", "project_id": "p"})
    dep = config.deployments[0]
    assert dep.extra_params == {"temperature": 0.1}
    secrets = config.secrets()
    assert "aws-SECRET-xyz-123" in secrets and "pk-SECRET-456" in secrets and "p" not in secrets
    assert all("does not implement yet" in w for w in config.warnings) and len(config.warnings) == 2


def test_organization_becomes_a_header_and_a_query_survives_the_endpoint() -> None:
    dep = _params(organization="org-1", api_base=f"https://gw.example/v1/?key={KEY}").deployments[0]
    assert dep.extra_headers == {"OpenAI-Organization": "org-1"}
    assert dep.url("chat/completions") == f"https://gw.example/v1/chat/completions?key={KEY}"
    assert dep.public_label == "openai/x" and "gw.example" not in dep.public_label


def test_an_unknown_key_lists_no_values() -> None:
    with pytest.raises(ConfigError) as info:
        _params(aws_secret_acess_key="aws-SECRET-typo-789")
    text = "\n".join(info.value.problems)
    assert "did you mean 'aws_secret_access_key'?" in text and "aws-SECRET-typo-789" not in text


# -- the loader's paths --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/etc/evil.handler", "C:\\evil.handler", "./a.b", "../a.b", "a..b",
                                  ".a.b", "a-b.c", "a.b c", "nodots"])
def test_only_module_paths(path: str) -> None:
    with pytest.raises(HandlerLoadError):
        check_dotted_path(path)


@pytest.mark.parametrize("path", ["custom_callbacks.proxy_handler_instance", "pkg.sub.module.Handler", "é.x"])
def test_module_paths_pass(path: str) -> None:
    check_dotted_path(path)


# -- the callback error rate limit, with an injected clock ------------------------------------------


def test_error_throttle_first_in_full_then_one_line_per_interval() -> None:
    now = [0.0]
    throttle = ErrorThrottle(60.0, clock=lambda: now[0])
    assert throttle.admit("cb") == Admitted(first=True, suppressed=0)
    assert throttle.admit("other") == Admitted(first=True, suppressed=0)     # per callback
    now[0] = 59.9
    assert [throttle.admit("cb") for _ in range(3)] == [None, None, None]
    now[0] = 60.0
    assert throttle.admit("cb") == Admitted(first=False, suppressed=3)
    now[0] = 100.0
    assert throttle.admit("cb") is None
    assert list(throttle.pending()) == [("cb", 1)] and list(throttle.pending()) == []
    assert ErrorThrottle(0.0, clock=lambda: 0.0).admit("cb") == Admitted(first=True, suppressed=0)


async def test_logging_sink_rate_limit(caplog: pytest.LogCaptureFixture) -> None:
    """A callback raising on each of 6 events at chosen clock readings: the first logged with its
    traceback, then one line per 60 s carrying the count; every error counted."""
    from test_logging_sink import success

    now = [0.0]

    def broken(kwargs: Any, response: Any, start: Any, end: Any) -> None:
        raise ValueError(f"callback bug {KEY}")

    errors: list[tuple[str, str]] = []
    sink = LoggingSink([Callback("bad.fn", "successful_api_call", broken, False, "event")],
                       scrubber=scrubber, clock=lambda: now[0],
                       on_callback_error=lambda name, reason: errors.append((name, reason)))
    caplog.set_level(logging.ERROR, logger="trioproxy.logging")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.run)
        for at in (0.0, 1.0, 30.0, 59.0, 61.0, 62.0):
            now[0] = at
            event: LogEvent = success()
            sink.submit(event)
            await event.done.wait()
        await sink.drain(5)
        nursery.cancel_scope.cancel()
    lines = [r.getMessage() for r in caplog.records if r.name == "trioproxy.logging"]
    assert len(errors) == 6 and sink.callback_errors == 6
    assert len(lines) == 3
    assert lines[0].startswith("logging callback bad.fn raised on successful_api_call")
    assert "Traceback (most recent call last)" in lines[0]
    assert f"ValueError: callback bug {mask_secret(KEY)}" in lines[0]
    assert lines[1].startswith("logging callback bad.fn raised again on successful_api_call")
    assert lines[1].endswith(f"ValueError: callback bug {mask_secret(KEY)} "
                             "(3 more errors not logged in the last 60 s)")
    assert "Traceback" not in lines[1]
    assert lines[2] == "logging callback bad.fn: 1 more errors since the last one logged"   # at shutdown
    assert not [line for line in lines if KEY in line]
    assert all(r.exc_info is None for r in caplog.records)     # nothing left to format on the Trio thread
