"""``general_settings.custom_auth`` through a real ``trioproxy run``: LiteLLM's own custom-auth files
(the corpus' rewritten copies, imports changed only), a function that reads the ``Request``, one that
crashes, one that hangs, one that answers nonsense, and the limits of the caller it returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from support.proxy_process import ProxyProcess

CORPUS = Path(__file__).resolve().parents[1] / "data" / "litellm_corpus" / "handlers" / "rewritten"
MODELS = [{"model_name": "fake-chat", "litellm_params": {"model": "fake/demo"}},
          {"model_name": "other-chat", "litellm_params": {"model": "fake/other"}}]
CHAT = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}]}

WRITTEN_HERE = '''
import trio
from trioproxy import Request, UserAPIKeyAuth


async def reads_request(request: Request, api_key: str) -> UserAPIKeyAuth:
    if api_key != "tenant-key-0123456789":
        raise Exception(f"unknown key {api_key}")
    body = await request.json() if request.method == "POST" else {}
    assert request.headers["x-tenant"] == "acme", "tenant header"
    assert request.client is not None and request.client.host == "127.0.0.1"
    if request.url.path == "/v1/models":
        assert request.query_params.get("probe") == "1", "query"
    elif body.get("model") != "fake-chat":
        raise Exception("this tenant may only name fake-chat in its body")
    return UserAPIKeyAuth(api_key=api_key, user_id="acme-user", models=["fake-chat"], rpm_limit=2,
                          metadata={"tenant": "acme"})


async def crashes(request: Request, api_key: str) -> UserAPIKeyAuth:
    return 1 / 0


async def hangs(request: Request, api_key: str) -> UserAPIKeyAuth:
    await trio.sleep_forever()


async def nonsense(request: Request, api_key: str) -> UserAPIKeyAuth:
    return 42
'''


def _proxy(start_proxy: Any, general: dict[str, Any], files: dict[str, str], **kw: Any) -> ProxyProcess:
    return start_proxy({"model_list": MODELS, "general_settings": general}, files=files, **kw)  # type: ignore[no-any-return]


def _post(proxy: ProxyProcess, key: str | None, body: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    return httpx.post(proxy.url + "/chat/completions", json=body or CHAT, headers=headers, timeout=30)


def test_litellm_docs_file_accepts_only_its_key(start_proxy: Any) -> None:
    files = {"custom_auth.py": (CORPUS / "docs__proxy__custom_auth__L11.py").read_text()}
    proxy = _proxy(start_proxy, {"master_key": "sk-master-not-used-0123", "custom_auth": "custom_auth.user_api_key_auth"},
                   files)
    client = openai.OpenAI(base_url=proxy.url, api_key="sk-my-master-key", max_retries=0)
    assert client.chat.completions.create(**CHAT).choices[0].message.content
    chunks = list(client.chat.completions.create(**CHAT, stream=True))
    assert any(c.choices and c.choices[0].delta.content for c in chunks)
    refused = _post(proxy, "sk-someone-else-0123456789")
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    assert _post(proxy, "sk-master-not-used-0123").status_code == 401   # the function alone decides
    assert _post(proxy, None).status_code == 401
    assert httpx.get(proxy.base_url + "/health/liveliness").status_code == 200   # public routes: not asked
    proxy.terminate()
    assert "sk-my-master-key" not in proxy.logs() and "sk-someone-else-0123456789" not in proxy.logs()


def test_litellm_auto_mode_maps_custom_keys_to_the_proxys_keys(start_proxy: Any) -> None:
    files = {"custom_auth_auto.py": (CORPUS / "docs__proxy__custom_auth__L328.py").read_text()}
    proxy = _proxy(start_proxy, {"master_key": "sk-P1zJMdsqCPNN54alZd_ETw",
                                 "custom_auth": "custom_auth_auto.user_api_key_auth",
                                 "custom_auth_settings": {"mode": "auto"}}, files)
    assert _post(proxy, "my-custom-key-abc").status_code == 200            # mapped to the master key
    assert _post(proxy, "sk-P1zJMdsqCPNN54alZd_ETw").status_code == 200    # custom auth fails, key auth passes
    answer = _post(proxy, "invalid-api-key")
    assert answer.status_code == 401 and "invalid-api-key" not in answer.text
    admin = httpx.get(proxy.url + "/models", headers={"authorization": "Bearer my-custom-key-abc"})
    assert admin.status_code == 200   # a Quart route honours it too


def test_the_caller_it_returns_is_bound_by_its_fields(start_proxy: Any, tmp_path: Path) -> None:
    proxy = _proxy(start_proxy, {"master_key": "sk-master-e2e-0123456789", "custom_auth": "tenant_auth.reads_request",
                                 "database_url": f"sqlite:///{tmp_path / 'proxy.db'}"},
                   {"tenant_auth.py": WRITTEN_HERE})
    key = "tenant-key-0123456789"
    first = _post(proxy, key, **{"x-tenant": "acme"})
    assert first.status_code == 200, first.text
    other = _post(proxy, key, {**CHAT, "model": "other-chat"}, **{"x-tenant": "acme"})
    assert other.status_code == 401 and "only name fake-chat" in other.json()["error"]["message"]   # read the body
    models = httpx.get(proxy.url + "/models", params={"probe": "1"},
                       headers={"authorization": f"Bearer {key}", "x-tenant": "acme"})
    assert models.status_code == 200 and [m["id"] for m in models.json()["data"]] == ["fake-chat"]
    assert _post(proxy, key, **{"x-tenant": "acme"}).status_code == 200
    limited = _post(proxy, key, **{"x-tenant": "acme"})   # rpm_limit=2: the third request in the minute
    assert limited.status_code == 429, limited.text
    assert _post(proxy, key, **{"x-tenant": "other"}).status_code == 401   # the function's own assert
    proxy.terminate()
    assert key not in proxy.logs()


@pytest.mark.parametrize(("function", "status", "code"), [
    ("crashes", 401, "custom_auth_failed"),
    ("hangs", 503, "custom_auth_timeout"),
    ("nonsense", 500, "custom_auth_error"),
])
def test_a_broken_function_is_a_clear_error_and_the_server_keeps_serving(
        start_proxy: Any, function: str, status: int, code: str) -> None:
    proxy = _proxy(start_proxy, {"master_key": "sk-master-e2e-0123456789", "custom_auth": f"tenant_auth.{function}",
                                 "custom_auth_settings": {"timeout": 0.2}}, {"tenant_auth.py": WRITTEN_HERE})
    for _ in range(2):
        answer = _post(proxy, "sk-caller-key-0123456789")
        assert answer.status_code == status, answer.text
        assert answer.json()["error"]["code"] == code
    assert httpx.get(proxy.base_url + "/health/liveliness").status_code == 200
    proxy.terminate()
    assert "sk-caller-key-0123456789" not in proxy.logs()


def test_a_sync_function_is_refused_at_startup(tmp_path: Path) -> None:
    from support.proxy_process import write_config

    path = write_config(tmp_path, {"model_list": MODELS, "general_settings": {"custom_auth": "sync_auth.fn"}},
                        files={"sync_auth.py": "def fn(request, api_key):\n    return None\n"})
    with pytest.raises(RuntimeError, match="must be an async function"):
        ProxyProcess(path)
