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
for every route), called for every route before its body is read: by the fast path (``asgi.py``)
for the OpenAI endpoints, by one ``before_request`` of the Quart app (``app.py``) for every Quart
route (the management API included), and by the pass-through router (``passthrough.py``). Handlers
then check only objects (whose key, which team), never the route.

**``general_settings.custom_auth``** (``auth/custom_auth.py``) is called here, in ``authorize``, for
every route that is not public — so every route honours it and the route rules then judge the caller
it returns like a virtual key (its ``user_role``, ``allowed_routes``, team). Without it configured the
only cost on the request path is one ``is None`` test.

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
    AccessConfigError,
    AccessDenied,
    BadPathError,
    Caller,
    CallerKind,
    IPPolicy,
    Role,
    RouteRules,
    RouteSet,
    Rule,
    authorize,
    caller_for_jwt,
    normalize_path,
)
from ..access.auth_failures import FailedAuthLimiter
from ..auth import Authenticator, Identity, extract_key
from ..auth.custom_auth import CustomAuth
from ..auth.request import BodyReader, Request
from ..errors import AuthenticationError, ProxyError

__all__ = ["CLIENT_IP", "AccessGate", "client_ip"]

log = logging.getLogger("trioproxy.access")

#: the scope key holding the caller's address as resolved at the entry (``str``, or ``None``)
CLIENT_IP = "trioproxy.client_ip"
#: at most one "refused by allowed_ips" warning per this many seconds
_REFUSAL_LOG_INTERVAL = 10.0
#: at most this many (peer, forwarded) pairs remembered per gate (then the memory starts afresh)
_ADDRESSES_KEPT = 4096


@functools.lru_cache(maxsize=4096)
def _normalized(raw: bytes) -> str:
    """``normalize_path``, remembered for the paths a proxy sees over and over (a few µs each
    otherwise; bounded, and errors are not remembered)."""
    return normalize_path(raw)


