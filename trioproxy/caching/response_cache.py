"""The response cache: identical requests answered without calling the upstream.

``litellm_settings.cache: true`` with ``cache_params`` (``type: local`` or ``redis``, ``ttl``,
``max_size``, ``supported_call_types``, ``namespace``; Redis: ``host``, ``port``, ``password``…)
turns it on. The pieces:

* **The key** (:func:`cache_key`) is a SHA-256 over the namespace, the endpoint and every field of
  the body sent upstream except those that cannot change the answer (:data:`IGNORED_FIELDS`:
  streaming flags, the end-user id, proxy-only fields, timeouts). Unknown parameters are part of
  the key: wrongly missing the cache costs money, wrongly hitting it returns a wrong answer. Each
  field is serialised and fed to the hash on its own, so a large body is never held twice; names
  are JSON-encoded too, so that no two bodies give the same bytes (a name may contain ``\x00``).
  The key is *not* per user or per API key: the answer depends only on what is sent upstream, which
  includes whatever the pre-call hooks put there (per-user content is in the key that way).
  Anyone who sends the exact same body gets the stored answer, and ``x-trioproxy-cache-hit`` (and
  LiteLLM's ``x-litellm-cache-key``, on hits only) tell them it was asked before; ``cache.namespace`` is chosen by the client, so it separates, it does
  not isolate.
* **One entry serves both modes.** The value is the complete answer as JSON: a plain request's
  hit returns it as is; a streaming request's hit is replayed as SSE (:class:`CachedStream`), and an
  answer first obtained by streaming (the assembled response) serves later plain requests. Hooks run
  on hits as on any answer; a hit costs 0 and has ``cache_hit: true`` in the logging kwargs. A
  streamed answer is stored only when every choice has its ``finish_reason`` (a stream cut short
  without an error is not an answer to store), and not when the request asked for ``logprobs``
  (the stream assembler does not keep them).
* **Per request** (the request body's ``cache`` object, never sent upstream): ``no-cache: true``
  skips the lookup (the fresh answer is still stored), ``no-store: true`` does not store it,
  ``ttl`` sets this entry's lifetime, ``s-maxage`` accepts only an entry at most that old,
  ``namespace`` keeps entries apart. With ``cache_params.mode: default_off`` (LiteLLM's
  ``CacheMode``) only a request that sends ``"use-cache": true`` is looked up and stored; the
  others go to the upstream as if there were no cache (LiteLLM's ``Cache.should_use_cache``).
* **The backend** is an interface (:class:`CacheBackend`): ``get`` is async so that a shared
  backend (Redis) can do I/O; ``set`` is sync and must not block, because it is called by the
  observer on the Trio thread (a remote backend queues the write to a service of its own).
  :class:`LocalCache` is an in-memory LRU with TTL, bounded in entries and in bytes;
  ``redis_cache.RedisResponseCache`` is shared by every worker and instance on one Redis.
* **Wiring** (``proxy.py``): :func:`build_response_cache` makes it from the config; the pipeline
  looks answers up before the upstream (:meth:`ResponseCache.lookup`), and the cache is one of the
  pipeline's observers (:meth:`ResponseCache.on_success` stores the answer).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ..config import CACHED_CALL_TYPES, UNSERVED_CALL_TYPES, CacheSettings
from ..context import RequestContext
from ..errors import BadRequestError, ConfigError
from ..streaming import DONE_FRAME, frame
from ..upstream.base import UpstreamResponse

__all__ = [
    "IGNORED_FIELDS",
    "CacheBackend",
    "CachedStream",
    "LocalCache",
    "ResponseCache",
    "build_response_cache",
    "cache_key",
    "normalize_call_types",
    "sse_from_response",
]

#: body fields that do not change the answer, so are not part of the key
IGNORED_FIELDS = frozenset({"stream", "stream_options", "user", "metadata", "cache", "guardrails",
                            "timeout", "request_timeout"})

#: accepted names in ``supported_call_types`` (the seeds use the async names) → our call types;
#: LiteLLM's names of endpoints trioproxy does not serve are accepted and cache nothing
#: (validated with the config: ``config/schema.py``)
CALL_TYPE_NAMES = CACHED_CALL_TYPES
#: the defaults of ``cache_params.ttl`` / ``max_size`` (written once, in ``config/model.py``)
DEFAULT_TTL = CacheSettings().ttl
DEFAULT_MAX_SIZE = CacheSettings().max_size
#: the local cache's bound in bytes of stored answers (``max_size`` alone would allow
#: ``max_size * MAX_ENTRY_BYTES``, 4 GB with the defaults, e.g. from large embedding answers)
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
#: answers larger than this are not stored (one huge answer must not evict hundreds of small ones)
MAX_ENTRY_BYTES = 4 * 1024 * 1024


def normalize_call_types(names: Iterable[str]) -> set[str]:
    """Config names → call types. Raises ValueError naming an unknown one."""
    out = set()
    for name in names:
        if name in UNSERVED_CALL_TYPES:
            continue
        if name not in CALL_TYPE_NAMES:
            raise ValueError(f"unknown call type {name!r} (known: {', '.join(sorted(CALL_TYPE_NAMES))})")
        out.add(CALL_TYPE_NAMES[name])
    return out


def cache_key(namespace: str, endpoint: str, body: dict[str, Any]) -> str:
    # every piece is JSON (which never contains a raw NUL), so the NUL separators are unambiguous
    digest = hashlib.sha256()
    digest.update(orjson.dumps(namespace))
    digest.update(b"\x00")
    digest.update(orjson.dumps(endpoint))
    for name in sorted(body):
        if name in IGNORED_FIELDS:
            continue
        digest.update(b"\x00" + orjson.dumps(name) + b"\x00")
        digest.update(orjson.dumps(body[name], option=orjson.OPT_SORT_KEYS, default=str))
    return digest.hexdigest()


@dataclass(slots=True)
class Entry:
    value: bytes
    stored_at: float
    expires_at: float


class CacheBackend(Protocol):
    async def get(self, key: str, max_age: float | None = None) -> bytes | None:
        """The stored answer, or None (absent, expired, or older than ``max_age`` seconds)."""
        ...

    def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store an answer; must return at once (a remote backend queues the write)."""
        ...


