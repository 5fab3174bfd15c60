"""JWT auth (``general_settings.enable_jwt_auth``): verify a bearer JWT and say who it is.

Settings, as LiteLLM names them (``litellm_jwtauth`` in ``general_settings``; LiteLLM's
``LiteLLM_JWTAuth`` and ``docs/proxy/token_auth.md``), with LiteLLM's defaults:

| setting | default | meaning |
|---|---|---|
| ``admin_jwt_scope`` | ``litellm_proxy_admin`` | a token whose ``scope`` (space-separated string or list) holds it is a proxy admin |
| ``admin_allowed_routes`` | management, spend, global spend, info routes | what an admin token may call |
| ``team_id_jwt_field`` | — | claim naming the team (``client_id``…); when set, a non-admin token without it is refused |
| ``team_ids_jwt_field`` | — | claim listing teams (``groups``); each request is bound to the first listed team that may use its model (``store/jwt_records.py``) |
| ``team_id_default`` | — | team for tokens that name none |
| ``team_allowed_routes`` | ``openai_routes``, ``info_routes`` | what a team token may call |
| ``team_id_upsert`` | false | create an unknown team on first use (the integration's job) |
| ``user_id_jwt_field``, ``user_email_jwt_field`` | — | claims naming the internal user |
| ``user_allowed_email_domain`` | — | only emails of this domain are let in (403 otherwise) |
| ``user_id_upsert`` | false | create an unknown user on first use (the integration's job) |
| ``end_user_id_jwt_field``, ``org_id_jwt_field`` | — | customer and organisation claims, for spend |
| ``enforce_team_based_model_access`` | false | a non-admin token with no team at all is refused (403) |
| ``public_allowed_routes`` | ``public_routes`` | what a token with no admin scope, team or user may call |
| ``public_key_ttl`` | 600 | seconds the JWKS is fresh |
| ``public_key_stale_ttl`` | 600 | seconds past that the last good JWKS serves while the IdP is down (LiteLLM has it too) |
| ``public_key_refetch_interval`` | 30 | trioproxy's: at most one JWKS refetch per this many seconds for unknown ``kid`` values or after a failure |
| ``leeway`` | 0 | trioproxy's: seconds of clock skew allowed on ``exp`` and ``nbf`` |

Claim names may be dotted paths into nested claims (``realm_access.team``), as in LiteLLM; an exact
top-level key wins over a path. Environment: ``JWT_PUBLIC_KEY_URL`` (JWKS URL, or several
comma-separated; an OIDC discovery URL works too), ``JWT_AUDIENCE`` (when set, ``aud`` must match),
``JWT_ISSUER`` (when set, ``iss`` must match). LiteLLM settings trioproxy does not implement
(role mappings, scope mappings, ``enforce_rbac``, custom validators, …) are a startup error, never
silently ignored: several of them restrict access.

Verification (:class:`JWTAuthenticator`), in order, each failure a 401 ``auth_error`` naming the
reason: the token must be three base64url segments; its header ``alg`` must be RS256, PS256 or
ES256 — ``none`` and every HMAC algorithm are refused before any key is looked at (so an HS256
token "signed" with the IdP's public key is refused whatever the key); the key is found by ``kid``
in the JWKS (:mod:`trioproxy.access.jwks`) and must be of the algorithm's type; the signature,
``exp`` (required), ``nbf``, ``aud`` and ``iss`` are checked by PyJWT with the algorithm pinned to
the header's, which is itself pinned to the allowed set.

Why PyJWT (``PyJWT[crypto]``) and not joserfc: both are maintained and verify RS/PS/ES correctly.
PyJWT verifies signature and registered claims (``exp``, ``nbf``, ``aud``, ``iss``, required
claims, leeway) in one ``decode`` call, where joserfc validates claims in a separate
``JWTClaimsRegistry`` step that is easy to forget; it is also what LiteLLM uses, so ``aud``
matching, leeway and error cases behave the same for users moving over; and it is by far the more
used of the two (PyPI: top 50 against top 310).

Cost, measured with ``bench/jwt_verify.py`` on the shared 2-core development machine (medians of
7 interleaved rounds of 2000): PyJWT decode+verify RS256 52 µs, PS256 47 µs, ES256 63 µs, plus
12–20 µs to read the header first; an empty ``trio.to_thread.run_sync`` hop costs 80 µs. Moving
verification to a thread would cost more than it saves, so it runs on the Trio thread. A verified
token is remembered for up to 60 s (never past its ``exp``, and forgotten when the JWKS changes),
so a client reusing its token pays 0.3 µs instead of ~70 µs; the cache is bounded (4096 tokens,
oldest dropped first).

Identity (:class:`JWTIdentity`, LiteLLM's ``get_rbac_role``): admin scope → ``proxy_admin`` with
``admin_allowed_routes``; else a team (``team_id_jwt_field`` or ``team_id_default``) → ``team`` with
``team_allowed_routes``; else a user (``user_id_jwt_field``/``user_email_jwt_field``) →
``internal_user``, whose routes are those of the user's role in the store; else (only
``team_ids``) → ``team``; else no role, ``public_allowed_routes``. The integration turns it into a
``UserAPIKeyAuth`` with the team's models, limits and budget from the store, and into a
:class:`~trioproxy.access.routes.Caller` with :func:`caller_for_jwt`.

A JWT-looking bearer while ``enable_jwt_auth`` is off is not a bad virtual key: the authenticator
checks :func:`looks_like_jwt` and answers :func:`jwt_not_enabled_error` (LiteLLM PR #35831).
"""