def _caller_address(policy: IPPolicy, peer: str | None, forwarded: tuple[str, ...]) -> tuple[str | None, bool]:
    """The caller's address and whether ``allowed_ips`` lets it in, for one (peer, header) pair
    (remembered per gate: :meth:`AccessGate.admit`)."""
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

    def __init__(self, ip_policy: IPPolicy, rules: RouteRules, authenticator: Authenticator,
                 failed_auth: FailedAuthLimiter | None = None,
                 custom_auth: CustomAuth | None = None) -> None:
        self.ip_policy = ip_policy
        self.rules = rules
        self.authenticator = authenticator
        #: failed authentications per address (docs/access.md); None: no limit
        self.failed_auth = failed_auth
        self._locked_since_log = 0
        self._next_lockout_log = 0.0
        self.custom_auth = custom_auth
        self._refused_since_log = 0
        self._next_refusal_log = 0.0
        self._route_lists: dict[tuple[Any, ...], RouteSet] = {}
        self._grants: Mapping[Role | None, RouteSet | None] | None = None
        #: (peer, X-Forwarded-For lines) -> (address, allowed), for ``_addresses_of``: the same few
        #: peers come back on every request. Per gate and keyed without the policy: a cache keyed by
        #: the (frozen dataclass) policy hashed its IP networks on every request, 0.7 % of the
        #: proxy's CPU per request (bench/README.md, "CPU per request")
        self._addresses: dict[tuple[str | None, tuple[str, ...]], tuple[str | None, bool]] = {}
        self._addresses_of: IPPolicy | None = None

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
        key = (peer[0] if peer else None, forwarded)
        if self._addresses_of is not policy:   # first request, or the policy was replaced
            self._addresses = {}
            self._addresses_of = policy
        known = self._addresses.get(key)
        if known is None:
            if len(self._addresses) >= _ADDRESSES_KEPT:
                self._addresses.clear()
            known = self._addresses[key] = _caller_address(policy, key[0], forwarded)
        address, allowed = known
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
    def _is_public(self, path: str) -> bool:
        """A public route answers without credentials: ``custom_auth`` is not asked (in LiteLLM such
        routes carry no auth dependency at all)."""
        return _is_public_rule(self.rules, path)

    async def caller(self, headers: Mapping[str, str], address: str | None) -> tuple[Caller, Identity | None]:
        """The request's credentials as a :class:`Caller` and, when they proved something, the
        :class:`~trioproxy.auth.Identity`. A wrong key or token is a rejected caller (the route
        rules decide whether that matters: a public route ignores it); a store or identity
        provider that cannot answer is a 503 raised here — never mistaken for a bad credential.

        The one adapter from the :class:`~trioproxy.auth.Authenticator`'s ``Identity`` (master key,
        virtual keys, JWTs) to the access layer's caller. Without a master key the proxy is open
        and every caller is the admin.
        """
        auth = self.authenticator
        if auth.master_key is not None and extract_key(headers) is None:
            return Caller.anonymous(), None
        try:
            who = await auth.identify(headers, address)
        except AuthenticationError as err:
            return Caller.rejected(err), None
        return self.caller_for(who), who

    def caller_for(self, who: Identity) -> Caller:
        """What the route rules need of an identity: role, team, the key's route list, JWT routes."""
        if who.is_master:
            return Caller.master_key()
        record = who.record
        role = _role(who.user_role)
        admin_of: frozenset[str] = frozenset()
        membership = getattr(record, "membership", None)
        if membership is not None and membership.role == "admin" and record.team_id:
            admin_of = frozenset({record.team_id})
        if who.kind == "jwt":
            return caller_for_jwt(who.jwt, self._jwt_grants(), user_role=role if who.jwt.role is Role.INTERNAL_USER
                                  else None, admin_of_teams=admin_of)
        key_routes = self._route_list(tuple(getattr(record, "allowed_routes", ()))) if record is not None else None
        return Caller(CallerKind.VIRTUAL_KEY, role=role, user_id=who.user_id, team_id=who.team_id,
                      admin_of_teams=admin_of, key_routes=key_routes)

    def _jwt_grants(self) -> Mapping[Role | None, RouteSet | None]:
        grants = self._grants
        if grants is None:
            settings = self.authenticator.jwt_settings
            grants = self._grants = settings.route_grants(self.rules) if settings is not None else {}
        return grants

    def _route_list(self, allowed: tuple[Any, ...]) -> RouteSet | None:
        """A key's ``allowed_routes``, expanded once per distinct list (few distinct lists exist)."""
        if not allowed:
            return None
        cached = self._route_lists.get(allowed)
        if cached is None:
            try:
                cached = self.rules.route_list(list(allowed))
            except AccessConfigError:
                # written before validation existed, or by hand: a list we cannot read allows nothing
                cached = RouteSet.of((), source=[str(entry) for entry in allowed])
            if len(self._route_lists) >= 1024:
                self._route_lists.clear()
            self._route_lists[allowed] = cached
        return cached

    async def authorize(self, headers: Mapping[str, str], path: str, method: str,
                        address: str | None, *, query_string: bytes = b"",
                        body: BodyReader | None = None) -> Identity:
        """The one route decision, for every route: the caller's :class:`Identity` (``anonymous``
        for a caller without a credential on a public route), or raise 401/403/503.

        ``path`` is the normalised path the router matched (``admit`` put it in the scope).
        An address locked out by :class:`~trioproxy.access.FailedAuthLimiter` is a rejected caller
        (429) whose credential is not looked at (nor given to ``custom_auth``); a refused credential
        counts as its failure, a ``custom_auth`` refusal (401) too.
        ``query_string`` and ``body`` (a one-shot reader of the request's body) are for
        ``custom_auth``'s ``Request`` only; routes pass them only when it is configured."""
        limiter = self.failed_auth
        wait = limiter.retry_after(address) if limiter is not None else None
        locked = wait is not None and extract_key(headers) is not None
        if not locked and self.custom_auth is not None and not self._is_public(path):
            request = Request(method, path, headers, query_string=query_string, client_host=address, body=body)
            try:
                decided = await self.custom_auth.decide(request, extract_key(headers) or "")
            except AuthenticationError as refusal:
                if refusal.status_code == 401:
                    self._count_failure(refusal, address)
                raise
            if isinstance(decided, Identity):
                authorize(self.caller_for(decided), path, method, self.rules)
                return decided
            if isinstance(decided, str):   # a key for the proxy's own key auth (LiteLLM's "auto" flow)
                headers = {**{k: v for k, v in headers.items() if k.lower() not in ("authorization", "api-key")},
                           "authorization": f"Bearer {decided}"}
        if locked:
            caller, who = Caller.rejected(limiter.refusal(address, wait)), None   # type: ignore[union-attr]
        else:
            caller, who = await self.caller(headers, address)
        try:
            authorize(caller, path, method, self.rules)
        except AuthenticationError as refusal:
            if refusal is caller.error:
                self._count_failure(refusal, address)
            raise
        return who if who is not None else Identity.anonymous()

    def _count_failure(self, refusal: AuthenticationError, address: str | None) -> None:
        limiter = self.failed_auth
        if limiter is not None and limiter.counts(refusal) and limiter.record_failure(address):
            self._log_lockout(address)

    def _log_lockout(self, address: str | None) -> None:
        """One warning per 10 s at most: the address only, never the credential."""
        self._locked_since_log += 1
        now = trio.current_time()
        if now >= self._next_lockout_log:
            limiter = self.failed_auth
            log.warning("locked out %s for failed authentications: %d within %g s "
                        "(general_settings.auth_rate_limit_max_failures_per_ip; %d lockouts since the last such "
                        "warning)", address or "an unknown address", limiter.max_failures if limiter else 0,
                        limiter.window if limiter else 0, self._locked_since_log)
            self._locked_since_log = 0
            self._next_lockout_log = now + _REFUSAL_LOG_INTERVAL


def _is_public_rule(rules: RouteRules, path: str) -> bool:
    spec = rules.catalog.lookup(path)
    return (spec is not None and spec.rule is Rule.PUBLIC) or rules.public.matches(path)


def _role(value: str | None) -> Role | None:
    try:
        return Role(value) if value else None
    except ValueError:  # a role the route rules do not know decides nothing
        return None
