"""Streams end honestly (issue #8, items 8–11), through a real ``trioproxy run`` and a real upstream.

Every way an upstream stream can end badly — the connection closed mid-body, a clean end without
``data: [DONE]``, an empty 200, a redirect, a 200 that carries an error envelope, an endless stream,
one huge event — must reach the client as an error (a real HTTP status when nothing was relayed yet,
else a terminal SSE error event instead of ``[DONE]``), be logged as a failure and run the failure
hooks exactly once. Chunks are relayed unchanged; a client that stops reading throttles the upstream;
SIGTERM ends open streams with a ``shutdown`` error event before Hypercorn's deadline cuts them.

No test asserts a duration: waits are for conditions (an event seen by the fake upstream, a line in
the recorder's file), each bounded.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_upstream import Behavior, FakeUpstream, RecordedRequest
from support.proxy_process import ProxyProcess, write_config

RECORDER = '''
import json, os
from trioproxy import CustomLogger


def write(**fields):
    with open(os.environ["TRIOPROXY_TEST_EVENTS"], "a") as out:
        out.write(json.dumps(fields) + "\\n")


def case_of(data):
    return ((data or {}).get("metadata") or {}).get("case")


class Recorder(CustomLogger):
    async def async_post_call_failure_hook(self, request_data, original_exception, user_api_key_dict,
                                           traceback_str):
        write(kind="failure_hook", case=case_of(request_data), code=getattr(original_exception, "code", None),
              error=type(original_exception).__name__)

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        record = kwargs["standard_logging_object"]
        write(kind="failure", case=record["metadata"].get("case"), status=record["status_code"],
              code=record["error_code"])

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        record = kwargs["standard_logging_object"]
        write(kind="success", case=record["metadata"].get("case"), status=record["status_code"])


handler = Recorder()
'''

HEADERS = {"Authorization": f"Bearer {MASTER_KEY}"}
MESSAGES = [{"role": "user", "content": "hi"}]
MIB = 1024 * 1024


# -- fixtures and helpers -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as upstream:
        yield upstream
        assert not upstream.errors, upstream.errors


def _config(fake: FakeUpstream, **general: Any) -> dict[str, Any]:
    return {
        "model_list": [upstream_model(fake, "gpt-test", "up-model"),
                       upstream_model(fake, "short", "up-short", max_stream_duration=0.5)],
        "litellm_settings": {"callbacks": ["recorder.handler"], "num_retries": 2},
        "general_settings": {"master_key": MASTER_KEY, **general},
    }


class Proxy:
    """A running proxy and the file its recorder handler writes (one JSON line per hook call)."""

    def __init__(self, process: ProxyProcess, events: Path) -> None:
        self.process = process
        self.events = events
        self.url = process.url

    def records(self, case: str) -> list[dict[str, Any]]:
        if not self.events.exists():
            return []
        lines = [json.loads(line) for line in self.events.read_text().splitlines() if line]
        return [line for line in lines if line.get("case") == case]

    def wait_for_outcome(self, case: str, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The case's records once its outcome event (delivered off the request path) was written."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.records(case)
            if any(r["kind"] in ("success", "failure") for r in records):
                return records
            assert time.monotonic() < deadline, f"no outcome event for {case!r} within {timeout} s: {records}"
            time.sleep(0.02)


def _start(directory: Path, config: dict[str, Any], args: list[str] | None = None) -> Proxy:
    events = directory / "events.jsonl"
    path = write_config(directory, config, files={"recorder.py": RECORDER})
    process = ProxyProcess(path, env={"TRIOPROXY_TEST_EVENTS": str(events)}, args=args)
    return Proxy(process, events)


@pytest.fixture(scope="module")
def proxy(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    started = _start(tmp_path_factory.mktemp("streams"), _config(fake))
    with started.process:
        yield started


@pytest.fixture
def upstream(fake: FakeUpstream) -> FakeUpstream:
    fake.reset()
    return fake


def stream(proxy: Proxy, case: str, model: str = "gpt-test", endpoint: str = "chat/completions",
           **extra: Any) -> tuple[int, Any]:
    """POST a streaming request; (200, [payloads]) with ``"[DONE]"`` kept as a string, or (status, JSON)."""
    body: dict[str, Any] = {"model": model, "stream": True, "metadata": {"case": case}, **extra}
    if endpoint == "chat/completions":
        body.setdefault("messages", MESSAGES)
    else:
        body.setdefault("prompt", "hi")
    with httpx.stream("POST", f"{proxy.url}/{endpoint}", headers=HEADERS, json=body, timeout=60) as response:
        if response.status_code != 200:
            return response.status_code, json.loads(response.read())
        assert response.headers["content-type"].startswith("text/event-stream")
        payloads = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    return 200, [p if p == "[DONE]" else json.loads(p) for p in payloads]


def complete(proxy: Proxy, case: str, model: str = "gpt-test") -> httpx.Response:
    return httpx.post(f"{proxy.url}/chat/completions", headers=HEADERS, timeout=60,
                      json={"model": model, "messages": MESSAGES, "metadata": {"case": case}})


def text_of(events: list[Any]) -> str:
    return "".join(choice["delta"].get("content") or "" for e in events if isinstance(e, dict) and "choices" in e
                   for choice in e["choices"] if choice["index"] == 0)


def assert_failed_once(proxy: Proxy, case: str, status: int, code: str) -> None:
    """Exactly one failure hook run and one failure event, none of success, with this status and code."""
    records = proxy.wait_for_outcome(case)
    hooks = [r for r in records if r["kind"] == "failure_hook"]
    outcomes = [r for r in records if r["kind"] in ("success", "failure")]
    assert [(h["code"]) for h in hooks] == [code], records
    assert [(o["kind"], o["status"], o["code"]) for o in outcomes] == [("failure", status, code)], records


def only_request(fake: FakeUpstream) -> RecordedRequest:
    fake.wait_for_requests(1)
    return fake.requests[-1]


# -- 8. streams that end without [DONE], empty 200s, redirects ------------------------------------------

@pytest.mark.parametrize("ending", ["close", "clean"])
def test_stream_ending_without_done_is_an_interrupted_answer(proxy: Proxy, upstream: FakeUpstream,
                                                             ending: str) -> None:
    upstream.set_behavior("up-model", Behavior(content="one two three", stream_end=ending))
    status, events = stream(proxy, f"no-done-{ending}")

    assert status == 200                        # chunks were relayed before the end came
    assert text_of(events) == "one two three"   # everything the upstream sent reached the client
    assert "[DONE]" not in events
    error = events[-1]["error"]
    assert error["code"] == "upstream_stream_interrupted"
    assert error["type"] == "server_error"
    assert "incomplete" in error["message"]
    assert_failed_once(proxy, f"no-done-{ending}", 502, "upstream_stream_interrupted")


def test_openai_sdk_raises_on_an_interrupted_stream(proxy: Proxy, upstream: FakeUpstream) -> None:
    upstream.set_behavior("up-model", Behavior(content="one two three", stream_end="close"))
    client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=60)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True,
                                                    extra_body={"metadata": {"case": "sdk"}}):
            received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "".join(received) == "one two three"
    assert "incomplete" in str(caught.value)
    assert_failed_once(proxy, "sdk", 502, "upstream_stream_interrupted")


def test_empty_200_stream_is_a_502_before_the_status_line(proxy: Proxy, upstream: FakeUpstream) -> None:
    upstream.set_behavior("up-model", Behavior(empty_body=True))
    status, body = stream(proxy, "empty-stream")
    assert status == 502
    assert body["error"]["code"] == "upstream_stream_interrupted"
    assert body["error"]["type"] == "server_error"
    assert_failed_once(proxy, "empty-stream", 502, "upstream_stream_interrupted")


def test_empty_200_answer_is_a_502(proxy: Proxy, upstream: FakeUpstream) -> None:
    upstream.set_behavior("up-model", Behavior(empty_body=True))
    response = complete(proxy, "empty")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "empty_upstream_response"
    assert response.json()["error"]["type"] == "server_error"
    assert_failed_once(proxy, "empty", 502, "empty_upstream_response")


@pytest.mark.parametrize("streaming", [True, False])
def test_redirect_is_a_502_and_not_followed(proxy: Proxy, upstream: FakeUpstream, streaming: bool) -> None:
    upstream.set_behavior("up-model", Behavior(status=302, location="http://127.0.0.1:9/elsewhere"))
    case = f"redirect-{streaming}"
    if streaming:
        status, body = stream(proxy, case)
    else:
        response = complete(proxy, case)
        status, body = response.status_code, response.json()
    assert status == 502
    assert body["error"]["code"] == "upstream_redirect"
    assert "302" in body["error"]["message"]
    assert "elsewhere" not in body["error"]["message"] and "127.0.0.1" not in body["error"]["message"]
    assert_failed_once(proxy, case, 502, "upstream_redirect")
    assert len(upstream.requests) == 1          # a redirect is configuration, not a transient error


# -- 9. a 200 that carries an OpenAI error envelope ------------------------------------------------------

ENVELOPES = [
    ({"message": "Rate limit reached for requests", "type": "requests", "param": None,
      "code": "rate_limit_exceeded"}, 429, "rate_limit_exceeded"),
    ({"message": "Invalid 'messages'", "type": "invalid_request_error", "param": "messages", "code": None},
     400, "400"),
    ({"message": "The engine is overloaded", "code": 503}, 503, "503"),
    ({"message": "Something odd", "type": "odd_error"}, 502, "502"),
]


@pytest.mark.parametrize(("error", "status", "code"), ENVELOPES, ids=[str(e[1]) for e in ENVELOPES])
@pytest.mark.parametrize("streaming", [False, True], ids=["json", "first-event"])
def test_error_envelope_in_a_200_is_that_error(proxy: Proxy, upstream: FakeUpstream, error: dict[str, Any],
                                               status: int, code: str, streaming: bool) -> None:
    upstream.set_behavior("up-model", Behavior(error_in_200={"error": error}))
    case = f"envelope-{status}-{streaming}"
    if streaming:
        got_status, body = stream(proxy, case)
    else:
        response = complete(proxy, case)
        got_status, body = response.status_code, response.json()
    assert got_status == status
    assert error["message"] in body["error"]["message"]
    assert body["error"]["code"] == code
    if error.get("param"):
        assert body["error"]["param"] == error["param"]
    records = proxy.wait_for_outcome(case)
    assert [r["kind"] for r in records] == ["failure_hook", "failure"]
    assert records[1]["status"] == status


# -- 10. max_stream_duration, one huge event ---------------------------------------------------------------

def test_max_stream_duration_stops_an_endless_stream(proxy: Proxy, upstream: FakeUpstream) -> None:
    upstream.set_behavior("up-short", Behavior(content="tick tock", endless=True, chunk_delay=0.01))
    status, events = stream(proxy, "endless", model="short")
    assert status == 200
    assert text_of(events).startswith("tick tock")
    assert "[DONE]" not in events
    error = events[-1]["error"]
    assert error["code"] == "stream_duration_exceeded"
    assert "max_stream_duration (0.5 s)" in error["message"]
    upstream.wait_for_disconnect(timeout=10)    # the upstream connection was closed: it stops generating
    assert_failed_once(proxy, "endless", 504, "stream_duration_exceeded")


def test_an_event_over_16_mib_ends_the_stream(proxy: Proxy, upstream: FakeUpstream) -> None:
    huge = "x" * (16 * MIB)
    upstream.set_behavior("up-model", Behavior(content="hello " + huge))   # "hello", then the huge word
    status, events = stream(proxy, "huge-event")
    assert status == 200                        # the role chunk and "hello" came first and were relayed
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert events[1]["choices"][0]["delta"]["content"] == "hello"
    assert events[-1]["error"]["code"] == "stream_event_too_large"
    assert events[-1]["error"]["type"] == "response_too_large"
    assert len(events) == 3
    assert_failed_once(proxy, "huge-event", 502, "stream_event_too_large")


def test_a_first_event_over_16_mib_is_a_502(proxy: Proxy, upstream: FakeUpstream) -> None:
    upstream.set_behavior("up-model", Behavior(content="y" * (16 * MIB + 10), chunks=1))
    status, body = stream(proxy, "huge-first", endpoint="completions")     # text streams start with text
    assert status == 502
    assert body["error"]["code"] == "stream_event_too_large"
    assert_failed_once(proxy, "huge-first", 502, "stream_event_too_large")


# -- 10b. chunks relayed unchanged; backpressure -----------------------------------------------------------

def _ordered(payload: bytes | str) -> Any:
    """JSON with key order kept (objects as lists of pairs), so order is compared too."""
    return json.loads(payload, object_pairs_hook=list)


def _client_events(proxy: Proxy, case: str, **extra: Any) -> list[bytes]:
    body = {"model": "gpt-test", "stream": True, "messages": MESSAGES, "n": 2, "metadata": {"case": case}, **extra}
    with httpx.stream("POST", f"{proxy.url}/chat/completions", headers=HEADERS, json=body, timeout=60) as response:
        assert response.status_code == 200
        raw = response.read()
    events = [event for event in raw.split(b"\n\n") if event]
    assert events[-1] == b"data: [DONE]"
    return [event + b"\n\n" for event in events[:-1]]


@pytest.mark.parametrize("content", ["Plain ASCII words, \"quoted\" and {braced}.",
                                     "Unicode: h\u00e9 \U0001f44b \u4f60\u597d\nnew line\ttab"],
                         ids=["ascii", "unicode"])
def test_chunks_are_relayed_unchanged(proxy: Proxy, upstream: FakeUpstream, content: str) -> None:
    upstream.set_behavior("up-model", Behavior(content=content, chunks=6))

    # the client asked for usage: every upstream event, byte for byte (ASCII) / value for value and
    # in the same key order (non-ASCII: the upstream escapes it as \\uXXXX, the proxy sends UTF-8)
    received = _client_events(proxy, "unchanged-usage", stream_options={"include_usage": True})
    sent = only_request(upstream).events_sent
    assert [_ordered(e[6:]) for e in received] == [_ordered(e[6:]) for e in sent]
    if content.isascii():
        assert received == sent

    # the client did not ask for usage: the proxy asked for it (for the cost), so the usage chunk and
    # the "usage": null it made the upstream add are the only differences
    upstream.reset()
    upstream.set_behavior("up-model", Behavior(content=content, chunks=6))
    received = _client_events(proxy, "unchanged")
    request = only_request(upstream)
    assert request.json["stream_options"] == {"include_usage": True}
    expected = []
    for event in request.events_sent:
        pairs = _ordered(event[6:])
        fields = dict(pairs)
        if fields["choices"] == [] and fields.get("usage"):
            continue                            # the usage chunk
        expected.append([(k, v) for k, v in pairs if not (k == "usage" and v is None)])
    assert [_ordered(e[6:]) for e in received] == expected
    assert len(expected) == len(request.events_sent) - 1


def _tcp_buffer_max(name: str) -> int:
    """The kernel's autotuning ceiling for TCP receive (``tcp_rmem``) or send (``tcp_wmem``) buffers."""
    return int(Path(f"/proc/sys/net/ipv4/{name}").read_text().split()[2])