from __future__ import annotations

import base64
import difflib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import jwt as pyjwt
import orjson
import trio
from jwt import exceptions as jwt_errors

from .errors import AccessConfigError, AccessDenied, AccessUnauthenticated
from .jwks import ALGORITHMS, Fetcher, JWKSCache
from .routes import Caller, CallerKind, Role, RouteRules, RouteSet

__all__ = [
    "JWTAuthSettings",
    "JWTAuthenticator",
    "JWTIdentity",
    "caller_for_jwt",
    "identity_from_claims",
    "jwt_not_enabled_error",
    "looks_like_jwt",
]

log = logging.getLogger("trioproxy.access.jwt")

_DEFAULT_ADMIN_ROUTES = ("management_routes", "spend_tracking_routes", "global_spend_tracking_routes", "info_routes")
_DEFAULT_TEAM_ROUTES = ("openai_routes", "info_routes")

#: LiteLLM_JWTAuth fields trioproxy does not implement: refused at startup rather than ignored
_UNSUPPORTED = frozenset({
    "team_jwt_scope", "team_alias_jwt_field", "org_alias_jwt_field", "upsert_sso_user_to_team",
    "user_roles_jwt_field", "user_allowed_roles", "enforce_rbac", "roles_jwt_field", "role_mappings",
    "object_id_jwt_field", "scope_mappings", "enforce_scope_based_access", "custom_validate",
    "jwt_litellm_role_map", "sync_user_role_and_teams", "issuers", "oidc_userinfo_endpoint",
    "oidc_userinfo_cache_ttl", "agent_id_jwt_field", "unregistered_jwt_client_behavior",
    "virtual_key_claim_field",
})

