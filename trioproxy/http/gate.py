"""The checks every request meets at the ASGI entry, before any router runs, and the route decision.

:meth:`AccessGate.admit` is called once per request by ``asgi.py`` (the one entry for the fast path,
the pass-through endpoints and the Quart app alike), before a body is read:

1. **Path normalisation**: ``scope["path"]`` is replaced by
   :func:`~trioproxy.access.normalize_path` of ``scope["raw_path"]`` (the bytes the client sent), so
   every router — the fast path's table, the pass-through table, Quart's url map — and every
   authorization decision sees the one same string. ``/v1/%2e%2e/key//generate/`` *is*
   ``/key/generate`` everywhere. A path that cannot be normalised (NUL and other control
   characters, percent-escapes that are not UTF-8) is a ``400 invalid_path``.
2. **The caller's address** (:class:`~trioproxy.access.IPPolicy`: the TCP peer, or the rightmost
   untrusted ``X-Forwarded-For`` hop with ``use_x_forwarded_for``), stored in the scope under
   :data:`CLIENT_IP` for everything after (the pipeline records it as ``requester_ip_address``).
3. **``allowed_ips``**: any other address gets ``403 Access forbidden: IP address … not
   allowed.`` on every route, public or not, master key or not.

:meth:`AccessGate.authorize` is the route decision (:func:`~trioproxy.access.authorize`, one table
for every route) for the routes wired to it so far: ``/docs``, ``/openapi.json``, the model hub and
the pass-through endpoints. The other routes keep their own checks until route authorization
covers every route (docs/access.md).

Refusals here run no hook and produce no logging event (like ``431`` and ``503``): they happen
before anything is known about the request, and refusing must stay cheap. IP refusals are counted
and logged at most once per 10 s.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import trio

from ..access import (
    AccessDenied,
    BadPathError,
    Caller,
    CallerKind,
    IPPolicy,
    Role,
    RouteRules,
    authorize,
    normalize_path,
)
from ..auth import Authenticator, UserAPIKeyAuth, extract_key
from ..errors import AuthenticationError, ProxyError

__all__ = ["CLIENT_IP", "AccessGate", "client_ip"]

log = logging.getLogger("trioproxy.access")

#: the scope key holding the caller's address as resolved at the entry (``str``, or ``None``)
CLIENT_IP = "trioproxy.client_ip"
#: at most one "refused by allowed_ips" warning per this many seconds
_REFUSAL_LOG_INTERVAL = 10.0


@functools.lru_cache(maxsize=4096)
def _normalized(raw: bytes) -> str:
    """``normalize_path``, remembered for the paths a proxy sees over and over (a few µs each
    otherwise; bounded, and errors are not remembered)."""
    return normalize_path(raw)


@functools.lru_cache(maxsize=4096)
def _caller_address(policy: IPPolicy, peer: str | None, forwarded: tuple[str, ...]) -> tuple[str | None, bool]:
    """The caller's address and whether ``allowed_ips`` lets it in, for one (peer, header) pair:
    the same few peers (load balancers, clients) come back on every request."""
    address = policy.client_address(peer, forwarded)
    try:
        policy.check(address)
    except AccessDenied:
        return address, False
    return address, True


def client_ip(scope: Mapping[str, Any]) -> str | None:
    """The caller's address the entry resolved (``use_x_forwarded_for`` applied), or ``None``."""
    return scope.get(CLIENT_IP)


class AccessGate:
    """Path, caller address and allowlist at the entry; the route decision for the routes wired to it."""

    def __init__(self, ip_policy: IPPolicy, rules: RouteRules, authenticator: Authenticator) -> None:
        self.ip_policy = ip_policy
        self.rules = rules
        self.authenticator = authenticator
        self._refused_since_log = 0
        self._next_refusal_log = 0.0

    # -- at the entry, every request -----------------------------------------------------------
    def admit(self, scope: dict[str, Any]) -> tuple[dict[str, Any], ProxyError | None]:
        """The scope every router sees (normalised path, :data:`CLIENT_IP`), or the refusal to send."""
        raw = scope.get("raw_path")
        if not isinstance(raw, bytes):  # ASGI servers may omit it; re-encode the decoded path
            raw = quote(scope["path"], safe="/").encode("ascii")
        try:
            path = _normalized(raw)
        except BadPathError as err:
            return scope, err
        scope = dict(scope)
        scope["path"] = path
        policy = self.ip_policy
        forwarded: tuple[str, ...] = ()
        if policy.use_x_forwarded_for:
            forwarded = tuple(value.decode("latin-1") for name, value in scope["headers"]
                              if name == b"x-forwarded-for")
        peer = scope.get("client")
        address, allowed = _caller_address(policy, peer[0] if peer else None, forwarded)
        scope[CLIENT_IP] = address
        if not allowed:
            self._log_refusal(address)
            try:
                policy.check(address)   # the refusal itself, with its message
            except AccessDenied as err:
                return scope, err
        return scope, None

    def _log_refusal(self, address: str | None) -> None:
        self._refused_since_log += 1
        now = trio.current_time()
        if now >= self._next_refusal_log:
            log.warning("refused a request from %s: not in general_settings.allowed_ips (%d refused since the "
                        "last such warning)", address or "an unknown address", self._refused_since_log)
            self._refused_since_log = 0
            self._next_refusal_log = now + _REFUSAL_LOG_INTERVAL

    # -- the route decision --------------------------------------------------------------------
    async def caller(self, headers: Mapping[str, str],
                     address: str | None) -> tuple[Caller, UserAPIKeyAuth | None]:
        """The request's credentials as a :class:`Caller` and, when they proved something, the
        ``UserAPIKeyAuth`` hooks and logs see. A wrong key is a rejected caller (the route rules
        decide whether that matters: a public route ignores it); a store that cannot answer is a
        503 raised here — never mistaken for an unknown key.

        The one adapter from the :class:`~trioproxy.auth.Authenticator`'s ``Identity`` (master key,
        virtual keys) to the access layer's caller; JWT will have the authenticator build the
        ``Caller`` itself. Without a master key the proxy is open and every caller is the admin.
        """
        auth = self.authenticator
        if auth.master_key is not None and extract_key(headers) is None:
            return Caller.anonymous(), None
        try:
            who = await auth.identify(headers, address)
        except AuthenticationError as err:
            return Caller.rejected(err), None
        user = who.user_api_key_auth()
        if who.is_master:
            return Caller.master_key(), user
        try:
            role = Role(who.user_role) if who.user_role else None
        except ValueError:  # a role the route rules do not know decides nothing
            role = None
        return Caller(CallerKind.VIRTUAL_KEY, role=role, user_id=who.user_id, team_id=who.team_id), user

    async def authorize(self, headers: Mapping[str, str], path: str, method: str,
                        address: str | None) -> UserAPIKeyAuth | None:
        """Allow (the caller, ``None`` for an anonymous caller of a public route) or raise 401/403."""
        caller, user = await self.caller(headers, address)
        authorize(caller, path, method, self.rules)
        return user
