"""``Request``: what a ``general_settings.custom_auth`` function receives as its ``request``.

LiteLLM calls ``custom_auth(request: fastapi.Request, api_key: str)``; trioproxy is not FastAPI, so
handler files import this class instead (``from trioproxy import Request``: rewriting the import is
all a LiteLLM custom-auth file needs). It offers the part of Starlette's ``Request`` such functions
use: ``method``, ``url.path`` (and ``url.query``, ``str(url)``), ``headers`` (case-insensitive),
``query_params``, ``path_params`` (empty), ``client.host`` / ``client.port``, ``state``, and the body
through ``await request.body()`` / ``await request.json()``.

Why a small class of our own rather than Starlette's: the proxy never builds a Starlette request
(it is Quart on Hypercorn, and the OpenAI routes are served straight from ASGI), and a custom-auth
function only reads. The body is read on first use only, through the reader the route gives (the
OpenAI routes and the Quart routes give one; a pass-through route streams its body to the target, so
there ``body()`` raises and says so, see ``docs/access.md``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from types import SimpleNamespace
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

__all__ = ["Address", "BodyReader", "Headers", "Request", "URL"]

BodyReader = Callable[[], Awaitable[bytes]]


class Address(NamedTuple):
    """Starlette's ``request.client``: the caller's address (after ``use_x_forwarded_for``)."""

    host: str
    port: int = 0


class URL:
    """The parts of Starlette's ``URL`` a custom-auth function reads (path as normalised by the proxy)."""

    __slots__ = ("path", "query")

    def __init__(self, path: str, query: str = "") -> None:
        self.path = path
        self.query = query

    def __str__(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path

    def __repr__(self) -> str:
        return f"URL({str(self)!r})"


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only request headers (Starlette's ``Headers``)."""

    __slots__ = ("_items",)

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._items = {name.lower(): value for name, value in headers.items()}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._items.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:   # never the credentials: a repr ends up in logs
        return f"Headers({sorted(self._items)})"


class Request:
    """A read-only view of one HTTP request for ``custom_auth`` (module docstring)."""

    def __init__(self, method: str, path: str, headers: Mapping[str, str], *, query_string: bytes | str = b"",
                 client_host: str | None = None, body: BodyReader | None = None) -> None:
        query = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
        self.method = method.upper()
        self.url = URL(path, query)
        self.headers = Headers(headers)
        self.query_params: dict[str, str] = dict(parse_qsl(query, keep_blank_values=True))
        self.path_params: dict[str, str] = {}
        self.client = Address(client_host) if client_host else None
        self.state = SimpleNamespace()
        self.scope: dict[str, Any] = {"type": "http", "method": self.method, "path": path}
        self._reader = body
        self._body: bytes | None = None

    async def body(self) -> bytes:
        """The request's body (read once, on first use)."""
        if self._body is None:
            if self._reader is None:
                raise RuntimeError(f"the body of {self.url.path} is not available to custom_auth (a pass-through "
                                   "route streams it to its target)")
            self._body = await self._reader()
        return self._body

    async def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` when it is not)."""
        return json.loads(await self.body() or b"null")

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url.path}>"
