"""The composition root: one config in, every part of the proxy built and wired, in one place.

:func:`build_proxy` constructs each process-lifetime service and passes what it needs through its
constructor, in dependency order (read the function top to bottom: that *is* the wiring). The
result is a :class:`Proxy`: the typed container :class:`Services` plus the lifetime of the services
that run (:meth:`Proxy.start` in the app's nursery, :meth:`Proxy.stop` at shutdown). Nothing is
patched onto an object after it was built, nobody looks services up in a dict, and the HTTP layer
(``http/app.py``) only starts and stops what it is handed.

A **service** is anything with ``async run(*, task_status)`` (started with ``nursery.start``, for the
app's lifetime) and ``async drain(timeout)`` (at shutdown, before the connection pools close). Each
is checked here when the proxy is built: one that lacks either is a startup error, never a silent
skip. Today: the store (when a database is configured: migrations applied, then the backend
opened, before anything is served); with it the limiter (embedded: ``InProcessLimiter``; with
Redis the shared one), the spend writer (its outbox replayed before serving) and the budget reset
service (``docs/spend.md``); the logging sink, a shared response cache, handlers that are services
(``hooks/assembly.py``), the secret refresh (with ``general_settings.key_management_system``), and
the stream stopper of a ``--workers`` worker. They start in that order and are drained in the
reverse one (the store last: what writes to it drains first, the spend writer just before it). A new
service is a field in :class:`Services` and a line in :func:`build_proxy`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import trio

from .access import (
    AccessConfigError,
    IPPolicy,
    JWTAuthenticator,
    JWTAuthSettings,
    PassThroughRoute,
    RouteCatalog,
    RouteRules,
    http_fetcher,
)
from .access.auth_failures import FailedAuthLimiter
from .admin import AdminContext
from .admin.custom_key_hooks import CustomKeyHook, CustomKeyHooks, is_async_function
from .admin.key_generation import KeyGenerationPolicy, KeyGenerationSettingsError
from .admin.team_metadata import TeamMetadataValidator
from .auth import Authenticator
from .auth.custom_auth import CustomAuth, check_function, custom_auth_settings
from .caching.dual_cache import DualCache
from .caching.response_cache import ResponseCache, build_response_cache
from .config import ConfigError, ProxyConfig
from .config.live import LiveSecrets
from .coordination import (
    DEFAULT_IDLE_EVICT,
    DEFAULT_MAX_RESERVATION_AGE,
    InProcessLimiter,
    Limiter,
)
from .coordination.settings import RedisSettings, redis_settings_from
from .coordination.settings import describe as describe_redis
from .coordination.shared import SharedState, open_shared_state
from .core.budget_spend import RoutingBudgetObserver
from .core.pipeline import Pipeline
from .core.run import Observers
from .core.shutdown import StreamStopper
from .errors import ProxyError
from .hooks.assembly import Handlers, assemble, service_problem
from .hooks.loader import HandlerLoadError, import_object
from .http.app import ProxyApp, make_app
from .http.asgi import ProxyASGI
from .http.gate import AccessGate
from .http.jwt_credentials import JWTCredentials
from .http.passthrough import PassThroughRouter
from .masking import SecretScrubber
from .observability.callbacks import Callback, load_callbacks
from .observability.cost import CostCalculator
from .observability.metrics import Metrics
from .observability.observer import REQUEST_LOGGER, RequestObserver
from .observability.prices import Price
from .observability.sink import LoggingSink
from .policies.builtins import BuiltinResources, Builtins
from .policies.guardrails.logging_only import logging_hooks
from .secret_managers.refresh import SecretRefresher
from .spend import SpendWriter, default_outbox_dir, flush_interval_for
from .spend.admission import AdmissionSettings, Admitter
from .spend.endpoints import SpendContext
from .spend.meter import SpendMeter, key_spend_forgetter
from .spend.proxy_budget import ProxyBudgetAnchorService
from .spend.resets import BudgetResetService
from .store import InvalidationBus, InvalidDatabaseURL, Store
from .store.custom_auth_records import record_for_custom_auth
from .store.durations import InvalidDuration, parse_duration
from .store.jwt_records import JWTRecords
from .store.key_cache import BlockedKeyError, ExpiredKeyError
from .store.money import to_micros
from .upstream.base import Provider
from .upstream.fake import FakeProvider, MockingProvider
from .upstream.http11 import Http11Pool, Http11Provider
from .upstream.httpx_provider import OpenAICompatProvider, make_http_client
from .upstream.providers.adapter import ProviderConfigError
from .upstream.providers.provider import AdapterProvider
from .upstream.router import Router

__all__ = ["Proxy", "Service", "Services", "build_access", "build_proxy", "check_handlers", "check_providers",
           "check_startup", "config_problems", "create_app", "create_asgi", "load_handlers"]

log = logging.getLogger("trioproxy.app")


class Service(Protocol):
    """Runs for the app's lifetime; drained at shutdown (see the module docstring)."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None: ...

    async def drain(self, timeout: float) -> None: ...  # noqa: ASYNC109 - a budget, not a scope


