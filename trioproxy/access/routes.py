"""Route authorization: one pure function, :func:`authorize`, decides every route for every caller.

It knows nothing about HTTP, Trio or the store. The HTTP layer (the ASGI fast path, Quart routes,
pass-through routes alike) normalises the path (:func:`~trioproxy.access.paths.normalize_path`),
routes on the normalised path, turns the credentials into a :class:`Caller` *without raising*
(a bad key becomes ``Caller.rejected(error)``, so a public route still answers), checks the caller's
IP (:mod:`trioproxy.access.ip`), then calls ``authorize(caller, path, method, rules)`` **before** it
reads or validates a body: a caller without the right to a route gets the 403, never a 400 about
its body.

The rows, in order; the first row that decides wins. Each row has a test in
``tests/access/test_access_routes.py``; ``docs/access.md`` shows the same table.

| # | row | when | outcome |
|---|---|---|---|
| 1 | allowed_routes | ``general_settings.allowed_routes`` is set and the route is not in it | 403 ``Access forbidden: Route /embeddings not allowed`` — everyone, master key and public routes included |
| 2 | public | the route's rule is ``public``, or it is in ``general_settings.public_routes`` | allow, whatever the credentials (even a bad key) |
| 3 | no credential | no key or token was sent | 401 ``Authentication Error, No api key passed in.`` |
| 4 | invalid credential | the key/token was refused (unknown, expired, blocked, bad JWT) | 401 (or 403/503) with the authenticator's own error |
| 5 | master key only | the route's rule is ``master_key`` and the caller is not the master key | 403 ``Tried to access route=/global/spend/reset, which is only for MASTER KEY`` |
| 6 | admin_only_routes | the route is in ``general_settings.admin_only_routes`` and the caller is not a proxy admin | 403 ``user not allowed to access this route. Route=/key/generate is an admin only route`` |
| 7 | key allowed_routes | the key has a non-empty ``allowed_routes`` and the route is not in it | 403 ``Virtual key is not allowed to call this route. Only allowed to call routes: [...]. Tried to call route: /x`` |
| 8 | team allowed_routes | the key's team has a non-empty ``allowed_routes`` and the route is not in it | 403 ``Team <id> is not allowed to call this route. ...`` |
| 9 | JWT routes | the caller is a JWT whose role carries a route list (admin → ``admin_allowed_routes``, team → ``team_allowed_routes``, no role → ``public_allowed_routes``) | allow if the route is in it, else 403 ``Admin/Team not allowed to access this route. Route=..., Allowed Routes=[...]`` |
| 10 | proxy admin | master key, or a key/JWT whose user role is ``proxy_admin`` | allow |
| 11 | role × rule | everyone else | the role table below |

Row 11, the route's rule × the caller's role (✓ allow; R: reads only — GET/HEAD and ``POST
/spend/calculate``; 403 otherwise). "virtual key" is a key without a user (or whose user has no
role); "team admin" is a caller listed as ``admin`` member of the team the request names:

| rule | virtual key | internal_user_viewer | internal_user | team admin | proxy_admin_viewer |
|---|---|---|---|---|---|
| llm_api | ✓ | ✓ | ✓ | ✓ | 403 (inference costs money) |
| info | ✓ | ✓ | ✓ | ✓ | ✓ |
| self_service | 403 | 403 | ✓ | as their role | R |
| spend | 403 | ✓ | ✓ | as their role | ✓ |
| team_admin | 403 | 403 | 403 | ✓ (their team) | 403 |
| admin | 403 | 403 | 403 | as their role | R |

The ``info``, ``self_service`` and ``spend`` rules let a caller reach the route; which objects they
see or change (their own keys, their own spend, their team) is the handler's check.

A route the catalog does not know is treated as ``admin`` (fail closed). Decisions that differ from
LiteLLM, on purpose: per-key and per-team ``allowed_routes`` only ever *restrict* (in LiteLLM a
key's list can also grant a non-admin a management route, so a user allowed to create their own key
could grant themselves ``/user/new``); a public route ignores a bad credential (LiteLLM does the
same, by returning before it looks at the key).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..errors import ProxyError
from .catalog import (
    PassThroughRoute,
    RouteCatalog,
    RouteSet,
    RouteSpec,
    Rule,
    expand_route_list,
)
from .errors import AccessConfigError, AccessDenied, AccessUnauthenticated

__all__ = [
    "Caller",
    "CallerKind",
    "Role",
    "RouteRules",
    "authorize",
    "describe_routes",
]


class Role(StrEnum):
    """LiteLLM's user roles (``LitellmUserRoles``) that route rules look at."""

    PROXY_ADMIN = "proxy_admin"
    PROXY_ADMIN_VIEWER = "proxy_admin_viewer"
    INTERNAL_USER = "internal_user"
    INTERNAL_USER_VIEWER = "internal_user_viewer"
    TEAM = "team"  # a JWT that names a team (LiteLLM's JWT role)