def test_a_client_that_stops_reading_throttles_the_upstream(proxy: Proxy, upstream: FakeUpstream) -> None:
    """The proxy pulls from the upstream only as fast as the client reads: a client that stops
    reading stops the upstream (its writes block) with at most one event held in the proxy."""
    upstream.set_behavior("up-model", Behavior(content="z" * 16384, chunks=4, endless=True,
                                               send_buffer=64 * 1024))
    host, port = proxy.process.base_url.removeprefix("http://").rsplit(":", 1)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    client.settimeout(30)
    client.connect((host, int(port)))
    try:
        body = json.dumps({"model": "gpt-test", "stream": True, "messages": MESSAGES,
                           "metadata": {"case": "slow-reader"}}).encode()
        client.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\n"
                       b"Authorization: Bearer " + MASTER_KEY.encode() + b"\r\nContent-Type: application/json\r\n"
                       b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        received = b""
        while b"data: " not in received:        # the status line and the first events
            piece = client.recv(65536)
            assert piece, received
            received += piece
        assert received.startswith(b"HTTP/1.1 200")
        # from here on the client reads nothing: the proxy stops reading, the upstream's writes stall
        # (a proxy that kept pulling would only ever block them briefly, and this wait would fail)
        request = only_request(upstream)
        upstream.wait_until(request.stalled.is_set, timeout=120, what="the upstream's writes stalling")

        in_flight = request.stream_bytes - len(received)
        # what can be in flight: the proxy's receive buffer on the upstream connection and its send
        # buffer on the client's (at most the kernel's autotuning ceilings), the small buffers this
        # test set on the two ends, and in the proxy itself at most one incomplete event
        kernel = _tcp_buffer_max("tcp_rmem") + _tcp_buffer_max("tcp_wmem") + MIB
        assert in_flight <= 16 * MIB + kernel, (in_flight, kernel)
        assert not request.completed
    finally:
        client.close()
    upstream.wait_for_disconnect(timeout=30)    # the client left: the upstream connection is closed too
    records = proxy.wait_for_outcome("slow-reader")
    assert [(r["kind"], r.get("status")) for r in records] == [("failure_hook", None), ("failure", 499)]


