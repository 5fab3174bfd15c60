"""The identity provider's public keys (JWKS), fetched through an injected fetcher and cached.

The fetcher is an ``async (url) -> parsed JSON`` function: the app passes one built on its pooled
HTTP client (:func:`http_fetcher`), tests pass one that talks to a local server. Nothing here
blocks the Trio thread: fetching is async I/O, parsing a JWKS is a few keys.

Cache rules (times on Trio's clock, so tests run them in virtual time):

* A URL's keys are fresh for ``ttl`` seconds (``litellm_jwtauth.public_key_ttl``, default 600, as
  LiteLLM). A request after that refreshes them first.
* A token whose ``kid`` is in no cached key set forces one refresh (the IdP rotated its keys) —
  but at most one per ``refetch_interval`` seconds (``public_key_refetch_interval``, default 30):
  a flood of tokens with random ``kid`` values costs the IdP one request per interval, not one per
  token. In between, unknown kids fail at once.
* Refreshes are single-flight: concurrent requests that need a refresh wait for the one under way.
* A refresh that fails (IdP down, bad answer, timeout after ``fetch_timeout``) keeps the last good
  keys for up to ``stale_ttl`` seconds past their freshness (``public_key_stale_ttl``, default 600;
  0 fails closed at once) and is retried after ``refetch_interval``, not on every request. With no
  usable keys at all: 503 ``auth_provider_unavailable``, because the token may well be good.
* Only signing keys that can verify our algorithms are kept: ``kty`` RSA (RS256, PS256) and EC
  P-256 (ES256). Symmetric (``oct``) keys are dropped on arrival — an HMAC secret published in a
  JWKS must never verify anything — as are keys whose ``use`` is not ``sig``.
* ``JWT_PUBLIC_KEY_URL`` may list several URLs, comma-separated (as LiteLLM reads it); their keys
  are merged. A URL ending in ``/.well-known/openid-configuration`` is an OIDC discovery document
  and its ``jwks_uri`` is used (as LiteLLM does).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import trio
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from .errors import AccessUnauthenticated, AuthProviderUnavailable

__all__ = ["ALGORITHMS", "Fetcher", "JWKSCache", "http_fetcher"]

log = logging.getLogger("trioproxy.access.jwt")

#: the token algorithms we verify, and the key type each needs
ALGORITHMS: dict[str, tuple[str, str | None]] = {"RS256": ("RSA", None), "PS256": ("RSA", None),
                                                 "ES256": ("EC", "P-256")}

Fetcher = Callable[[str], Awaitable[Any]]

_DISCOVERY = "/.well-known/openid-configuration"


class FetchError(Exception):
    """The fetcher could not produce a JSON document (the message says why, no secrets in it)."""


def http_fetcher(client: Any, *, max_bytes: int = 1 << 20) -> Fetcher:
    """A :data:`Fetcher` on an ``httpx.AsyncClient`` (the app's pooled one).

    The body is capped (a JWKS is a few kilobytes; a huge answer is a misconfigured URL or an
    attack) and parsed with orjson. Timeouts are the caller's (:class:`JWKSCache` wraps every fetch
    in ``fetch_timeout``).
    """

    async def fetch(url: str) -> Any:
        try:
            async with client.stream("GET", url, headers={"accept": "application/json"}) as response:
                if response.status_code != 200:
                    raise FetchError(f"{url} answered HTTP {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise FetchError(f"{url} sent more than {max_bytes} bytes")
        except FetchError:
            raise
        except Exception as exc:  # transport errors of any HTTP client
            raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise FetchError(f"{url} did not answer JSON") from exc

    return fetch


@dataclass(frozen=True, slots=True)
class _Key:
    kid: str | None
    kty: str
    crv: str | None
    alg: str | None
    jwk: PyJWK

    def fits(self, alg: str) -> bool:
        kty, crv = ALGORITHMS[alg]
        return self.kty == kty and (crv is None or self.crv == crv) and (self.alg is None or self.alg == alg)


def _parse_jwks(document: Any, url: str) -> list[_Key]:
    if isinstance(document, dict) and isinstance(document.get("keys"), list):
        entries = document["keys"]
    elif isinstance(document, list):
        entries = document
    elif isinstance(document, dict) and "kty" in document:
        entries = [document]
    else:
        raise FetchError(f"{url} is not a JWKS (no 'keys' list)")
    keys: list[_Key] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        kty, use = entry.get("kty"), entry.get("use")
        if kty not in ("RSA", "EC") or (use is not None and use != "sig"):
            continue  # oct (HMAC secrets), OKP, encryption keys: never used to verify our tokens
        kid = entry.get("kid")
        try:
            jwk = PyJWK(entry)
        except (PyJWKError, ValueError, TypeError) as exc:
            log.warning("JWKS %s: skipping key kid=%r: %s", url, kid, exc)
            continue
        alg = entry.get("alg") if isinstance(entry.get("alg"), str) else None
        keys.append(_Key(kid if isinstance(kid, str) else None, kty, entry.get("crv"), alg, jwk))
    return keys


@dataclass
class _Source:
    url: str
    jwks_url: str | None = None      # resolved from an OIDC discovery document
    keys: tuple[_Key, ...] = ()
    fresh_until: float = float("-inf")     # refresh after this
    usable_until: float = float("-inf")    # stale keys are served until this
    retry_at: float = float("-inf")        # after a failure, not before this
    error: str | None = None


class JWKSCache:
    """Keys by ``kid`` from one or more JWKS URLs (the rules are in the module docstring)."""

    def __init__(self, urls: Sequence[str], fetch: Fetcher, *, ttl: float = 600.0, stale_ttl: float = 600.0,
                 refetch_interval: float = 30.0, fetch_timeout: float = 10.0,
                 clock: Callable[[], float] = trio.current_time) -> None:
        if not urls:
            raise ValueError("JWKSCache needs at least one URL")
        self._sources = [_Source(url) for url in urls]
        self._fetch = fetch
        self.ttl, self.stale_ttl = ttl, stale_ttl
        self.refetch_interval, self.fetch_timeout = refetch_interval, fetch_timeout
        self._clock = clock
        self._lock = trio.Lock()
        self._last_forced = float("-inf")
        self._forced: trio.Event | None = None
        self._refreshes = 0
        #: bumped whenever the usable key set changes: verified-token caches key on it
        self.generation = 0

    async def key_for(self, kid: str | None, alg: str) -> PyJWK:
        """The key that verifies a token with this ``kid`` and ``alg``, or a 401/503."""
        now = self._clock()
        refreshed = False
        if any(now >= s.fresh_until and now >= s.retry_at for s in self._sources):
            await self._refresh(force=False)
            refreshed = True
        keys = self._usable(self._clock())
        if kid is not None and not refreshed and not any(k.kid == kid for k in keys):
            now = self._clock()
            if self._forced is not None:
                await self._forced.wait()  # a refresh for an unknown kid is under way: share it
            elif now - self._last_forced >= self.refetch_interval:
                self._last_forced = now
                self._forced = trio.Event()
                try:
                    await self._refresh(force=True)
                finally:
                    self._forced.set()
                    self._forced = None
            keys = self._usable(self._clock())
        if not keys:
            # the reasons (URLs, transport errors) are in the log (_refresh_one), never in the answer
            raise AuthProviderUnavailable(
                "Service Unavailable, the identity provider's JWKS could not be fetched, so the JWT signature "
                "could not be verified. Please retry shortly.", headers={"retry-after": "1"})
        return self._pick(keys, kid, alg)

    def _usable(self, now: float) -> list[_Key]:
        return [key for s in self._sources if now < s.usable_until for key in s.keys]

    @staticmethod
    def _pick(keys: list[_Key], kid: str | None, alg: str) -> PyJWK:
        if kid is not None:
            shown = "".join(c if c.isprintable() else "?" for c in kid[:64])  # the client wrote it
            named = [k for k in keys if k.kid == kid]
            if not named:
                raise AccessUnauthenticated(
                    f"Invalid JWT token: no public key with kid '{shown}' at JWT_PUBLIC_KEY_URL")
            fitting = [k for k in named if k.fits(alg)]
            if not fitting:
                raise AccessUnauthenticated(
                    f"Invalid JWT token: the key with kid '{shown}' is a {named[0].kty} key"
                    f"{' for ' + named[0].alg if named[0].alg else ''}; it cannot verify {alg}")
            return fitting[0].jwk
        fitting = [k for k in keys if k.fits(alg)]
        if len(fitting) != 1:
            raise AccessUnauthenticated(
                f"Invalid JWT token: it has no 'kid' header and {len(fitting)} keys at JWT_PUBLIC_KEY_URL "
                f"could verify {alg}; the IdP must send a kid")
        return fitting[0].jwk

    async def _refresh(self, *, force: bool) -> None:
        """Fetch the sources that need it (all, when ``force``), one refresh at a time."""
        waited_for = self._refreshes
        async with self._lock:
            if self._refreshes != waited_for:
                return  # another task refreshed while we waited: use its result
            now = self._clock()
            due = [s for s in self._sources if force or (now >= s.fresh_until and now >= s.retry_at)]
            before = self._fingerprint(now)
            async with trio.open_nursery() as nursery:
                for source in due:
                    nursery.start_soon(self._refresh_one, source)
            self._refreshes += 1
            if self._fingerprint(self._clock()) != before:
                self.generation += 1

    def _fingerprint(self, now: float) -> tuple[tuple[str | None, ...], ...]:
        return tuple(tuple(k.kid for k in s.keys) if now < s.usable_until else () for s in self._sources)

    async def _refresh_one(self, source: _Source) -> None:
        started = self._clock()
        try:
            with trio.fail_after(self.fetch_timeout):
                if source.jwks_url is None:
                    source.jwks_url = await self._resolve(source.url)
                keys = _parse_jwks(await self._fetch(source.jwks_url), source.jwks_url)
        except Exception as exc:  # FetchError, TooSlowError, whatever a fetcher raises: never a crash
            if isinstance(exc, trio.TooSlowError):
                message = f"{source.url}: no answer within {self.fetch_timeout:g} s"
            else:
                message = str(exc) if isinstance(exc, FetchError) else f"{source.url}: {type(exc).__name__}: {exc}"
            source.error = message
            source.retry_at = started + self.refetch_interval
            stale = started < source.usable_until
            log.warning("JWKS refresh failed (%s); %s", message,
                        "serving the last good keys" if stale else "no usable keys from this URL")
            return
        source.keys = tuple(keys)
        source.error = None
        source.fresh_until = started + self.ttl
        source.usable_until = started + self.ttl + self.stale_ttl
        source.retry_at = float("-inf")
        log.info("JWKS %s: %d signing keys (%s)", source.url, len(keys),
                 ", ".join(str(k.kid) for k in keys) or "none")

    async def _resolve(self, url: str) -> str:
        if _DISCOVERY not in url:
            return url
        document = await self._fetch(url)
        jwks_uri = document.get("jwks_uri") if isinstance(document, dict) else None
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise FetchError(f"OIDC discovery document at {url} has no 'jwks_uri'")
        return jwks_uri