@dataclass(frozen=True, eq=False)
class Services:
    """Everything one proxy process holds for its lifetime, built once by :func:`build_proxy`."""

    config: ProxyConfig
    scrubber: SecretScrubber
    authenticator: Authenticator
    #: the ``cache`` every pre-call hook receives
    dual_cache: DualCache
    #: the pooled httpx client (built-ins' calls to LLM Guard and Google; the ``httpx`` transport)
    http_client: httpx.AsyncClient
    #: the built-in HTTP/1.1 pool: behind the ``openai`` provider (unless ``http_client: httpx``) and
    #: every native provider adapter
    upstream_pool: Http11Pool | None
    #: provider name → provider (the router's; a dict so tests can stand one in): ``openai``, ``fake``,
    #: and every prefix of ``upstream/providers/registry.py`` mapped to the one :class:`AdapterProvider`
    providers: dict[str, Provider]
    router: Router
    #: the current values of ``os.environ/`` references (refreshed secrets reach deployments here)
    live_secrets: LiveSecrets
    builtins: Builtins
    handlers: Handlers
    cost: CostCalculator
    metrics: Metrics
    logging_sink: LoggingSink
    response_cache: ResponseCache | None
    pipeline: Pipeline
    #: path normalisation, caller address, ``allowed_ips`` and route decisions (``http/gate.py``)
    access: AccessGate
    #: ``general_settings.pass_through_endpoints`` (None when none is configured)
    pass_through: PassThroughRouter | None
    #: what the management routes operate on (``admin/``: the store, or none)
    admin: AdminContext = field(default_factory=lambda: AdminContext(None))
    #: keys, teams, users, customers, audit (``store/``); None without a database
    store: Store | None = None
    #: the Redis client, bus and limiter every process shares (docs/deploy.md); None: embedded mode
    shared: SharedState | None = None
    #: budgets, rate limits and spend records (docs/spend.md); each None without a database.
    #: The limiter is embedded (``InProcessLimiter``), or the shared ``RedisLimiter`` with Redis.
    limiter: Limiter | None = None
    spend_writer: SpendWriter | None = None
    budget_resets: BudgetResetService | None = None
    spend_meter: SpendMeter | None = None
    #: ends open streams at shutdown in a ``--workers`` worker (None in the single-process server)
    stream_stopper: StreamStopper | None = None
    #: reads the secret manager again every ``refresh_interval`` (None without a secret manager)
    secret_refresher: SecretRefresher | None = None
    #: what runs for the app's lifetime, in start order (checked by :func:`build_proxy`)
    lifetime: tuple[Service, ...] = field(default=())


