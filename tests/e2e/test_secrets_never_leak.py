"""Secrets never leak, and loading is safe (issue #8, items 1–7 and 16): each through a real ``trioproxy run``.

The fake upstream (``tests/support/fake_upstream.py``) plays the unlucky or hostile upstream: it
echoes the key it received in every field of its error, answers with HTML tracebacks, and echoes
the query string of ``api_base``. Handlers and logging callbacks written next to the config record
what they were handed (one JSON line each) to a file named by an environment variable; each test
stops the proxy with SIGTERM before reading it (the graceful shutdown drains the logging queue), so
"nothing leaked anywhere" is asserted on complete files, without sleeping.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_upstream import Behavior, FakeUpstream
from support.proxy_process import ProxyProcess, write_config
from trioproxy.masking import mask_secret

#: a secret in the query of api_base (Gemini-style gateways) and one in its userinfo
QUERY_SECRET = "qk-QUERY-SECRET-5566778899aabbcc"
USERINFO_SECRET = "pw-USERINFO-SECRET-1122334455"
#: a key a handler's exception carries in a chained cause (as a transport error naming a URL would)
CHAINED_SECRET = "sk-upstream-SECRET-0123456789abcdef"   # the upstream key itself: the scrubber knows it

RECORDER = '''
import json
import os
import threading
import traceback

from trioproxy import CustomLogger

_lock = threading.Lock()
PATH = os.environ["TRIOPROXY_TEST_EVENTS"]


def record(kind, **fields):
    with _lock, open(PATH, "a") as f:
        f.write(json.dumps({"kind": kind, **fields}, default=repr) + "\\n")


def chain(exc):
    """Every text of an exception and its causes, as a hook could read them."""
    out, seen = [], set()
    pending = [exc]
    while pending:
        e = pending.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        out.append({"type": type(e).__name__, "str": str(e), "repr": repr(e), "args": repr(e.args),
                    "fields": {k: repr(getattr(e, k, None)) for k in ("message", "param", "code", "detail")}})
        pending += [e.__cause__, e.__context__, getattr(e, "original", None)]
    return out


class Recorder(CustomLogger):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        if (data.get("metadata") or {}).get("case") == "chained":
            try:
                raise ConnectionError("connecting to https://gw.internal/v1?key=" + os.environ["TP_CHAINED"])
            except ConnectionError as cause:
                raise RuntimeError("handler failed: " + os.environ["TP_CHAINED"]) from cause

    async def async_post_call_failure_hook(self, request_data, original_exception, user_api_key_dict,
                                           traceback_str):
        record("failure_hook", chain=chain(original_exception), traceback=traceback_str,
               formatted="".join(traceback.format_exception(original_exception)))

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        exc = kwargs["exception"]
        record("log_failure", chain=chain(exc), traceback=kwargs["traceback_exception"],
               formatted="".join(traceback.format_exception(exc)),
               record=kwargs["standard_logging_object"], api_base=kwargs["litellm_params"]["api_base"],
               additional=kwargs["additional_args"]["api_base"])


handler = Recorder()


def on_failure(kwargs, completion_response, start_time, end_time):
    record("failure_fn", record=kwargs["standard_logging_object"], exception=repr(kwargs["exception"]),
           traceback=kwargs["traceback_exception"])
'''

CALLBACKS = {"callbacks": ["recorder.handler"], "failure_callback": ["recorder.on_failure"], "num_retries": 0}


def _start(start_proxy: Any, tmp_path: Path, config: dict[str, Any], *, args: list[str] | None = None,
           env: dict[str, str] | None = None) -> tuple[ProxyProcess, Path]:
    events = tmp_path / "events.jsonl"
    proxy = start_proxy(config, files={"recorder.py": RECORDER},
                        env={"TRIOPROXY_TEST_EVENTS": str(events), "TP_CHAINED": CHAINED_SECRET, **(env or {})},
                        args=["--log-format", "json", *(args or [])])
    return proxy, events


def _stop(proxy: ProxyProcess, events: Path) -> tuple[list[dict[str, Any]], str]:
    assert proxy.terminate(signal.SIGTERM) == 0
    text = events.read_text() if events.exists() else ""
    return [json.loads(line) for line in text.splitlines()], proxy.logs()


def _post(proxy: ProxyProcess, body: dict[str, Any], path: str = "/chat/completions") -> httpx.Response:
    return httpx.post(f"{proxy.url}{path}", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"},
                      timeout=30)


def _chat(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": "hello"}], **extra}


def _assert_nowhere(secrets: tuple[str, ...], *texts: str) -> None:
    for secret in secrets:
        for text in texts:
            assert secret not in text, f"{secret[:6]}… leaked: …{text[max(0, text.find(secret) - 80):][:200]}…"


# -- 1. every field of every error envelope, log line and callback payload ---------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_echoing_the_key_in_every_field_reaches_nobody(
        start_proxy: Any, fake_upstream: FakeUpstream, tmp_path: Path, stream: bool) -> None:
    """OpenAI echoes the key ("Incorrect API key provided: sk-…"); this upstream also puts it in
    ``param`` and ``code``. The client's envelope, the JSON log line, ``standard_logging_object``
    (``error_code`` included), the exception and traceback handed to failure hooks and logging
    callbacks: all masked, at most 4 characters of the key at each end."""
    fake_upstream.set_behavior("up-model", Behavior(
        status=401, echo=True, error_type="invalid_request_error",
        error_message="Incorrect API key provided: {key}. You can find your API key at …",
        error_param="{key}", error_code="{key}"))
    config = {"model_list": [upstream_model(fake_upstream)], "litellm_settings": CALLBACKS,
              "general_settings": {"master_key": MASTER_KEY}}
    proxy, events = _start(start_proxy, tmp_path, config)
    response = _post(proxy, _chat(stream=stream))
    recorded, logs = _stop(proxy, events)

    assert response.status_code == 401
    error = response.json()["error"]
    masked = mask_secret(UPSTREAM_KEY)
    assert masked == f"{UPSTREAM_KEY[:3]}...{UPSTREAM_KEY[-4:]}"    # at most 4 characters at each end
    assert error["param"] == masked and error["code"] == masked
    assert error["message"].startswith(f"Upstream openai/up-model error: Incorrect API key provided: {masked}.")
    _assert_nowhere((UPSTREAM_KEY, UPSTREAM_KEY[3:-4]), response.text, logs, events.read_text())

    kinds = {r["kind"]: r for r in recorded}
    assert set(kinds) == {"failure_hook", "log_failure", "failure_fn"}
    assert kinds["log_failure"]["record"]["error_code"] == masked
    assert kinds["failure_fn"]["record"]["error_code"] == masked
    assert masked in kinds["failure_hook"]["traceback"] and masked in kinds["log_failure"]["traceback"]
    request_lines = [json.loads(line) for line in logs.splitlines()
                     if line.startswith("{") and json.loads(line).get("logger") == "trioproxy.requests"]
    assert [line["error_code"] for line in request_lines] == [masked]


def test_a_handlers_chained_causes_are_scrubbed_for_hooks_and_callbacks(
        start_proxy: Any, fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    """A handler raises ``RuntimeError(… key …) from ConnectionError(url with the key)``: the
    exception objects (and their ``__cause__``/``__context__``) that failure hooks and logging
    callbacks receive, and every traceback text, are clean — ``str()``, ``args`` and tracebacks
    formatted by the callback itself included."""
    config = {"model_list": [upstream_model(fake_upstream)], "litellm_settings": CALLBACKS,
              "general_settings": {"master_key": MASTER_KEY}}
    proxy, events = _start(start_proxy, tmp_path, config)
    response = _post(proxy, _chat(metadata={"case": "chained"}))
    recorded, logs = _stop(proxy, events)

    assert response.status_code == 500 and response.json()["error"]["code"] == "hook_error"
    _assert_nowhere((CHAINED_SECRET,), response.text, logs, events.read_text())
    hook = next(r for r in recorded if r["kind"] == "failure_hook")
    types = [link["type"] for link in hook["chain"]]
    assert types[:2] == ["RuntimeError", "ConnectionError"]          # the hook sees the handler's own chain
    assert mask_secret(CHAINED_SECRET) in hook["chain"][1]["str"]
    assert "ConnectionError: connecting to https://gw.internal/v1?key=" in hook["formatted"]
    logged = next(r for r in recorded if r["kind"] == "log_failure")
    assert {"HookCrashedError", "RuntimeError", "ConnectionError"} <= {link["type"] for link in logged["chain"]}


# -- 2. secrets in api_base: query values and userinfo -----------------------------------------------


def test_api_base_query_and_userinfo_secrets_are_masked_and_clients_never_see_the_host(
        start_proxy: Any, fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    """``http://user:SECRET@host/v1?key=SECRET``: requests go to ``/v1/chat/completions?key=…``; an
    upstream echoing its URL, a refused connection, the logs, the callbacks and ``trioproxy check``
    never show either secret; client errors never name the host (operators see it, masked)."""
    host = f"127.0.0.1:{fake_upstream.port}"
    base = f"http://alice:{USERINFO_SECRET}@{host}/v1?key={QUERY_SECRET}"
    refused = f"http://alice:{USERINFO_SECRET}@127.0.0.1:9/v1?key={QUERY_SECRET}"
    fake_upstream.set_behavior("up-model", Behavior(status=400, echo=True,
                                                    error_message="bad request to {target}"))
    config = {"model_list": [
        {"model_name": "gpt-test", "litellm_params": {"model": "openai/up-model", "api_base": base,
                                                       "api_key": UPSTREAM_KEY}},
        {"model_name": "down", "litellm_params": {"model": "openai/down-model", "api_base": refused,
                                                   "api_key": UPSTREAM_KEY}},
    ], "litellm_settings": CALLBACKS, "general_settings": {"master_key": MASTER_KEY}}
    proxy, events = _start(start_proxy, tmp_path, config)
    echoed = _post(proxy, _chat())
    unreachable = _post(proxy, {**_chat(), "model": "down"})
    unreachable_stream = _post(proxy, {**_chat(stream=True), "model": "down"})
    recorded, logs = _stop(proxy, events)

    # the query survived the endpoint being appended: the key reached the upstream
    assert fake_upstream.requests[0].path == "/v1/chat/completions"
    assert fake_upstream.requests[0].query == f"key={QUERY_SECRET}"
    assert echoed.status_code == 400
    assert echoed.json()["error"]["message"] == (
        f"Upstream openai/up-model error: bad request to /v1/chat/completions?key={mask_secret(QUERY_SECRET)}")
    for response in (unreachable, unreachable_stream):
        assert response.status_code == 502
        assert response.json()["error"]["message"].startswith(
            "Could not reach the upstream openai/down-model for model 'down'")
    for response in (echoed, unreachable, unreachable_stream):
        assert "127.0.0.1" not in response.text and "alice" not in response.text
    _assert_nowhere((QUERY_SECRET, USERINFO_SECRET), echoed.text, unreachable.text, logs, events.read_text())

    masked_base = f"http://***@{host}/v1?key={mask_secret(QUERY_SECRET)}"
    logged = [r for r in recorded if r["kind"] == "log_failure"]
    assert logged[0]["api_base"] == logged[0]["additional"] == logged[0]["record"]["api_base"] == masked_base
    assert logged[0]["record"]["deployment"] == f"openai/up-model at {masked_base}"
    assert "http://***@127.0.0.1:9/v1" in logs                      # operators see where it went

    check = subprocess.run([sys.executable, "-m", "trioproxy", "check", str(proxy.config_path)],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                           env={**os.environ, "TRIOPROXY_TEST_EVENTS": str(events)})
    assert check.returncode == 0, check.stderr
    assert masked_base in check.stdout
    _assert_nowhere((QUERY_SECRET, USERINFO_SECRET, UPSTREAM_KEY), check.stdout, check.stderr)


# -- 3. litellm_params: an allowlist, never a credential in a body -----------------------------------

AWS_SECRET = "aws-SECRET-ACCESS-KEY-0099887766"
AZURE_TOKEN = "azure-AD-TOKEN-SECRET-5544332211"
VERTEX_PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----VERTEX-SECRET-77"


def test_only_openai_parameters_travel_upstream_and_litellm_settings_warn(
        start_proxy: Any, fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    params = {
        # OpenAI request parameters: body defaults
        "temperature": 0.25, "max_tokens": 64, "seed": 7, "stop": ["END"],
        # explicit extra body fields (vLLM's top_k)
        "extra_body": {"top_k": 40},
        # LiteLLM deployment settings another provider reads, or trioproxy does not implement, and
        # routing settings: warned (the first two kinds), never sent
        "api_version": "2024-02-01", "aws_region_name": "eu-west-1", "aws_secret_access_key": AWS_SECRET,
        "azure_ad_token": AZURE_TOKEN, "litellm_credential_name": "prod-azure", "tags": ["eu"],
        "vertex_credentials": json.dumps({"type": "service_account", "private_key": VERTEX_PRIVATE_KEY}),
        "rpm": 100,
    }
    config = {"model_list": [upstream_model(fake_upstream, **params)],
              # litellm_credential_name names one (config/credentials.py: its values fill the deployment's)
              "credential_list": [{"credential_name": "prod-azure", "credential_values": {"organization": "org-1"}}],
              "general_settings": {"master_key": MASTER_KEY}, "litellm_settings": {"num_retries": 0}}
    proxy, events = _start(start_proxy, tmp_path, config)
    ok = _post(proxy, _chat(temperature=0.9))
    _, logs = _stop(proxy, events)

    assert ok.status_code == 200, ok.text
    sent = fake_upstream.requests[0]
    assert sent.json["temperature"] == 0.9                   # the client's value wins over the default
    assert sent.json["max_tokens"] == 64 and sent.json["seed"] == 7 and sent.json["stop"] == ["END"]
    assert sent.json["top_k"] == 40
    for name in ("api_version", "aws_region_name", "aws_secret_access_key", "azure_ad_token", "tags",
                 "litellm_credential_name", "vertex_credentials", "rpm", "extra_body"):
        assert name not in sent.json
    wire = sent.body.decode() + json.dumps(sent.headers)
    _assert_nowhere((AWS_SECRET, AZURE_TOKEN, VERTEX_PRIVATE_KEY), wire, logs)
    for name, readers in (("api_version", "azure/"), ("aws_secret_access_key", "bedrock/"),
                          ("azure_ad_token", "azure/"), ("vertex_credentials", "vertex_ai/")):
        assert f"litellm_params.{name}: read by {readers} models only; ignored for 'openai/up-model'" in logs
    assert sent.headers.get("openai-organization") == "org-1"   # the credential's value, as a setting


@pytest.mark.parametrize(("params", "expected"), [
    ({"temprature": 0.2}, "litellm_params.temprature: unknown key 'temprature'; did you mean 'temperature'?"),
    ({"aws_secret_acess_key": AWS_SECRET}, "did you mean 'aws_secret_access_key'?"),
    ({"top_k": 40}, "unknown key 'top_k'"),
    ({"extra_body": {"upstream_api_key": AWS_SECRET}},
     "extra_body.upstream_api_key: looks like a credential; a credential is never sent in a request body"),
    ({"extra_body": {"stream": True}}, "extra_body.stream: 'stream' is the request's own field"),
])
def test_unknown_or_credential_like_litellm_params_stop_startup(
        tmp_path: Path, fake_upstream: FakeUpstream, params: dict[str, Any], expected: str) -> None:
    path = write_config(tmp_path, {"model_list": [upstream_model(fake_upstream, **params)]})
    result = subprocess.run([sys.executable, "-m", "trioproxy", "run", str(path), "--port", "0"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert result.returncode == 1
    assert expected in result.stderr
    assert AWS_SECRET not in result.stderr + result.stdout


# -- 4. upstream error bodies: the message, bounded; never a page or a traceback ---------------------

HTML_TRACEBACK = (b"<html><body><h1>500 Internal Server Error</h1><pre>Traceback (most recent call last):\n"
                  b'  File "/srv/app/handlers.py", line 12, in chat\n    conn = connect("http://10.0.0.7:8500/admin")\n'
                  b"RuntimeError: database password=db-SECRET</pre></body></html>")


@pytest.mark.parametrize(("behavior", "expected"), [
    (Behavior(status=500, raw_error_body=HTML_TRACEBACK),
     "Upstream openai/up-model error: the upstream answered HTTP 500 (Internal Server Error) without an error message"),
    (Behavior(status=503, raw_error_body=b"Traceback (most recent call last):\n  File \"x.py\"\nKeyError: 'x'",
              raw_error_content_type="text/plain"),
     "Upstream openai/up-model error: the upstream answered HTTP 503 (Service Unavailable) without an error message"),
    (Behavior(status=500, error_message="Traceback (most recent call last):\n  File \"/srv/app.py\", line 3"),
     "Upstream openai/up-model error: the upstream answered HTTP 500 (Internal Server Error) without an error message"),
])
def test_a_non_json_or_traceback_error_body_becomes_a_generic_message(
        start_proxy: Any, fake_upstream: FakeUpstream, tmp_path: Path, behavior: Behavior, expected: str) -> None:
    fake_upstream.set_behavior("up-model", behavior)
    config = {"model_list": [upstream_model(fake_upstream)], "litellm_settings": CALLBACKS,
              "general_settings": {"master_key": MASTER_KEY}}
    proxy, events = _start(start_proxy, tmp_path, config)
    plain = _post(proxy, _chat())
    streamed = _post(proxy, _chat(stream=True))
    recorded, logs = _stop(proxy, events)
    for response in (plain, streamed):
        assert response.status_code == behavior.status
        assert response.json()["error"]["message"] == expected
        for leak in ("Traceback", "10.0.0.7", "db-SECRET", "<html", "/srv/app"):
            assert leak not in response.text
    for leak in ("10.0.0.7", "db-SECRET", "<html"):
        assert leak not in events.read_text()


def test_an_upstream_error_message_is_bounded(start_proxy: Any, fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    fake_upstream.set_behavior("up-model", Behavior(status=400, error_message="too long " * 1000,
                                                    error_code="x" * 5000))
    config = {"model_list": [upstream_model(fake_upstream)], "general_settings": {"master_key": MASTER_KEY}}
    proxy = start_proxy(config)
    error = _post(proxy, _chat()).json()["error"]
    assert error["message"].startswith("Upstream openai/up-model error: too long too long")
    assert error["message"].endswith(" …")
    assert len(error["message"]) <= len("Upstream openai/up-model error: ") + 1000 + 2
    assert len(error["code"]) <= 202


# -- 5. the loader: module paths only, objects with hooks ---------------------------------------------

EVIL = "import pathlib\npathlib.Path(__file__).with_name('EXECUTED').write_text('yes')\nhandler = object()\n"


@pytest.mark.parametrize(("key", "path", "expected"), [
    ("callbacks", "{evil_dir}/evil.handler", "is a filesystem path; name a module instead"),
    ("callbacks", "./evil.handler", "is a filesystem path"),
    ("callbacks", "..evil.handler", "is a relative path"),
    ("callbacks", ".evil.handler", "is a relative path"),
    ("callbacks", "os.system", "is a built-in function, not a handler object"),
    ("callbacks", "builtins.eval", "is a built-in function, not a handler object"),
    ("callbacks", "os.path", "is a module (posixpath), not a handler object"),
    ("callbacks", "helpers.plain_function", "is a function, not a handler object"),
    ("callbacks", "helpers.nothing", "defines none of the hooks the proxy calls"),
    ("success_callback", "os.getpid", "is a built-in function of Python, not a logging callback"),
    ("success_callback", "{evil_dir}/evil.handler", "is a filesystem path"),
])
def test_the_loader_refuses_paths_builtins_modules_and_functions_where_a_handler_belongs(
        tmp_path: Path, key: str, path: str, expected: str) -> None:
    evil_dir = tmp_path / "elsewhere"
    evil_dir.mkdir()
    (evil_dir / "evil.py").write_text(EVIL)
    (tmp_path / "cfg" / "evil.py").parent.mkdir()
    (tmp_path / "cfg" / "evil.py").write_text(EVIL)
    config = {"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
              "litellm_settings": {key: [path.format(evil_dir=evil_dir)]}}
    files = {"helpers.py": "def plain_function(data):\n    return data\n\nnothing = 42\n"}
    config_path = write_config(tmp_path / "cfg", config, files=files)
    result = subprocess.run([sys.executable, "-m", "trioproxy", "run", str(config_path), "--port", "0"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                            cwd=tmp_path / "cfg")
    assert result.returncode == 1, result.stderr
    assert expected in result.stderr
    assert f"litellm_settings.{key}[0]" in result.stderr
    assert not (evil_dir / "EXECUTED").exists() and not (tmp_path / "cfg" / "EXECUTED").exists()


def test_function_callbacks_and_handler_classes_still_load(start_proxy: Any, tmp_path: Path) -> None:
    """The legitimate cases: a function under success_callback, a handler instance and a handler
    class (instantiated) under callbacks, a module in a package next to the config."""
    files = {"helpers.py": textwrap.dedent("""
        from trioproxy import CustomLogger

        def on_success(kwargs, completion_response, start_time, end_time):
            pass

        class Header(CustomLogger):
            async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response):
                return {"x-hardening": "class"}
        """)}
    (tmp_path / "proxy0" / "pkg").mkdir(parents=True)
    (tmp_path / "proxy0" / "pkg" / "__init__.py").write_text("")
    (tmp_path / "proxy0" / "pkg" / "inner.py").write_text(textwrap.dedent("""
        class Instance:
            async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response):
                return {"x-package": "instance"}
        handler = Instance()
        """))
    config = {"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
              "litellm_settings": {"callbacks": ["helpers.Header", "pkg.inner.handler"],
                                   "success_callback": ["helpers.on_success"]},
              "general_settings": {"master_key": MASTER_KEY}}
    proxy = start_proxy(config, files=files)
    response = _post(proxy, {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    assert response.headers["x-hardening"] == "class" and response.headers["x-package"] == "instance"


# -- 6. no open redirect -----------------------------------------------------------------------------


def test_doubled_slashes_are_normalised_and_nothing_redirects_to_the_host_header(start_proxy: Any) -> None:
    proxy = start_proxy(None)          # embedded defaults: fake models, no key
    evil = {"Host": "evil.example"}
    with httpx.Client(base_url=proxy.base_url, follow_redirects=False, timeout=30) as client:
        models = client.get("//v1//models", headers=evil)
        chat = client.post("//v1//chat/completions", headers=evil,
                           json={"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]})
        trailing = client.get("/v1/models/", headers=evil)
        unknown = client.get("//nowhere//at/all", headers=evil)
    for response in (models, chat, trailing, unknown):
        assert not 300 <= response.status_code < 400
        assert "location" not in response.headers
        assert "evil.example" not in response.text
    assert models.status_code == 200 and models.json()["object"] == "list"
    assert chat.status_code == 200 and chat.json()["object"] == "chat.completion"
    assert trailing.status_code == 200
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "route_not_found"


# -- 7. an exposed proxy needs a real master key -----------------------------------------------------


def _run(config_path: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "trioproxy", "run", *([str(config_path)] if config_path else []),
               "--port", "0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          cwd=config_path.parent if config_path else None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20"])
@pytest.mark.parametrize("master_key", [None, "sk-1234"])
def test_a_non_loopback_address_without_a_strong_master_key_refuses_to_start(
        tmp_path: Path, host: str, master_key: str | None) -> None:
    config: dict[str, Any] = {"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}]}
    if master_key:
        config["general_settings"] = {"master_key": master_key}
    result = _run(write_config(tmp_path, config), "--host", host)
    assert result.returncode == 2
    assert f"refusing to listen on {host}" in result.stderr
    assert "--allow-insecure" in result.stderr and "at least 8 characters" in result.stderr
    assert ("no general_settings.master_key is set" if master_key is None else
            "the master key is shorter than 8 characters") in result.stderr
    assert "sk-1234" not in result.stderr
    assert "listening" not in result.stdout


def test_allow_insecure_starts_on_all_interfaces_with_a_warning(start_proxy: Any) -> None:
    proxy = start_proxy(None, args=["--host", "0.0.0.0", "--allow-insecure"])
    assert proxy.base_url.startswith("http://0.0.0.0:")
    port = proxy.base_url.rsplit(":", 1)[1]
    assert httpx.get(f"http://127.0.0.1:{port}/health/liveliness", timeout=30).status_code == 200
    assert "--allow-insecure: listening on 0.0.0.0" in proxy.logs()


def test_a_strong_key_starts_anywhere_and_loopback_starts_with_a_warning(start_proxy: Any) -> None:
    strong = {"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
              "general_settings": {"master_key": MASTER_KEY}}
    exposed = start_proxy(strong, args=["--host", "0.0.0.0"])
    assert "NO master_key" not in exposed.logs() and "refusing" not in exposed.logs()
    weak = {**strong, "general_settings": {"master_key": "sk-1234"}}
    loopback_weak = start_proxy(weak)
    assert "THE master_key IS SHORTER THAN 8 CHARACTERS" in loopback_weak.logs()
    loopback_open = start_proxy(None)
    assert "NO master_key IS SET" in loopback_open.logs()


# -- 16. a raising logging callback: rate-limited, formatted off the request path --------------------

RAISING = '''
def broken(kwargs, completion_response, start_time, end_time):
    raise ValueError("callback bug with key " + kwargs["litellm_params"]["metadata"]["echo"])
'''


def test_a_callback_raising_on_every_request_is_logged_once_in_full_then_counted(
        start_proxy: Any, tmp_path: Path) -> None:
    """Five failing deliveries: one traceback (scrubbed), the rest counted and reported at
    shutdown. The interval is set far beyond the test's duration, so the outcome does not depend
    on how fast the machine is (the timing rule itself is tested with an injected clock:
    observability/test_logging_sink.py::test_logging_sink_rate_limit)."""
    config = {"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
              "litellm_settings": {"success_callback": ["raising.broken"]},
              "general_settings": {"master_key": MASTER_KEY, "callback_error_log_interval": 1e9}}
    proxy = start_proxy(config, files={"raising.py": RAISING})
    for _ in range(5):
        response = _post(proxy, {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                 "metadata": {"echo": MASTER_KEY}})
        assert response.status_code == 200
    assert proxy.terminate(signal.SIGTERM) == 0
    logs = proxy.logs()
    assert MASTER_KEY not in logs
    assert logs.count("Traceback (most recent call last)") == 1
    assert logs.count("logging callback raising.broken raised on successful_api_call") == 1
    assert f"ValueError: callback bug with key {mask_secret(MASTER_KEY)}" in logs
    assert "logging callback raising.broken: 4 more errors since the last one logged" in logs