# -- 11. graceful shutdown -----------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_ends_an_open_stream_with_a_shutdown_event(fake: FakeUpstream, upstream: FakeUpstream,
                                                            tmp_path: Path, workers: int) -> None:
    started = _start(tmp_path, _config(fake, graceful_shutdown_timeout=2), args=["--workers", str(workers)])
    upstream.set_behavior("up-model", Behavior(content="still going", endless=True, chunk_delay=0.01))
    with started.process as process:
        payloads = []
        with httpx.stream("POST", f"{started.url}/chat/completions", headers=HEADERS, timeout=60,
                          json={"model": "gpt-test", "stream": True, "messages": MESSAGES,
                                "metadata": {"case": "shutdown"}}) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            for line in lines:
                if line.startswith("data: "):
                    payloads.append(line[6:])
                if len(payloads) == 3:
                    break
            process.process.send_signal(signal.SIGTERM)
            payloads += [line[6:] for line in lines if line.startswith("data: ")]
        # the body ended (iter_lines returned): after the error event, not by a cut connection
        events = [json.loads(p) for p in payloads if p != "[DONE]"]
        assert "[DONE]" not in payloads
        error = events[-1]["error"]
        assert error["code"] == "shutdown"
        assert error["type"] == "server_error"
        assert all("choices" in e for e in events[:-1]) and len(events) > 3
        assert process.process.wait(timeout=30) == 0
        logs = process.logs()
    assert "ending 1 open stream(s) with a 'shutdown' error event" in logs
    upstream.wait_for_disconnect(timeout=10)
    assert_failed_once(started, "shutdown", 503, "shutdown")