class Proxy:
    """The built proxy: its :class:`Services`, and their lifetime."""

    def __init__(self, services: Services) -> None:
        self.services = services
        #: the services run (between :meth:`start` and :meth:`stop`): what readiness reports
        self.started = False

    async def start(self, nursery: trio.Nursery) -> None:
        """Start every service in ``nursery`` (the app's), in order, each until it says it started."""
        for service in self.services.lifetime:
            await nursery.start(service.run)
        self.started = True

    def stop_streams(self) -> int:
        """Graceful shutdown is about to cut open streams: end each with a ``shutdown`` error event."""
        return self.services.pipeline.stop_streams()

    async def stop(self) -> None:
        """Drain every service, last started first (each within ``graceful_shutdown_timeout``),
        then close the pools."""
        services = self.services
        with trio.CancelScope(shield=True):
            for service in reversed(services.lifetime):
                try:
                    await service.drain(services.config.graceful_shutdown_timeout)
                except Exception as exc:
                    log.error("stopping %r failed", service, exc_info=exc)
            if services.upstream_pool is not None:
                await services.upstream_pool.aclose()
            await services.http_client.aclose()
        self.started = False


def load_handlers(config: ProxyConfig, resources: BuiltinResources | None = None) -> Handlers:
    """Import, instantiate and check every handler the config names (``trioproxy check`` does only
    this, without resources). Raises ConfigError."""
    return assemble(config, Builtins(config, resources))


def build_access(config: ProxyConfig) -> tuple[IPPolicy, RouteRules]:
    """The access settings (``allowed_ips``, ``use_x_forwarded_for``, ``trusted_proxy_ranges``, the
    route lists, the pass-through paths), checked by ``trioproxy/access``. Raises ConfigError with
    every problem (``trioproxy check`` calls this too)."""
    general = config.general_settings
    problems: list[str] = []
    endpoints = config.general.pass_through_endpoints
    built_in = RouteCatalog()
    routes: list[PassThroughRoute] = []
    for index, endpoint in enumerate(endpoints):
        where = f"general_settings.pass_through_endpoints[{index}].path"
        shadowed = [spec.path for spec in built_in.specs if spec.path.startswith(endpoint.path + "/")]
        if built_in.lookup(endpoint.path) is not None:
            problems.append(f"{where}: {endpoint.path} is a route of the proxy itself; choose another path")
        elif endpoint.include_subpath and shadowed:
            problems.append(f"{where}: with include_subpath, {endpoint.path} would cover routes of the proxy "
                            f"itself ({', '.join(shadowed[:3])}); choose another path")
        else:
            routes.append(PassThroughRoute(endpoint.path, endpoint.auth, endpoint.include_subpath,
                                           frozenset(endpoint.methods)))
    ip_policy: IPPolicy | None = None
    rules: RouteRules | None = None
    try:
        ip_policy = IPPolicy.from_settings(general)
    except AccessConfigError as exc:
        problems += exc.problems
    try:
        rules = RouteRules.from_settings(general, routes)
    except AccessConfigError as exc:
        problems += exc.problems
    try:
        jwt_settings = JWTAuthSettings.from_config(general, os.environ)
        if jwt_settings is not None and rules is not None:
            jwt_settings.route_grants(rules)   # the admin/team/public route lists name real routes
    except AccessConfigError as exc:
        problems += exc.problems
    if problems or ip_policy is None or rules is None:
        raise ConfigError([f"{config.source}: {problem}" for problem in problems])
    for warning in rules.warnings:
        log.warning("%s: %s", config.source, warning)
    return ip_policy, rules


def load_custom_auth(config: ProxyConfig) -> CustomAuth | None:
    """``general_settings.custom_auth`` (``module.function``, looked up next to the config first, like
    handlers) with its ``custom_auth_settings``; ``None`` when absent or ``mode: off``. Raises
    ConfigError naming the problem (``trioproxy check`` calls this too)."""
    general = config.general_settings
    dotted = general.get("custom_auth")
    if not dotted:
        return None
    settings = custom_auth_settings(general)
    try:
        function = import_object(str(dotted), config.base_dir, instantiate=False)
    except HandlerLoadError as exc:
        raise ConfigError([f"{config.source}: general_settings.custom_auth: {exc}"]) from None
    why = check_function(function, str(dotted))
    if why is not None:
        raise ConfigError([f"{config.source}: {why}"])
    if settings.mode == "off":
        log.info("general_settings.custom_auth %s is off (custom_auth_settings.mode: off)", dotted)
        return None
    return CustomAuth(function, str(dotted), settings, record_for_custom_auth)


