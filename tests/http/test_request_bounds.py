"""The HTTP layer's bounds under slow or huge input (issue #8): through a real ``trioproxy run``.

Slow, huge and malformed input is written byte by byte on raw sockets; the upstream is the fake
on 127.0.0.1. Deadlines are made short through the config so that the tests are quick, and the
tests assert what the client gets (status, envelope, a closed connection), never how long it took:
every wait below is a bound for a condition to become true, not a measurement. The figures (how
fast, how much memory) are ``bench/limits.py``'s business.
"""

from __future__ import annotations

import json
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_upstream import Behavior, FakeUpstream
from support.inprocess import call, make_pipeline
from support.proxy_process import ProxyProcess, write_config
from trioproxy.config import ConfigError, parse_config, size_limit_bytes

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
MESSAGES = [{"role": "user", "content": "hi"}]
HEAD_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
#: bound on waiting for an answer that must come (generous: the machine is shared)
WAIT = 30.0


# -- raw HTTP/1.1 on a socket ------------------------------------------------------------------------

def _address(proxy: ProxyProcess) -> tuple[str, int]:
    host, _, port = proxy.base_url.removeprefix("http://").partition(":")
    return host, int(port)


def _connect(proxy: ProxyProcess) -> socket.socket:
    sock = socket.create_connection(_address(proxy), timeout=WAIT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _head(method: str, path: str, headers: list[tuple[str, str]] | None = None, *, length: int | None = None,
          extra: str = "") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {MASTER_KEY}"]
    if length is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {length}"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode("latin-1")


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a test failure if it does not)."""
    data = bytearray()
    while True:
        try:
            piece = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"the proxy did not close the connection; received: {bytes(data[:300])!r}") from None
        except ConnectionResetError:
            break   # closed with unread input on its side: what was sent before still counts
        if not piece:
            break
        data += piece
    return bytes(data)


def _read_one_response(sock: socket.socket) -> bytes:
    """One Content-Length response on a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"connection closed mid-head: {data!r}"
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        piece = sock.recv(65536)
        assert piece
        body += piece
    return head + b"\r\n\r\n" + body


def _parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def _envelope(raw: bytes, status: int, code: str) -> dict[str, Any]:
    got, headers, body = _parse(raw)
    assert got == status, raw[:500]
    error = json.loads(body)["error"]
    assert error["code"] == code, error
    assert set(error) == {"message", "type", "param", "code"}
    return error


def _send_in_pieces(sock: socket.socket, data: bytes, size: int) -> None:
    """Send ``data`` in ``size``-byte writes, each its own TCP segment; stop once an answer is waiting."""
    for start in range(0, len(data), size):
        if select.select([sock], [], [], 0)[0]:
            return
        try:
            sock.sendall(data[start:start + size])
        except (BrokenPipeError, ConnectionResetError):
            return
        time.sleep(0.002)   # lets the segment leave alone (TCP_NODELAY); not a timing assumption


class Trickle:
    """Writes one byte every ``interval`` seconds on ``sock`` until stopped or the socket breaks."""

    def __init__(self, sock: socket.socket, interval: float = 0.1) -> None:
        self.stop = threading.Event()
        self.sent = 0

        def run() -> None:
            while not self.stop.wait(interval):
                try:
                    sock.send(b"x")
                except OSError:
                    return
                self.sent += 1

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def __enter__(self) -> Trickle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(WAIT)


# -- one proxy for most of the module ---------------------------------------------------------------

@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as upstream:
        yield upstream
        assert not upstream.errors, upstream.errors


