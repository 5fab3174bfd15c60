"""Every route trioproxy serves (or will serve), its access rule, and LiteLLM's route-group names.

Two separate things live here, on purpose:

* the **rule** of a route (:class:`Rule`): who may call it by default. One rule per route; the
  decision table in :mod:`trioproxy.access.routes` turns (caller, rule) into allow / 401 / 403.
* the **groups** a route belongs to: LiteLLM's ``LiteLLMRoutes`` names (``openai_routes``,
  ``info_routes``, ``management_routes``, …). Groups only name sets of routes, for config lists:
  ``general_settings.public_routes: ["LiteLLMRoutes.public_routes", "/spend/calculate"]``, a key's
  ``allowed_routes: ["llm_api_routes"]``, JWT ``team_allowed_routes: ["openai_routes"]``. A route
  is in as many groups as LiteLLM puts it in (``/key/info`` is an info route *and* a management
  route), so groups cannot be rules.

The group names and meanings are LiteLLM's (``litellm/proxy/_types.py``, ``LiteLLMRoutes``); the
members are our own routes. LiteLLM names whose routes trioproxy does not serve (Anthropic, Google,
MCP, agents, provider pass-through, organisations) are known and expand to nothing, with a warning,
so a LiteLLM config still loads. Where our membership differs from LiteLLM's, on purpose:

* ``/metrics`` is not a public route (LiteLLM's is): it stays behind an admin key unless
  ``general_settings.metrics_public: true`` or ``public_routes`` lists it, as before.
* ``global_spend_tracking_routes`` are admin routes (proxy admins and admin viewers): LiteLLM lets
  internal users call them and relies on its UI; trioproxy has no UI scoping, and whole-proxy spend
  is admin data. Internal users see their own spend through ``/spend/logs`` and ``/user/info``.
* ``management_routes`` also holds the customer and budget routes (LiteLLM leaves them in no group,
  which makes them admin-only anyway), so a JWT admin's default ``admin_allowed_routes`` reach them.

Adding a route: add a row to :data:`ROUTES`. A route the app registers without a row here is
treated as admin-only (fail closed), and the route-matrix test fails until it has a row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "EMPTY_LITELLM_GROUPS",
    "GROUPS",
    "ROUTES",
    "PassThroughRoute",
    "RouteCatalog",
    "RoutePattern",
    "RouteSet",
    "RouteSpec",
    "Rule",
    "expand_route_list",
]


class Rule(StrEnum):
    """Who may call a route by default (before config and per-key restrictions)."""

    PUBLIC = "public"              # no credential at all
    LLM_API = "llm_api"            # any authenticated caller but an admin viewer (they cost money)
    INFO = "info"                  # any authenticated caller; the handler shows only the caller's own objects
    SELF_SERVICE = "self_service"  # internal users (their own keys); admin viewers for reads
    SPEND = "spend"                # internal users and both viewer roles (their own spend)
    TEAM_ADMIN = "team_admin"      # an admin of the team named in the request
    ADMIN = "admin"                # proxy admins; admin viewers for reads
    MASTER_KEY = "master_key"      # the master key itself, not even a proxy_admin user's key


# ---- LiteLLM's group names --------------------------------------------------------------------
OPENAI = "openai_routes"
LLM_API = "llm_api_routes"
INFO = "info_routes"
MANAGEMENT = "management_routes"
KEY_MANAGEMENT = "key_management_routes"
SPEND = "spend_tracking_routes"
GLOBAL_SPEND = "global_spend_tracking_routes"
MASTER_ONLY = "master_key_only_routes"
PUBLIC = "public_routes"
SELF_MANAGED = "self_managed_routes"
INTERNAL_USER = "internal_user_routes"
INTERNAL_USER_VIEW = "internal_user_view_only_routes"
ADMIN_VIEWER = "admin_viewer_routes"
UI = "ui_routes"

#: every LiteLLM group name trioproxy gives members to
GROUPS: tuple[str, ...] = (OPENAI, LLM_API, INFO, MANAGEMENT, KEY_MANAGEMENT, SPEND, GLOBAL_SPEND,
                           MASTER_ONLY, PUBLIC, SELF_MANAGED, INTERNAL_USER, INTERNAL_USER_VIEW,
                           ADMIN_VIEWER, UI)

#: LiteLLM group names for routes trioproxy does not serve: they expand to nothing (with a warning)
EMPTY_LITELLM_GROUPS: frozenset[str] = frozenset({
    "anthropic_routes", "google_routes", "mcp_routes", "agent_routes", "mapped_pass_through_routes",
    "passthrough_routes_wildcard", "litellm_native_routes", "apply_guardrail_routes",
    "org_admin_only_routes", "org_admin_allowed_routes",
})


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One route: its path template, methods, default rule and LiteLLM groups.

    ``path`` may hold ``{name}`` placeholders (one segment each). ``subpaths`` makes the spec cover
    every path below ``path`` as well (a pass-through endpoint with ``include_subpath``).
    """

    path: str
    methods: frozenset[str]
    rule: Rule
    groups: frozenset[str] = frozenset()
    description: str = ""
    subpaths: bool = False

    @property
    def reads_only(self) -> bool:
        """A read for the viewer roles: GET/HEAD routes, and the POSTs that only compute."""
        return self.methods <= _SAFE_METHODS or self.path in _READ_ONLY_POSTS


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: POST routes that change nothing (LiteLLM lets admin viewers call these too)
_READ_ONLY_POSTS = frozenset({"/spend/calculate"})