def load_key_generation(config: ProxyConfig) -> KeyGenerationPolicy | None:
    """``litellm_settings``' ``default_key_generate_params``, ``upperbound_key_generate_params`` and
    ``key_generation_settings`` (``admin/key_generation.py``), or None. Raises ConfigError."""
    try:
        return KeyGenerationPolicy.from_settings(config.litellm_settings)
    except KeyGenerationSettingsError as exc:
        raise ConfigError([f"{config.source}: {problem}" for problem in exc.problems]) from None


def load_team_metadata_validator(config: ProxyConfig) -> TeamMetadataValidator | None:
    """``general_settings.custom_team_metadata_validate`` (``admin/team_metadata.py``), or None."""
    general = config.general_settings
    dotted = general.get("custom_team_metadata_validate")
    if not dotted:
        return None
    try:
        function = import_object(str(dotted), config.base_dir, instantiate=False)
    except HandlerLoadError as exc:
        raise ConfigError([f"{config.source}: general_settings.custom_team_metadata_validate: {exc}"]) from None
    try:
        return TeamMetadataValidator.from_settings(function, str(dotted), general)
    except ValueError as exc:
        raise ConfigError([f"{config.source}: general_settings.custom_team_metadata_validate: {exc}"]) from None


def load_custom_key_hooks(config: ProxyConfig) -> CustomKeyHooks | None:
    """``general_settings.custom_key_generate`` / ``custom_key_update`` (``admin/custom_key_hooks.py``),
    or None. Raises ConfigError naming every problem."""
    general = config.general_settings
    timeout = float(general.get("custom_key_generate_timeout") or 10.0)
    hooks: dict[str, CustomKeyHook] = {}
    problems: list[str] = []
    for setting in ("custom_key_generate", "custom_key_update"):
        dotted = general.get(setting)
        if not dotted:
            continue
        try:
            function = import_object(str(dotted), config.base_dir, instantiate=False)
        except HandlerLoadError as exc:
            problems.append(f"{config.source}: general_settings.{setting}: {exc}")
            continue
        if not is_async_function(function):
            problems.append(f"{config.source}: general_settings.{setting}: {dotted} must be an async function "
                            "(async def fn(data) -> {'decision': bool, 'message': str}), as in LiteLLM")
            continue
        hooks[setting] = CustomKeyHook(function, str(dotted), setting, timeout)
    if problems:
        raise ConfigError(problems)
    if not hooks:
        return None
    return CustomKeyHooks(generate=hooks.get("custom_key_generate"), update=hooks.get("custom_key_update"))


def check_handlers(config: ProxyConfig, builtins: Builtins | None = None) -> tuple[Handlers, list[Callback]]:
    """The handlers and the logging callbacks, with every problem of both in one ConfigError.

    The callbacks of the handlers that did load are checked even when others did not (issue #15:
    every problem of a config in one run). ``builtins``: the proxy's (with their resources); by
    default, made without resources (``trioproxy check``).
    """
    problems: list[str] = []
    try:
        handlers = assemble(config, builtins or Builtins(config))
    except ConfigError as exc:
        if exc.partial is None:
            raise
        problems += exc.problems
        handlers = exc.partial
    try:
        callbacks = load_callbacks(config, handlers.loggers)
    except ConfigError as exc:
        problems += exc.problems
        callbacks = []
    if problems:
        raise ConfigError(problems)
    return handlers, callbacks


def config_problems(error: ConfigError) -> list[str]:
    """A config's problems and, when the valid part of it could be built (``error.partial``), the
    problems of its handlers and logging callbacks too: what ``trioproxy check`` and ``run`` print."""
    partial = error.partial
    if not isinstance(partial, ProxyConfig):
        return list(error.problems)
    try:
        check_startup(partial)
    except ConfigError as more:
        return list(error.problems) + [p for p in more.problems if p not in error.problems]
    return list(error.problems)