_VERIFIED_CACHE_SECONDS = 60.0
_VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class JWTAuthSettings:
    """``general_settings.litellm_jwtauth`` plus the ``JWT_*`` environment, validated once."""

    public_key_urls: tuple[str, ...]
    audience: str | None = None
    issuer: str | None = None
    admin_jwt_scope: str = "litellm_proxy_admin"
    admin_allowed_routes: tuple[str, ...] = _DEFAULT_ADMIN_ROUTES
    team_id_jwt_field: str | None = None
    team_ids_jwt_field: str | None = None
    team_id_default: str | None = None
    team_allowed_routes: tuple[str, ...] = _DEFAULT_TEAM_ROUTES
    team_id_upsert: bool = False
    user_id_jwt_field: str | None = None
    user_email_jwt_field: str | None = None
    user_allowed_email_domain: str | None = None
    user_id_upsert: bool = False
    end_user_id_jwt_field: str | None = None
    org_id_jwt_field: str | None = None
    enforce_team_based_model_access: bool = False
    public_allowed_routes: tuple[str, ...] = ("public_routes",)
    public_key_ttl: float = 600.0
    public_key_stale_ttl: float = 600.0
    public_key_refetch_interval: float = 30.0
    leeway: float = 0.0

    @classmethod
    def from_config(cls, general_settings: Mapping[str, Any] | None,
                    environ: Mapping[str, str]) -> JWTAuthSettings | None:
        """``None`` unless ``enable_jwt_auth`` is true; every problem at once in :class:`AccessConfigError`."""
        settings = general_settings or {}
        enabled = settings.get("enable_jwt_auth", False)
        problems: list[str] = []
        if not isinstance(enabled, bool):
            raise AccessConfigError([f"general_settings.enable_jwt_auth: must be true or false, got {enabled!r}"])
        raw = settings.get("litellm_jwtauth")
        if not enabled:
            return None
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise AccessConfigError([f"general_settings.litellm_jwtauth: must be a mapping, got {type(raw).__name__}"])
        values: dict[str, Any] = {}
        known = {f for f in cls.__dataclass_fields__ if f not in ("public_key_urls", "audience", "issuer")}
        for key, value in raw.items():
            path = f"general_settings.litellm_jwtauth.{key}"
            if key in _UNSUPPORTED:
                problems.append(f"{path}: a LiteLLM setting trioproxy does not implement; remove it "
                                "(trioproxy refuses rather than ignores settings that restrict access)")
            elif key not in known:
                hint = difflib.get_close_matches(str(key), sorted(known), n=1)
                problems.append(f"{path}: unknown setting" + (f"; did you mean {hint[0]!r}?" if hint else ""))
            else:
                checked = _check_field(key, value, path, problems)
                if checked is not None:
                    values[key] = checked
        urls = tuple(u.strip() for u in environ.get("JWT_PUBLIC_KEY_URL", "").split(",") if u.strip())
        if not urls:
            problems.append("general_settings.enable_jwt_auth: true, but the environment variable "
                            "JWT_PUBLIC_KEY_URL (the identity provider's JWKS URL) is not set")
        for url in urls:
            if not url.startswith(("https://", "http://")):
                problems.append(f"JWT_PUBLIC_KEY_URL: {url!r} is not an http(s) URL")
        if problems:
            raise AccessConfigError(problems)
        audience = environ.get("JWT_AUDIENCE") or None
        issuer = environ.get("JWT_ISSUER") or None
        if audience is None and issuer is None:
            log.warning("JWT auth is on without JWT_AUDIENCE or JWT_ISSUER: any token the identity provider "
                        "signed for any application is accepted. Set JWT_AUDIENCE to this proxy's audience.")
        return cls(public_key_urls=urls, audience=audience, issuer=issuer, **values)

    def route_grants(self, rules: RouteRules) -> dict[Role | None, RouteSet | None]:
        """The route list each JWT role carries, expanded once at startup (``None``: the user's role decides)."""
        grants: dict[Role | None, RouteSet | None] = {Role.INTERNAL_USER: None}
        for role, routes, key in ((Role.PROXY_ADMIN, self.admin_allowed_routes, "admin_allowed_routes"),
                                  (Role.TEAM, self.team_allowed_routes, "team_allowed_routes"),
                                  (None, self.public_allowed_routes, "public_allowed_routes")):
            expanded = rules.route_list(list(routes), f"general_settings.litellm_jwtauth.{key}")
            grants[role] = expanded if expanded is not None else RouteSet.of(())
        return grants


_STR_FIELDS = {"admin_jwt_scope", "team_id_jwt_field", "team_ids_jwt_field", "team_id_default", "user_id_jwt_field",
               "user_email_jwt_field", "user_allowed_email_domain", "end_user_id_jwt_field", "org_id_jwt_field"}