def _routes(methods: str, paths: Iterable[str], rule: Rule, groups: Iterable[str], description: str
            ) -> list[RouteSpec]:
    return [RouteSpec(path, frozenset(methods.split()), rule, frozenset(groups), description) for path in paths]


def _v1(*paths: str) -> list[str]:
    return [p for path in paths for p in (path, f"/v1{path}")]


_AZURE = "/openai/deployments/{model}"

#: The route table. One row per (path, methods); the README's access table is generated from it.
ROUTES: tuple[RouteSpec, ...] = tuple(
    # ---- public: health, the route list, the model hub, robots.txt
    _routes("GET", ["/health/liveliness", "/health/liveness", "/health/readiness"], Rule.PUBLIC, [PUBLIC],
            "health probes")
    + _routes("GET", ["/"], Rule.PUBLIC, [PUBLIC], "landing page")
    + _routes("GET", ["/routes"], Rule.PUBLIC, [PUBLIC], "this list of routes and their rules")
    + _routes("GET", ["/public/model_hub", "/model_hub"], Rule.PUBLIC, [PUBLIC],
              "public model groups (JSON, and a page for people)")
    + _routes("GET", ["/robots.txt"], Rule.PUBLIC, [], "block_robots")
    + _routes("GET", ["/swagger/{asset}"], Rule.PUBLIC, [PUBLIC], "the Swagger UI's files for /docs (no data)")
    # ---- the OpenAI API
    + _routes("POST", _v1("/chat/completions") + [f"{_AZURE}/chat/completions"], Rule.LLM_API,
              [OPENAI, LLM_API], "chat completions")
    + _routes("POST", _v1("/completions") + [f"{_AZURE}/completions"], Rule.LLM_API, [OPENAI, LLM_API],
              "text completions")
    + _routes("POST", _v1("/embeddings") + [f"{_AZURE}/embeddings"], Rule.LLM_API, [OPENAI, LLM_API],
              "embeddings")
    + _routes("POST", _v1("/responses") + [f"{_AZURE}/responses"], Rule.LLM_API, [OPENAI, LLM_API],
              "responses (translated to chat completions)")
    + _routes("GET", _v1("/models"), Rule.INFO, [OPENAI, LLM_API, INFO, UI, ADMIN_VIEWER],
              "the models the caller may use")
    + _routes("GET", _v1("/models/{model:path}"), Rule.INFO, [OPENAI, LLM_API, INFO], "one model the caller may use")
    + _routes("GET", _v1("/model/info"), Rule.INFO, [INFO, UI, ADMIN_VIEWER],
              "deployments of the models the caller may use (no secrets)")
    + _routes("GET", _v1("/health"), Rule.ADMIN, [], "calls every deployment once (costs requests)")
    # ---- keys
    + _routes("POST", ["/key/generate", "/key/update", "/key/delete", "/key/regenerate",
                       "/key/{key}/regenerate", "/key/block", "/key/unblock"],
              Rule.SELF_SERVICE, [MANAGEMENT, KEY_MANAGEMENT, INTERNAL_USER], "virtual keys")
    + _routes("GET", ["/key/info", "/key/list"], Rule.INFO,
              [INFO, MANAGEMENT, KEY_MANAGEMENT, INTERNAL_USER, UI, ADMIN_VIEWER], "virtual keys (own keys)")
    # ---- teams
    + _routes("POST", ["/team/new", "/team/update", "/team/delete", "/team/block", "/team/unblock"],
              Rule.ADMIN, [MANAGEMENT], "teams")
    + _routes("POST", ["/team/member_add", "/team/member_update", "/team/member_delete"], Rule.TEAM_ADMIN,
              [MANAGEMENT, SELF_MANAGED], "team members")
    + _routes("GET", ["/team/info", "/team/list", "/v2/team/list"], Rule.INFO, [INFO, MANAGEMENT, UI, ADMIN_VIEWER],
              "teams (own teams)")
    # ---- internal users
    + _routes("POST", ["/user/new", "/user/update", "/user/delete"], Rule.ADMIN, [MANAGEMENT], "internal users")
    + _routes("GET", ["/user/info"], Rule.INFO, [INFO, MANAGEMENT, UI, ADMIN_VIEWER], "internal users (self)")
    + _routes("GET", ["/user/list"], Rule.ADMIN, [MANAGEMENT, ADMIN_VIEWER], "internal users")
    # ---- customers and budgets
    + _routes("POST", ["/customer/new", "/end_user/new", "/customer/update", "/end_user/update",
                       "/customer/delete", "/end_user/delete", "/customer/block", "/customer/unblock",
                       "/end_user/block", "/end_user/unblock", "/user/unblock", "/budget/new"],
              Rule.ADMIN, [MANAGEMENT], "customers and budgets")
    + _routes("GET", ["/customer/info", "/end_user/info", "/customer/list", "/end_user/list"], Rule.ADMIN,
              [MANAGEMENT, ADMIN_VIEWER], "customers")
    # ---- spend
    + _routes("GET", ["/spend/logs"], Rule.SPEND,
              [SPEND, KEY_MANAGEMENT, MANAGEMENT, INTERNAL_USER, INTERNAL_USER_VIEW, UI, ADMIN_VIEWER],
              "spend records (own)")
    + _routes("GET", ["/spend/tags", "/spend/keys", "/spend/users"], Rule.SPEND,
              [SPEND, INTERNAL_USER, INTERNAL_USER_VIEW, UI, ADMIN_VIEWER], "spend reports (own)")
    + _routes("POST", ["/spend/calculate"], Rule.SPEND, [SPEND, INTERNAL_USER, INTERNAL_USER_VIEW, ADMIN_VIEWER],
              "cost of a request, without sending it")
    + _routes("GET", ["/global/spend", "/global/spend/logs", "/global/spend/keys", "/global/spend/teams",
                      "/global/spend/end_users", "/global/spend/models"], Rule.ADMIN,
              [GLOBAL_SPEND, UI, ADMIN_VIEWER], "whole-proxy spend")
    + _routes("POST", ["/global/spend/reset"], Rule.MASTER_KEY, [MASTER_ONLY], "reset all spend")
    # ---- audit, docs, metrics
    + _routes("GET", ["/audit", "/audit/{id}"], Rule.ADMIN, [ADMIN_VIEWER], "audit log")
    + _routes("GET", ["/openapi.json", "/docs"], Rule.ADMIN, [], "API docs (admin unless made public)")
    + _routes("GET", ["/metrics"], Rule.ADMIN, [], "Prometheus metrics (admin unless metrics_public)")
)


