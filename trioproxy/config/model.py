"""The validated configuration as typed, frozen values; every default is written here, once.

``build.py`` fills these from what the schema (``schema.py``) let through; nothing else in the
proxy reads the YAML's dicts. A setting absent from the config takes the field's default below, so
"what is the default of X" has one answer, and the README's configuration reference prints these.

Frozen: no attribute can be rebound once the config is built (the proxy's parts are built from it
and never see it change). The lists and dicts inside are kept as the tests and handlers know them
(``config.guardrails == []``): treat them as read-only.

``general_settings`` / ``litellm_settings`` / ``router_settings`` stay available as read-only
mappings of the validated YAML for code that takes a mapping by design (the access rules of
``trioproxy/access/``); the proxy's own code reads the typed sections.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..masking import mask_url, url_secrets
from .logging_keys import logging_secrets

if TYPE_CHECKING:
    from ..secret_managers.resolve import Resolution
    from ..upstream.routing import RoutingConfig

__all__ = [
    "CacheSettings",
    "Deployment",
    "GeneralSettings",
    "GuardrailSpec",
    "HttpPoolSettings",
    "LitellmSettings",
    "PassThroughEndpoint",
    "ProxyConfig",
    "RouterSettings",
    "size_limit_bytes",
]

# The defaults of the request bounds (README "Limits and guarantees" says why each).
DEFAULT_MAX_REQUEST_SIZE_MB = 32.0          # the seeds recommend "around 32 MB"
DEFAULT_REQUEST_HEADER_TIMEOUT = 10.0       # seconds for a whole request head
DEFAULT_REQUEST_BODY_TIMEOUT = 30.0         # seconds for a whole request body
DEFAULT_MAX_REQUEST_HEADER_SIZE_KB = 32.0   # request line + header fields, KiB
DEFAULT_MAX_REQUEST_HEADERS = 100           # header fields (Apache's LimitRequestFields)
DEFAULT_MAX_IN_FLIGHT_REQUESTS = 1000       # one worker; = http_pool.max_connections' default
#: seconds a stream may last, per deployment (``litellm_params.max_stream_duration``)
DEFAULT_MAX_STREAM_DURATION = 600.0
#: seconds: a deployment's ``timeout`` when neither it nor ``litellm_settings.request_timeout`` says
DEFAULT_REQUEST_TIMEOUT = 600.0
#: where an ``openai/…`` deployment without ``api_base`` is sent
DEFAULT_OPENAI_API_BASE = "https://api.openai.com/v1"
#: seconds a built-in moderation service (LLM Guard, Llama Guard, Google) may take when its own
#: ``*_timeout`` is not set (never more than half of ``hook_timeout_seconds``)
DEFAULT_MODERATION_TIMEOUT = 10.0
#: seconds a database call waits for a connection (PostgreSQL pool) or a lock (SQLite) before the
#: store counts as unavailable (503): short, because a key-cache miss waits on it in a request
DEFAULT_DATABASE_CONNECTION_TIMEOUT = 10.0
#: seconds a pass-through endpoint's target may pause (``general_settings.pass_through_request_timeout``,
#: LiteLLM's name and default)
DEFAULT_PASS_THROUGH_TIMEOUT = 600.0


def size_limit_bytes(megabytes: float | None) -> int | None:
    """``max_request_size_mb`` / ``max_response_size_mb`` in bytes: the one conversion.

    MiB (1024 × 1024 bytes), as LiteLLM counts. ``None`` means no limit. A body is over the limit
    when it is *larger* than this, so ``0`` (or the seeds' ``0.000000001``) refuses every non-empty
    body, as in LiteLLM, rather than lifting the limit.
    """
    if megabytes is None:
        return None
    return int(megabytes * 1024 * 1024)


# ---------------------------------------------------------------------------------------------
# Sections (field names are the YAML's keys)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpPoolSettings:
    """``general_settings.http_pool``: the upstream connection pool, whichever transport."""

    max_connections: int = 1000
    max_keepalive_connections: int = 200
    keepalive_expiry: float = 60.0
    connect_timeout: float = 10.0


@dataclass(frozen=True, slots=True, repr=False)
class PassThroughEndpoint:
    """One ``general_settings.pass_through_endpoints`` entry (``config/pass_through.py`` checks it)."""

    path: str                       # literal, normalised: what requests are matched against
    target: str                     # the URL requests are forwarded to (fixed here, never by the request)
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # may hold credentials
    forward_headers: bool = False   # also send the client's own headers (never its trioproxy key)
    auth: bool = True               # require a trioproxy key (LiteLLM's current default)
    include_subpath: bool = False   # /path/x/y → <target>/x/y
    methods: tuple[str, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE")
    default_query_params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    timeout: float = DEFAULT_PASS_THROUGH_TIMEOUT   # seconds the target may pause (connect: http_pool)
    cost_per_request: float = 0.0   # USD per call, the request's cost (spend tracking reads it)
    #: the credentials among the header values (for the scrubber)
    secret_values: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # headers hold the target's credentials and the target its host: reprs end up in log lines
        return f"PassThroughEndpoint(path={self.path!r}, auth={self.auth}, methods={self.methods!r})"


@dataclass(frozen=True, slots=True)
class GeneralSettings:
    """``general_settings``."""

    master_key: str | None = None
    hook_timeout_seconds: float = 30.0
    graceful_shutdown_timeout: float = 30.0
    max_request_size_mb: float = DEFAULT_MAX_REQUEST_SIZE_MB
    max_response_size_mb: float | None = None
    request_header_timeout: float = DEFAULT_REQUEST_HEADER_TIMEOUT
    request_body_timeout: float = DEFAULT_REQUEST_BODY_TIMEOUT
    max_request_header_size_kb: float = DEFAULT_MAX_REQUEST_HEADER_SIZE_KB
    max_request_headers: int = DEFAULT_MAX_REQUEST_HEADERS
    max_in_flight_requests: int = DEFAULT_MAX_IN_FLIGHT_REQUESTS
    enforce_user_param: bool = False
    enforced_params: tuple[str, ...] = ()
    block_robots: bool = False
    callback_timeout_seconds: float = 10.0
    callback_error_log_interval: float = 60.0
    logging_queue_size: int = 2_000
    metrics_public: bool = False
    http_pool: HttpPoolSettings = HttpPoolSettings()
    http_client: str = "builtin"            # "builtin" (the lean HTTP/1.1 pool) or "httpx"
    # the store (docs/keys.md): virtual keys, teams, users, customers, audit
    #: ``sqlite:///…`` (absolute once built: a relative path is relative to the config file) or
    #: ``postgresql://…``; absent from the config: ``$DATABASE_URL``; neither: no database
    database_url: str | None = None
    database_connection_pool_limit: int = 4     # PostgreSQL connections (and worker threads) per process
    database_connection_timeout: float = DEFAULT_DATABASE_CONNECTION_TIMEOUT
    user_api_key_cache_ttl: float = 60.0        # seconds a cached key may be stale (changes by other processes)
    # spend records (docs/spend.md)
    #: LiteLLM's seconds between spend flushes: can only lower the writer's 0.2 s (never above 1 s)
    proxy_batch_write_at: float | None = None
    #: LiteLLM's: keep serving (keys already cached) while the database is down, instead of 503
    allow_requests_on_db_unavailable: bool = False
    #: accepted; rows are still written (they make spend exactly-once and hold no prompt: docs/spend.md)
    disable_spend_logs: bool = False
    #: the durable outbox (relative: to the config file); default next to a SQLite file, else .trioproxy/
    spend_outbox_dir: str | None = None
    #: output tokens reserved for a request that names no max_tokens
    spend_default_max_tokens: int = 4096
    pass_through_endpoints: tuple[PassThroughEndpoint, ...] = ()
    pass_through_request_timeout: float = DEFAULT_PASS_THROUGH_TIMEOUT


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """``litellm_settings.cache`` (on/off) and ``cache_params``."""

    enabled: bool = False
    #: ``local`` (in this process), ``disk`` (a directory: this machine's processes, kept across
    #: restarts) or ``redis`` (shared by every process and instance)
    type: str = "local"
    ttl: float = 600.0
    max_size: int = 1000
    namespace: str = ""
    #: as written in the config; ``caching/response_cache.py`` maps them to call types
    supported_call_types: tuple[str, ...] = ("completion", "text_completion", "embeddings")
    #: ``type: redis``: the server, built by ``config/build.py`` from ``cache_params``' ``url`` or
    #: ``host``/``port``/``username``/``password``/``ssl``, else ``$REDIS_URL`` / ``$REDIS_HOST``…
    #: (LiteLLM's fallbacks). Holds the password: never logged (``ProxyConfig.secrets``).
    redis_url: str | None = None
    #: LiteLLM's ``cache_params.mode``: ``default_on`` (every request of the supported call types)
    #: or ``default_off`` (only requests whose ``cache`` object has ``"use-cache": true``)
    mode: str = "default_on"
    #: ``type: disk``: the directory (``~`` expanded, relative to the config file's directory);
    #: LiteLLM's default ``.litellm_cache``. Made absolute by ``config/build.py``.
    disk_cache_dir: str = ".litellm_cache"

    def __repr__(self) -> str:
        return (f"CacheSettings(enabled={self.enabled}, type={self.type!r}, ttl={self.ttl}, "
                f"namespace={self.namespace!r}, mode={self.mode!r})")


@dataclass(frozen=True, slots=True)
class LitellmSettings:
    """``litellm_settings``."""

    callbacks: tuple[str, ...] = ()
    input_callback: tuple[str, ...] = ()
    success_callback: tuple[str, ...] = ()
    failure_callback: tuple[str, ...] = ()
    num_retries: int = 2
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    cache: CacheSettings = CacheSettings()
    # built-in policies: a list, or the path of a .txt file (policies/lists.py)
    banned_keywords_list: str | tuple[str, ...] | None = None
    blocked_user_list: str | tuple[str, ...] | None = None
    llm_guard_mode: str = "all"
    llm_guard_fail_mode: str = "closed"
    llm_guard_timeout: float | None = None
    llamaguard_model_name: str | None = None
    llamaguard_unsafe_content_categories: str | None = None
    llamaguard_fail_open: bool = False
    llamaguard_timeout: float | None = None
    google_moderation_confidence_threshold: float | None = None
    google_moderation_fail_open: bool = False
    google_moderation_timeout: float | None = None
    #: ``<category>_confidence_threshold`` / ``<category>_threshold`` keys as written (moderation_keys.py)
    google_thresholds: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    #: one audit record per change of a key, team, user or customer (docs/keys.md)
    store_audit_logs: bool = False
    # budgets (docs/spend.md): the whole proxy's, USD, and its window; customers' default
    max_budget: float | None = None
    budget_duration: str | None = None
    max_end_user_budget: float | None = None
    budget_exceeded_status_code: int = 429
    #: LiteLLM's budget sweep: accepted so its configs load, no effect (budgets reset on time here)
    proxy_budget_rescheduler_min_time: float | None = None
    proxy_budget_rescheduler_max_time: float | None = None
    #: model groups listed by the public model hub (``GET /public/model_hub``, no key needed)
    public_model_groups: tuple[str, ...] = ()
    # accepted for compatibility, not used
    drop_params: bool = False
    set_verbose: bool = False
    json_logs: bool = False


@dataclass(frozen=True, slots=True)
class RouterSettings:
    """``router_settings``: its ``num_retries`` and ``timeout`` override ``litellm_settings``'."""

    num_retries: int | None = None
    timeout: float | None = None
    routing_strategy: str = "simple-shuffle"


# ---------------------------------------------------------------------------------------------
# Models and guardrails
# ---------------------------------------------------------------------------------------------


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, repr=False)
class Deployment:
    """One upstream behind a public model name."""

    model_name: str                 # what clients ask for
    provider: str                   # "openai" | "fake"
    upstream_model: str             # the name sent upstream
    api_base: str | None            # may hold credentials (user:pass@): show safe_api_base instead
    api_key: str | None
    timeout: float
    stream_timeout: float
    max_retries: int | None
    weight: float
    extra_params: dict[str, Any]    # body defaults: OpenAI request parameters and extra_body (deployment_params.py)
    extra_headers: dict[str, str]   # may carry keys (api-key, Authorization): see secrets()
    input_cost_per_token: float | None
    output_cost_per_token: float | None
    fake: dict[str, Any]            # the fake provider's knobs
    model_info: dict[str, Any]
    index: int                      # position in model_list, for messages
    #: values of credential-like settings trioproxy ignores (``aws_secret_access_key``…): never
    #: sent anywhere, known to the scrubber all the same
    secret_settings: tuple[str, ...] = ()
    max_stream_duration: float = DEFAULT_MAX_STREAM_DURATION  # seconds (then: stream_duration_exceeded)
    #: a native provider's settings from ``litellm_params`` (``api_version``, ``aws_region_name``,
    #: ``vertex_credentials``, ``drop_params``…: ``providers.py``), never sent in a body; may hold
    #: credentials (they are in ``secret_settings`` too)
    provider_params: Mapping[str, Any] = field(default_factory=_empty)
    #: ``litellm_params`` key → the variable its value was read from (``api_key`` →
    #: ``OPENAI_API_KEY`` for ``os.environ/OPENAI_API_KEY``): what a refreshed secret replaces
    secret_refs: Mapping[str, str] = field(default_factory=_empty)
    #: ``litellm_params.model`` as written ("" for a deployment built by hand): a wildcard's pattern
    #: (``model: "*"`` passes the request's provider, ``openai/*`` does not)
    litellm_model: str = ""
    #: ``litellm_params.guardrails``: guardrails every request to this model runs (as if named)
    guardrails: tuple[str, ...] = ()
    #: ``/v1/responses`` is forwarded untranslated to ``{api_base}/responses`` (``responses_api.responses_route``,
    #: decided at startup; docs/responses_api.md "Native or translated")
    responses_native: bool = False
    #: which rule decided :attr:`responses_native` (for ``trioproxy check`` and the debug log)
    responses_route_reason: str = ""

    def __repr__(self) -> str:
        # no api_key, no extra_headers, no api_base credentials: reprs end up in log lines
        return f"Deployment(model_name={self.model_name!r}, {self.label}, index={self.index})"

    @property
    def safe_api_base(self) -> str | None:
        """``api_base`` as operators see it: ``user:password@`` → ``***@``, query values masked."""
        return mask_url(self.api_base)

    @property
    def label(self) -> str:
        """For operators (logs, ``trioproxy check``): provider, model and the masked ``api_base``."""
        base = f" at {self.safe_api_base}" if self.api_base else ""
        return f"{self.provider}/{self.upstream_model}{base}"

    @property
    def public_label(self) -> str:
        """For clients (error messages): provider and model, never the ``api_base`` or its host."""
        return f"{self.provider}/{self.upstream_model}"

    def url(self, endpoint: str) -> str:
        """``api_base`` + ``/endpoint``, keeping a query (``…/v1?key=…`` → ``…/v1/chat/completions?key=…``)."""
        base = self.api_base or ""
        if "?" not in base:
            return f"{base}/{endpoint}"
        path, _, query = base.partition("?")
        return f"{path.rstrip('/')}/{endpoint}?{query}"


