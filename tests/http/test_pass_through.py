"""Pass-through endpoints through a real ``trioproxy run``, against a fake target on 127.0.0.1.

What is forwarded (path, query, headers, body) and what never is (the client's trioproxy key, its
Host, hop-by-hop headers); bodies streamed both ways (proved with the target's own records, not
with timings); auth through the one authenticator; bounds (size, in-flight cap, deadlines, 405);
no way out of the target (``..`` and encoded separators are resolved before matching); errors that
never name the target; and one logging event per call with its cost.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import MASTER_KEY
from support.fake_target import Answer, FakeTarget
from support.proxy_process import ProxyProcess
from trioproxy.config import ConfigError, parse_config
from trioproxy.proxy import build_access

TARGET_SECRET = "sk-target-SECRET-5f4e3d2c1b0a"
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
WAIT = 30.0

RECORDER = '''
import json, os, threading
from trioproxy import CustomLogger

_lock = threading.Lock()

class Recorder(CustomLogger):
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self._write("success", kwargs)

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self._write("failure", kwargs)

    def _write(self, kind, kwargs):
        record = kwargs["standard_logging_object"]
        line = json.dumps({"kind": kind, "call_type": kwargs["call_type"], "cost": kwargs["response_cost"],
                           "record": record}, default=str)
        with _lock, open(os.environ["PT_EVENTS"], "a") as f:
            f.write(line + "\\n")

recorder = Recorder()
'''


@pytest.fixture
def target():
    with FakeTarget() as fake:
        yield fake


def _config(target: FakeTarget, *endpoints: dict[str, Any], general: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "model_list": [{"model_name": "gpt-4o", "litellm_params": {"model": "fake/gpt-4o"}}],
        "general_settings": {"master_key": MASTER_KEY, "pass_through_endpoints": list(endpoints), **(general or {})},
    }


def _start(start_proxy, tmp_path: Path, config: dict[str, Any], *, callbacks: bool = False,
           env: dict[str, str] | None = None) -> ProxyProcess:
    env = {"TARGET_SECRET": TARGET_SECRET, "PT_EVENTS": str(tmp_path / "events.jsonl"), **(env or {})}
    if callbacks:
        config["litellm_settings"] = {"callbacks": ["recorder.recorder"]}
    return start_proxy(config, files={"recorder.py": RECORDER} if callbacks else None, env=env)


def _events(proxy: ProxyProcess, tmp_path: Path) -> list[dict[str, Any]]:
    assert proxy.terminate() == 0   # a graceful stop drains the logging queue: every event is written
    path = tmp_path / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _raw(proxy: ProxyProcess, method: str, target: str, headers: dict[str, str] | None = None,
         body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    host, _, port = proxy.base_url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=WAIT)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


# -- what is forwarded ----------------------------------------------------------------------------

def test_path_query_headers_and_body_reach_the_target(start_proxy, target, tmp_path):
    proxy = _start(start_proxy, tmp_path, _config(target, {
        "path": "/bria", "target": f"{target.base_url}/api/v2?fixed=1", "include_subpath": True,
        "forward_headers": True, "default_query_params": {"api-version": "2024-01", "region": "eu"},
        "headers": {"Authorization": "Bearer os.environ/TARGET_SECRET", "X-Team": "blue"},
    }))
    target.answer = Answer(status=201, headers=[("content-type", "application/json"), ("x-target", "yes"),
                                                ("server", "fake-target")], parts=[b'{"made": 1}'])
    status, headers, body = _raw(proxy, "POST", "/bria/v1/text-to-image/base/2.3?region=us&n=2", {
        **AUTH, "Content-Type": "application/json", "X-Custom": "keep me", "Host": "evil.example",
        "Connection": "close, X-Hop", "X-Hop": "drop me", "Accept-Encoding": "gzip"}, b'{"prompt": "a cat"}')
    assert (status, body, headers["x-target"]) == (201, b'{"made": 1}', "yes")
    assert headers["server"] != "fake-target" and headers["x-litellm-call-id"]
    [seen] = target.requests
    assert seen.method == "POST" and seen.path == "/api/v2/v1/text-to-image/base/2.3"
    # the target's own query, the client's, then the defaults the client did not set
    assert seen.query == "fixed=1&region=us&n=2&api-version=2024-01"
    assert seen.body == b'{"prompt": "a cat"}'
    assert seen.header("authorization") == f"Bearer {TARGET_SECRET}"      # the target's credential ...
    assert MASTER_KEY not in json.dumps(seen.headers)                    # ... never the client's key
    assert seen.header("x-team") == "blue" and seen.header("x-custom") == "keep me"
    assert seen.header("host") == f"127.0.0.1:{target.port}"             # the config's host, not the client's
    assert seen.header("x-hop") is None and seen.header("accept-encoding") == "gzip"
    assert TARGET_SECRET not in proxy.logs()


def test_without_forward_headers_only_what_the_body_needs_goes_along(start_proxy, target, tmp_path):
    proxy = _start(start_proxy, tmp_path, _config(target, {"path": "/plain", "target": target.base_url + "/x",
                                                            "auth": False}))
    status, _, _ = _raw(proxy, "PUT", "/plain", {"Content-Type": "text/plain", "X-Custom": "no",
                                                   "Authorization": "Bearer whatever", "Accept": "text/csv"}, b"abc")
    assert status == 200
    [seen] = target.requests
    assert (seen.method, seen.path, seen.body) == ("PUT", "/x", b"abc")
    assert seen.header("content-type") == "text/plain" and seen.header("accept") == "text/csv"
    assert seen.header("x-custom") is None and seen.header("authorization") is None
    assert seen.header("accept-encoding") == "identity"   # the answer's bytes are relayed as they are


# -- auth ----------------------------------------------------------------------------------------

def test_auth_true_needs_a_key_before_anything_is_forwarded(start_proxy, target, tmp_path):
    proxy = _start(start_proxy, tmp_path, _config(target, {"path": "/secure", "target": target.base_url},
                                                  {"path": "/open", "target": target.base_url, "auth": False}))
    status, _, body = _raw(proxy, "POST", "/secure", {"Content-Type": "application/json"}, b"{}")
    assert status == 401 and json.loads(body)["error"]["type"] == "auth_error"
    status, _, body = _raw(proxy, "GET", "/secure", {"Authorization": "Bearer sk-wrong-key-123456"})
    assert status == 401 and "sk-wrong-key-123456" not in body.decode()
    assert target.requests == []
    assert _raw(proxy, "GET", "/secure", AUTH)[0] == 200
    assert _raw(proxy, "GET", "/open")[0] == 200
    assert len(target.requests) == 2


def test_route_settings_apply_to_pass_through_routes(start_proxy, target, tmp_path):
    proxy = _start(start_proxy, tmp_path, _config(
        target, {"path": "/a", "target": target.base_url}, {"path": "/b", "target": target.base_url},
        general={"allowed_routes": ["/a", "LiteLLMRoutes.public_routes"]}))
    assert _raw(proxy, "GET", "/a", AUTH)[0] == 200
    status, _, body = _raw(proxy, "GET", "/b", AUTH)
    assert (status, json.loads(body)["error"]["message"]) == (403, "Access forbidden: Route /b not allowed")
    assert len(target.requests) == 1


# -- no way out of the target ----------------------------------------------------------------------

@pytest.mark.parametrize(("sent", "forwarded"), [
    ("/files/x/%2e%2e/y", "/base/y"),
    ("/files/x/../../files/y", "/base/y"),
    ("/files/a%2Fb", "/base/a/b"),
    ("/files//deep///path/", "/base/deep/path"),
    ("/files/q%3Fx%23y", "/base/q%3Fx%23y"),      # a decoded ? or # is encoded again, never a query
])
def test_the_suffix_stays_below_the_target(start_proxy, target, tmp_path, sent, forwarded):
    proxy = _start(start_proxy, tmp_path, _config(target, {"path": "/files", "target": target.base_url + "/base",
                                                            "include_subpath": True, "auth": False}))
    assert _raw(proxy, "GET", sent)[0] == 200
    assert [r.target for r in target.requests] == [forwarded]


def test_a_path_that_climbs_out_is_not_the_endpoint(start_proxy, target, tmp_path):
    proxy = _start(start_proxy, tmp_path, _config(target, {"path": "/files", "target": target.base_url + "/base",
                                                            "include_subpath": True, "auth": False}))
    status, _, body = _raw(proxy, "GET", "/files/%2e%2e/health/liveliness")
    assert (status, body) == (200, b'"I\'m alive!"')   # the proxy's own route, as normalised
    assert _raw(proxy, "GET", "/files%2e%2e/x")[0] == 404
    assert target.requests == []


# -- streaming both ways ---------------------------------------------------------------------------

def test_the_request_body_streams_to_the_target(start_proxy, target, tmp_path):
    """The target holds the first piece while the client has not sent the second: nothing waited
    for the whole body."""
    proxy = _start(start_proxy, tmp_path, _config(target, {"path": "/up", "target": target.base_url,
                                                            "auth": False}))
    host, _, port = proxy.base_url.removeprefix("http://").partition(":")
    with socket.create_connection((host, int(port)), timeout=WAIT) as sock:
        sock.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: application/octet-stream\r\n\r\n")
        sock.sendall(b"5\r\nfirst\r\n")
        target.wait_for(lambda: target.requests and target.requests[0].body == b"first", what="the first piece")
        assert not target.requests[0].complete
        sock.sendall(b"6\r\nsecond\r\n0\r\n\r\n")
        target.wait_for(lambda: target.requests[0].complete, what="the end of the body")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    assert target.requests[0].body == b"firstsecond"
    assert target.requests[0].header("transfer-encoding") == "chunked"


def test_the_answer_streams_to_the_client(start_proxy, target, tmp_path):
    """The client reads the first part while the target still holds the rest."""
    proxy = _start(start_proxy, tmp_path, _config(target, {"path": "/down", "target": target.base_url,
                                                            "auth": False}))
    release = threading.Event()
    target.answer = Answer(headers=[("content-type", "text/event-stream")], chunked=True, hold=release,
                           parts=[b"data: one\n\n", b"data: two\n\n"])
    with httpx.Client(timeout=WAIT) as client, client.stream("GET", f"{proxy.base_url}/down") as response:
        pieces = response.iter_raw()
        assert next(pieces) == b"data: one\n\n"
        release.set()
        assert b"".join(pieces) == b"data: two\n\n"
        assert response.headers["content-type"] == "text/event-stream"


# -- bounds ---------------------------------------------------------------------------------------

def test_bounds_size_method_and_in_flight_cap(start_proxy, target, tmp_path):
    proxy = _start(start_proxy, tmp_path, _config(
        target, {"path": "/slow", "target": target.base_url, "auth": False, "methods": ["GET", "POST"]},
        general={"max_request_size_mb": 0.001, "max_in_flight_requests": 1}))
    status, _, body = _raw(proxy, "POST", "/slow", {}, b"x" * 2000)
    assert status == 413 and json.loads(body)["error"]["code"] == "request_too_large"
    status, headers, body = _raw(proxy, "DELETE", "/slow")
    assert status == 405 and headers["allow"] == "GET, POST"
    assert target.requests == []

    release = threading.Event()
    target.answer = Answer(parts=[b"a", b"b"], hold=release)
    with httpx.Client(timeout=WAIT) as client, client.stream("GET", f"{proxy.base_url}/slow") as held:
        pieces = held.iter_raw()                        # kept: dropping it would close the response
        assert next(pieces) == b"a"                     # the first call is in flight, held by the target
        status, headers, body = _raw(proxy, "GET", "/slow")
        assert status == 503 and headers["retry-after"] == "1"
        release.set()
    assert len(target.requests) == 1


def test_target_errors_never_name_the_target(start_proxy, target, tmp_path):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    proxy = _start(start_proxy, tmp_path, _config(
        target, {"path": "/dead", "target": f"http://127.0.0.1:{dead_port}/x", "auth": False},
        {"path": "/slow", "target": target.base_url, "auth": False, "timeout": 0.2}))
    status, _, body = _raw(proxy, "GET", "/dead")
    error = json.loads(body)["error"]
    assert status == 502 and error["type"] == "api_connection_error"
    assert str(dead_port) not in body.decode() and "127.0.0.1" not in body.decode()
    target.answer = Answer(delay=5)
    status, _, body = _raw(proxy, "GET", "/slow")
    assert status == 504 and json.loads(body)["error"]["type"] == "timeout"
    assert target.base_url not in body.decode()


# -- logging --------------------------------------------------------------------------------------

def test_one_logging_event_per_call_with_its_cost_and_address(start_proxy, target, tmp_path):
    proxy = _start(start_proxy, tmp_path, _config(
        target, {"path": "/paid", "target": target.base_url, "cost_per_request": 0.25,
                 "headers": {"x-api-key": "os.environ/TARGET_SECRET"}}), callbacks=True)
    assert _raw(proxy, "POST", "/paid", {**AUTH, "Content-Type": "application/json"}, b"{}")[0] == 200
    assert _raw(proxy, "POST", "/paid", {"Content-Type": "application/json"}, b"{}")[0] == 401
    events = _events(proxy, tmp_path)
    assert sorted(e["kind"] for e in events) == ["failure", "success"], proxy.logs()
    [ok] = [e for e in events if e["kind"] == "success"]
    [refused] = [e for e in events if e["kind"] == "failure"]
    assert ok["call_type"] == "pass_through_endpoint" and ok["cost"] == 0.25
    assert ok["record"]["endpoint"] == "/paid" and ok["record"]["status_code"] == 200
    assert ok["record"]["requester_ip_address"] == "127.0.0.1" and ok["record"]["cost_source"] == "cost_per_request"
    assert refused["record"]["status_code"] == 401 and refused["cost"] is None
    assert TARGET_SECRET not in json.dumps(events) and TARGET_SECRET not in proxy.logs()


# -- configuration --------------------------------------------------------------------------------

def _problems(tmp_path: Path, endpoints: list[Any], **general: Any) -> list[str]:
    raw = {"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
           "general_settings": {"pass_through_endpoints": endpoints, **general}}
    with pytest.raises(ConfigError) as info:
        build_access(parse_config(raw, "cfg.yaml", tmp_path))
    return info.value.problems


@pytest.mark.parametrize(("entry", "expected"), [
    ({"path": "bria", "target": "http://t"}, "expected a path below '/'"),
    ({"path": "/bria/", "target": "http://t"}, "is not a plain path"),
    ({"path": "/a/../b", "target": "http://t"}, "is not a plain path"),
    ({"path": "/b%61", "target": "http://t"}, "is not a plain path"),
    ({"path": "/b", "target": "ftp://t/x"}, "expected an http:// or https:// URL"),
    ({"path": "/b", "target": "http://user:pw@t/x"}, "must not carry credentials"),
    ({"path": "/b", "target": "http://t", "headers": {"X-A": "a\r\nX-Injected: 1"}}, "line breaks"),
    ({"path": "/b", "target": "http://t", "headers": {"Bad Name": "x"}}, "not a valid HTTP header name"),
    ({"path": "/b", "target": "http://t", "methods": ["FETCH"]}, "unknown method(s) FETCH"),
    ({"path": "/b", "target": "http://t", "headers": {"Authorization": "Bearer os.environ/NOPE_UNSET_X"}},
     "'NOPE_UNSET_X' is not set"),
    ({"path": "/v1/models", "target": "http://t"}, "is a route of the proxy itself"),
    ({"path": "/openai", "target": "http://t", "include_subpath": True}, "would cover routes of the proxy"),
])
def test_bad_entries_are_startup_errors(tmp_path, entry, expected):
    problems = _problems(tmp_path, [entry])
    assert any(expected in p and "pass_through_endpoints[0]" in p for p in problems), problems


def test_the_same_path_and_method_twice_is_an_error(tmp_path):
    problems = _problems(tmp_path, [{"path": "/b", "target": "http://t"},
                                    {"path": "/b", "target": "http://u", "methods": ["POST"]}])
    assert any("POST /b is already served by pass_through_endpoints[0]" in p for p in problems)


def test_same_path_different_methods_go_to_different_targets(start_proxy, target, tmp_path):
    with FakeTarget() as other:
        proxy = _start(start_proxy, tmp_path, _config(
            target, {"path": "/m", "target": target.base_url + "/get", "methods": ["GET"], "auth": False},
            {"path": "/m", "target": other.base_url + "/post", "methods": ["POST"], "auth": False}))
        assert _raw(proxy, "GET", "/m")[0] == 200 and _raw(proxy, "POST", "/m", {}, b"x")[0] == 200
        assert [r.path for r in target.requests] == ["/get"] and [r.path for r in other.requests] == ["/post"]
