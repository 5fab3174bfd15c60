"""The one entry point that turns a request's credentials into a caller: :class:`Authenticator`.

Built once by the composition root and used by the fast path (the pipeline, before any hook) and
by every Quart route (``http/auth.py``). What it accepts, in order:

1. **No master key configured**: the proxy is open and every caller is an anonymous admin (the
   CLI warns about that loudly at startup, and refuses a non-loopback address). Virtual keys are
   not looked up then, as in LiteLLM: an open proxy has nothing to restrict.
2. **No key sent**: 401.
3. **The master key**, compared in constant time (``hmac.compare_digest``): the proxy admin.
4. **A 64-hex string**: 401 without a lookup. Hashes of keys are shown in ``/key/list`` and the
   audit log; a hash is never a credential, whatever a store would make of it.
5. **A JWT** (three base64url parts with a JSON header): verified by the injected
   :class:`BearerTokens` (``enable_jwt_auth``), or refused with "JWT auth is off" when it is off.
6. **A virtual key** (only with a database): the store's key cache (``store/key_cache.py``) — a hit
   is a hash and a dict lookup on this thread; a miss loads off the Trio thread. It raises LiteLLM's
   401s (unknown, deleted, rotated away, blocked, expired) and a 503 when the store cannot answer
   (an outage is never reported as a bad key: clients would throw away a good one).
7. Anything else: 401.

The result is an :class:`~.identity.Identity`; ``authenticate`` returns the hooks' view of it
(``UserAPIKeyAuth``). The route rules (``http/gate.py``) build their caller from that same Identity.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, Protocol

from ..errors import AuthenticationError, PermissionDeniedError
from ..masking import mask_secret
from .identity import Identity, UserAPIKeyAuth, VirtualKeys, hash_key, is_key_hash

__all__ = ["Authenticator", "authenticate", "extract_key"]


def extract_key(headers: Mapping[str, str]) -> str | None:
    """``Authorization: Bearer <key>`` or Azure-style ``api-key: <key>``."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    api_key = headers.get("api-key")
    return api_key.strip() if api_key else None


_NO_KEY = "No API key provided. Send 'Authorization: Bearer <key>' (or an 'api-key' header)."


def authenticate(master_key: str | None, headers: Mapping[str, str]) -> UserAPIKeyAuth:
    """The caller for the master key alone (no virtual keys), or ``AuthenticationError`` (401)."""
    presented = extract_key(headers)
    if master_key is None:
        return Identity.open(presented).user_api_key_auth()
    if presented is None:
        raise AuthenticationError(_NO_KEY)
    if not hmac.compare_digest(presented.encode(), master_key.encode()):
        raise AuthenticationError(f"Invalid API key: {mask_secret(presented)}")
    return Identity.master(hash_key(presented), mask_secret(presented)).user_api_key_auth()


class BearerTokens(Protocol):
    """Bearer JWTs (``http/jwt_credentials.py``): recognised by shape, verified, turned into an Identity.

    Injected by the composition root, so this package needs neither the JWT library nor the store.
    ``settings``: the JWT settings (``None`` while ``enable_jwt_auth`` is off: then ``identify``
    answers "JWT auth is off", not "invalid key").
    """

    settings: Any

    def looks_like(self, token: str) -> bool: ...

    async def identify(self, token: str) -> Identity: ...

    async def for_request(self, identity: Identity, model: Any, headers: Mapping[str, str]) -> Identity: ...


class Authenticator:
    """Who is calling, for every route: one object, so new credential kinds plug in at one place.

    ``keys``: the virtual keys (the store's key cache), or ``None`` without a database.
    ``jwt``: bearer JWTs (:class:`BearerTokens`), or ``None`` (a JWT is then an unknown key).
    """

    def __init__(self, master_key: str | None, keys: VirtualKeys | None = None,
                 jwt: BearerTokens | None = None) -> None:
        self.master_key = master_key
        self.keys = keys
        self.jwt = jwt
        self._master_bytes = master_key.encode() if master_key else b""
        self._master = Identity.master(hash_key(master_key), mask_secret(master_key)) if master_key else None

    async def identify(self, headers: Mapping[str, str], peer: str | None = None) -> Identity:
        """The caller, or a 401 (:class:`AuthenticationError` and LiteLLM's subclasses) or a 503
        (the store is unavailable). ``peer``: the client's address (for the IP rules of #12)."""
        presented = extract_key(headers)
        master = self._master
        if master is None:
            return Identity.open(presented)
        if presented is None:
            raise AuthenticationError(_NO_KEY)
        if hmac.compare_digest(presented.encode(), self._master_bytes):
            return master
        if self.jwt is not None and self.jwt.looks_like(presented):
            return await self.jwt.identify(presented)
        if self.keys is None or is_key_hash(presented):
            raise AuthenticationError(f"Invalid API key: {mask_secret(presented)}")
        return Identity.virtual(await self.keys.authenticate(presented))

    async def for_request(self, identity: Identity, model: Any, headers: Mapping[str, str]) -> Identity:
        """``identity`` bound to what this request asks for, once its body is read: a JWT that lists
        several teams gets the team that may use ``model`` (``http/jwt_credentials.py``); every
        other caller is returned as is."""
        if identity.kind != "jwt" or self.jwt is None:
            return identity
        return await self.jwt.for_request(identity, model, headers)

    @property
    def jwt_settings(self) -> Any:
        """The JWT settings when ``enable_jwt_auth`` is on, else ``None``."""
        return self.jwt.settings if self.jwt is not None else None

    async def authenticate(self, headers: Mapping[str, str], peer: str | None = None) -> UserAPIKeyAuth:
        """The caller as hooks see it (a fresh ``UserAPIKeyAuth``), or a 401/503 as :meth:`identify`."""
        return (await self.identify(headers, peer)).user_api_key_auth()

    def require_admin(self, caller: UserAPIKeyAuth | Identity, what: str) -> None:
        """403 ``admin_only`` unless ``caller`` is a proxy admin; ``what`` names the route."""
        if not caller.is_admin:
            raise PermissionDeniedError(f"Only the proxy admin may call {what}.", code="admin_only")