@pytest.mark.parametrize("streaming", [False, True])
def test_sigterm_answers_a_request_still_waiting_for_its_upstream_with_503_shutdown(
        fake: FakeUpstream, upstream: FakeUpstream, tmp_path: Path, streaming: bool) -> None:
    """A request whose answer has not begun when the graceful deadline nears (an upstream still
    thinking) gets a 503 ``shutdown`` with ``Retry-After`` (the OpenAI SDKs retry it), its failure
    hooks once and one failure event, instead of a connection Hypercorn cuts without an answer."""
    started = _start(tmp_path, _config(fake, graceful_shutdown_timeout=2))
    held = threading.Event()
    upstream.set_behavior("up-model", Behavior(hold=held))
    case = f"held-{streaming}"
    try:
        with started.process as process:
            answers: list[httpx.Response] = []

            def post() -> None:
                answers.append(httpx.post(f"{started.url}/chat/completions", headers=HEADERS, timeout=60,
                                          json={"model": "gpt-test", "messages": MESSAGES, "stream": streaming,
                                                "metadata": {"case": case}}))

            client = threading.Thread(target=post)
            client.start()
            upstream.wait_for_requests(1)           # the request is at the upstream, held there
            process.process.send_signal(signal.SIGTERM)
            client.join(timeout=60)
            assert answers, "no answer"
            response = answers[0]
            assert response.status_code == 503, response.text
            assert response.headers.get("retry-after") == "1"
            error = response.json()["error"]
            assert (error["code"], error["type"]) == ("shutdown", "server_error")
            assert process.process.wait(timeout=30) == 0, process.logs()
    finally:
        held.set()
    assert_failed_once(started, case, 503, "shutdown")