class LocalCache:
    """In-memory LRU with per-entry TTL. Expiry is checked on read; the LRU bounds the size."""

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE, clock: Callable[[], float] = time.monotonic,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_size = max_size
        self.max_bytes = max_bytes
        self.clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get_now(self, key: str, max_age: float | None = None) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self.clock()
        if entry.expires_at <= now:
            del self._entries[key]
            self._bytes -= len(entry.value)
            return None
        if max_age is not None and now - entry.stored_at > max_age:
            return None
        self._entries.move_to_end(key)
        return entry.value

    async def get(self, key: str, max_age: float | None = None) -> bytes | None:
        return self.get_now(key, max_age)

    def set(self, key: str, value: bytes, ttl: float) -> None:
        if ttl <= 0 or len(value) > self.max_bytes:   # would never be read: evict nothing for it
            return
        now = self.clock()
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.value)
        self._entries[key] = Entry(value, now, now + ttl)
        self._bytes += len(value)
        while len(self._entries) > self.max_size or self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.value)


def _controls(ctx: RequestContext) -> dict[str, Any]:
    """The request's ``cache`` object, checked (a wrong type is the client's 400, not a silent miss)."""
    raw = ctx.data.get("cache")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadRequestError("'cache' must be an object such as {\"no-cache\": true}.", param="cache")
    for flag in ("no-cache", "no-store", "use-cache"):
        if flag in raw and not isinstance(raw[flag], bool):
            raise BadRequestError(f"'cache.{flag}' must be true or false.", param=f"cache.{flag}")
    for number in ("ttl", "s-maxage"):
        value = raw.get(number)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise BadRequestError(f"'cache.{number}' must be a number of seconds >= 0.", param=f"cache.{number}")
    if "namespace" in raw and not isinstance(raw["namespace"], str):
        raise BadRequestError("'cache.namespace' must be a string.", param="cache.namespace")
    return raw