def check_startup(config: ProxyConfig) -> tuple[Handlers, list[Callback]]:
    """Everything ``run`` builds from a config before serving, checked without serving: the native
    providers' deployment settings, the handlers, the logging callbacks and the access settings, with
    every problem of all four in one ConfigError
    (what ``trioproxy check`` and ``run --workers N``'s supervisor call)."""
    problems: list[str] = []
    handlers: Handlers | None = None
    callbacks: list[Callback] = []
    try:
        check_providers(config)
    except ConfigError as exc:
        problems += exc.problems
    try:
        handlers, callbacks = check_handlers(config)
    except ConfigError as exc:
        problems += exc.problems
    try:
        build_access(config)
    except ConfigError as exc:
        problems += exc.problems
    for load in (load_custom_auth, load_key_generation, load_team_metadata_validator, load_custom_key_hooks):
        try:
            load(config)   # type: ignore[operator]
        except ConfigError as exc:
            problems += exc.problems
    if problems or handlers is None:
        raise ConfigError(problems)
    return handlers, callbacks


def _check_services(config: ProxyConfig, services: list[Any]) -> tuple[Any, ...]:
    problems = []
    for service in services:
        problem = service_problem(service)
        if problem is not None:
            problems.append(f"{config.source}: service {type(service).__name__} {problem}")
    if problems:
        raise ConfigError(problems)
    return tuple(services)


def check_providers(config: ProxyConfig, adapters: AdapterProvider | None = None) -> None:
    """Every native provider's deployment settings checked now (``AdapterProvider.prepare``: pure,
    no I/O), so that a bad one stops startup (and ``trioproxy check``) naming its key path, with every
    problem at once. Raises ConfigError."""
    if adapters is None:    # trioproxy check: nothing is served, nothing is sent
        adapters = AdapterProvider(Http11Pool(), SecretScrubber(config.secrets()))
    problems = []
    prefixes = set(adapters.prefixes)
    for deployment in config.deployments:
        if deployment.provider not in prefixes:
            continue
        try:
            adapters.prepare(deployment)
        except ProviderConfigError as exc:
            path = f"model_list[{deployment.index}].litellm_params"
            problems += [f"{config.source}: {path}: {problem}" for problem in exc.problems]
    if problems:
        raise ConfigError(problems)


def _secret_refresher(config: ProxyConfig, scrubber: SecretScrubber, live: LiveSecrets) -> SecretRefresher | None:
    """The refresh service when a secret manager is read (docs/secrets.md): each changed value is
    known to the scrubber first (the old one stays known), then to the deployments that refer to it."""
    resolution = config.secret_resolution
    if resolution is None or not resolution.values:
        return None

    def changed(name: str, value: str) -> None:
        if resolution.sources.get(name) != "environment":
            scrubber.add(value)
        live.update(name, value)

    return SecretRefresher(resolution.resolver, resolution.values, resolution.values,
                           interval=resolution.refresh_interval, on_change=changed)