_BOOL_FIELDS = {"team_id_upsert", "user_id_upsert", "enforce_team_based_model_access"}
_NUM_FIELDS = {"public_key_ttl", "public_key_stale_ttl", "public_key_refetch_interval", "leeway"}
_ROUTE_FIELDS = {"admin_allowed_routes", "team_allowed_routes", "public_allowed_routes"}


def _check_field(key: str, value: Any, path: str, problems: list[str]) -> Any:
    if key in _STR_FIELDS:
        if value is None:
            return None
        if isinstance(value, str) and value.strip():
            return value.strip()
        problems.append(f"{path}: must be a non-empty string, got {value!r}")
    elif key in _BOOL_FIELDS:
        if isinstance(value, bool):
            return value
        problems.append(f"{path}: must be true or false, got {value!r}")
    elif key in _NUM_FIELDS:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return float(value)
        problems.append(f"{path}: must be a number of seconds >= 0, got {value!r}")
    elif key in _ROUTE_FIELDS:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        problems.append(f"{path}: must be a list of routes or route groups, got {value!r}")
    return None


# ---- identity ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class JWTIdentity:
    """What a verified token says. ``routes``: the configured route list of its role (unexpanded
    names, for messages); ``None`` for an internal user (the user's role in the store decides)."""

    role: Role | None
    routes: tuple[str, ...] | None
    subject: str | None = None
    issuer: str | None = None
    user_id: str | None = None
    user_email: str | None = None
    team_id: str | None = None
    team_ids: tuple[str, ...] = ()
    end_user_id: str | None = None
    org_id: str | None = None
    scopes: tuple[str, ...] = ()
    expires_at: float | None = None
    user_id_upsert: bool = False
    team_id_upsert: bool = False
    enforce_team_based_model_access: bool = False
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False)


def _claim(claims: Mapping[str, Any], name: str | None) -> Any:
    if name is None:
        return None
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _string_claim(claims: Mapping[str, Any], name: str | None, *, first_of_list: bool = False) -> str | None:
    value = _claim(claims, name)
    if first_of_list and isinstance(value, list):
        value = value[0] if value else None
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise AccessUnauthenticated(f"Invalid JWT token: claim '{name}' must be a string, got {type(value).__name__}")
    return str(value)


def _scopes(claims: Mapping[str, Any]) -> tuple[str, ...]:
    scope = claims.get("scope")
    if scope is None:
        return ()
    if isinstance(scope, str):
        return tuple(scope.split())
    if isinstance(scope, list) and all(isinstance(s, str) for s in scope):
        return tuple(scope)
    raise AccessUnauthenticated("Invalid JWT token: the 'scope' claim must be a space-separated string or a "
                                "list of strings")


def identity_from_claims(claims: Mapping[str, Any], settings: JWTAuthSettings) -> JWTIdentity:
    """Verified claims → :class:`JWTIdentity` (the role rules are in the module docstring). Pure."""
    scopes = _scopes(claims)
    team_id = _string_claim(claims, settings.team_id_jwt_field, first_of_list=True) or settings.team_id_default
    raw_team_ids = _claim(claims, settings.team_ids_jwt_field)
    if raw_team_ids is None:
        team_ids: tuple[str, ...] = ()
    elif isinstance(raw_team_ids, str):
        team_ids = (raw_team_ids,)
    elif isinstance(raw_team_ids, list) and all(isinstance(t, (str, int)) for t in raw_team_ids):
        team_ids = tuple(str(t) for t in raw_team_ids)
    else:
        raise AccessUnauthenticated(f"Invalid JWT token: claim '{settings.team_ids_jwt_field}' must be a list "
                                    "of team ids")
    user_id = _string_claim(claims, settings.user_id_jwt_field)
    user_email = _string_claim(claims, settings.user_email_jwt_field)
    if settings.user_allowed_email_domain is not None and user_email is not None and \
            user_email.rpartition("@")[2].lower() != settings.user_allowed_email_domain.lower():
        raise AccessDenied(f"Email domain not allowed. User email: {user_email}. "
                           f"Allowed domain: {settings.user_allowed_email_domain}")
    common = dict(
        subject=_string_claim(claims, "sub"), issuer=_string_claim(claims, "iss"), user_id=user_id,
        user_email=user_email, team_id=team_id, team_ids=team_ids,
        end_user_id=_string_claim(claims, settings.end_user_id_jwt_field),
        org_id=_string_claim(claims, settings.org_id_jwt_field), scopes=scopes,
        expires_at=float(claims["exp"]) if isinstance(claims.get("exp"), (int, float)) else None,
        user_id_upsert=settings.user_id_upsert, team_id_upsert=settings.team_id_upsert,
        enforce_team_based_model_access=settings.enforce_team_based_model_access,
        claims=MappingProxyType(dict(claims)),
    )
    if settings.admin_jwt_scope in scopes:
        return JWTIdentity(Role.PROXY_ADMIN, settings.admin_allowed_routes, **common)  # type: ignore[arg-type]
    if team_id is not None:
        return JWTIdentity(Role.TEAM, settings.team_allowed_routes, **common)  # type: ignore[arg-type]
    if settings.team_id_jwt_field is not None and not team_ids:
        raise AccessUnauthenticated(f"No team id found in token. Field checked in jwt token - "
                                    f"'{settings.team_id_jwt_field}'")
    if user_id is not None or user_email is not None:
        return JWTIdentity(Role.INTERNAL_USER, None, **common)  # type: ignore[arg-type]
    if team_ids:
        return JWTIdentity(Role.TEAM, settings.team_allowed_routes, **common)  # type: ignore[arg-type]
    return JWTIdentity(None, settings.public_allowed_routes, **common)  # type: ignore[arg-type]