class ResponseCache:
    """The pipeline's cache seam: ``await lookup(ctx, body)`` before the upstream, ``store(ctx)`` after."""

    def __init__(self, backend: CacheBackend, *, ttl: float = DEFAULT_TTL, namespace: str = "",
                 call_types: Iterable[str] = ("completion", "text_completion", "embeddings"),
                 on_lookup: Callable[[RequestContext, bool], None] | None = None,
                 mode: str = "default_on") -> None:
        self.backend = backend
        #: ``default_off``: only requests with ``cache: {"use-cache": true}`` use the cache
        self.opt_in = mode == "default_off"
        self.ttl = ttl
        self.namespace = namespace
        self.call_types = frozenset(call_types)
        self.on_lookup = on_lookup

    async def lookup(self, ctx: RequestContext, body: dict[str, Any]) -> Any:
        """A stand-in for the upstream's answer, or None. Computes ``ctx.cache_key`` for the store."""
        if ctx.route.call_type not in self.call_types:
            return None
        controls = _controls(ctx)
        if self.opt_in and controls.get("use-cache") is not True:
            return None     # no key: store() keeps nothing of this request either
        namespace = controls.get("namespace", self.namespace)
        digest = cache_key(namespace, ctx.route.endpoint, body)
        # the namespace also prefixes the stored key (LiteLLM's "namespace:key"), so that an operator
        # can find or flush one namespace's entries in a shared cache
        ctx.cache_key = f"{namespace}:{digest}" if namespace else digest
        if controls.get("no-cache"):
            return None
        value = await self.backend.get(ctx.cache_key, controls.get("s-maxage"))
        if self.on_lookup is not None:
            self.on_lookup(ctx, value is not None)
        if value is None:
            return None
        headers = {"content-type": "text/event-stream" if ctx.stream else "application/json"}
        if not ctx.stream:
            return UpstreamResponse(200, headers, value)
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        answer = orjson.loads(value)
        if not isinstance(answer, dict):        # not a completion (cannot be replayed): a miss
            return None
        return CachedStream(sse_from_response(answer, include_usage), headers)

    def on_success(self, ctx: RequestContext) -> None:
        """The pipeline's observer event: a request succeeded (``store`` it)."""
        self.store(ctx)

    def store(self, ctx: RequestContext) -> None:
        """After a successful upstream answer (observer, Trio thread): remember it unless told not to."""
        if ctx.cache_key is None or ctx.cache_hit or ctx.error is not None or ctx.deployment is None:
            return
        controls = ctx.data.get("cache")
        controls = controls if isinstance(controls, dict) else {}
        if controls.get("no-store"):
            return
        if ctx.stream:
            # the upstream's own answer, not what the hooks made of it: a replay runs them again
            response = ctx.upstream_response
            if not isinstance(response, dict) or ctx.data.get("logprobs") not in (None, False):
                return
            choices = response.get("choices")
            if not isinstance(choices, list) or not all(
                    isinstance(c, dict) and c.get("finish_reason") for c in choices):
                return      # a stream that ended early without an error: not a complete answer
            value = orjson.dumps(response)
        else:
            if ctx.upstream_raw is None:
                return
            value = ctx.upstream_raw
        if len(value) > MAX_ENTRY_BYTES:
            return
        ttl = controls.get("ttl")
        self.backend.set(ctx.cache_key, value, float(ttl) if ttl is not None else self.ttl)


class CachedStream:
    """A cache hit in the shape of an open upstream stream (``UpstreamStream``)."""

    def __init__(self, frames: list[bytes], headers: dict[str, str]) -> None:
        self.status = 200
        self.headers = headers
        self._frames = frames
        self.closed = False

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for piece in self._frames:
            if self.closed:
                return
            yield piece

    async def aclose(self) -> None:
        self.closed = True


