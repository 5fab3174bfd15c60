"""The checks at the one ASGI entry, through a real ``trioproxy run``: path normalisation, the
caller's address (``use_x_forwarded_for`` behind trusted proxies) and ``allowed_ips``.

Requests are sent with ``http.client``, which puts the request target on the wire exactly as
written (no client-side tidying of ``%2e%2e`` or ``//``), so what is tested is what the proxy does.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import MASTER_KEY
from support.fake_target import FakeTarget
from support.proxy_process import ProxyProcess

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
CHAT = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode()
WAIT = 30.0

RECORDER = '''
import json, os, threading
from trioproxy import CustomLogger

_lock = threading.Lock()

class Recorder(CustomLogger):
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        line = json.dumps({"record": kwargs["standard_logging_object"],
                           "metadata": kwargs["litellm_params"]["metadata"]}, default=str)
        with _lock, open(os.environ["ENTRY_EVENTS"], "a") as f:
            f.write(line + "\\n")

recorder = Recorder()
'''


def _request(proxy: ProxyProcess, method: str, target: str, headers: dict[str, str] | None = None,
             body: bytes | None = None) -> tuple[int, Any]:
    host, _, port = proxy.base_url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=WAIT)
    try:
        conn.request(method, target, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw
    finally:
        conn.close()


def _config(general: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"model_list": [{"model_name": "gpt-4o", "litellm_params": {"model": "fake/gpt-4o",
                                                                        "mock_response": "hello"}}],
            "general_settings": {"master_key": MASTER_KEY, **(general or {})}, **extra}


# -- one spelling per path -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def plain_proxy(tmp_path_factory):
    directory: Path = tmp_path_factory.mktemp("entry")
    (directory / "config.yaml").write_text(json.dumps(_config()))
    with ProxyProcess(directory / "config.yaml") as proxy:
        yield proxy


@pytest.mark.parametrize("spelling", [
    "/v1/chat/completions",
    "//v1//chat//completions",
    "/v1/chat/completions/",
    "/v1/chat%2Fcompletions",
    "/v1/%63hat/completions",
    "/v1/models/%2e%2e/chat/completions",
    "/x/../v1/./chat/completions",
    "/%2e%2e/%2e%2e/v1/chat/completions",
    "/openai/deployments/gpt-4o/../gpt-4o/chat/completions",
])
def test_every_spelling_of_the_fast_path_reaches_it(plain_proxy, spelling):
    status, body = _request(plain_proxy, "POST", spelling, AUTH, CHAT)
    assert status == 200 and body["choices"][0]["message"]["content"] == "hello"
    # and its rule comes with it: no spelling gets past the key check
    status, body = _request(plain_proxy, "POST", spelling, {}, CHAT)
    assert status == 401


@pytest.mark.parametrize("spelling", [
    "/v1/models", "/v1//models", "/v1/models/", "/v1%2Fmodels", "/v1/%6Dodels", "/v1/chat/%2e%2e/models",
    "//v1/./models//",
])
def test_every_spelling_of_a_quart_route_reaches_it(plain_proxy, spelling):
    status, body = _request(plain_proxy, "GET", spelling, AUTH)
    assert status == 200 and body["data"][0]["id"] == "gpt-4o"
    assert _request(plain_proxy, "GET", spelling)[0] == 401


@pytest.mark.parametrize(("spelling", "status"), [
    ("/v1/models;x", 404),          # ';' is a character, not a parameter: its own, unknown, path
    ("/v1/models%3Bx", 404),
    ("/v1/models%252F", 404),       # decoded once: the text '%2F', not a separator
    ("/V1/MODELS", 404),            # routes are case-sensitive
])
def test_other_characters_are_their_own_unknown_paths(plain_proxy, spelling, status):
    code, body = _request(plain_proxy, "GET", spelling, AUTH)
    assert code == status and body["error"]["code"] == "route_not_found"


@pytest.mark.parametrize("spelling", ["/v1/models%00", "/v1/mo%0Adels", "/v1/%ff%fe/models", "/health%7f"])
def test_bad_paths_are_a_400_envelope(plain_proxy, spelling):
    status, body = _request(plain_proxy, "GET", spelling, AUTH)
    assert status == 400
    assert body["error"]["code"] == "invalid_path" and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("Malformed request path")


def test_pass_through_routes_see_the_same_normalised_path(start_proxy):
    with FakeTarget() as target:
        proxy = start_proxy(_config({"pass_through_endpoints": [
            {"path": "/bria", "target": target.base_url + "/api", "auth": False}]}))
        for spelling in ("/bria", "/bria/", "//bria", "/x/../bria", "/%62ria", "/bri%61/."):
            assert _request(proxy, "GET", spelling)[0] == 200, spelling
        assert [r.target for r in target.requests] == ["/api"] * 6


# -- the caller's address and allowed_ips ---------------------------------------------------------

def test_allowed_ips_refuses_every_route_master_key_or_not(start_proxy):
    with FakeTarget() as target:
        proxy = start_proxy(_config({"allowed_ips": ["10.0.0.0/8", "2001:db8::/32"], "pass_through_endpoints": [
            {"path": "/pt", "target": target.base_url, "auth": False}]}))
        expected = "Access forbidden: IP address 127.0.0.1 not allowed."
        for method, path, headers, body in [
            ("POST", "/v1/chat/completions", AUTH, CHAT),     # the fast path, master key
            ("GET", "/v1/models", AUTH, None),                 # a Quart route
            ("GET", "/health/liveliness", {}, None),           # a public route
            ("GET", "/pt", {}, None),                          # a pass-through route
            ("GET", "/docs", AUTH, None),
            ("GET", "/no/such/route", {}, None),
        ]:
            status, answer = _request(proxy, method, path, headers, body)
            assert status == 403, path
            assert answer == {"error": {"message": expected, "type": "auth_error", "param": None, "code": "403"}}
        assert target.requests == []


def _events(proxy: ProxyProcess, path: Path) -> list[dict[str, Any]]:
    assert proxy.terminate() == 0
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_x_forwarded_for_behind_two_trusted_proxies(start_proxy, tmp_path):
    """LiteLLM's issue #33324: ``client, our LB`` from our sidecar is the client, not a refusal."""
    events = tmp_path / "events.jsonl"
    proxy = start_proxy(_config({"allowed_ips": ["203.0.113.0/24"], "use_x_forwarded_for": True},
                                litellm_settings={"callbacks": ["recorder.recorder"]}),
                        files={"recorder.py": RECORDER}, env={"ENTRY_EVENTS": str(events)})
    ok = {**AUTH, "X-Forwarded-For": "198.51.100.9, 203.0.113.7, 10.0.0.2"}   # a fake entry, the client, our LB
    assert _request(proxy, "POST", "/v1/chat/completions", ok, CHAT)[0] == 200
    status, body = _request(proxy, "POST", "/v1/chat/completions",
                            {**AUTH, "X-Forwarded-For": "203.0.113.7, 198.51.100.9"}, CHAT)
    assert (status, body["error"]["message"]) == (403, "Access forbidden: IP address 198.51.100.9 not allowed.")
    status, body = _request(proxy, "GET", "/v1/models", {**AUTH, "X-Forwarded-For": "unknown"})
    assert (status, body["error"]["message"]) == (403, "Access forbidden: IP address unknown not allowed.")
    # no header at all: the TCP peer (127.0.0.1) is the client, and it is not in the list
    assert _request(proxy, "GET", "/health/liveliness")[0] == 403
    [event] = _events(proxy, events)
    assert event["record"]["requester_ip_address"] == "203.0.113.7"
    assert event["metadata"]["requester_ip_address"] == "203.0.113.7"


