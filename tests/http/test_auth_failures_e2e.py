"""Failed authentications limited per client address, through a real ``trioproxy run`` on SQLite
(``access/auth_failures.py``; the window logic itself is tested in virtual time in
``tests/access/test_access_auth_failures.py``).

The client address comes from ``X-Forwarded-For`` (the test connects from 127.0.0.1, a trusted
proxy), so one process plays several clients. The window is long (300 s): nothing here waits for it.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

from conftest import MASTER_KEY
from support.proxy_process import ProxyProcess

CHAT = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode()


def _request(proxy: ProxyProcess, method: str, target: str, headers: dict[str, str] | None = None,
             body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    host, _, port = proxy.base_url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, target, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        raw = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(raw) if raw else None
    finally:
        conn.close()


def _from(address: str, key: str | None) -> dict[str, str]:
    headers = {"X-Forwarded-For": address}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def test_guesses_from_one_address_get_429_with_retry_after(start_proxy: Any) -> None:
    config = {"model_list": [{"model_name": "gpt-4o", "litellm_params": {"model": "fake/gpt-4o",
                                                                          "mock_response": "hello"}}],
              "general_settings": {"master_key": MASTER_KEY, "database_url": "sqlite:///proxy.db",
                                   "use_x_forwarded_for": True,
                                   "auth_rate_limit_max_failures_per_ip": 3,
                                   "auth_rate_limit_window_seconds": 300}}
    proxy = start_proxy(config)
    attacker, neighbour = "203.0.113.7", "198.51.100.1"
    # a virtual key that works, made by the admin
    status, _, made = _request(proxy, "POST", "/key/generate", _from(neighbour, MASTER_KEY), b"{}")
    assert status == 200
    good_key = made["key"]
    guesses = ["sk-1235", "sk-" + "A" * 40, "sk-master-guess-xyz"]   # a master-key guess, virtual keys
    for guess in guesses:
        status, _, body = _request(proxy, "POST", "/v1/chat/completions", _from(attacker, guess), CHAT)
        assert status == 401, body
    status, headers, body = _request(proxy, "POST", "/v1/chat/completions", _from(attacker, "sk-guess-4"), CHAT)
    assert status == 429
    assert 295 <= int(headers["retry-after"]) <= 300
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == "too_many_failed_authentications"
    assert body["error"]["message"].startswith("Too many failed authentication attempts from 203.0.113.7: 3 "
                                               "within 300 s")
    # the lockout covers every credential and every non-public route, management included
    for method, path, key, payload in [("POST", "/v1/chat/completions", good_key, CHAT),
                                       ("GET", "/key/info", good_key, None),
                                       ("GET", "/v1/models", MASTER_KEY, None),
                                       ("POST", "/key/generate", MASTER_KEY, b"{}")]:
        status, headers, _ = _request(proxy, method, path, _from(attacker, key), payload)
        assert (path, status) == (path, 429) and "retry-after" in headers
    # public routes still answer, and a bad key there is ignored
    assert _request(proxy, "GET", "/health/liveliness", _from(attacker, "sk-guess-5"))[0] == 200
    # another address is unaffected: its own keys work
    assert _request(proxy, "POST", "/v1/chat/completions", _from(neighbour, good_key), CHAT)[0] == 200
    assert _request(proxy, "GET", "/v1/models", _from(neighbour, MASTER_KEY))[0] == 200
    # a client prepending a fake address is still the attacker (rightmost untrusted hop)
    status, _, _ = _request(proxy, "GET", "/v1/models", _from(f"{neighbour}, {attacker}", MASTER_KEY))
    assert status == 429
    assert proxy.terminate() == 0
    logs = proxy.logs()
    assert "locked out 203.0.113.7 for failed authentications" in logs
    for secret in [*guesses, good_key, MASTER_KEY]:
        assert secret not in logs


def test_off_with_zero(start_proxy: Any) -> None:
    config = {"general_settings": {"master_key": MASTER_KEY, "auth_rate_limit_max_failures_per_ip": 0}}
    proxy = start_proxy(config)
    for index in range(80):   # more than the default 60
        assert _request(proxy, "GET", "/v1/models", {"Authorization": f"Bearer sk-guess-{index}"})[0] == 401
