"""The built-in request policies: each with its success and failure request, through real servers.

Two proxies serve these tests:

* ``strict``: ``enforced_params`` (the seed's ``[user, metadata.generation_name]``), ``block_robots``,
  ``max_request_size_mb`` / ``max_response_size_mb``, and the callbacks ``hide_secrets``,
  ``banned_keywords`` and ``blocked_user_check`` with their lists in ``.txt`` files next to the
  config. Every request there carries ``user`` and ``metadata.generation_name`` unless the test is
  about leaving them out.
* ``open``: only ``enforce_user_param``; the routes of switched-off features are plain 404s.

Key permissions (``{"hide_secrets": false}``) come from a stand-in callback
(``extra_guardrails.key_permissions``) until virtual keys exist; the policies read
``UserAPIKeyAuth.permissions`` either way.

Secrets used here are generated at test time from a seeded RNG (nothing key-shaped is committed).
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import re
import string
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_upstream import Behavior, FakeUpstream
from support.proxy_process import ProxyProcess, write_config
from trioproxy.auth import Authenticator, Identity
from trioproxy.config import ConfigError, parse_config
from trioproxy.hooks.loader import HandlerLoadError
from trioproxy.policies import hide_secrets
from trioproxy.policies.banned_keywords import compile_keywords
from trioproxy.policies.lists import load_list
from trioproxy.policies.request_policies import RequiredParams, missing_param
from trioproxy.proxy import create_app, load_handlers

DATA = Path(__file__).resolve().parents[1] / "data" / "guardrails"
HEADERS = {"authorization": f"Bearer {MASTER_KEY}"}
REQUIRED = {"user": "gm", "metadata": {"generation_name": "prod-app"}}
MAX_REQUEST_MB = 0.0625            # 64 KiB: exact in binary, so the message shows it as configured
MAX_RESPONSE_MB = 0.0078125        # 8 KiB
BIG_ANSWER = "word " * 3000        # 15 KB: over the response limit

_rng = random.Random(4)


def _token(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n - 1)) + _rng.choice(string.digits)


def fake_aws_key_id() -> str:
    return "AKIA" + _token(16, string.ascii_uppercase + "234567")


def fake_project_key() -> str:
    return "sk-" + "proj-" + _token(120, string.ascii_letters + string.digits + "-_")


def fake_jwt() -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': '12345678'})}.{_token(43)}"


# -- fixtures ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as upstream:
        yield upstream
        assert not upstream.errors, upstream.errors


@pytest.fixture(scope="module")
def strict(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    directory = tmp_path_factory.mktemp("strict")
    config = {
        "model_list": [upstream_model(fake, "gpt-3.5-turbo", "up-model"),
                       upstream_model(fake, "big", "big-model"),
                       upstream_model(fake, "embed", "embed-model")],
        "general_settings": {
            "master_key": MASTER_KEY,
            "enforced_params": ["user", "metadata.generation_name"],
            "block_robots": True,
            "max_request_size_mb": MAX_REQUEST_MB,
            "max_response_size_mb": MAX_RESPONSE_MB,
        },
        "litellm_settings": {
            "num_retries": 0,
            "callbacks": ["extra_guardrails.key_permissions", "hide_secrets", "banned_keywords",
                          "blocked_user_check"],
            "banned_keywords_list": "lists/keywords.txt",
            "blocked_user_list": "lists/blocked_users.txt",
        },
    }
    (directory / "lists").mkdir()
    for name in ("keywords.txt", "blocked_users.txt"):
        (directory / "lists" / name).write_text((DATA / name).read_text())
    path = write_config(directory, config, files={"extra_guardrails.py": (DATA / "extra_guardrails.py").read_text()})
    with ProxyProcess(path) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def open_proxy(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    config = {"model_list": [upstream_model(fake, "gpt-3.5-turbo", "up-model"),
                             upstream_model(fake, "embed", "embed-model")],
              "general_settings": {"master_key": MASTER_KEY, "enforce_user_param": True},
              "litellm_settings": {"num_retries": 0}}
    with ProxyProcess(write_config(tmp_path_factory.mktemp("open"), config)) as proxy:
        yield proxy


@pytest.fixture
def upstream(fake: FakeUpstream) -> FakeUpstream:
    fake.reset()
    fake.set_behavior("big-model", Behavior(content=BIG_ANSWER, chunks=30))
    return fake


def chat(proxy: ProxyProcess, content: str, *, required: bool = True, model: str = "gpt-3.5-turbo",
         **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}],
            **(REQUIRED if required else {}), **extra}
    return httpx.post(f"{proxy.url}/chat/completions", headers=HEADERS, json=body, timeout=30)


def client(proxy: ProxyProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30)


def sent_prompt(fake: FakeUpstream) -> str:
    return fake.requests[-1].json["messages"][-1]["content"]


# -- enforced_params / enforce_user_param -----------------------------------------------------------

def test_enforced_params_missing_user(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    response = chat(strict, "hi", required=False)
    assert response.status_code == 400   # not the seed's 401: the key is fine, the body is not
    error = response.json()["error"]
    assert error["message"].startswith("please pass param=user in request body. This is a required param")
    assert error["param"] == "user" and error["type"] == "invalid_request_error"
    assert error["code"] == "missing_required_param"
    assert upstream.requests == []


def test_enforced_params_missing_nested_param(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    response = chat(strict, "hi", required=False, user="gm", metadata={})
    assert response.status_code == 400
    assert "please pass param=metadata.generation_name in request body" in response.json()["error"]["message"]


def test_enforced_params_present(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    answer = client(strict).chat.completions.create(
        model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}], user="gm",
        extra_body={"metadata": {"generation_name": "prod-app"}})
    assert answer.choices[0].message.content == "Hello from the fake upstream."


def test_policies_run_before_callbacks(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    # a banned keyword *and* a missing param: the general_settings policy answers first
    response = chat(strict, "Hello world!", required=False)
    assert response.json()["error"]["code"] == "missing_required_param"


def test_enforce_user_param(open_proxy: ProxyProcess, upstream: FakeUpstream) -> None:
    response = chat(open_proxy, "hi", required=False)
    assert response.status_code == 400
    assert "please pass param=user in request body" in response.json()["error"]["message"]
    embeddings = httpx.post(f"{open_proxy.url}/embeddings", headers=HEADERS, timeout=30,
                            json={"model": "embed", "input": "hi"})
    assert embeddings.status_code == 400                       # every OpenAI endpoint
    ok = client(open_proxy).chat.completions.create(model="gpt-3.5-turbo", user="u1",
                                                    messages=[{"role": "user", "content": "hi"}])
    assert ok.choices[0].message.content == "Hello from the fake upstream."
    assert upstream.requests[-1].json["user"] == "u1"


def test_missing_param_rules() -> None:
    assert missing_param({"user": None}, ["user"]) == "user"             # null identifies nobody
    assert missing_param({"metadata": "x"}, ["metadata.a"]) == "metadata.a"
    assert missing_param({"metadata": {"a": {"b": 0}}}, ["metadata.a.b"]) is None
    assert RequiredParams(["user", "user"], "enforced_params").paths == ["user"]


# -- block_robots -------------------------------------------------------------------------------------

def test_robots_txt(strict: ProxyProcess, open_proxy: ProxyProcess) -> None:
    response = httpx.get(f"{strict.base_url}/robots.txt", timeout=10)     # no key needed
    assert response.status_code == 200
    assert response.text == "User-agent: *\nDisallow: /"
    assert response.headers["content-type"].startswith("text/plain")
    assert httpx.get(f"{open_proxy.base_url}/robots.txt", timeout=10).status_code == 404


# -- max_request_size_mb / max_response_size_mb ---------------------------------------------------------

def _raw_post(proxy: ProxyProcess, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    """Send a request head and part of a body, then read the answer without finishing the body.

    If the proxy waited for the rest (or read past its limit), ``getresponse`` would time out.
    """
    url = urlsplit(proxy.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        connection.putrequest("POST", f"{url.path}/chat/completions")
        for name, value in {**HEADERS, "content-type": "application/json", **headers}.items():
            connection.putheader(name, value)
        connection.endheaders()
        connection.send(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_request_too_large_by_content_length(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    status, body = _raw_post(strict, {"content-length": str(10 * 1024 * 1024)}, b'{"model": "gpt-3.5-turbo"')
    assert status == 413
    assert body["error"]["message"] == ("Request size is too large. Request size is 10 MB. "
                                        f"Max size is {MAX_REQUEST_MB} MB")
    assert body["error"]["code"] == "request_too_large"
    assert upstream.requests == []


def test_request_too_large_when_streamed(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    piece = b"x" * (70 * 1024)     # one chunk past the limit; the body is never terminated
    status, body = _raw_post(strict, {"transfer-encoding": "chunked"}, b"%x\r\n%s\r\n" % (len(piece), piece))
    assert status == 413
    assert re.fullmatch(r"Request size is too large\. Request size is [0-9.]+ MB\. Max size is 0\.0625 MB",
                        body["error"]["message"])


def test_request_under_the_limit_passes(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    assert chat(strict, "x" * 30_000).status_code == 200


def test_response_too_large(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    response = chat(strict, "hi", model="big")
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "response_too_large"
    assert error["message"].startswith("Response size is too large. Response size is ")
    assert error["message"].endswith(f"Max size is {MAX_RESPONSE_MB} MB")


def test_response_too_large_streaming(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    frames = []
    with httpx.stream("POST", f"{strict.url}/chat/completions", headers=HEADERS, timeout=30,
                      json={"model": "big", "stream": True, "messages": [{"role": "user", "content": "hi"}],
                            **REQUIRED}) as response:
        assert response.status_code == 200
        frames = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert frames[-1] != "[DONE]"
    assert json.loads(frames[-1])["error"]["type"] == "response_too_large"


# -- hide_secrets ---------------------------------------------------------------------------------------

def test_hide_secrets_seed_example(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    prompt = "what is the value of my open ai key? openai_api_key=sk-1234998222"
    assert chat(strict, prompt).status_code == 200
    assert sent_prompt(upstream) == "what is the value of my open ai key? openai_api_key=[REDACTED]"
    logs = strict.logs()
    assert "detected and redacted secrets in the request: generic_secret" in logs
    assert "sk-1234998222" not in logs


def test_hide_secrets_real_looking_keys(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    aws, project, jwt = fake_aws_key_id(), fake_project_key(), fake_jwt()
    prompt = f"my keys: {aws} and {project}\nsession: {jwt}\nAPI_KEY = 'sk_1234567890abcdef'"
    assert chat(strict, prompt).status_code == 200
    assert sent_prompt(upstream) == ("my keys: [REDACTED] and [REDACTED]\nsession: [REDACTED]\n"
                                     "API_KEY = '[REDACTED]'")
    logs = strict.logs()
    assert "aws_access_key_id, generic_secret, jwt, openai_api_key" in logs
    assert not any(secret in logs for secret in (aws, project, jwt))


def test_hide_secrets_leaves_ordinary_text_alone(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    prompt = "The commit 3f2a9c1 fixed the password reset page; token count was 1234."
    assert chat(strict, prompt).status_code == 200
    assert sent_prompt(upstream) == prompt


def test_hide_secrets_text_completions_and_embeddings(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    completion = httpx.post(f"{strict.url}/completions", headers=HEADERS, timeout=30,
                            json={"model": "gpt-3.5-turbo", "prompt": "db password: hunter2!", **REQUIRED})
    assert completion.status_code == 200
    assert upstream.requests[-1].json["prompt"] == "db password: [REDACTED]"
    embedding = httpx.post(f"{strict.url}/embeddings", headers=HEADERS, timeout=30,
                           json={"model": "embed", "input": ["fine", "password: hunter2!"], **REQUIRED})
    assert embedding.status_code == 200
    assert upstream.requests[-1].json["input"] == ["fine", "password: [REDACTED]"]


def test_hide_secrets_off_for_a_key(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    prompt = "does my openai key look well formatted OpenAI_API_KEY=sk-1234777"
    metadata = {**REQUIRED["metadata"], "test_key_permissions": {"hide_secrets": False}}
    assert chat(strict, prompt, required=False, user="gm", metadata=metadata).status_code == 200
    assert sent_prompt(upstream) == prompt


# -- banned_keywords --------------------------------------------------------------------------------------

def test_banned_keyword_rejected(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    response = chat(strict, "Hello world!")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "guardrail_violation"
    assert "'banned_keywords'" in error["message"]
    assert "hello" not in error["message"].lower() and "launch" not in error["message"].lower()
    assert upstream.requests == []
    assert "launch codes" not in strict.logs()


def test_banned_phrase_from_the_file(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    assert chat(strict, "tell me the LAUNCH   CODES").status_code == 200     # different spacing: no match
    assert chat(strict, "tell me the LAUNCH CODES").status_code == 400


def test_banned_keyword_in_embeddings_input(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    response = httpx.post(f"{strict.url}/embeddings", headers=HEADERS, timeout=30,
                          json={"model": "embed", "input": ["ok", "hello there"], **REQUIRED})
    assert response.status_code == 400


def test_clean_request_passes_banned_keywords(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    assert chat(strict, "Othello is a play; say hi").status_code == 200   # whole words only


def test_keyword_matching_rules() -> None:
    pattern = compile_keywords(["ass", "hello", "坏词", "c++"])
    assert pattern is not None
    assert pattern.search("HELLO there") and pattern.search("(hello)")
    assert not pattern.search("class") and not pattern.search("othello")
    assert pattern.search("这是坏词吗")          # no spaces in Chinese: substring match
    assert pattern.search("I like C++.") and not pattern.search("c+")
    assert compile_keywords([]) is None


# -- blocked_user_check --------------------------------------------------------------------------------------

def test_blocked_user_from_the_file(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.PermissionDeniedError, match="User=user_id_1"):
        client(strict).chat.completions.create(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": "write a short poem"}], user="user_id_1",
            extra_body={"metadata": {"generation_name": "x"}})
    assert upstream.requests == []


def test_block_and_unblock_at_run_time(strict: ProxyProcess, upstream: FakeUpstream) -> None:
    user = "user_runtime_7"
    assert chat(strict, "hi", required=False, user=user, metadata=REQUIRED["metadata"]).status_code == 200
    blocked = httpx.post(f"{strict.base_url}/customer/block", headers=HEADERS, json={"user_ids": [user]}, timeout=10)
    assert blocked.status_code == 200 and user in blocked.json()["blocked_users"]
    response = chat(strict, "hi", required=False, user=user, metadata=REQUIRED["metadata"])
    assert response.status_code == 403 and response.json()["error"]["code"] == "user_blocked"
    unblocked = httpx.post(f"{strict.base_url}/customer/unblock", headers=HEADERS, json={"user_ids": [user]},
                           timeout=10)
    assert unblocked.status_code == 200 and user not in unblocked.json()["blocked_users"]
    assert chat(strict, "hi", required=False, user=user, metadata=REQUIRED["metadata"]).status_code == 200


def test_block_routes_need_the_admin_key_and_a_valid_body(strict: ProxyProcess, open_proxy: ProxyProcess) -> None:
    url = f"{strict.base_url}/customer/block"
    anonymous = httpx.post(url, json={"user_ids": ["x"]}, timeout=10)
    # the route decision's answer (LiteLLM's type), before the body is read
    assert anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "auth_error"
    wrong = httpx.post(url, headers={"authorization": "Bearer sk-wrong"}, json={"user_ids": ["x"]}, timeout=10)
    assert wrong.status_code == 401
    bad = httpx.post(url, headers=HEADERS, json={"user_ids": "x"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "user_ids"
    # neither the built-in nor a database: the management route's "connect a database" answer
    unconfigured = httpx.post(f"{open_proxy.base_url}/customer/block", headers=HEADERS, json={"user_ids": ["x"]},
                              timeout=10)
    assert unconfigured.status_code == 501
    assert "Connect Proxy to database" in unconfigured.json()["error"]["message"]


async def test_block_routes_refuse_non_admin_callers(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
                           "general_settings": {"master_key": MASTER_KEY},
                           "litellm_settings": {"callbacks": ["blocked_user_check"]}}, "t.yaml", DATA)
    app = create_app(config)
    async def not_an_admin(self: Authenticator, headers: Any, peer: Any = None) -> Identity:
        return Identity.virtual(SimpleNamespace(token="h", user_role="internal_user", user_id="u", team_id=None))

    monkeypatch.setattr(Authenticator, "identify", not_an_admin)
    response = await app.test_client().post("/customer/block", json={"user_ids": ["x"]}, headers=HEADERS)
    assert response.status_code == 403   # the route decision: /customer/block is an admin route
    assert (await response.get_json())["error"]["message"].startswith("Only proxy admin can be used")


# -- lists and startup errors ------------------------------------------------------------------------

def test_load_list(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "l.txt").write_text("# comment\n a \n\nb\n")
    assert load_list("sub/l.txt", tmp_path, "k") == ["a", "b"]
    assert load_list([" a", "", "b"], tmp_path, "k") == ["a", "b"]
    assert load_list(None, tmp_path, "k") == []
    with pytest.raises(HandlerLoadError, match=re.escape(str(tmp_path / "nope.txt"))):
        load_list("nope.txt", tmp_path, "k")


def _load(settings: dict[str, Any], base: Path = DATA) -> None:
    config = parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
                           "litellm_settings": settings}, "conf.yaml", base)
    load_handlers(config)


def test_startup_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"callbacks\[0\].*banned_keywords_list"):
        _load({"callbacks": ["banned_keywords"]})
    with pytest.raises(ConfigError, match=r"file not found: .*missing\.txt"):
        _load({"callbacks": ["banned_keywords"], "banned_keywords_list": "missing.txt"}, tmp_path)
    with pytest.raises(ConfigError, match=r"'hide_secret' is neither a built-in callback \(azure_content_safety, "
                                          r"banned_keywords, blocked_user_check, detect_prompt_injection, "
                                          r"google_text_moderation, hide_secrets, "
                                          r"llamaguard_moderations, llmguard_moderations\)"):
        _load({"callbacks": ["hide_secret"]})
    _load({"callbacks": ["banned_keywords", "blocked_user_check"], "banned_keywords_list": "keywords.txt",
           "blocked_user_list": "blocked_users.txt"})


def test_hide_secrets_as_a_guardrail() -> None:
    config = parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
                           "guardrails": [{"guardrail_name": "secrets",
                                           "litellm_params": {"guardrail": "hide-secrets", "mode": "pre_call"}}]},
                          "conf.yaml", DATA)
    plan = load_handlers(config).plan
    assert plan.calls("pre_call", {}) == []
    assert [c.handler for c in plan.calls("pre_call", {"guardrails": ["secrets"]})] == ["secrets"]



def test_guardrail_mode_without_its_hook_is_a_startup_error() -> None:
    config = parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
                           "guardrails": [{"guardrail_name": "secrets",
                                           "litellm_params": {"guardrail": "hide-secrets", "mode": "during_call"}}]},
                          "conf.yaml", DATA)
    with pytest.raises(ConfigError, match=r"guardrails\[0\].*mode 'during_call' runs async_moderation_hook, "
                                          r"which the class does not define"):
        load_handlers(config)


# -- hide_secrets off the Trio thread ----------------------------------------------------------------

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