def _open_stream_and_stop_reading(url: str, case: str) -> socket.socket:
    """A raw client with a small receive buffer that reads the status line and first events, then nothing."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    client.settimeout(30)
    client.connect((host, int(port)))
    body = json.dumps({"model": "gpt-test", "stream": True, "messages": MESSAGES,
                       "metadata": {"case": case}}).encode()
    client.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\n"
                   b"Authorization: Bearer " + MASTER_KEY.encode() + b"\r\nContent-Type: application/json\r\n"
                   b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    received = b""
    while b"data: " not in received:
        piece = client.recv(65536)
        assert piece, received
        received += piece
    assert received.startswith(b"HTTP/1.1 200")
    return client


def test_a_client_that_stops_reading_does_not_hold_a_graceful_shutdown(fake: FakeUpstream, upstream: FakeUpstream,
                                                                       tmp_path: Path) -> None:
    """Hypercorn's writes are shielded from cancellation: a client that never reads again kept the
    worker alive for ever after SIGTERM. At the graceful deadline its socket is now closed, the
    blocked write fails, and the process exits."""
    started = _start(tmp_path, _config(fake, graceful_shutdown_timeout=2))
    upstream.set_behavior("up-model", Behavior(content="z" * 16384, chunks=4, endless=True))
    with started.process as process:
        client = _open_stream_and_stop_reading(process.base_url, "stuck-reader")
        try:
            # the proxy's write to this client blocks (its buffers are full): the upstream stalls
            request = only_request(upstream)
            upstream.wait_until(request.stalled.is_set, timeout=120, what="the upstream's writes stalling")
            process.process.send_signal(signal.SIGTERM)
            # without the fix this waits for ever (the test's timeout fails it)
            assert process.process.wait(timeout=60) == 0, process.logs()
        finally:
            client.close()
    upstream.wait_for_disconnect(timeout=10)
    records = started.wait_for_outcome("stuck-reader")
    # stopped before the deadline (the 'shutdown' event could not be delivered): one failure, reported once
    assert [r["kind"] for r in records] == ["failure_hook", "failure"], records
    assert records[-1]["code"] == "shutdown", records


def test_streams_stop_a_little_before_the_graceful_deadline() -> None:
    from trioproxy.core.shutdown import streams_stop_after

    assert streams_stop_after(30) == 25         # the default: 5 s for failure hooks and the last write
    assert streams_stop_after(2) == 1.5
    assert streams_stop_after(0) == 0
