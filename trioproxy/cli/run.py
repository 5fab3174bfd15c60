"""``trioproxy run``: checks before listening, and starting Hypercorn's trio worker.

One worker (the default) is served in this process: ``trio.run`` → ``hypercorn.trio.serve`` with a
shutdown trigger fed by SIGINT/SIGTERM. On the signal Hypercorn stops accepting, lets in-flight
requests finish for up to ``general_settings.graceful_shutdown_timeout`` seconds, and the process
exits 0. Streams still open shortly before that deadline (:func:`streams_stop_after`) are ended with
a ``shutdown`` SSE error event rather than cut by Hypercorn (``core/shutdown.py``); with
``--workers N > 1`` each worker learns of the shutdown from Hypercorn's supervisor event (the
container's ``StreamStopper`` service). With ``--workers N > 1`` Hypercorn's own supervisor spawns
N processes sharing the socket; each loads the same config (passed through the environment) and
builds its own proxy (``proxy.build_proxy``).

An open proxy spends its owner's money: on an address other machines can reach (``--host 0.0.0.0``,
``::``, a LAN address), ``run`` refuses to start without a master key, or with one shorter than
:data:`MIN_MASTER_KEY_LENGTH` characters, and exits 2 — unless ``--allow-insecure`` says the
operator means it. On loopback both start with a loud warning, so the docs' ``sk-1234`` examples work.

``--workers N > 1`` with a database and without Redis also exits 2: budgets and rate limits would be
counted in each process's memory (the embedded limiter) and multiplied by N; with Redis configured
(``coordination/settings.py``) the workers share counters, invalidations and blocks through it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import glob
import ipaddress
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from typing import Any

import trio

from ..config import ConfigError, ProxyConfig
from ..core.shutdown import stop_streams, streams_stop_after
from ..masking import SecretScrubber, install_log_filter
from ..proxy import check_startup, create_asgi, redis_settings
from .common import load, setup_logging

__all__ = ["MIN_MASTER_KEY_LENGTH", "create_app_from_env", "is_loopback", "run", "streams_stop_after"]

log = logging.getLogger("trioproxy")

_CONFIG_ENV = "TRIOPROXY_CONFIG"


def _hypercorn_config(args: argparse.Namespace, config: ProxyConfig) -> Any:
    from .server_connection import ProxyHypercornConfig

    hc = ProxyHypercornConfig()
    hc.bind = [f"{args.host}:{args.port}"]
    hc.worker_class = "trio"
    hc.workers = args.workers
    hc.backlog = 2048               # Hypercorn's 100 is for web pages, not a proxy under load
    # clients (SDKs) and load balancers reuse idle connections: 5 s churns them, and a load
    # balancer must find its backend's keep-alive longer than its own (AWS ALB: 60 s)
    hc.keep_alive_timeout = 75.0
    # a head must arrive within this (server_connection.py): the keep-alive wait no longer covers it
    hc.request_header_timeout = config.request_header_timeout
    hc.graceful_timeout = config.graceful_shutdown_timeout
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hypercorn.error")
    # h11 buffers an incomplete head up to this, then answers 431 itself (empty body): the memory
    # bound per connection. Twice the proxy's own header limit, so that heads over that limit but
    # under this one reach asgi.py and get the 431 in the OpenAI envelope, however TCP split them.
    hc.h11_max_incomplete_size = max(64 * 1024, 2 * config.max_request_header_bytes)
    return hc


#: ``gc.set_threshold`` for a serving process (CPython's defaults: 700, 10, 10). Measured with
#: ``bench/streams.py --levels 128`` and ``bench/limits.py --phases overload`` (1,000 open streams),
#: 3 interleaved rounds each on the shared 2-core machine, GC time taken with ``gc.callbacks`` and
#: ``time.thread_time`` (README, "Benchmark"): CPython counts allocations *minus deallocations* of
#: tracked objects, and a proxy's streams free old objects as fast as they make new ones, so at 700
#: a young collection found ~14,000 objects, and the 25 % rule still ran full collections over the
#: ~220 objects of each open stream (~170 ms of CPU at 1,000 streams). At 7000/10/100 most young
#: objects are freed by reference counting before a collection looks at them: GC CPU fell by ~60 %
#: (~290 → ~120 ms per 10 s at 1,000 streams; CPU per relayed delta at 128 streams 70 → 49 µs,
#: medians), and the longest pause of a run from ~170 ms (a full collection) to ~65 ms of CPU; a
#: young collection, rarer, grew from ≤ ~31 to ≤ ~45 ms. Cycles that reach the old generation are
#: freed later (full collections ~10 × rarer); ``bench/limits.py``'s soak holds the memory slope.
GC_THRESHOLDS = (7000, 10, 100)


def _tune_gc() -> None:
    """Freeze what startup built, then set :data:`GC_THRESHOLDS` (see there for the figures).

    Why freeze: modules, the price table and the handlers are ~65,000 objects that live as long as
    the process, and each full collection walked them all (~25 ms on the development machine), on
    the event loop. Collect first, so that no startup garbage is frozen with them. (Freezing again
    once the lifespan has started the services was measured too: ~440 more objects, no change.)
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app_from_env() -> Any:
    """Entry point for Hypercorn's worker processes (``--workers > 1``)."""
    path = os.environ.get(_CONFIG_ENV) or None
    setup_logging(os.environ.get("TRIOPROXY_LOG_LEVEL", "info"), os.environ.get("TRIOPROXY_LOG_FORMAT", "text"))
    config = load(path)
    scrubber = SecretScrubber(config.secrets())
    install_log_filter(scrubber)
    from .server_connection import install

    install()   # this worker's connections get the request-head deadline
    event = _supervisor_shutdown_event()
    app = create_asgi(config, shutdown_event=event, scrubber=scrubber)
    if event is not None:
        _ignore_terminate_while_draining(event)
    else:
        log.warning("Hypercorn's shutdown event was not found in this worker: at shutdown, its open "
                    "streams are cut at the graceful deadline instead of ending with an error event")
    _tune_gc()
    return app