def build_proxy(config: ProxyConfig, *, shutdown_event: Any = None, scrubber: SecretScrubber | None = None) -> Proxy:
    """Every part of the proxy for ``config``. Raises ConfigError (a handler, a callback, a setting).

    ``shutdown_event``: the supervisor's event in a ``--workers N > 1`` worker (``cli/run.py``).
    ``scrubber``: the one the log filter uses (``cli/run.py``), so that both learn the secrets that
    become known later (a provider's credentials, a refreshed secret); default: a new one.
    """
    general = config.general
    # shared state (docs/deploy.md): a Redis named anywhere LiteLLM's users name one turns it on
    shared = build_shared_state(config)
    if scrubber is None:
        scrubber = SecretScrubber()
    scrubber.add(*config.secrets(), *(shared.settings.secrets if shared else []))
    # the store (docs/keys.md): virtual keys through its key cache, customers through its customer cache;
    # with shared state its invalidations reach every process through Redis
    store = build_store(config, bus=shared.bus if shared else None)
    ip_policy, route_rules = build_access(config)
    http_client = make_http_client(general.http_pool)
    # JWTs (docs/access.md "JWT auth"): keys fetched with the app's pooled client, never blocking
    jwt_settings = JWTAuthSettings.from_config(config.general_settings, os.environ)
    verifier = JWTAuthenticator(jwt_settings, http_fetcher(http_client)) if jwt_settings is not None else None
    jwt_records = JWTRecords(store, ttl=general.user_api_key_cache_ttl) if store is not None and verifier is not None else None
    authenticator = Authenticator(config.master_key, store.key_cache if store else None,
                                  jwt=JWTCredentials(verifier, jwt_records))
    # failed authentications per address (docs/access.md): a real key that is expired or blocked is no guess
    failed_auth = FailedAuthLimiter.from_settings(config.general_settings,
                                                  not_counted=(ExpiredKeyError, BlockedKeyError))
    access = AccessGate(ip_policy, route_rules, authenticator, failed_auth, custom_auth=load_custom_auth(config))
    dual_cache = DualCache()

    # upstreams: the transport, the providers (native ones on the shared HTTP/1.1 pool), the router
    upstream_pool = Http11Pool.from_settings(general.http_pool)
    fake = FakeProvider()
    providers: dict[str, Provider] = {"fake": fake}
    if general.http_client == "httpx":
        providers["openai"] = OpenAICompatProvider(http_client, scrubber)
    else:
        providers["openai"] = Http11Provider(upstream_pool, scrubber)
    adapters = AdapterProvider(upstream_pool, scrubber, drop_params=config.litellm.drop_params)
    providers.update(dict.fromkeys(adapters.prefixes, adapters))
    check_providers(config, adapters)
    # mock_response (the request's or the deployment's) is answered locally, never sent upstream
    providers = {name: p if name == "fake" else MockingProvider(p, fake) for name, p in providers.items()}
    live = LiveSecrets(config.secret_resolution.values if config.secret_resolution else None)
    router = Router.from_config(config, providers, current=live.current, scrubber=scrubber)
    refresher = _secret_refresher(config, scrubber, live)

    # handlers: user handlers and built-ins (which get what they need through their constructors)
    cost = CostCalculator(pricing_model=adapters.pricing_model)
    builtins = Builtins(config, BuiltinResources(http_client=http_client, router=router, cost=cost))
    handlers, callbacks = check_handlers(config, builtins)

    # observability: metrics, the logging sink, the observer; the response cache
    metrics = Metrics(router.model_names)
    sink = LoggingSink(
        callbacks,
        scrubber=scrubber,
        cost=cost,
        queue_size=general.logging_queue_size,
        callback_timeout=general.callback_timeout_seconds,
        request_log=logging.getLogger(REQUEST_LOGGER),
        on_callback_error=metrics.callback_failed,
        on_estimate=metrics.record_usage,
        error_log_interval=general.callback_error_log_interval,
    )
    metrics.bind_sink(lambda: sink.depth, lambda: sink.dropped)
    sink.logging_hooks = logging_hooks(handlers.plan.handlers)   # logging_only guardrails (presidio)
    response_cache = build_response_cache(config.litellm.cache, config.source, metrics.cache_lookup)
    # observers, in order: the logging event first ("exactly one outcome event" must not depend on
    # the metrics or the cache store working), then the response cache's store
    request_observer = RequestObserver(sink, metrics, cost)
    observers: list[Any] = [request_observer]
    if response_cache is not None:
        observers.append(response_cache)
    if router.has_budgets:     # LiteLLM's provider / deployment / tag budgets (docs/routing.md)
        observers.append(RoutingBudgetObserver(router))

    # budgets, rate limits and spend (docs/spend.md): with a database only (the ledger lives there)
    price_of = _model_prices(router, cost)
    settings = admission_settings(config, fail_open=shared is not None and shared.fail_open)
    limiter = writer = resets = meter = anchor = None
    if store is not None:
        ledger: list[SpendWriter] = []
        # with Redis every instance shares the counters (one script per reserve and per settle)
        limiter = shared.limiter if shared is not None else InProcessLimiter(
            # a reservation open longer than any request may last was leaked: stop renewing it
            max_age=max_reservation_age(config),
            # idle customers' counters go (the customer row is re-read after the cache's TTL) once
            # the ledger holds every record: nothing queued in the writer
            idle_evict=max(DEFAULT_IDLE_EVICT, 3 * general.user_api_key_cache_ttl),
            can_forget_budgets=lambda: bool(ledger) and ledger[0].pending == 0)
        writer = SpendWriter(store.spend, default_outbox_dir(config.database_url, {
            "spend_outbox_dir": general.spend_outbox_dir}, cwd=config.base_dir),
            flush_interval=flush_interval_for(general.proxy_batch_write_at))
        ledger.append(writer)
        resets = BudgetResetService(store.spend, store.bus)
        anchor = ProxyBudgetAnchorService(store.spend, settings)
        meter = SpendMeter(Admitter(limiter, settings, seeds=store.spend), writer, price_of=price_of,
                           scrub=scrubber.scrub,
                           store_prompts=config.general_settings.get("store_prompts_in_spend_logs") is True)

    pipeline = Pipeline(config, handlers.plan, router, dual_cache, scrubber, observers,
                        authenticator=authenticator, cost=cost, response_cache=response_cache,
                        customers=store.customer_cache if store else None, meter=meter)
    admin = SpendContext(store, config_blocked_users=frozenset(
        builtins.blocked_users.blocked if builtins.blocked_users is not None else ()),
        forget_key_spend=key_spend_forgetter(limiter), admission=settings, price_of=price_of,
        key_generation=load_key_generation(config), team_metadata_validator=load_team_metadata_validator(config),
        custom_key_hooks=load_custom_key_hooks(config))
    stopper = None
    if shutdown_event is not None:
        stopper = StreamStopper(shutdown_event, config.graceful_shutdown_timeout, pipeline.stop_streams)
    pass_through = None
    if general.pass_through_endpoints:
        # logged and counted like every request; the response cache has nothing to store here
        pass_through = PassThroughRouter(general.pass_through_endpoints, config=config, client=http_client,
                                         gate=access, observers=Observers([request_observer]), scrubber=scrubber)
    # a shared response cache (Redis) runs its client and its writer as a service
    cache_service = [response_cache.backend] if response_cache is not None and hasattr(
        response_cache.backend, "run") else []
    spend_services = [limiter, writer, resets, anchor] if store is not None else []
    lifetime = _check_services(config, [*(shared.services if shared else ()), *([store] if store else []),
                                        *spend_services, sink, *cache_service, *handlers.services,
                                        *([refresher] if refresher else []), *([stopper] if stopper else [])])
    return Proxy(Services(
        config=config, scrubber=scrubber, authenticator=authenticator, dual_cache=dual_cache,
        http_client=http_client, upstream_pool=upstream_pool, providers=providers, router=router,
        live_secrets=live, builtins=builtins, handlers=handlers, cost=cost, metrics=metrics, logging_sink=sink,
        response_cache=response_cache, pipeline=pipeline, admin=admin, store=store, access=access, shared=shared,
        pass_through=pass_through,
        limiter=limiter, spend_writer=writer, budget_resets=resets, spend_meter=meter,
        stream_stopper=stopper, secret_refresher=refresher, lifetime=lifetime,
    ))