# ---- patterns ---------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{[^{}/]+\}")
_PATH_PLACEHOLDER = re.compile(r"\{[^{}/]+:path\}")


@dataclass(frozen=True, slots=True)
class RoutePattern:
    """One entry of a route list: an exact path, a ``{placeholder}`` template, or ``/prefix/*``.

    ``/prefix/*`` matches every path *below* ``/prefix`` (LiteLLM's wildcard). With ``prefix_match``
    (per-key and per-team lists, as LiteLLM does there) ``/bria`` also matches ``/bria/anything``.
    """

    text: str
    exact: str | None = None
    prefix: str | None = None
    regex: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, text: str) -> RoutePattern:
        if text.endswith("*"):
            return cls(text, prefix=text[:-1])
        if _PLACEHOLDER.search(text):
            # ``{name}`` is one segment; ``{name:path}`` (werkzeug's converter) one or more
            pieces = re.split(r"(\{[^{}/]+\})", text)
            regex = "".join(".+" if _PATH_PLACEHOLDER.fullmatch(piece) else "[^/]+" if _PLACEHOLDER.fullmatch(piece)
                            else re.escape(piece) for piece in pieces)
            return cls(text, regex=re.compile(f"^{regex}$"))
        return cls(text, exact=text)

    def matches(self, path: str, *, prefix_match: bool = False) -> bool:
        if self.exact is not None:
            if path == self.exact:
                return True
            base = self.exact.rstrip("/")
            return prefix_match and bool(base) and path.startswith(base + "/")  # never "/" → everything
        if self.prefix is not None:
            return path.startswith(self.prefix)
        assert self.regex is not None
        return self.regex.match(path) is not None