def caller_for_jwt(identity: JWTIdentity, grants: Mapping[Role | None, RouteSet | None], *,
                   user_role: Role | None = None, admin_of_teams: frozenset[str] = frozenset(),
                   team_routes: RouteSet | None = None) -> Caller:
    """The :class:`Caller` route rules see. ``user_role``: the user's role in the store (for an
    ``internal_user`` token: a user stored as ``proxy_admin_viewer`` gets that role's routes)."""
    role = identity.role
    if role is Role.INTERNAL_USER and user_role is not None:
        role = user_role
    return Caller(CallerKind.JWT, role=role, user_id=identity.user_id, team_id=identity.team_id,
                  admin_of_teams=admin_of_teams, team_routes=team_routes,
                  jwt_routes=grants.get(identity.role) if identity.role is not Role.INTERNAL_USER else None)


# ---- recognising and verifying ----------------------------------------------------------------

def _b64json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def looks_like_jwt(token: str | None) -> bool:
    """Three dot-separated base64url segments whose first is a JSON object with an ``alg``.

    Stricter than LiteLLM's "three parts" test, so a virtual key with dots in it is not mistaken
    for a JWT.
    """
    if not token or token.count(".") != 2 or len(token) > 16384:
        return False
    header = token.partition(".")[0]
    try:
        decoded = _b64json(header)
    except (ValueError, UnicodeEncodeError):
        return False
    return isinstance(decoded, dict) and isinstance(decoded.get("alg"), str)


def jwt_not_enabled_error() -> AccessUnauthenticated:
    """The answer to a JWT sent while ``enable_jwt_auth`` is off (not "invalid virtual key")."""
    return AccessUnauthenticated(
        "Authentication Error, the bearer token is a JWT but JWT auth is off on this proxy. Set "
        "general_settings.enable_jwt_auth: true and JWT_PUBLIC_KEY_URL to accept JWTs, or send a virtual key.")