def test_x_forwarded_for_is_ignored_unless_enabled(start_proxy, tmp_path):
    events = tmp_path / "events.jsonl"
    proxy = start_proxy(_config({"allowed_ips": ["127.0.0.1"]}, litellm_settings={"callbacks": ["recorder.recorder"]}),
                        files={"recorder.py": RECORDER}, env={"ENTRY_EVENTS": str(events)})
    spoofed = {**AUTH, "X-Forwarded-For": "203.0.113.7"}
    assert _request(proxy, "POST", "/v1/chat/completions", spoofed, CHAT)[0] == 200
    [event] = _events(proxy, events)
    assert event["record"]["requester_ip_address"] == "127.0.0.1"


def test_trusted_proxy_ranges_replace_the_default(start_proxy):
    # only 127.0.0.1 is trusted: the 10.0.0.2 hop is the client as far as the proxy can tell
    proxy = start_proxy(_config({"allowed_ips": ["203.0.113.7"], "use_x_forwarded_for": True,
                                 "trusted_proxy_ranges": ["127.0.0.1"]}))
    status, body = _request(proxy, "GET", "/v1/models", {**AUTH, "X-Forwarded-For": "203.0.113.7, 10.0.0.2"})
    assert (status, body["error"]["message"]) == (403, "Access forbidden: IP address 10.0.0.2 not allowed.")
    assert _request(proxy, "GET", "/v1/models", {**AUTH, "X-Forwarded-For": "203.0.113.7"})[0] == 200


def test_a_bad_allowed_ips_entry_is_a_startup_error(start_proxy):
    with pytest.raises(RuntimeError) as info:
        start_proxy(_config({"allowed_ips": ["10.0.0.0/8", "10.0.0.300"]}))
    assert "general_settings.allowed_ips[1]" in str(info.value) and "'10.0.0.300'" in str(info.value)