@dataclass(frozen=True, slots=True)
class RouteSet:
    """An expanded route list. ``source`` keeps the entries as configured, for error messages."""

    patterns: tuple[RoutePattern, ...]
    source: tuple[str, ...] = ()
    prefix_match: bool = False
    _exact: frozenset[str] = field(default=frozenset(), repr=False)

    @classmethod
    def of(cls, patterns: Iterable[str], *, source: Sequence[str] = (), prefix_match: bool = False) -> RouteSet:
        parsed = tuple(dict.fromkeys(RoutePattern.parse(p) for p in patterns))
        exact = frozenset(p.exact for p in parsed if p.exact is not None)
        return cls(parsed, tuple(source), prefix_match, exact)

    def matches(self, path: str) -> bool:
        if path in self._exact:
            return True
        return any(p.matches(path, prefix_match=self.prefix_match) for p in self.patterns
                   if p.exact is None or self.prefix_match)


# ---- pass-through endpoints and the catalog ---------------------------------------------------

@dataclass(frozen=True, slots=True)
class PassThroughRoute:
    """What the route rules need to know of a ``general_settings.pass_through_endpoints`` entry."""

    path: str
    auth: bool = True
    include_subpath: bool = False
    methods: frozenset[str] = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


class RouteCatalog:
    """The route table plus the configured pass-through endpoints: path → :class:`RouteSpec`.

    Lookup order: exact paths, then ``{placeholder}`` templates, then subpath prefixes (longest
    first). The same path in two rows (different methods) must have the same rule.
    """

    def __init__(self, specs: Iterable[RouteSpec] = ROUTES, pass_through: Iterable[PassThroughRoute] = ()) -> None:
        self.specs: tuple[RouteSpec, ...] = tuple(specs) + tuple(
            RouteSpec(pt.path, frozenset(pt.methods), Rule.LLM_API if pt.auth else Rule.PUBLIC,
                      frozenset({LLM_API}) if pt.auth else frozenset({PUBLIC}),
                      "pass-through endpoint", subpaths=pt.include_subpath)
            for pt in pass_through)
        self._exact: dict[str, RouteSpec] = {}
        self._templates: list[tuple[re.Pattern[str], RouteSpec]] = []
        self._prefixes: list[tuple[str, RouteSpec]] = []
        for spec in self.specs:
            if _PLACEHOLDER.search(spec.path):
                self._templates.append((RoutePattern.parse(spec.path).regex, spec))  # type: ignore[arg-type]
            else:
                known = self._exact.get(spec.path)
                if known is not None and known.rule != spec.rule:
                    raise ValueError(f"route {spec.path} has two rules: {known.rule} and {spec.rule}")
                self._exact.setdefault(spec.path, spec)
            if spec.subpaths:
                self._prefixes.append((spec.path.rstrip("/") + "/", spec))
        self._prefixes.sort(key=lambda item: len(item[0]), reverse=True)

    def lookup(self, path: str) -> RouteSpec | None:
        """The spec covering a normalised path, or ``None`` (unknown: the caller fails closed)."""
        spec = self._exact.get(path)
        if spec is not None:
            return spec
        for regex, template in self._templates:
            if regex.match(path):
                return template
        for prefix, prefixed in self._prefixes:
            if path.startswith(prefix):
                return prefixed
        return None

    def group(self, name: str) -> list[str]:
        """The path patterns of one LiteLLM group (pass-through subpaths as ``/prefix/*``)."""
        paths: list[str] = []
        for spec in self.specs:
            if name in spec.groups:
                paths.append(spec.path)
                if spec.subpaths:
                    paths.append(spec.path.rstrip("/") + "/*")
        return list(dict.fromkeys(paths))