def _supervisor_shutdown_event() -> Any:
    """In a worker spawned by ``hypercorn.run`` (``--workers > 1``): the supervisor's shutdown event.

    Hypercorn's supervisor turns SIGINT/SIGTERM into a ``multiprocessing`` event; each trio worker
    polls it as its shutdown trigger, and the app is not told. Hypercorn hands it to the worker
    function as the keyword argument ``shutdown_event`` of the spawned process, which is where this
    finds it (``multiprocessing.current_process()._kwargs``: private, hence every check). None
    when not found (another Hypercorn version, or not a worker).
    """
    import multiprocessing

    kwargs = getattr(multiprocessing.current_process(), "_kwargs", None)
    event = kwargs.get("shutdown_event") if isinstance(kwargs, dict) else None
    return event if callable(getattr(event, "is_set", None)) else None


def _ignore_terminate_while_draining(event: Any) -> None:
    """In a worker: ignore SIGTERM once the supervisor's shutdown event is set; otherwise die of it.

    Why: Hypercorn's supervisor ``terminate()``s every worker as soon as the first one has exited,
    and an idle worker exits at once after the shutdown event, which cut the busy workers' in-flight
    requests (and their streams' ``shutdown`` events) long before ``graceful_shutdown_timeout``.
    Draining stays bounded by Hypercorn's own graceful deadline, and the supervisor waits for its
    (non-daemon) workers before it exits. Installed here, before ``trio.run``, and decided when the
    signal arrives, so no polling interval can race it; a SIGTERM sent to a worker outside a
    shutdown (an operator's ``kill``) still ends it as the default action would.
    """
    def on_sigterm(signum: int, frame: Any) -> None:
        if event.is_set():
            return
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, on_sigterm)


async def _serve_one(app: Any, hc: Any) -> None:
    from hypercorn.trio import serve

    from .server_connection import install

    install()   # connections get the request-head deadline (server_connection.py)

    shutdown = trio.Event()

    async def watch_signals() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("received %s: finishing in-flight requests (up to %.0f s), then exiting",
                         signal.Signals(signum).name, hc.graceful_timeout)
                shutdown.set()
                return

    async def run_server(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
        await serve(app, hc, shutdown_trigger=shutdown.wait, task_status=task_status)
        # serve() returns once in-flight requests are done (or the graceful deadline passed):
        # nothing is left to stop
        nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_signals)
        binds = await nursery.start(run_server)
        if not app.proxy.started:   # a service failed to start: serve() raises it next, say nothing
            await trio.sleep_forever()
        for bind in binds:
            print(f"trioproxy listening on {bind}", flush=True)
        await shutdown.wait()
        await trio.sleep(streams_stop_after(hc.graceful_timeout))
        stop_streams(app.proxy.stop_streams)
        await trio.sleep_forever()   # until serve() returns
    log.info("stopped")