def _when(timestamp: Any) -> str:
    try:
        return datetime.fromtimestamp(float(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError, OverflowError, OSError):
        return "an invalid time"


class JWTAuthenticator:
    """Verifies bearer JWTs against the JWKS; one per process, built at startup."""

    def __init__(self, settings: JWTAuthSettings, fetch: Fetcher, *, fetch_timeout: float = 10.0,
                 clock: Callable[[], float] = trio.current_time, wall_clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.keys = JWKSCache(settings.public_key_urls, fetch, ttl=settings.public_key_ttl,
                              stale_ttl=settings.public_key_stale_ttl,
                              refetch_interval=settings.public_key_refetch_interval,
                              fetch_timeout=fetch_timeout, clock=clock)
        self._clock = clock
        self._wall_clock = wall_clock
        # token → (identity, key generation, cached until (Trio clock)); insertion-ordered, oldest first
        self._verified: dict[str, tuple[JWTIdentity, int, float]] = {}

    async def authenticate(self, token: str) -> JWTIdentity:
        """The token's identity, or a 401 (bad token) / 403 (email domain) / 503 (JWKS unreachable)."""
        cached = self._verified.get(token)
        if cached is not None:
            identity, generation, until = cached
            expires_at = identity.expires_at
            if (generation == self.keys.generation and self._clock() < until
                    and (expires_at is None or self._wall_clock() < expires_at)):
                return identity
            del self._verified[token]
        header = self._header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            shown = "".join(c if c.isprintable() else "?" for c in alg[:20]) if isinstance(alg, str) \
                else type(alg).__name__
            raise AccessUnauthenticated(f"Invalid JWT token: algorithm '{shown}' is not accepted "
                                        f"(only {', '.join(ALGORITHMS)})")
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or len(kid) > 256):
            raise AccessUnauthenticated("Invalid JWT token: the 'kid' header must be a short string")
        key = await self.keys.key_for(kid, alg)
        generation = self.keys.generation
        claims = self._decode(token, key.key, alg)  # the bare public key: PyJWT must use *our* alg
        identity = identity_from_claims(claims, self.settings)
        self._remember(token, identity, generation)
        return identity

    @staticmethod
    def _header(token: str) -> dict[str, Any]:
        if not isinstance(token, str) or token.count(".") != 2:
            raise AccessUnauthenticated("Invalid JWT token: malformed (a JWT is three dot-separated parts)")
        try:
            header = pyjwt.get_unverified_header(token)
        except jwt_errors.PyJWTError:
            raise AccessUnauthenticated("Invalid JWT token: malformed header") from None
        return header

    def _decode(self, token: str, key: Any, alg: str) -> dict[str, Any]:
        settings = self.settings
        try:
            return pyjwt.decode(
                token, key, algorithms=[alg], audience=settings.audience, issuer=settings.issuer,
                leeway=settings.leeway,
                options={"require": ["exp"], "verify_aud": settings.audience is not None,
                         "verify_iss": settings.issuer is not None})
        except jwt_errors.ExpiredSignatureError:
            raise AccessUnauthenticated(
                f"Token Expired: the JWT expired at {_when(self._unverified(token).get('exp'))}") from None
        except jwt_errors.ImmatureSignatureError:
            raise AccessUnauthenticated(
                f"Token not yet valid: the JWT is valid from {_when(self._unverified(token).get('nbf'))}") from None
        except jwt_errors.MissingRequiredClaimError as exc:
            raise AccessUnauthenticated(f"Invalid JWT token: no '{exc.claim}' claim") from None
        except jwt_errors.InvalidAudienceError:
            raise AccessUnauthenticated("Invalid JWT token: its audience ('aud') is not JWT_AUDIENCE") from None
        except jwt_errors.InvalidIssuerError:
            raise AccessUnauthenticated("Invalid JWT token: its issuer ('iss') is not JWT_ISSUER") from None
        except jwt_errors.InvalidSignatureError:
            raise AccessUnauthenticated("Invalid JWT token: signature verification failed") from None
        except jwt_errors.PyJWTError as exc:
            raise AccessUnauthenticated(f"Invalid JWT token: {type(exc).__name__}") from None

    @staticmethod
    def _unverified(token: str) -> dict[str, Any]:
        try:
            claims = _b64json(token.split(".")[1])
        except (ValueError, IndexError, UnicodeEncodeError):
            return {}
        return claims if isinstance(claims, dict) else {}

    def _remember(self, token: str, identity: JWTIdentity, generation: int) -> None:
        if len(self._verified) >= _VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (identity, generation, self._clock() + _VERIFIED_CACHE_SECONDS)

    def forget(self) -> None:
        """Drop every remembered verification (e.g. after a config reload)."""
        self._verified.clear()

