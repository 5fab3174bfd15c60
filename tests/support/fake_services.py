"""A tiny base for the loopback fakes of hosted services (Vault, Google, Azure, moderation APIs).

Why ``http.server`` in a thread rather than the trio/h11 machinery of ``fake_upstream.py``: these
fakes answer one JSON request with one JSON response; what the tests assert on is *what the proxy
sent* (paths, headers, bodies), which ``requests`` records. The fake must keep answering while a
test blocks in a subprocess or a sync client, hence the thread.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeService", "Reply", "Seen"]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeService:
    """Subclasses implement ``handle(seen) -> Reply``. ``hold`` parks every request until released."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.requests: list[Seen] = []
        self.hold = threading.Event()
        self.hold.set()
        self.lock = threading.Lock()
        self._recorded = threading.Condition(self.lock)
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = Seen(self.command, parts.path, parse_qs(parts.query),
                            {k.lower(): v for k, v in self.headers.items()}, body)
                with service.lock:
                    service.requests.append(seen)
                    service._recorded.notify_all()
                service.hold.wait(60)
                reply = service.handle(seen)
                payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if ssl_context is not None:
            self.server.socket = ssl_context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.port = self.server.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, seen: Seen) -> Reply:  # pragma: no cover - subclasses
        raise NotImplementedError

    def seen(self, predicate: Callable[[Seen], bool] = lambda s: True) -> list[Seen]:
        with self.lock:
            return [s for s in self.requests if predicate(s)]

    def wait_for(self, predicate: Callable[[list[Seen]], bool], timeout: float = 30.0) -> None:
        """Block until ``predicate(requests so far)`` holds (re-checked at every request)."""
        with self._recorded:
            if not self._recorded.wait_for(lambda: predicate(self.requests), timeout):
                raise TimeoutError(f"the awaited requests did not reach the fake within {timeout} s")

    def __enter__(self) -> FakeService:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()