#: a master key shorter than this (the docs' ``sk-1234``) is a demo key: fine on loopback only
MIN_MASTER_KEY_LENGTH = 8


def is_loopback(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost``: reachable from this machine only.

    Anything else counts as exposed: ``0.0.0.0`` and ``::`` (every interface), a LAN address, and a
    host *name* other than ``localhost`` (what it resolves to can change).
    """
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.partition("%")[0]).is_loopback
    except ValueError:
        return False


def _key_weakness(master_key: str | None) -> str | None:
    """What is wrong with the master key for a proxy others can reach, or None."""
    if not master_key:
        return "no general_settings.master_key is set (the proxy would be open)"
    if len(master_key) < MIN_MASTER_KEY_LENGTH:
        return f"the master key is shorter than {MIN_MASTER_KEY_LENGTH} characters (easy to guess)"
    return None


def run(args: argparse.Namespace) -> int:
    """``trioproxy run``: exit code 0 after a graceful shutdown, 1 for a bad config, 2 if refused."""
    setup_logging(args.log_level, args.log_format)
    try:
        config = load(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("%s", problem)
        return 1
    # one scrubber for the log filter and the proxy: secrets known later (a provider's credentials, a
    # refreshed secret) are masked in the log too
    scrubber = SecretScrubber(config.secrets())
    install_log_filter(scrubber)
    for warning in config.warnings:
        log.warning("%s", warning)
    weakness = _key_weakness(config.master_key)
    if weakness is not None and not is_loopback(args.host):
        if not args.allow_insecure:
            log.error("refusing to listen on %s: %s, and that address is reachable from other machines, so "
                      "anyone on the network could use every model at your expense. Set "
                      "general_settings.master_key to a key of at least %d characters (e.g. "
                      "os.environ/TRIOPROXY_MASTER_KEY), listen on 127.0.0.1, or pass --allow-insecure to "
                      "start anyway.", args.host, weakness, MIN_MASTER_KEY_LENGTH)
            return 2
        log.warning("--allow-insecure: listening on %s although %s", args.host, weakness)
    if weakness is not None:
        log.warning("!" * 78)
        if config.master_key:
            log.warning("THE master_key IS SHORTER THAN %d CHARACTERS: it is easy to guess.", MIN_MASTER_KEY_LENGTH)
        else:
            log.warning("NO master_key IS SET: anyone who can reach %s:%s can use every model.", args.host, args.port)
        log.warning("Set general_settings.master_key (e.g. os.environ/TRIOPROXY_MASTER_KEY) to a key of at least "
                    "%d characters.", MIN_MASTER_KEY_LENGTH)
        log.warning("!" * 78)
    problem = _migrate(config)
    if problem is not None:
        log.error("trioproxy could not start: %s", problem)
        return 1
    hc = _hypercorn_config(args, config)
    if args.workers > 1:
        from hypercorn.run import run as hypercorn_run

        try:
            shared = redis_settings(config)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("%s", problem)
            return 1
        if config.database_url is not None and shared is None:
            # budgets and rate limits are counted in each process's memory (the embedded limiter):
            # N workers would each admit up to every limit, N times over (docs/spend.md); with Redis
            # they share the counters, the invalidations and the blocks (docs/deploy.md)
            log.error("refusing to start --workers %d with a database: rate limits, parallel-request limits and "
                      "budgets are counted in each worker's memory, so %d workers would allow %d times every limit "
                      "and budget. Configure Redis for shared state (general_settings.coordination_redis, "
                      "router_settings.redis_host or REDIS_URL; docs/deploy.md), or run one worker (--workers 1) "
                      "per database.", args.workers, args.workers, args.workers)
            return 2
        # the workers rebuild the app from the config: check it here first, so errors show once
        try:
            check_startup(config)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("%s", problem)
            return 1
        os.environ[_CONFIG_ENV] = os.path.abspath(args.config) if args.config else ""
        os.environ["TRIOPROXY_LOG_LEVEL"] = args.log_level
        os.environ["TRIOPROXY_LOG_FORMAT"] = args.log_format
        hc.application_path = "trioproxy.cli.run:create_app_from_env()"
        port = args.port
        if port == 0:
            # --port 0: bind and listen here, so the port printed is the one the workers share
            import socket

            sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((args.host, 0))
            sock.listen(hc.backlog)
            port = sock.getsockname()[1]
            hc.bind = [f"fd://{sock.detach()}"]
        with _metrics_dir():
            print(f"trioproxy listening on http://{args.host}:{port} ({args.workers} workers)", flush=True)
            return hypercorn_run(hc)

    _clear_stale_metrics()      # before the app creates its metrics (their files, in multiprocess mode)
    try:
        app = create_asgi(config, scrubber=scrubber)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("%s", problem)
        return 1
    _tune_gc()
    try:
        trio.run(_serve_one, app, hc)
    except BaseExceptionGroup as group:
        failed = _startup_failure(group)
        if failed is None:
            raise
        log.error("trioproxy could not start: %s", failed)
        return 1
    return 0


def _clear_stale_metrics() -> bool:
    """Delete the value files a previous run left in an operator's ``PROMETHEUS_MULTIPROC_DIR``
    (prometheus_client's rule: totals would otherwise include that run's counts). Before any metric
    of this run exists. True if the operator set the directory."""
    from ..observability.metrics import MULTIPROC_ENV

    given = os.environ.get(MULTIPROC_ENV)
    if not given:
        return False
    for stale in glob.glob(os.path.join(given, "*.db")):
        os.unlink(stale)
    return True


@contextlib.contextmanager
def _metrics_dir() -> Iterator[None]:
    """``--workers N``: the directory of prometheus_client's multiprocess mode, for the workers.

    Set before Hypercorn spawns them, so each starts in multiprocess mode and ``/metrics`` on any
    worker reports every worker's totals (``observability/metrics.py``). A fresh directory, removed
    at exit; an operator's own ``PROMETHEUS_MULTIPROC_DIR`` is used instead (emptied of a previous
    run's files first).
    """
    from ..observability.metrics import MULTIPROC_ENV

    if _clear_stale_metrics():
        yield
        return
    path = tempfile.mkdtemp(prefix="trioproxy-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def _startup_failure(group: BaseExceptionGroup) -> str | None:
    """The message of a service that failed to start (the store could not open its database…),
    found in what Hypercorn's lifespan raised; None for anything else."""
    import errno

    from hypercorn.utils import LifespanFailureError

    taken, _ = group.split(lambda exc: isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE)
    if taken is not None:
        return f"{_leaf(taken)} (another process listens on that address: stop it, or choose --port)"
    found, _ = group.split(LifespanFailureError)
    leaf: BaseException | None = found
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    if leaf is None:
        return None
    cause = leaf.__context__
    return str(cause) if cause is not None else str(leaf)


def _leaf(group: BaseExceptionGroup) -> BaseException:
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf


def _migrate(config: ProxyConfig) -> str | None:
    """Apply the store's migrations before serving (once, also with ``--workers N``), so a
    database that cannot be reached or upgraded stops startup with one clear line; None if fine."""
    if config.database_url is None:
        return None
    from ..store import MigrationError, upgrade
    from ..store.migrate import status

    if config.general_settings.get("disable_prisma_schema_update") is True:
        # LiteLLM's "no schema update at startup" (the schema is someone else's job): nothing is
        # migrated; a database that is not at this version's schema stops startup, naming the fix
        try:
            found = status(config.database_url)
        except (MigrationError, OSError) as exc:
            return f"general_settings.database_url: {exc}"
        if found.pending:
            return (f"general_settings.database_url: the database is at revision {found.current or '(empty)'}, "
                    f"this trioproxy needs {found.head}, and disable_prisma_schema_update is true: nothing is "
                    f"migrated at startup. Run `trioproxy db upgrade` first.")
        log.info("database %s at revision %s (disable_prisma_schema_update: not migrated at startup)",
                 found.url, found.current)
        return None
    try:
        result = upgrade(config.database_url)
    except (MigrationError, OSError) as exc:
        return f"general_settings.database_url: {exc}"
    log.info("database %s at revision %s", result.url, result.current)
    return None


