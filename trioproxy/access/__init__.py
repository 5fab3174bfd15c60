"""Access control: route rules, caller addresses and IP allowlists, JWT auth.

Pure, self-contained parts; the HTTP layer wires them in (see ``docs/access.md``). The public
surface is this list; the modules behind it may move.

- :func:`normalize_path` (``paths``): one spelling per path, applied before routing and authorising.
- :func:`authorize`, :class:`Caller`, :class:`RouteRules`, :func:`describe_routes` (``routes``),
  over the route table in ``catalog``.
- :class:`IPPolicy` (``ip``): the caller's address (``X-Forwarded-For`` behind trusted proxies) and
  ``allowed_ips``.
- :class:`JWTAuthSettings`, :class:`JWTAuthenticator`, :class:`JWTIdentity`, :func:`caller_for_jwt`,
  :func:`looks_like_jwt`, :func:`jwt_not_enabled_error` (``jwt``), :func:`http_fetcher` (``jwks``).
"""

from .catalog import PassThroughRoute, RouteCatalog, RouteSet, Rule
from .errors import (
    AccessConfigError,
    AccessDenied,
    AccessUnauthenticated,
    AuthProviderUnavailable,
    BadPathError,
)
from .ip import IPPolicy
from .jwks import http_fetcher
from .jwt import (
    JWTAuthenticator,
    JWTAuthSettings,
    JWTIdentity,
    caller_for_jwt,
    identity_from_claims,
    jwt_not_enabled_error,
    looks_like_jwt,
)
from .paths import normalize_path
from .routes import Caller, CallerKind, Role, RouteRules, authorize, describe_routes

__all__ = [
    "AccessConfigError",
    "AccessDenied",
    "AccessUnauthenticated",
    "AuthProviderUnavailable",
    "BadPathError",
    "Caller",
    "CallerKind",
    "IPPolicy",
    "JWTAuthSettings",
    "JWTAuthenticator",
    "JWTIdentity",
    "PassThroughRoute",
    "Role",
    "RouteCatalog",
    "RouteRules",
    "RouteSet",
    "Rule",
    "authorize",
    "caller_for_jwt",
    "describe_routes",
    "http_fetcher",
    "identity_from_claims",
    "jwt_not_enabled_error",
    "looks_like_jwt",
    "normalize_path",
]