class CallerKind(StrEnum):
    NONE = "none"            # no credential sent
    INVALID = "invalid"      # a credential that was refused; ``Caller.error`` says why
    MASTER_KEY = "master_key"
    VIRTUAL_KEY = "virtual_key"
    JWT = "jwt"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, as far as route rules care. Built by the authenticator, never raises.

    ``key_routes`` / ``team_routes``: the key's and its team's ``allowed_routes``, expanded once
    with :meth:`RouteRules.route_list` (cache them with the key). ``jwt_routes``: the routes a JWT's
    role grants (``None`` for a JWT user, whose user role decides as for a key).
    """

    kind: CallerKind
    role: Role | None = None
    user_id: str | None = None
    team_id: str | None = None
    admin_of_teams: frozenset[str] = frozenset()
    key_routes: RouteSet | None = None
    team_routes: RouteSet | None = None
    jwt_routes: RouteSet | None = None
    error: ProxyError | None = field(default=None, compare=False)

    @classmethod
    def anonymous(cls) -> Caller:
        return cls(CallerKind.NONE)

    @classmethod
    def rejected(cls, error: ProxyError) -> Caller:
        return cls(CallerKind.INVALID, error=error)

    @classmethod
    def master_key(cls) -> Caller:
        return cls(CallerKind.MASTER_KEY, role=Role.PROXY_ADMIN)

    @property
    def is_proxy_admin(self) -> bool:
        return self.kind is CallerKind.MASTER_KEY or self.role is Role.PROXY_ADMIN


@dataclass(frozen=True, slots=True)
class RouteRules:
    """The route settings of one config, validated and expanded once at startup."""

    catalog: RouteCatalog
    public: RouteSet
    admin_only: RouteSet | None = None
    allowed: RouteSet | None = None
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, general_settings: Mapping[str, Any] | None,
                      pass_through: Iterable[PassThroughRoute] = ()) -> RouteRules:
        """``general_settings`` → rules, or :class:`AccessConfigError` listing every bad entry.

        Reads ``public_routes``, ``admin_only_routes``, ``allowed_routes`` and ``metrics_public``
        (which makes ``/metrics`` public, as it always has).
        """
        settings = general_settings or {}
        catalog = RouteCatalog(pass_through=pass_through)
        problems: list[str] = []
        warnings: list[str] = []
        public = expand_route_list(settings.get("public_routes"), "general_settings.public_routes",
                                   catalog, problems, warnings)
        extra_public = ["/metrics"] if settings.get("metrics_public") is True else []
        admin_only = expand_route_list(settings.get("admin_only_routes"), "general_settings.admin_only_routes",
                                       catalog, problems, warnings)
        allowed = expand_route_list(settings.get("allowed_routes"), "general_settings.allowed_routes",
                                    catalog, problems, warnings)
        if problems:
            raise AccessConfigError(problems)
        public_patterns = [p.text for p in public.patterns] if public else []
        return cls(catalog, RouteSet.of(public_patterns + extra_public, source=public.source if public else ()),
                   admin_only, allowed, tuple(warnings))

    def route_list(self, value: object, key_path: str = "allowed_routes",
                   extra_groups: Mapping[str, list[str]] | None = None) -> RouteSet | None:
        """A key's, team's or JWT setting's route list → :class:`RouteSet` (``None`` or ``[]``: no list).

        Per-key and per-team lists also match below an exact entry (``/bria`` covers
        ``/bria/v1/x``), as LiteLLM's do. Raises :class:`AccessConfigError` (the admin API answers it
        with a 400 naming each bad entry).
        """
        if value is None or value == []:
            return None
        problems: list[str] = []
        routes = expand_route_list(value, key_path, self.catalog, problems, prefix_match=True,
                                   extra_groups=extra_groups)
        if problems:
            raise AccessConfigError(problems)
        return routes


# ---- the rows ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Request:
    caller: Caller
    route: str
    method: str
    spec: RouteSpec | None
    rules: RouteRules
    team_id: str | None

    @property
    def rule(self) -> Rule:
        return self.spec.rule if self.spec is not None else Rule.ADMIN  # unknown route: fail closed

    @property
    def shown(self) -> str:
        """The route as messages name it: a template's own text (``/key/{key}/regenerate``), never
        the concrete path, which may carry a secret (a clear key) into an answer or a log."""
        if self.spec is not None and "{" in self.spec.path:
            return self.spec.path
        return self.route

    @property
    def is_read(self) -> bool:
        if self.method in ("GET", "HEAD"):
            return True
        return self.spec is not None and self.spec.reads_only and self.method not in ("PUT", "PATCH", "DELETE")


def _row_allowed_routes(r: _Request) -> bool:
    if r.rules.allowed is not None and not r.rules.allowed.matches(r.route):
        raise AccessDenied(f"Access forbidden: Route {r.shown} not allowed")
    return False


def _row_public(r: _Request) -> bool:
    return r.rule is Rule.PUBLIC or r.rules.public.matches(r.route)


def _row_no_credential(r: _Request) -> bool:
    if r.caller.kind is CallerKind.NONE:
        raise AccessUnauthenticated("Authentication Error, No api key passed in.")
    return False


def _row_invalid_credential(r: _Request) -> bool:
    if r.caller.kind is CallerKind.INVALID:
        raise r.caller.error or AccessUnauthenticated("Authentication Error, Invalid proxy server token passed.")
    return False


def _row_master_key_only(r: _Request) -> bool:
    if r.rule is Rule.MASTER_KEY and r.caller.kind is not CallerKind.MASTER_KEY:
        raise AccessDenied(f"Tried to access route={r.shown}, which is only for MASTER KEY")
    return False


def _row_admin_only_routes(r: _Request) -> bool:
    admin_only = r.rules.admin_only
    if admin_only is not None and admin_only.matches(r.route) and not r.caller.is_proxy_admin:
        raise AccessDenied(f"user not allowed to access this route. Route={r.shown} is an admin only route")
    return False


def _restricts(routes: RouteSet | None) -> bool:
    """A key's or team's list restricts when it names anything, even if what it names expands to
    no route we serve (``["anthropic_routes"]``): such a list allows nothing. Only no list, or an
    empty one, restricts nothing."""
    return routes is not None and bool(routes.patterns or routes.source)


def _row_key_allowed_routes(r: _Request) -> bool:
    routes = r.caller.key_routes
    if _restricts(routes) and not routes.matches(r.route):  # type: ignore[union-attr]
        raise AccessDenied(f"Virtual key is not allowed to call this route. Only allowed to call routes: "
                           f"{list(routes.source)}. Tried to call route: {r.shown}")
    return False


def _row_team_allowed_routes(r: _Request) -> bool:
    routes = r.caller.team_routes
    if _restricts(routes) and not routes.matches(r.route):  # type: ignore[union-attr]
        raise AccessDenied(f"Team {r.caller.team_id} is not allowed to call this route. Only allowed to call "
                           f"routes: {list(routes.source)}. Tried to call route: {r.shown}")
    return False


def _row_jwt_routes(r: _Request) -> bool:
    routes = r.caller.jwt_routes
    if r.caller.kind is not CallerKind.JWT or routes is None:
        return False
    if routes.matches(r.route):
        return True
    who = {Role.PROXY_ADMIN: "Admin", Role.TEAM: "Team"}.get(r.caller.role, "JWT")  # type: ignore[arg-type]
    raise AccessDenied(f"{who} not allowed to access this route. Route={r.shown}, "
                       f"Allowed Routes={list(routes.source)}")


def _row_proxy_admin(r: _Request) -> bool:
    return r.caller.is_proxy_admin


def _row_role_rule(r: _Request) -> bool:
    role, rule = r.caller.role, r.rule
    viewer = role is Role.PROXY_ADMIN_VIEWER
    if rule is Rule.LLM_API:
        if viewer:
            raise AccessDenied(f"user not allowed to access this OpenAI routes, role= {role}")
        return True
    if rule is Rule.INFO:
        return True
    if rule is Rule.SELF_SERVICE and (role is Role.INTERNAL_USER or (viewer and r.is_read)):
        return True
    if rule is Rule.SPEND and role in (Role.INTERNAL_USER, Role.INTERNAL_USER_VIEWER, Role.PROXY_ADMIN_VIEWER):
        return True
    if rule is Rule.TEAM_ADMIN:
        admin_of = r.caller.admin_of_teams
        if (r.team_id in admin_of) if r.team_id is not None else bool(admin_of):
            return True
        team = f"team {r.team_id}" if r.team_id is not None else "a team"
        raise AccessDenied(f"user not allowed to access this route. Route={r.shown} needs a proxy admin or an "
                           f"admin of {team}. Your role={role or 'unknown'}")
    if rule is Rule.ADMIN and viewer and r.is_read:
        return True
    if viewer:
        raise AccessDenied(f"user not allowed to access this route, role= {role}. Trying to access: {r.shown}")
    raise AccessDenied(f"Only proxy admin can be used to generate, delete, update info for new keys/users/teams. "
                       f"Route={r.shown}. Your role={role or 'unknown'}. "
                       f"Your user_id={_mask_user_id(r.caller.user_id)}")


def _mask_user_id(user_id: str | None) -> str:
    """LiteLLM's masking: enough to recognise your own id, not enough to learn someone else's."""
    if not user_id:
        return "unknown"
    if len(user_id) <= 8:
        return "***"
    return user_id[:6] + "*" * (len(user_id) - 8) + user_id[-2:]


Row = Callable[[_Request], bool]

#: The decision table, in order (the module docstring). A row returns True to allow, False to pass
#: the request to the next row, or raises to refuse.
ROWS: tuple[tuple[str, Row], ...] = (
    ("allowed_routes", _row_allowed_routes),
    ("public", _row_public),
    ("no credential", _row_no_credential),
    ("invalid credential", _row_invalid_credential),
    ("master key only", _row_master_key_only),
    ("admin_only_routes", _row_admin_only_routes),
    ("key allowed_routes", _row_key_allowed_routes),
    ("team allowed_routes", _row_team_allowed_routes),
    ("JWT routes", _row_jwt_routes),
    ("proxy admin", _row_proxy_admin),
    ("role × rule", _row_role_rule),
)


def authorize(caller: Caller, route: str, method: str, rules: RouteRules, *, team_id: str | None = None) -> None:
    """Allow (return ``None``) or raise :class:`AccessDenied` / :class:`AccessUnauthenticated`.

    ``route`` is the *normalised* path the router matched (not its template); ``method`` the HTTP
    method. ``team_id`` is the team the request names, when the HTTP layer can tell before
    validating the body (``/team/member_add {"team_id": ...}``): it makes the ``team_admin`` rule
    exact; without it a team admin of *any* team passes the route check and the handler checks the
    team.
    """
    request = _Request(caller, route, method.upper(), rules.catalog.lookup(route), rules, team_id)
    for _name, row in ROWS:
        if row(request):
            return
    raise AssertionError("the last row always decides")  # pragma: no cover


def describe_routes(rules: RouteRules,
                    registered: Iterable[tuple[str, Iterable[str]]] | None = None) -> list[dict[str, Any]]:
    """What ``GET /routes`` lists: every route with its methods, rule and groups.

    ``registered``: the app's own ``(path template, methods)`` pairs; those the catalog does not
    know are listed as ``admin`` with ``configured_by: "unclassified"``. Without it, the catalog.
    ``configured_by`` names the general setting that overrides the route's default rule.
    """
    if registered is None:
        entries = [(spec.path, spec.methods, spec) for spec in rules.catalog.specs]
    else:
        entries = [(path, frozenset(m.upper() for m in methods), rules.catalog.lookup(path))
                   for path, methods in registered]
    listed = []
    for path, methods, spec in entries:
        rule = spec.rule.value if spec is not None else Rule.ADMIN.value
        configured_by = None if spec is not None else "unclassified"
        if rules.allowed is not None and not rules.allowed.matches(path):
            rule, configured_by = "disabled", "allowed_routes"
        elif rule != Rule.PUBLIC and rules.public.matches(path):
            rule, configured_by = Rule.PUBLIC.value, "public_routes"
        elif (rules.admin_only is not None and rules.admin_only.matches(path)
              and rule not in (Rule.PUBLIC, Rule.MASTER_KEY)):
            rule, configured_by = Rule.ADMIN.value, "admin_only_routes"
        listed.append({
            "path": path,
            "methods": sorted(methods),
            "rule": rule,
            "configured_by": configured_by,
            "groups": sorted(spec.groups) if spec is not None else [],
            "description": spec.description if spec is not None else "",
        })
    return listed