#: extra_headers (and guardrail params) whose values are credentials (``api-key``, ``Authorization``, ``x-goog-api-key``…)
_SECRET_HEADER = re.compile(r"(auth|authorization|key|token|secret|password|passwd|cookie)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class GuardrailSpec:
    name: str
    class_path: str
    modes: list[str]
    default_on: bool
    stream_mode: str
    params: dict[str, Any] = field(repr=False)   # a guardrail's own settings may hold its api_key
    #: LiteLLM's mode chosen by request tag (``mode: {tags: …, default: …}``): request tag → modes, and
    #: the modes of a request no tag matches; empty for a plain mode (``modes`` is then all of them)
    tag_modes: dict[str, list[str]] = field(default_factory=dict)
    default_modes: list[str] = field(default_factory=list)

    def modes_for(self, tags: Collection[str]) -> list[str]:
        """The modes this guardrail runs in for a request with ``tags`` (the first tag of the config
        that the request carries, else ``default``)."""
        if not self.tag_modes:
            return self.modes
        for tag, modes in self.tag_modes.items():
            if tag in tags:
                return modes
        return self.default_modes


@dataclass(frozen=True, repr=False)
class ProxyConfig:
    source: str                          # file path or "<embedded defaults>"
    base_dir: Path                       # handler modules are looked up here first
    deployments: list[Deployment]
    model_groups: dict[str, list[Deployment]]
    guardrails: list[GuardrailSpec]
    general: GeneralSettings = GeneralSettings()
    litellm: LitellmSettings = LitellmSettings()
    routing: RouterSettings = RouterSettings()
    warnings: list[str] = field(default_factory=list)
    #: LiteLLM keys accepted because they have no effect in trioproxy (``trioproxy check`` prints them)
    notes: list[str] = field(default_factory=list)
    #: the validated YAML sections, read-only (see the module docstring)
    general_settings: Mapping[str, Any] = field(default_factory=_empty)
    litellm_settings: Mapping[str, Any] = field(default_factory=_empty)
    router_settings: Mapping[str, Any] = field(default_factory=_empty)
    #: the top-level ``callback_settings`` (per logging integration: ``otel: {message_logging: false}``)
    callback_settings: Mapping[str, Any] = field(default_factory=_empty)
    #: the routing rules (``upstream/routing``: aliases, wildcards, strategies, cooldowns, fallbacks,
    #: each deployment's routing view); None for a config built by hand (the router then uses defaults)
    routing_rules: RoutingConfig | None = None
    #: what startup read through ``general_settings.key_management_system`` (None without one): the
    #: values for the scrubber, and the resolver and names the refresh service starts from
    secret_resolution: Resolution | None = field(default=None, repr=False)
    #: other values that are secrets wherever they end up (``USE_AWS_KMS``-decrypted variables)
    managed_secrets: tuple[str, ...] = field(default=(), repr=False)

    def __repr__(self) -> str:
        # the settings hold the master key (and guardrails their own keys): never in a repr
        return f"ProxyConfig(source={self.source!r}, models={list(self.model_groups)!r})"

    # -- values derived from more than one key, or converted (one place each) ----------------------
    @property
    def master_key(self) -> str | None:
        return self.general.master_key

    @property
    def num_retries(self) -> int:
        override = self.routing.num_retries
        return override if override is not None else self.litellm.num_retries

    @property
    def request_timeout(self) -> float:
        return self.routing.timeout or self.litellm.request_timeout

    @property
    def hook_timeout(self) -> float:
        return self.general.hook_timeout_seconds

    @property
    def graceful_shutdown_timeout(self) -> float:
        return self.general.graceful_shutdown_timeout

    @property
    def max_request_bytes(self) -> int:
        limit = size_limit_bytes(self.general.max_request_size_mb)
        assert limit is not None
        return limit

    @property
    def max_response_bytes(self) -> int | None:
        return size_limit_bytes(self.general.max_response_size_mb)

    @property
    def request_header_timeout(self) -> float:
        return self.general.request_header_timeout

    @property
    def request_body_timeout(self) -> float:
        return self.general.request_body_timeout

    @property
    def max_request_header_bytes(self) -> int:
        return int(self.general.max_request_header_size_kb * 1024)

    @property
    def max_request_headers(self) -> int:
        return self.general.max_request_headers

    @property
    def max_in_flight_requests(self) -> int:
        return self.general.max_in_flight_requests

    def moderation_timeout(self, value: float | None) -> float:
        """A built-in moderation service's time limit: its ``*_timeout``, else
        ``min(DEFAULT_MODERATION_TIMEOUT, hook_timeout / 2)`` (the caller checks it is below the hook timeout)."""
        if value is None:
            return min(DEFAULT_MODERATION_TIMEOUT, self.hook_timeout / 2)
        return float(value)

    @property
    def database_url(self) -> str | None:
        return self.general.database_url

    def secrets(self) -> list[str]:
        """Every secret this config holds, for the scrubber."""
        out = [self.master_key] if self.master_key else []
        out += url_secrets(self.general.database_url)
        out += url_secrets(self.litellm.cache.redis_url)
        for d in self.deployments:
            if d.api_key:
                out.append(d.api_key)
            out += url_secrets(d.api_base)
            out += d.secret_settings
            for name, value in d.extra_headers.items():
                if value and _SECRET_HEADER.search(name):
                    out.append(value)
                    scheme, space, token = value.partition(" ")
                    if space and scheme.lower() in ("bearer", "basic", "token"):
                        out.append(token.strip())
        for endpoint in self.general.pass_through_endpoints:
            out += endpoint.secret_values
            out += url_secrets(endpoint.target)
        for g in self.guardrails:
            for name, value in g.params.items():
                if isinstance(value, str) and value and _SECRET_HEADER.search(str(name)):
                    out.append(value)
        safety = self.litellm_settings.get("azure_content_safety_params")   # the azure_content_safety callback's key
        if isinstance(safety, Mapping) and isinstance(safety.get("key"), str) and safety["key"]:
            out.append(safety["key"])
        out += self._redis_secrets()
        out += logging_secrets(self.litellm_settings, self.general_settings)
        # read from a secret manager or decrypted with KMS, wherever in the config they went
        if self.secret_resolution is not None:
            out += self.secret_resolution.managed_values()
        out += self.managed_secrets
        return out

    def _redis_secrets(self) -> list[str]:
        """The shared-state Redis's credentials, wherever they were configured (docs/deploy.md)."""
        out: list[str] = []
        coordination = self.general_settings.get("coordination_redis")
        cache = self.litellm_settings.get("cache_params")
        for where in (coordination, self.router_settings, cache):
            if isinstance(where, str):
                out += url_secrets(where)
            elif isinstance(where, Mapping):
                for name in ("password", "redis_password"):
                    if isinstance(where.get(name), str) and where[name]:
                        out.append(where[name])
                for name in ("url", "redis_url"):
                    if isinstance(where.get(name), str):
                        out += url_secrets(where[name])
        return out