def redis_settings(config: ProxyConfig, environ: Mapping[str, str] | None = None) -> RedisSettings | None:
    """The shared-state Redis the config or the environment names (``coordination/settings.py``), or
    None. Raises ConfigError for a Redis setting that is wrong."""
    try:
        return redis_settings_from(config, os.environ if environ is None else environ)
    except ValueError as exc:
        raise ConfigError([f"{config.source}: {exc}"]) from None


def build_shared_state(config: ProxyConfig, environ: Mapping[str, str] | None = None) -> SharedState | None:
    """The Redis-backed shared state, or None: embedded mode (no Redis, or no database to share).
    Raises ConfigError for a Redis setting that is wrong."""
    settings = redis_settings(config, environ)
    if settings is None:
        return None
    if config.database_url is None:
        log.warning("Redis configured (%s) but no database: keys, budgets and limits need one, so there is no "
                    "shared state to keep (general_settings.database_url; docs/deploy.md)", settings.source)
        return None
    log.info("shared state through Redis at %s", describe_redis(settings))
    return open_shared_state(settings, max_reservation_age=max_reservation_age(config))


def max_reservation_age(config: ProxyConfig) -> float:
    """How long a reservation may stay open before it counts as leaked (renewals stop): longer than
    any request may last."""
    return max(DEFAULT_MAX_RESERVATION_AGE, 2 * config.request_timeout,
               *(2 * d.max_stream_duration for d in config.deployments))