@pytest.fixture(scope="module")
def proxy(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    heavy = upstream_model(fake, "weighted", "up-heavy", weight=1)
    fallback = upstream_model(fake, "weighted", "up-zero", weight=0)
    config = {
        "model_list": [upstream_model(fake, "gpt-test", "up-model"), heavy, fallback],
        # blocked_user_check gives the proxy a Quart route that reads a body (/customer/block)
        "litellm_settings": {"callbacks": ["blocked_user_check"], "blocked_user_list": [], "num_retries": 2},
        "general_settings": {"master_key": MASTER_KEY, "request_header_timeout": HEAD_TIMEOUT,
                             "request_body_timeout": BODY_TIMEOUT},
    }
    path = write_config(tmp_path_factory.mktemp("bounds"), config)
    with ProxyProcess(path) as running:
        yield running


@pytest.fixture
def http(proxy: ProxyProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, headers=AUTH, timeout=WAIT) as client:
        yield client


# -- 12. deadlines: request head ---------------------------------------------------------------------

def test_a_head_that_stops_midway_gets_408_and_the_connection_closes(proxy: ProxyProcess) -> None:
    with _connect(proxy) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: app")
        error = _envelope(_read_until_closed(sock), 408, "request_timeout")
    assert error["type"] == "invalid_request_error"
    assert "request_header_timeout" in error["message"]


def test_a_head_trickled_one_byte_at_a_time_gets_408_and_the_connection_closes(proxy: ProxyProcess) -> None:
    """Each byte arrives well within any per-read timeout; only a deadline for the whole head stops it."""
    with _connect(proxy) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        with Trickle(sock) as trickle:
            raw = _read_until_closed(sock)
        assert trickle.sent >= 1
    _envelope(raw, 408, "request_timeout")


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(proxy: ProxyProcess) -> None:
    with _connect(proxy) as sock:
        assert _read_until_closed(sock) == b""


def test_a_kept_alive_connection_may_idle_longer_than_the_head_deadline(proxy: ProxyProcess) -> None:
    """The head deadline runs from a head's first byte: idling between requests is keep-alive's business."""
    with _connect(proxy) as sock:
        sock.sendall(_head("GET", "/health/liveliness"))
        assert _parse(_read_one_response(sock))[0] == 200
        time.sleep(HEAD_TIMEOUT * 1.5)   # idle past the head deadline, on purpose
        sock.sendall(_head("GET", "/health/liveliness"))
        assert _parse(_read_one_response(sock))[0] == 200


def test_a_pipelined_head_left_unfinished_gets_408_too(proxy: ProxyProcess) -> None:
    """Part of the next head sent with the previous request: its deadline runs from the response."""
    with _connect(proxy) as sock:
        sock.sendall(_head("GET", "/health/liveliness") + b"GET /health/liveliness HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        raw = _read_until_closed(sock)
    first, _, rest = raw.partition(b'"I\'m alive!"')
    assert _parse(first)[0] == 200
    _envelope(rest, 408, "request_timeout")


def test_a_connection_the_client_closes_is_closed_at_once_not_at_keep_alive_expiry(proxy: ProxyProcess) -> None:
    """Hypercorn kept such sockets (CLOSE_WAIT) until its 75 s keep-alive timer: descriptors piled up."""
    with _connect(proxy) as sock:
        sock.sendall(_head("GET", "/health/liveliness"))
        assert _parse(_read_one_response(sock))[0] == 200
        sock.shutdown(socket.SHUT_WR)
        assert _read_until_closed(sock) == b""


# -- 12. deadlines: request body ---------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/chat/completions", "/customer/block"])
def test_a_body_that_stops_midway_gets_408_and_the_connection_closes(proxy: ProxyProcess, path: str) -> None:
    """The proxy routes (asgi.py) and the Quart routes alike."""
    with _connect(proxy) as sock:
        sock.sendall(_head("POST", path, length=100) + b'{"model": "gpt-test", ')
        error = _envelope(_read_until_closed(sock), 408, "request_timeout")
    assert "request_body_timeout" in error["message"]


def test_a_body_trickled_one_byte_at_a_time_gets_408(proxy: ProxyProcess, fake: FakeUpstream) -> None:
    before = len(fake.requests)
    with _connect(proxy) as sock:
        sock.sendall(_head("POST", "/v1/chat/completions", length=10_000))
        with Trickle(sock) as trickle:
            raw = _read_until_closed(sock)
        assert trickle.sent >= 1
    _envelope(raw, 408, "request_timeout")
    assert len(fake.requests) == before   # nothing was forwarded


# -- 13. header limits -------------------------------------------------------------------------------

def _many_headers(count: int) -> list[tuple[str, str]]:
    return [(f"X-Extra-{i}", "v") for i in range(count)]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/health/liveliness"])
@pytest.mark.parametrize("piece", [None, 37], ids=["one-piece", "37-byte-pieces"])
def test_more_than_100_header_fields_get_431_on_every_route(proxy: ProxyProcess, path: str, piece: int | None) -> None:
    # the head has 3 fields of its own (Host, Authorization, Content-*): 98 more make 101 (+2 with a body)
    method, body = ("POST", json.dumps({"model": "gpt-test", "messages": MESSAGES}).encode()) \
        if path.startswith("/v1") else ("GET", b"")
    head = _head(method, path, _many_headers(101 - 2 - (2 if body else 0)), length=len(body) if body else None)
    with _connect(proxy) as sock:
        if piece is None:
            sock.sendall(head + body)
        else:
            _send_in_pieces(sock, head + body, piece)
        error = _envelope(_read_until_closed(sock), 431, "request_headers_too_large")
    assert "max_request_headers" in error["message"] and "101" in error["message"]


def test_100_header_fields_are_accepted(proxy: ProxyProcess) -> None:
    with _connect(proxy) as sock:
        sock.sendall(_head("GET", "/health/liveliness", _many_headers(100 - 2)))
        assert _parse(_read_one_response(sock))[0] == 200


@pytest.mark.parametrize("piece", [None, 1024], ids=["one-piece", "1KiB-pieces"])
@pytest.mark.parametrize("size", [40 * 1024, 100 * 1024], ids=["40KiB", "100KiB"])
def test_a_header_block_over_32_KiB_gets_431_however_tcp_splits_it(proxy: ProxyProcess, size: int,
                                                                    piece: int | None) -> None:
    """Under the HTTP parser's own buffer limit (64 KiB) the proxy answers 431 in the envelope; above
    it, h11 refuses the head before it is complete (431, empty body). Both close the connection."""
    head = _head("GET", "/health/liveliness", [("X-Big", "a" * size)])
    with _connect(proxy) as sock:
        if piece is None:
            sock.sendall(head)
        else:
            _send_in_pieces(sock, head, piece)
        raw = _read_until_closed(sock)
    status, headers, body = _parse(raw)
    assert status == 431, raw[:300]
    assert headers.get("connection") == "close"
    if size < 64 * 1024:
        error = _envelope(raw, 431, "request_headers_too_large")
        assert "max_request_header_size_kb" in error["message"]


def test_a_header_block_just_under_32_KiB_is_accepted(proxy: ProxyProcess) -> None:
    with _connect(proxy) as sock:
        sock.sendall(_head("GET", "/health/liveliness", [("X-Big", "a" * (31 * 1024))]))
        assert _parse(_read_one_response(sock))[0] == 200


# -- 14. request size and cheap bounds ---------------------------------------------------------------

def test_max_request_size_mb_defaults_to_32_MiB(proxy: ProxyProcess) -> None:
    """A body declared one byte over 32 MiB is refused before it is read (and the connection closed)."""
    with _connect(proxy) as sock:
        sock.sendall(_head("POST", "/v1/chat/completions", length=32 * 1024 * 1024 + 1))
        error = _envelope(_read_until_closed(sock), 413, "request_too_large")
    assert "Max size is 32 MB" in error["message"]


def test_more_than_100000_messages_is_a_400_naming_messages(http: httpx.Client, fake: FakeUpstream) -> None:
    before = len(fake.requests)
    messages = [{"role": "user", "content": ""}] * 100_001
    response = http.post("/chat/completions", json={"model": "gpt-test", "messages": messages})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "messages" and error["code"] == "array_above_max_length"
    assert "100001" in error["message"]
    assert len(fake.requests) == before


def test_a_body_with_over_500000_json_values_is_refused_before_it_is_parsed(http: httpx.Client) -> None:
    body = b'{"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "x": [' + b"0," * 500_001 + b"0]}"
    response = http.post("/chat/completions", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "request_too_complex"


@pytest.mark.parametrize(("n", "code"), [(129, "integer_out_of_range"), (0, "integer_out_of_range"),
                                         ("two", "invalid_type")])
def test_n_out_of_range_is_a_400_and_never_reaches_an_openai_upstream(http: httpx.Client, fake: FakeUpstream,
                                                                       n: Any, code: str) -> None:
    before = len(fake.requests)
    response = http.post("/chat/completions", json={"model": "gpt-test", "messages": MESSAGES, "n": n})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "n" and error["code"] == code
    assert len(fake.requests) == before


def test_a_body_over_1_MiB_is_still_served(http: httpx.Client, fake: FakeUpstream) -> None:
    """Bodies over the inline threshold take the worker-thread path; the answer is the same."""
    content = "word " * (300 * 1024)
    response = http.post("/chat/completions", json={"model": "gpt-test", "messages": [{"role": "user", "content": content}]})
    assert response.status_code == 200, response.text
    assert fake.requests[-1].json["messages"][0]["content"] == content


# -- weight: 0 is a fallback only ----------------------------------------------------------------------

def test_a_deployment_with_weight_0_is_used_only_as_a_fallback(http: httpx.Client, fake: FakeUpstream) -> None:
    def sent_to(model: str) -> int:
        return sum(1 for r in fake.requests if isinstance(r.json, dict) and r.json.get("model") == model)

    for _ in range(20):
        assert http.post("/chat/completions", json={"model": "weighted", "messages": MESSAGES}).status_code == 200
    assert sent_to("up-heavy") >= 20 and sent_to("up-zero") == 0
    fake.set_behavior("up-heavy", Behavior(status=500, error_message="heavy is down"))
    try:
        response = http.post("/chat/completions", json={"model": "weighted", "messages": MESSAGES})
    finally:
        fake.set_behavior("up-heavy", Behavior())
    assert response.status_code == 200, response.text
    assert sent_to("up-zero") == 1


# -- 12. a slow body does not hold graceful shutdown beyond its deadline ---------------------------------

def test_a_trickling_body_does_not_hold_graceful_shutdown_past_the_body_deadline(
        start_proxy: Callable[..., ProxyProcess], fake: FakeUpstream) -> None:
    proxy = start_proxy({"model_list": [upstream_model(fake)],
                         "general_settings": {"master_key": MASTER_KEY, "request_body_timeout": BODY_TIMEOUT,
                                              "graceful_shutdown_timeout": 600}})
    with _connect(proxy) as sock:
        # "Expect: 100-continue": the 100 proves the head was parsed, i.e. the request is in flight
        sock.sendall(_head("POST", "/v1/chat/completions", length=10_000, extra="Expect: 100-continue\r\n"))
        assert sock.recv(100).startswith(b"HTTP/1.1 100 ")
        with Trickle(sock):
            proxy.process.send_signal(signal.SIGTERM)
            raw = _read_until_closed(sock)
        _envelope(raw, 408, "request_timeout")
    # with the 600 s graceful deadline, only the body deadline can have ended the request
    assert proxy.process.wait(timeout=WAIT) == 0, proxy.logs()


# -- 14. a large body is parsed off the event loop ------------------------------------------------------

BARRIER_HANDLER = '''
"""Test-only: holds the large-body parse (in whatever thread runs it) until the test says go."""
import threading
import time
from pathlib import Path

from trioproxy import CustomLogger
from trioproxy.core import endpoints

HERE = Path(__file__).parent
_real = endpoints.parse_large


def _held_parse(route, raw_body):
    (HERE / "parse-started").write_text(threading.current_thread().name)
    deadline = time.monotonic() + 60
    while not (HERE / "parse-go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return _real(route, raw_body)


endpoints.parse_large = _held_parse


class Handler(CustomLogger):
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        pass


handler = Handler()
'''


def test_health_answers_while_a_large_body_is_being_parsed(start_proxy: Callable[..., ProxyProcess],
                                                            fake: FakeUpstream, tmp_path: Path) -> None:
    """Ordering, not timing: the parse is held open by the test, and health answers meanwhile. Had the
    parse run on the Trio thread, nothing else could run until it returned (and it waits for the test)."""
    proxy = start_proxy({"model_list": [upstream_model(fake)],
                         "litellm_settings": {"callbacks": ["held_parse.handler"]},
                         "general_settings": {"master_key": MASTER_KEY}},
                        files={"held_parse.py": BARRIER_HANDLER}, subdir="held")
    here = tmp_path / "held"
    big = {"model": "gpt-test", "messages": [{"role": "user", "content": "x" * (2 * 1024 * 1024)}]}
    result: dict[str, Any] = {}

    def send_big() -> None:
        with httpx.Client(base_url=proxy.url, headers=AUTH, timeout=120) as client:
            result["response"] = client.post("/chat/completions", json=big)

    sender = threading.Thread(target=send_big, daemon=True)
    sender.start()
    try:
        started = here / "parse-started"
        deadline = time.monotonic() + WAIT
        while not started.exists():
            assert time.monotonic() < deadline, proxy.logs()
            time.sleep(0.01)
        assert started.read_text() != "MainThread"
        with httpx.Client(base_url=proxy.base_url, timeout=WAIT) as client:
            assert client.get("/health/liveliness").status_code == 200
        assert "response" not in result      # the big request is still being parsed
    finally:
        (here / "parse-go").write_text("go")
        sender.join(WAIT)
    assert result["response"].status_code == 200, result["response"].text


# -- 15. overload: max_in_flight_requests ------------------------------------------------------------------

def _open_stream(proxy: ProxyProcess, model: str) -> socket.socket:
    body = json.dumps({"model": model, "messages": MESSAGES, "stream": True}).encode()
    sock = _connect(proxy)
    sock.sendall(_head("POST", "/v1/chat/completions", length=len(body)) + body)
    return sock


def test_over_max_in_flight_requests_a_fast_503_with_retry_after_and_health_keeps_answering(
        start_proxy: Callable[..., ProxyProcess], fake: FakeUpstream) -> None:
    release = threading.Event()
    fake.set_behavior("up-slow", Behavior(content="one two three", chunks=3, chunk_delay=3600))
    fake.set_behavior("up-held", Behavior(content="done", hold=release))
    proxy = start_proxy({"model_list": [upstream_model(fake, "slow", "up-slow"), upstream_model(fake, "held", "up-held"),
                                        upstream_model(fake, "fast", "up-fast")],
                         "general_settings": {"master_key": MASTER_KEY, "max_in_flight_requests": 3}})
    before = len(fake.requests)
    streams = [_open_stream(proxy, "slow"), _open_stream(proxy, "slow"), _open_stream(proxy, "held")]
    try:
        for sock in streams[:2]:   # two streams really open: status line and a first chunk received
            received = b""
            while b"data: " not in received:
                piece = sock.recv(65536)
                assert piece, received
                received += piece
        fake.wait_for_requests(before + 3, timeout=WAIT)
        with httpx.Client(base_url=proxy.base_url, headers=AUTH, timeout=WAIT) as client:
            refused = client.post("/v1/chat/completions", json={"model": "fast", "messages": MESSAGES})
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "1"
            error = refused.json()["error"]
            assert (error["type"], error["code"]) == ("service_unavailable", "proxy_overloaded")
            assert "max_in_flight_requests" in error["message"]
            assert client.get("/health/liveliness").status_code == 200
            assert client.get("/health/readiness").status_code == 200
            assert client.get("/metrics").status_code == 200
            assert len(fake.requests) == before + 3          # the refused request went nowhere

            release.set()                                    # one stream finishes...
            held = streams[2]
            answer = b""
            while b"data: [DONE]" not in answer:
                piece = held.recv(65536)
                assert piece, answer
                answer += piece
            # ...and a new request is admitted (once the proxy has finished its bookkeeping)
            for _ in range(200):
                admitted = client.post("/v1/chat/completions", json={"model": "fast", "messages": MESSAGES})
                if admitted.status_code != 503:
                    break
                time.sleep(0.05)
            assert admitted.status_code == 200, admitted.text
    finally:
        release.set()
        for sock in streams:
            sock.close()


# -- config: names, defaults, conversions ---------------------------------------------------------------

def _config(general: dict[str, Any]) -> Any:
    raw = {"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}], "general_settings": general}
    return parse_config(raw, "<test>", Path.cwd())


def test_the_defaults_of_the_bounds() -> None:
    config = _config({})
    assert config.max_request_bytes == 32 * 1024 * 1024
    assert config.max_response_bytes is None
    assert config.request_header_timeout == 10.0 and config.request_body_timeout == 30.0
    assert config.max_request_header_bytes == 32 * 1024 and config.max_request_headers == 100
    assert config.max_in_flight_requests == 1000


def test_the_bounds_are_configurable_and_keep_the_names_users_rely_on() -> None:
    config = _config({"request_header_timeout": 2, "request_body_timeout": 5, "max_request_header_size_kb": 8,
                      "max_request_headers": 20, "max_in_flight_requests": 7, "max_request_size_mb": 1.5,
                      "graceful_shutdown_timeout": 12, "hook_timeout_seconds": 3,
                      "http_pool": {"max_connections": 10, "max_keepalive_connections": 5,
                                    "keepalive_expiry": 30, "connect_timeout": 2}})
    assert (config.request_header_timeout, config.request_body_timeout) == (2.0, 5.0)
    assert (config.max_request_header_bytes, config.max_request_headers) == (8192, 20)
    assert config.max_in_flight_requests == 7
    assert config.max_request_bytes == int(1.5 * 1024 * 1024)
    assert (config.graceful_shutdown_timeout, config.hook_timeout) == (12.0, 3.0)


def test_litellms_global_max_parallel_requests_is_the_same_cap() -> None:
    assert _config({"global_max_parallel_requests": 64}).max_in_flight_requests == 64


@pytest.mark.parametrize("general", [{"max_in_flight_requests": 0}, {"request_body_timeout": 0},
                                     {"max_request_headers": "many"}, {"max_request_size_mb": -1}])
def test_bad_bound_values_are_config_errors(general: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(general)
    assert f"general_settings.{next(iter(general))}" in str(caught.value)


def test_size_limits_count_mebibytes_and_0_refuses_every_body() -> None:
    assert size_limit_bytes(None) is None
    assert size_limit_bytes(1) == 1024 * 1024
    assert size_limit_bytes(0) == 0
    assert size_limit_bytes(0.000000001) == 0    # the seeds' test value: every non-empty body is over it


def test_max_request_size_mb_0_refuses_every_body_and_custom_header_limits_apply(
        start_proxy: Callable[..., ProxyProcess], fake: FakeUpstream) -> None:
    proxy = start_proxy({"model_list": [upstream_model(fake)],
                         "general_settings": {"master_key": MASTER_KEY, "max_request_size_mb": 0,
                                              "max_request_headers": 10, "max_request_header_size_kb": 2}})
    with httpx.Client(base_url=proxy.base_url, headers=AUTH, timeout=WAIT) as client:
        refused = client.post("/v1/chat/completions", json={"model": "gpt-test", "messages": MESSAGES})
        assert refused.status_code == 413 and refused.json()["error"]["code"] == "request_too_large"
        assert client.get("/health/liveliness", headers=dict(_many_headers(8))).status_code == 431
        assert client.get("/health/liveliness", headers={"X-Big": "a" * 2100}).status_code == 431
        assert client.get("/health/liveliness").status_code == 200


# -- where a body is parsed (in process) ------------------------------------------------------------------

@pytest.mark.parametrize(("messages", "content", "inline"), [
    (10, "hi", True),                      # the usual body: parsed on the Trio thread, no thread hop
    (30_000, "", False),                   # under 1 MiB but value-heavy: a worker thread
    (1, "x" * (1024 * 1024 + 1), False),   # over 1 MiB: a worker thread
])
async def test_value_heavy_or_large_bodies_are_parsed_in_a_worker_thread(
        monkeypatch: pytest.MonkeyPatch, messages: int, content: str, inline: bool) -> None:
    from trioproxy.core import endpoints

    threads: list[threading.Thread] = []
    real = endpoints.parse_large

    def recording(route: Any, raw_body: bytes) -> dict[str, Any]:
        threads.append(threading.current_thread())
        return real(route, raw_body)

    monkeypatch.setattr(endpoints, "parse_large", recording)
    body = {"model": "fake-model", "messages": [{"role": "user", "content": content}] * messages}
    response = await call(make_pipeline(), body)
    assert response.status == 200, response.body
    if inline:
        assert threads == []
    else:
        assert len(threads) == 1 and threads[0] is not threading.main_thread()


# -- the Quart routes' bodies -------------------------------------------------------------------------

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
