"""Secrets masked everywhere (``trioproxy/masking.py``): the scrubber, URL masking, and the places a
configured secret could surface (a deployment's label, an upstream error, a log record).

End to end, through a real ``trioproxy run``: ``e2e/test_secrets_never_leak.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from support.inprocess import call, chat_body, make_pipeline
from trioproxy.config import parse_config
from trioproxy.errors import (
    APIError,
    HookCrashedError,
    HTTPException,
    from_http_exception,
)
from trioproxy.masking import SecretScrubber, mask_secret, mask_url, url_secrets
from trioproxy.observability.payload import standard_logging_object
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














# -- the loader's paths --------------------------------------------------------------------------------






# -- the callback error rate limit, with an injected clock ------------------------------------------






# -- secrets in labels, log records, errors -----------------------------------------------------

URL_PASSWORD = "urlpass-SECRET-4242"


CRED_BASE = f"http://alice:{URL_PASSWORD}@upstream.test/v1"


HEADER_SECRET = "azure-header-SECRET-777"


def _config(**params: Any) -> Any:
    raw = {"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/x", **params}}]}
    return parse_config(raw, "<test>", Path.cwd())


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