def _chat_delta(message: dict[str, Any]) -> dict[str, Any]:
    delta: dict[str, Any] = {"role": message.get("role") or "assistant", "content": message.get("content")}
    for name in ("refusal", "function_call", "audio"):   # streamed as delta fields too
        if message.get(name) is not None:
            delta[name] = message[name]
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        delta["tool_calls"] = [{**call, "index": i} for i, call in enumerate(calls) if isinstance(call, dict)]
    return delta


def sse_from_response(response: dict[str, Any], include_usage: bool) -> list[bytes]:
    """A complete chat or text completion → the SSE frames a streaming upstream would have sent.

    One content chunk per choice (the whole text), one finishing chunk, the usage chunk when asked
    for, then ``[DONE]``.
    """
    chat = response.get("object") != "text_completion"
    base = {k: response[k] for k in ("id", "created", "model", "system_fingerprint") if k in response}
    base["object"] = "chat.completion.chunk" if chat else "text_completion"
    choices = [c for c in response.get("choices") or [] if isinstance(c, dict)]
    chunks: list[dict[str, Any]] = []
    if chat:
        chunks.append({**base, "choices": [
            {"index": c.get("index", i), "delta": _chat_delta(c.get("message") or {}), "finish_reason": None,
             **({"logprobs": c["logprobs"]} if c.get("logprobs") is not None else {})}
            for i, c in enumerate(choices)]})
        chunks.append({**base, "choices": [
            {"index": c.get("index", i), "delta": {}, "finish_reason": c.get("finish_reason") or "stop"}
            for i, c in enumerate(choices)]})
    else:
        chunks.append({**base, "choices": [
            {"index": c.get("index", i), "text": c.get("text") or "", "finish_reason": None,
             "logprobs": c.get("logprobs")}
            for i, c in enumerate(choices)]})
        chunks.append({**base, "choices": [
            {"index": c.get("index", i), "text": "", "finish_reason": c.get("finish_reason") or "stop",
             "logprobs": None} for i, c in enumerate(choices)]})
    if include_usage and isinstance(response.get("usage"), dict):
        chunks.append({**base, "choices": [], "usage": response["usage"]})
    return [frame(c) for c in chunks] + [DONE_FRAME]


def build_response_cache(settings: CacheSettings, source: str,
                         on_lookup: Callable[[RequestContext, bool], None] | None = None) -> ResponseCache | None:
    """The response cache ``litellm_settings.cache`` asks for (None when it is off). Raises ConfigError."""
    if not settings.enabled:
        return None
    try:
        call_types = normalize_call_types(settings.supported_call_types)
    except ValueError as exc:
        raise ConfigError([f"{source}: litellm_settings.cache_params.supported_call_types: {exc}"]) from None
    backend: CacheBackend
    if settings.type == "redis":
        if settings.redis_url is None:
            raise ConfigError([f"{source}: litellm_settings.cache_params: type: redis needs host or url"])
        from ..coordination.redis import RedisClient, RedisURL
        from .redis_cache import RedisResponseCache

        try:
            url = RedisURL.parse(settings.redis_url)
        except ValueError as exc:    # the message never holds the password
            raise ConfigError([f"{source}: litellm_settings.cache_params: {exc}"]) from None
        backend = RedisResponseCache(RedisClient(url, name="trioproxy-cache"))
    elif settings.type == "disk":
        from pathlib import Path

        from .disk_cache import DiskResponseCache

        backend = DiskResponseCache(Path(settings.disk_cache_dir))
    else:
        backend = LocalCache(max_size=settings.max_size)
    return ResponseCache(backend, ttl=settings.ttl, namespace=settings.namespace,
                         call_types=call_types, on_lookup=on_lookup, mode=settings.mode)