def admission_settings(config: ProxyConfig, *, fail_open: bool = False) -> AdmissionSettings:
    """The proxy-wide budget settings (``litellm_settings``, ``general_settings``; docs/spend.md).
    ``fail_open``: admit unchecked while the shared state is unreachable (docs/deploy.md)."""
    litellm, general = config.litellm, config.general
    if litellm.budget_duration is not None:
        try:
            parse_duration(litellm.budget_duration)
        except InvalidDuration as exc:
            raise ConfigError([f"{config.source}: litellm_settings.budget_duration: {exc}"]) from None
    try:
        return AdmissionSettings(
            proxy_max_budget=to_micros(litellm.max_budget), proxy_budget_duration=litellm.budget_duration,
            max_end_user_budget=to_micros(litellm.max_end_user_budget),
            default_max_tokens=general.spend_default_max_tokens,
            budget_exceeded_status=litellm.budget_exceeded_status_code, fail_open=fail_open)
    except ValueError as exc:
        raise ConfigError([f"{config.source}: litellm_settings: {exc}"]) from None


def _model_prices(router: Router, cost: CostCalculator) -> Any:
    """``model name → Price`` of the model group's first deployment (None: unknown or unpriced),
    remembered per name (bounded): what admission's estimate and ``/spend/calculate`` price with."""
    prices: dict[str, Price | None] = {}

    def price_of(model: str) -> Price | None:
        try:
            return prices[model]
        except KeyError:
            pass
        try:
            price = cost.price(router.deployments(model)[0])
        except (ProxyError, IndexError):
            price = None
        if len(prices) < 10_000:
            prices[model] = price
        return price

    return price_of


def build_store(config: ProxyConfig, *, bus: InvalidationBus | None = None) -> Store | None:
    """The store for ``general_settings.database_url`` (``$DATABASE_URL``), or None without one.
    Migrations are applied when it starts. Raises ConfigError for a URL the store cannot open.
    ``bus``: the shared invalidation bus (None: this process's own)."""
    url = config.database_url
    if url is None:
        return None
    general = config.general
    try:
        return Store(url, audit=config.litellm.store_audit_logs, bus=bus,
                     # disable_prisma_schema_update: the schema is managed outside (cli/run.py checks it)
                     migrate=config.general_settings.get("disable_prisma_schema_update") is not True,
                     pool_size=general.database_connection_pool_limit,
                     readers=general.database_connection_pool_limit,
                     key_cache_ttl=general.user_api_key_cache_ttl,
                     timeout=general.database_connection_timeout)
    except InvalidDatabaseURL as exc:
        raise ConfigError([f"{config.source}: general_settings.database_url: {exc}"]) from None


def create_app(config: ProxyConfig, *, shutdown_event: Any = None, scrubber: SecretScrubber | None = None) -> ProxyApp:
    """The Quart app for one config (``app.proxy`` is the :class:`Proxy`). Raises ConfigError."""
    return make_app(build_proxy(config, shutdown_event=shutdown_event, scrubber=scrubber))


def create_asgi(config: ProxyConfig, *, shutdown_event: Any = None, scrubber: SecretScrubber | None = None) -> ProxyASGI:
    """What Hypercorn serves: the fast path in front of the Quart app (``http/asgi.py``)."""
    return ProxyASGI(create_app(config, shutdown_event=shutdown_event, scrubber=scrubber))
