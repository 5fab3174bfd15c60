"""A scriptable, observable fake of an OpenAI-compatible upstream, for integration tests.

Why hand-rolled on ``trio`` + ``h11`` instead of a web framework: the tests of the proxy
care about *connections*, not only about request/response pairs.  They need to know
whether the proxy reuses pooled keep-alive connections, and above all whether it closes
the upstream connection promptly when its own client goes away mid-request.  A framework
hides both; with ``h11`` every byte and every EOF is ours to observe.

Why a background thread with its own ``trio.run``: the same fake must serve plain
synchronous tests (the official ``openai`` sync client) and ``pytest-trio`` tests, and it
must keep serving while the test's own thread is blocked inside a sync client call.  A
thread with a private event loop is the only arrangement that satisfies all three.  The
blocking helpers (``wait_for_requests``/``wait_for_disconnect``) use a
``threading.Condition``; from inside a trio test call them through
``trio.to_thread.run_sync`` so they do not block that test's event loop.

Typical use::

    with FakeUpstream() as fake:
        fake.set_behavior("gpt-fake", Behavior(content="hi there", chunk_delay=0.01))
        ...  # point the proxy (or a client) at fake.base_url
        req = fake.wait_for_disconnect()
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from types import TracebackType
from typing import Any

import h11
import trio

__all__ = ["Behavior", "FakeUpstream", "RecordedRequest"]

log = logging.getLogger(__name__)

_MAX_RECV = 65536
_EMBEDDING_DIMENSIONS = 8


@dataclass
class RecordedRequest:
    """One request as the fake received it, plus what became of its connection.

    The record is appended as soon as the request (head and body) has been read, i.e.
    *before* any behaviour delay, so tests can wait for "the proxy has forwarded it" and
    then act (e.g. cancel the downstream client) while the upstream is still busy.
    ``client_disconnected_early``/``completed`` are then updated from the server thread.
    """

    method: str
    path: str  # without the query string (see ``query``)
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes
    json: Any | None  # parsed body, or None if empty / not valid JSON
    client_disconnected_early: bool = False
    completed: bool = False
    disconnected: threading.Event = field(
        default_factory=threading.Event, compare=False, repr=False
    )
    # Extensions beyond the brief, useful to assert on pooling and query forwarding.
    query: str = ""
    connection_id: int = 0  # same value => same TCP connection (keep-alive reuse)
    received_at: float = field(default_factory=time.monotonic, compare=False)
    # Streams: what the fake wrote, for tests of relaying and backpressure.
    events_sent: list[bytes] = field(default_factory=list, compare=False, repr=False)  # SSE events
    stream_bytes: int = 0  # body bytes of a stream the kernel accepted so far
    # a write would have blocked (the peer's backpressure), at least once
    send_blocked: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)
    # a write stayed blocked for ``Behavior.stall_after`` seconds: the peer stopped reading (a peer
    # that is merely slower than the fake blocks it only briefly); ``stream_bytes`` was then final
    stalled: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)


@dataclass
class Behavior:
    """How the fake answers requests for one model (see ``FakeUpstream.set_behavior``)."""

    content: str = "Hello from the fake upstream."
    status: int = 200
    error_message: str = "upstream failure"
    error_type: str = "server_error"
    error_code: str | None = None
    delay: float = 0.0  # before the status line; interrupted if the client leaves
    chunk_delay: float = 0.0  # between SSE events when streaming
    chunks: int | None = None  # content pieces when streaming; default one per word
    close_without_response: bool = False  # after ``delay``, close the socket, send nothing
    usage: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    # set by the test to let held requests answer (after ``delay``); interrupted if the client leaves
    hold: threading.Event | None = field(default=None, compare=False)
    error_param: str | None = None
    # an error answer that is not an OpenAI envelope (an HTML page, a plain-text traceback): sent
    # as is, with ``status`` and ``raw_error_content_type``
    raw_error_body: bytes | None = None
    raw_error_content_type: str = "text/html; charset=utf-8"
    # an upstream that echoes what it received: "{key}" (the bearer token) and "{target}" (path and
    # query string) in error_message / error_param / error_code / raw_error_body are replaced
    echo: bool = False
    # How a stream ends: "done" (data: [DONE], then the end of the chunked body), "clean" (the
    # chunked body ends without [DONE]) or "close" (the connection is closed mid-body).
    stream_end: str = "done"
    endless: bool = False  # stream content chunks for ever (ended by the client leaving)
    empty_body: bool = False  # answer 200 with an empty body (streaming or not)
    # answer 200 with this JSON body (non-streaming) or as the stream's only event
    error_in_200: dict[str, Any] | None = None
    location: str = "https://elsewhere.example/v1"  # for a 3xx ``status``
    send_buffer: int | None = None  # SO_SNDBUF for a stream's connection (backpressure tests)
    stall_after: float = 1.0  # a write blocked this long marks the request ``stalled``


def _echo(text: Any, rec: RecordedRequest) -> Any:
    """``text`` with "{key}" and "{target}" replaced by what ``rec`` carried (str or bytes)."""
    if text is None:
        return None
    auth = rec.headers.get("authorization", "")
    key = auth[len("Bearer "):] if auth.startswith("Bearer ") else auth
    target = f"{rec.path}?{rec.query}" if rec.query else rec.path
    if isinstance(text, bytes):
        return text.replace(b"{key}", key.encode()).replace(b"{target}", target.encode())
    return str(text).replace("{key}", key).replace("{target}", target)


class _Exchange:
    """Per-request connection state shared by the responder and the peer watcher."""

    def __init__(self) -> None:
        self.peer_gone = False  # the watcher saw EOF / reset from the client
        self.send_failed = False  # a send raised because the peer was gone
        self.we_closed = False  # deliberate close (close_without_response)


class _AbortConnection(Exception):
    """Raised while answering to close the connection at once (``stream_end="close"``)."""


class _HTTPError(Exception):
    """Raised inside request handling to answer with an OpenAI error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _words(text: str) -> int:
    return len(text.split())