_GROUP_PREFIX = "LiteLLMRoutes."


def expand_route_list(value: object, key_path: str, catalog: RouteCatalog, problems: list[str],
                      warnings: list[str] | None = None, *, prefix_match: bool = False,
                      extra_groups: Mapping[str, Sequence[str]] | None = None) -> RouteSet | None:
    """A configured route list → :class:`RouteSet`; each bad entry is appended to ``problems``.

    Entries: a path (``/spend/calculate``), a template (``/audit/{id}``), a wildcard
    (``/api/*``), or a group name, either ``LiteLLMRoutes.public_routes`` (the form
    ``general_settings`` uses in LiteLLM's docs) or bare ``public_routes`` (the form keys and JWT
    settings use). ``None`` → ``None`` (no list configured).
    """
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        problems.append(f"{key_path}: must be a list of routes, got {type(value).__name__}")
        return None
    patterns: list[str] = []
    for index, entry in enumerate(value):
        where = f"{key_path}[{index}]"
        if not isinstance(entry, str) or not entry.strip():
            problems.append(f"{where}: must be a route such as '/chat/completions' or a group name, got {entry!r}")
            continue
        entry = entry.strip()
        if entry.startswith("/"):
            if "*" in entry[:-1]:
                problems.append(f"{where}: '*' is only allowed at the end of a route ('/api/*'), got {entry!r}")
                continue
            patterns.append(entry)
            continue
        name = entry[len(_GROUP_PREFIX):] if entry.startswith(_GROUP_PREFIX) else entry
        if extra_groups is not None and name in extra_groups:
            patterns.extend(extra_groups[name])
        elif name in GROUPS:
            patterns.extend(catalog.group(name))
        elif name in EMPTY_LITELLM_GROUPS:
            if warnings is not None:
                warnings.append(f"{where}: {entry} names routes trioproxy does not serve; it adds no route")
        else:
            problems.append(f"{where}: {entry!r} is neither a route (it must start with '/') nor a route "
                            f"group; groups: {', '.join(GROUPS)}")
    return RouteSet.of(patterns, source=[str(v) for v in value], prefix_match=prefix_match)