def _text_of_content(content: Any) -> str:
    """Flatten chat message content (a string or a list of typed parts) to text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _prompt_tokens_chat(messages: Any) -> int:
    if not isinstance(messages, list):
        return 0
    return sum(_words(_text_of_content(m.get("content"))) for m in messages if isinstance(m, dict))


def _prompt_tokens_completion(prompt: Any) -> int:
    """Words for text prompts; list length for pre-tokenized prompts (lists of ints)."""
    if isinstance(prompt, str):
        return _words(prompt)
    if isinstance(prompt, list):
        if all(isinstance(p, int) for p in prompt):
            return len(prompt)
        return sum(_prompt_tokens_completion(p) for p in prompt)
    return 0


def _split_content(content: str, chunks: int | None) -> list[str]:
    """Split so that ``"".join(result) == content`` exactly (tests reassemble streams)."""
    if chunks is None:
        return re.findall(r"\s*\S+|\s+$", content)
    n = max(1, chunks)
    size, rest = divmod(len(content), n)
    pieces, pos = [], 0
    for i in range(n):
        step = size + (1 if i < rest else 0)
        pieces.append(content[pos : pos + step])
        pos += step
    return pieces


def fake_embedding(text: str, dimensions: int = _EMBEDDING_DIMENSIONS) -> list[float]:
    """Deterministic vector for ``text``.

    Values are int16/32768, which float32 represents exactly, so the ``base64`` encoding
    the openai client asks for by default decodes to exactly these floats.
    """
    raw = b""
    for counter in itertools.count():
        if len(raw) >= 2 * dimensions:
            break
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
    return [v / 32768.0 for v in struct.unpack(f"<{dimensions}h", raw[: 2 * dimensions])]


def _reason(status: int) -> bytes:
    """Reason phrase for the status line; h11 would otherwise send none."""
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


_SSE_DONE = b"data: [DONE]\n\n"


class FakeUpstream:
    """A real HTTP/1.1 OpenAI-compatible server on 127.0.0.1 with scripted behaviours.

    Routes (also without the ``/v1`` prefix): ``POST /v1/chat/completions``,
    ``POST /v1/completions``, ``POST /v1/embeddings``, ``GET /v1/models``,
    ``GET /v1/models/{id}``.  Anything else gets a 404 OpenAI error envelope.
    """

    def __init__(self, *, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        # Unexpected exceptions from connection handlers: kept (not raised) so that one
        # bad connection does not take the fake down, but tests can assert it is empty.
        self.errors: list[BaseException] = []
        self.base_url = ""
        self.port = 0
        self._cond = threading.Condition()
        self._behaviors: dict[str, Behavior] = {}
        self._reported_disconnects: set[int] = set()  # ids of records already returned
        self._ids = itertools.count(1)
        self._connection_ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel_scope: trio.CancelScope | None = None
        self._crash: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeUpstream:
        """Start the server thread; returns once the socket is listening."""
        if self._thread is not None:
            raise RuntimeError("FakeUpstream already started")
        self._ready.clear()
        self._thread = threading.Thread(target=self._thread_main, name="fake-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError("FakeUpstream did not start listening within 10 s")
        if self._crash is not None:
            raise RuntimeError("FakeUpstream failed to start") from self._crash
        return self

    def stop(self) -> None:
        """Cancel every connection, close the listener and join the thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._token is not None and self._cancel_scope is not None:
            # run_sync_soon rather than trio.from_thread.run_sync: the latter refuses to be
            # called from a thread that is itself running trio (a pytest-trio test).
            try:
                self._token.run_sync_soon(self._cancel_scope.cancel)
            except trio.RunFinishedError:
                pass
        thread.join(10.0)
        if thread.is_alive():
            raise RuntimeError("FakeUpstream thread did not stop within 10 s")
        if self._crash is not None:
            raise RuntimeError("FakeUpstream server crashed") from self._crash

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ scripting & observation

    def set_behavior(self, model: str, behavior: Behavior) -> None:
        """Script answers for requests whose body has ``"model": model``; ``"*"`` is the default."""
        with self._cond:
            self._behaviors[model] = behavior

    def reset(self) -> None:
        """Forget recorded requests, behaviours and reported disconnects (ids keep counting)."""
        with self._cond:
            self.requests.clear()
            self._behaviors.clear()
            self._reported_disconnects.clear()
            self.errors.clear()

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> None:
        """Block until at least ``n`` requests have been recorded (since the last reset)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= n, timeout):
                raise TimeoutError(
                    f"expected {n} request(s) at the fake upstream within {timeout} s, "
                    f"got {len(self.requests)}: {[(r.method, r.path) for r in self.requests]}"
                )

    def wait_until(self, condition: Any, timeout: float = 5.0, what: str = "a condition") -> None:
        """Block until ``condition()`` is true (re-checked whenever the fake records something)."""
        with self._cond:
            if not self._cond.wait_for(condition, timeout):
                raise TimeoutError(f"{what} did not happen at the fake upstream within {timeout} s")

    def wait_for_disconnect(self, timeout: float = 5.0) -> RecordedRequest:
        """Block until a client closed a connection before its response was fully sent.

        Returns the earliest such request not returned by a previous call, so a test that
        cancels two streams can call this twice and get both.
        """

        def pending() -> RecordedRequest | None:
            for rec in self.requests:
                if rec.client_disconnected_early and id(rec) not in self._reported_disconnects:
                    return rec
            return None

        with self._cond:
            if not self._cond.wait_for(lambda: pending() is not None, timeout):
                raise TimeoutError(
                    f"no early client disconnect observed at the fake upstream within {timeout} s; "
                    f"requests: {[(r.path, r.completed) for r in self.requests]}"
                )
            rec = pending()
            assert rec is not None
            self._reported_disconnects.add(id(rec))
            return rec

    # ------------------------------------------------------------------ server thread

    def _thread_main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # surfaced by start()/stop() in the test thread
            self._crash = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            self._cancel_scope = scope
            async with trio.open_nursery() as nursery:
                await nursery.start(trio.serve_listeners, self._handle_connection, listeners)
                self._ready.set()

    async def _handle_connection(self, stream: trio.SocketStream) -> None:
        # serve_listeners would crash the whole server on an exception: contain it here.
        try:
            async with stream:
                await self._connection_loop(stream, next(self._connection_ids))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except Exception as exc:
            log.exception("fake upstream: connection handler failed")
            with self._cond:
                self.errors.append(exc)

    async def _connection_loop(self, stream: trio.SocketStream, connection_id: int) -> None:
        """Serve requests on one connection until either side wants it closed (keep-alive)."""
        conn = h11.Connection(h11.SERVER)
        while True:
            try:
                got = await self._read_request(stream, conn)
            except h11.RemoteProtocolError as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    err = _HTTPError(
                        exc.error_status_hint, f"bad HTTP request: {exc}", "invalid_request_error"
                    )
                    await stream.send_all(self._error_bytes(conn, err))
                return
            if got is None:
                return  # clean close between requests
            request, body = got
            record = self._record(request, body, connection_id)
            if not await self._exchange(stream, conn, record):
                return
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return  # MUST_CLOSE (Connection: close, HTTP/1.0) or an aborted exchange
            conn.start_next_cycle()

    async def _read_request(
        self, stream: trio.SocketStream, conn: h11.Connection
    ) -> tuple[h11.Request, bytes] | None:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue:
                    await stream.send_all(
                        conn.send(h11.InformationalResponse(status_code=100, headers=[]))
                    )
                conn.receive_data(await stream.receive_some(_MAX_RECV))  # b"" marks EOF
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                return request, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                return None

    def _record(self, request: h11.Request, body: bytes, connection_id: int) -> RecordedRequest:
        headers: dict[str, str] = {}
        for name, value in request.headers:
            key, val = name.decode("latin-1").lower(), value.decode("latin-1")
            headers[key] = f"{headers[key]}, {val}" if key in headers else val
        target = request.target.decode("latin-1")
        path, _, query = target.partition("?")
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        rec = RecordedRequest(
            method=request.method.decode("ascii"),
            path=path,
            headers=headers,
            body=body,
            json=parsed,
            query=query,
            connection_id=connection_id,
        )
        with self._cond:
            self.requests.append(rec)
            self._cond.notify_all()
        return rec

    async def _exchange(
        self, stream: trio.SocketStream, conn: h11.Connection, rec: RecordedRequest
    ) -> bool:
        """Answer one request while a sibling task watches the socket for the client leaving.

        The watcher is what makes delays and slow streams *observable and interruptible*:
        a peer EOF cancels the responder at once instead of after its next failed write.
        Returns whether the connection may be kept open.
        """
        state = _Exchange()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_peer, stream, conn, state, nursery.cancel_scope)
            try:
                await self._respond(stream, conn, rec, state)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                state.send_failed = True
            nursery.cancel_scope.cancel()  # response done (or failed): stop watching
        if not rec.completed and not state.we_closed and (state.peer_gone or state.send_failed):
            with self._cond:
                rec.client_disconnected_early = True
                rec.disconnected.set()
                self._cond.notify_all()
        return rec.completed and not state.peer_gone

    @staticmethod
    async def _watch_peer(
        stream: trio.SocketStream, conn: h11.Connection, state: _Exchange, scope: trio.CancelScope
    ) -> None:
        try:
            while True:
                data = await stream.receive_some(_MAX_RECV)
                if not data:
                    break
                conn.receive_data(data)  # early bytes of a pipelined next request: keep them
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        state.peer_gone = True
        scope.cancel()

    # ------------------------------------------------------------------ responses

    def _behavior_for(self, model: Any) -> Behavior:
        with self._cond:
            if isinstance(model, str) and model in self._behaviors:
                return self._behaviors[model]
            return self._behaviors.get("*") or Behavior()

    async def _respond(
        self,
        stream: trio.SocketStream,
        conn: h11.Connection,
        rec: RecordedRequest,
        state: _Exchange,
    ) -> None:
        try:
            await self._route(stream, conn, rec, state)
        except _HTTPError as err:
            await self._send_final(stream, conn, rec, self._error_bytes(conn, err))
        except _AbortConnection:
            state.we_closed = True
            await stream.aclose()

    async def _route(
        self,
        stream: trio.SocketStream,
        conn: h11.Connection,
        rec: RecordedRequest,
        state: _Exchange,
    ) -> None:
        if (
            self.api_key is not None
            and rec.headers.get("authorization") != f"Bearer {self.api_key}"
        ):
            raise _HTTPError(
                401,
                "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
            )
        path = rec.path[3:] if rec.path.startswith("/v1/") else rec.path
        if path == "/models" or path.startswith("/models/"):
            if rec.method != "GET":
                raise _HTTPError(
                    405, f"Method {rec.method} not allowed on {rec.path}", "invalid_request_error"
                )
            await self._send_final(
                stream, conn, rec, self._json_bytes(conn, 200, self._models(path), {})
            )
            return
        handlers = {
            "/chat/completions": self._chat,
            "/completions": self._completions,
            "/embeddings": self._embeddings,
            "/responses": self._responses,
        }
        handler = handlers.get(path)
        if handler is None:
            raise _HTTPError(404, f"Invalid URL ({rec.method} {rec.path})", "invalid_request_error")
        if rec.method != "POST":
            raise _HTTPError(
                405, f"Method {rec.method} not allowed on {rec.path}", "invalid_request_error"
            )
        body = rec.json
        if not isinstance(body, dict):
            raise _HTTPError(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means you "
                "aren't using your HTTP library correctly.)",
                "invalid_request_error",
            )
        if not isinstance(body.get("model"), str):
            raise _HTTPError(
                400, "you must provide a model parameter", "invalid_request_error", param="model"
            )
        behavior = self._behavior_for(body["model"])
        if behavior.delay > 0:
            await trio.sleep(behavior.delay)  # cancelled by the watcher if the client leaves
        if behavior.hold is not None:
            await trio.to_thread.run_sync(behavior.hold.wait, abandon_on_cancel=True)
        if behavior.close_without_response:
            state.we_closed = True
            await stream.aclose()
            return
        if 300 <= behavior.status < 400:
            page = b"<html><body>Moved</body></html>"
            await self._send_final(stream, conn, rec, conn.send(h11.Response(
                status_code=behavior.status, reason=_reason(behavior.status),
                headers=[("location", behavior.location), ("content-type", "text/html"),
                         ("content-length", str(len(page)))]))
                + conn.send(h11.Data(data=page)) + conn.send(h11.EndOfMessage()))
            return
        if behavior.empty_body:
            kind = "text/event-stream" if body.get("stream") else "application/json"
            await self._send_final(stream, conn, rec, conn.send(h11.Response(
                status_code=200, reason=b"OK", headers=[("content-type", kind), ("content-length", "0")]))
                + conn.send(h11.EndOfMessage()))
            return
        if behavior.error_in_200 is not None:
            if body.get("stream"):
                error_event = iter([_sse(behavior.error_in_200)])
                await self._stream(stream, conn, rec, replace(behavior, stream_end="clean"), error_event)
            else:
                await self._send_final(stream, conn, rec,
                                       self._json_bytes(conn, 200, behavior.error_in_200, behavior.headers))
            return
        if behavior.status != 200:
            echo = (lambda text: _echo(text, rec)) if behavior.echo else (lambda text: text)
            if behavior.raw_error_body is not None:
                payload = echo(behavior.raw_error_body)
                headers = {"content-type": behavior.raw_error_content_type,
                           "content-length": str(len(payload)), **behavior.headers}
                response = h11.Response(status_code=behavior.status, headers=list(headers.items()),
                                        reason=_reason(behavior.status))
                await self._send_final(stream, conn, rec, conn.send(response) + conn.send(h11.Data(data=payload))
                                       + conn.send(h11.EndOfMessage()))
                return
            raise _HTTPError(
                behavior.status,
                echo(behavior.error_message),
                behavior.error_type,
                echo(behavior.error_code),
                param=echo(behavior.error_param),
                headers=behavior.headers,
            )
        await handler(stream, conn, rec, body, behavior)

    def _models(self, path: str) -> dict[str, Any]:
        def model(name: str) -> dict[str, Any]:
            return {"id": name, "object": "model", "created": 0, "owned_by": "fake-upstream"}

        if path.startswith("/models/"):
            return model(path[len("/models/") :])
        with self._cond:
            names = sorted(k for k in self._behaviors if k != "*") or ["fake-model"]
        return {"object": "list", "data": [model(n) for n in names]}

    async def _chat(
        self,
        stream: trio.SocketStream,
        conn: h11.Connection,
        rec: RecordedRequest,
        body: dict[str, Any],
        b: Behavior,
    ) -> None:
        n = body.get("n") or 1
        prompt_tokens = _prompt_tokens_chat(body.get("messages"))
        usage = self._usage(prompt_tokens, _words(b.content) * n)
        ident, created, model = f"chatcmpl-fake-{next(self._ids)}", int(time.time()), body["model"]
        if not body.get("stream"):
            obj: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": b.content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                    for i in range(n)
                ],
                "system_fingerprint": "fp_fake",
            }
            if b.usage:
                obj["usage"] = usage
            await self._send_final(stream, conn, rec, self._json_bytes(conn, 200, obj, b.headers))
            return

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            obj = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
            }
            obj.update(system_fingerprint="fp_fake", choices=choices, **extra)
            if include_usage:
                obj.setdefault("usage", None)
            return _sse(obj)

        def choice(i: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}

        def events() -> Iterator[bytes]:
            yield chunk([choice(i, {"role": "assistant", "content": ""}) for i in range(n)])
            pieces = [chunk([choice(i, {"content": piece}) for i in range(n)])
                      for piece in _split_content(b.content, b.chunks)]
            yield from pieces
            while b.endless:
                yield from pieces
            yield chunk([choice(i, {}, "stop") for i in range(n)])
            if include_usage and b.usage:
                yield chunk([], usage=usage)

        await self._stream(stream, conn, rec, b, events())

    async def _responses(
        self,
        stream: trio.SocketStream,
        conn: h11.Connection,
        rec: RecordedRequest,
        body: dict[str, Any],
        b: Behavior,
    ) -> None:
        """OpenAI's Responses API, strictly: a body with chat fields is refused like OpenAI refuses
        unknown parameters, so a test sees whether the proxy forwarded the body untranslated. The
        answer is ``b.content``; a stream is OpenAI's event sequence, ended by ``response.completed``
        (no ``[DONE]``; ``stream_end`` "clean"/"close" cut it before that event)."""
        for field_name in ("messages", "stream_options", "max_tokens", "max_completion_tokens", "metadata_proxy"):
            if field_name in body and not (field_name == "stream_options"
                                           and set(body[field_name]) <= {"include_obfuscation"}):
                raise _HTTPError(400, f"Unknown parameter: '{field_name}'.", "invalid_request_error",
                                 "unknown_parameter", param=field_name)
        if "input" not in body:
            raise _HTTPError(400, "Missing required parameter: 'input'.", "invalid_request_error",
                             "missing_required_parameter", param="input")
        n = next(self._ids)
        ident, created, model = f"resp_fake{n}", int(time.time()), body["model"]
        prompt = _words(json.dumps(body["input"]))
        usage = {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 2},
                 "output_tokens": _words(b.content), "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": prompt + _words(b.content)}
        message = {"id": f"msg_fake{n}", "type": "message", "status": "completed", "role": "assistant",
                   "content": [{"type": "output_text", "text": b.content, "annotations": [], "logprobs": []}]}

        def response(status: str, output: list[Any], with_usage: bool) -> dict[str, Any]:
            return {"id": ident, "object": "response", "created_at": created, "status": status, "error": None,
                    "incomplete_details": None, "instructions": body.get("instructions"), "model": model,
                    "output": output, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
                    "temperature": body.get("temperature"), "top_p": None, "store": body.get("store", True),
                    "text": {"format": {"type": "text"}}, "metadata": {},
                    "usage": usage if with_usage and b.usage else None}

        if not body.get("stream"):
            await self._send_final(stream, conn, rec,
                                   self._json_bytes(conn, 200, response("completed", [message], True), b.headers))
            return
        seq = iter(range(1_000_000))

        def event(kind: str, **fields: Any) -> bytes:
            obj = {"type": kind, **fields, "sequence_number": next(seq)}
            return f"event: {kind}\n".encode() + _sse(obj)

        def events() -> Iterator[bytes]:
            yield event("response.created", response=response("in_progress", [], False))
            yield event("response.in_progress", response=response("in_progress", [], False))
            started = {**message, "status": "in_progress", "content": []}
            yield event("response.output_item.added", output_index=0, item=started)
            part = {"type": "output_text", "text": "", "annotations": []}
            yield event("response.content_part.added", item_id=message["id"], output_index=0, content_index=0, part=part)
            pieces = [event("response.output_text.delta", item_id=message["id"], output_index=0, content_index=0,
                            delta=piece, logprobs=[]) for piece in _split_content(b.content, b.chunks)]
            yield from pieces
            while b.endless:
                yield from pieces
            yield event("response.output_text.done", item_id=message["id"], output_index=0, content_index=0,
                        text=b.content, logprobs=[])
            yield event("response.content_part.done", item_id=message["id"], output_index=0, content_index=0,
                        part=message["content"][0])
            yield event("response.output_item.done", output_index=0, item=message)
            if b.stream_end == "done":
                yield event("response.completed", response=response("completed", [message], True))

        await self._stream(stream, conn, rec, replace(b, stream_end="clean") if b.stream_end == "done" else b,
                           events())

    async def _completions(
        self,
        stream: trio.SocketStream,
        conn: h11.Connection,
        rec: RecordedRequest,
        body: dict[str, Any],
        b: Behavior,
    ) -> None:
        n = body.get("n") or 1
        usage = self._usage(_prompt_tokens_completion(body.get("prompt")), _words(b.content) * n)
        ident, created, model = f"cmpl-fake-{next(self._ids)}", int(time.time()), body["model"]

        def choice(i: int, text: str, finish: str | None) -> dict[str, Any]:
            return {"text": text, "index": i, "logprobs": None, "finish_reason": finish}

        def obj(choices: list[dict[str, Any]]) -> dict[str, Any]:
            return {
                "id": ident,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": choices,
            }

        if not body.get("stream"):
            full = obj([choice(i, b.content, "stop") for i in range(n)])
            if b.usage:
                full["usage"] = usage
            await self._send_final(stream, conn, rec, self._json_bytes(conn, 200, full, b.headers))
            return

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def events() -> Iterator[bytes]:
            for piece in _split_content(b.content, b.chunks):
                yield _sse(obj([choice(i, piece, None) for i in range(n)]))
            yield _sse(obj([choice(i, "", "stop") for i in range(n)]))
            if include_usage and b.usage:
                yield _sse({**obj([]), "usage": usage})

        await self._stream(stream, conn, rec, b, events())

    async def _embeddings(
        self,
        stream: trio.SocketStream,
        conn: h11.Connection,
        rec: RecordedRequest,
        body: dict[str, Any],
        b: Behavior,
    ) -> None:
        raw = body.get("input")
        if isinstance(raw, str) or (
            isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw)
        ):
            inputs: list[Any] = [raw]
        elif isinstance(raw, list) and raw:
            inputs = raw
        else:
            raise _HTTPError(
                400,
                "'input' must be a string or a non-empty array",
                "invalid_request_error",
                param="input",
            )
        dims = body.get("dimensions") or _EMBEDDING_DIMENSIONS
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, item in enumerate(inputs):
            vector = fake_embedding(item if isinstance(item, str) else json.dumps(item), dims)
            encoded: Any = (
                base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode("ascii")
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = _prompt_tokens_completion(inputs)
        obj: dict[str, Any] = {"object": "list", "data": data, "model": body["model"]}
        if b.usage:
            obj["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        await self._send_final(stream, conn, rec, self._json_bytes(conn, 200, obj, b.headers))

    @staticmethod
    def _usage(prompt: int, completion: int) -> dict[str, int]:
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    # ------------------------------------------------------------------ wire helpers

    async def _stream(
        self,
        stream: trio.SocketStream,
        conn: h11.Connection,
        rec: RecordedRequest,
        b: Behavior,
        events: Iterator[bytes],
    ) -> None:
        """Send SSE events with ``chunk_delay`` between them, chunked transfer encoding.

        ``[DONE]`` and the terminating zero-length chunk go out in one write: clients such
        as ``openai`` close the connection as soon as they read ``[DONE]``, and that must
        not be mistaken for an early disconnect. ``b.stream_end`` can leave ``[DONE]`` out,
        or close the connection instead of ending the body. Every event is recorded in
        ``rec.events_sent`` (except for endless streams) and counted in ``rec.stream_bytes``.
        """
        headers = {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            **b.headers,
        }
        if b.send_buffer is not None:
            stream.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, b.send_buffer)
        await stream.send_all(
            conn.send(h11.Response(status_code=200, headers=list(headers.items()), reason=b"OK"))
        )
        first = True
        for event in events:
            if not first and b.chunk_delay > 0:
                await trio.sleep(b.chunk_delay)
            first = False
            if not b.endless:
                rec.events_sent.append(event)
            await self._send_counted(stream, rec, conn.send(h11.Data(data=event)), b.stall_after)
        if b.chunk_delay > 0:
            await trio.sleep(b.chunk_delay)
        if b.stream_end == "close":
            raise _AbortConnection
        tail = b"" if b.stream_end == "clean" else conn.send(h11.Data(data=_SSE_DONE))
        await self._send_final(stream, conn, rec, tail + conn.send(h11.EndOfMessage()))

    async def _send_counted(
        self, stream: trio.SocketStream, rec: RecordedRequest, data: bytes, stall_after: float
    ) -> None:
        """``send_all`` that counts what the kernel accepted and notes when a write would block.

        Written with non-blocking ``os.write`` calls on the socket (Trio's sockets are
        non-blocking), so "our send buffer is full" is an observed fact
        (``rec.send_blocked``), and "it stayed full for ``stall_after`` seconds" too
        (``rec.stalled``). The duration only tells a stopped reader from a slow one; a
        test waits for the event, it never asserts how long anything took.
        """
        fd = stream.socket.fileno()
        view = memoryview(data)
        while view:
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                if not rec.send_blocked.is_set():
                    with self._cond:
                        rec.send_blocked.set()
                        self._cond.notify_all()
                with trio.move_on_after(stall_after) as waiting:
                    await trio.lowlevel.wait_writable(stream.socket)
                if waiting.cancelled_caught:
                    with self._cond:
                        rec.stalled.set()
                        self._cond.notify_all()
                    await trio.lowlevel.wait_writable(stream.socket)
                continue
            except OSError as exc:  # EPIPE, ECONNRESET: the peer is gone
                raise trio.BrokenResourceError(str(exc)) from exc
            view = view[written:]
            rec.stream_bytes += written
            await trio.lowlevel.checkpoint()

    @staticmethod
    async def _send_final(
        stream: trio.SocketStream, conn: h11.Connection, rec: RecordedRequest, data: bytes
    ) -> None:
        """Write the last bytes of a response, marking it complete *before* the write.

        Marking first matters because the client runs on another thread: it can hold the
        whole response before this task is scheduled again, and a test asserting
        ``completed`` right after its call returned must not race.  The mark is undone if
        the write fails or is cancelled before every byte reached the kernel.  Once it
        has, ``send_all`` returns normally even if the watcher cancelled us meanwhile
        (trio's checkpoint after a successful write is shielded), so a client that closes
        right after reading a complete response is never counted as an early disconnect.
        """
        rec.completed = True
        try:
            await stream.send_all(data)
        except BaseException:
            rec.completed = False
            raise

    @staticmethod
    def _json_bytes(conn: h11.Connection, status: int, obj: Any, extra: dict[str, str]) -> bytes:
        payload = json.dumps(obj).encode()
        headers = {
            "content-type": "application/json",
            "content-length": str(len(payload)),
            "x-request-id": f"req_fake_{time.monotonic_ns()}",
            **extra,
        }
        return (
            conn.send(
                h11.Response(
                    status_code=status, headers=list(headers.items()), reason=_reason(status)
                )
            )
            + conn.send(h11.Data(data=payload))
            + conn.send(h11.EndOfMessage())
        )

    @classmethod
    def _error_bytes(cls, conn: h11.Connection, err: _HTTPError) -> bytes:
        return cls._json_bytes(conn, err.status, err.body, err.headers)
