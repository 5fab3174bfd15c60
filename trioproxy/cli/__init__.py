"""``trioproxy run`` / ``trioproxy check``: arguments, logging, and starting Hypercorn's trio worker.

One worker (the default) is served in this process: ``trio.run`` → ``hypercorn.trio.serve`` with a
shutdown trigger fed by SIGINT/SIGTERM. On the signal Hypercorn stops accepting, lets in-flight
requests finish for up to ``general_settings.graceful_shutdown_timeout`` seconds, and the process
exits 0. Streams still open shortly before that deadline (:func:`streams_stop_after`) are ended with
a ``shutdown`` SSE error event rather than cut by Hypercorn (``Pipeline.stop_streams``); with
``--workers N > 1`` each worker learns of the shutdown from Hypercorn's supervisor event
(:class:`_StreamStopper`). With ``--workers N > 1`` Hypercorn's own supervisor spawns N processes sharing the socket;
each loads the same config (passed through the environment) and builds its own app.

An open proxy spends its owner's money: on an address other machines can reach (``--host 0.0.0.0``,
``::``, a LAN address), ``run`` refuses to start without a master key, or with one shorter than
:data:`MIN_MASTER_KEY_LENGTH` characters, and exits 2 — unless ``--allow-insecure`` says the
operator means it. On loopback both start with a loud warning, so the docs' ``sk-1234`` examples work.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import logging
import os
import signal
import sys
import threading
from typing import Any

import trio

from .. import __version__
from ..config import ConfigError, ProxyConfig, load_config, load_default_config
from ..masking import SecretScrubber, install_log_filter, mask_secret
from ..secret_managers.kms_env import decrypt_kms_environment

__all__ = ["main"]

log = logging.getLogger("trioproxy")

_CONFIG_ENV = "TRIOPROXY_CONFIG"


def _setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        from ..observability.logfmt import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # one line per request (the structured record, see docs/logging.md): for log shippers, so on
    # with --log-format json; in text logs only at --log-level debug
    requests_level = logging.INFO if fmt == "json" or level == "debug" else logging.WARNING
    logging.getLogger("trioproxy.requests").setLevel(requests_level)


def _load(path: str | None) -> ProxyConfig:
    # secret managers (docs/secrets.md): USE_AWS_KMS decrypts LITELLM_SECRET_AWS_KMS_<NAME> into <NAME> first
    decrypt_kms_environment()
    return load_config(path) if path else load_default_config()


def _describe(config: ProxyConfig) -> list[str]:
    lines = [f"config: {config.source}"]
    lines.append("models:")
    for name, group in config.model_groups.items():
        for d in group:
            key = f", api_key {mask_secret(d.api_key)}" if d.api_key else ""
            extra = f", extra params {sorted(d.extra_params)}" if d.extra_params else ""
            lines.append(f"  {name:<24} -> {d.label}{key}{extra}")
    master = config.master_key
    lines.append(f"master key: {mask_secret(master) if master else 'NONE (the proxy is open to anyone who can reach it)'}")
    if config.guardrails:
        lines.append("guardrails:")
        for g in config.guardrails:
            lines.append(f"  {g.name:<24} {g.class_path} mode={','.join(g.modes)} default_on={g.default_on}"
                         f" stream_mode={g.stream_mode}")
    return lines


def _check(args: argparse.Namespace) -> int:
    from ..hooks.assembly import load_handlers

    try:
        config = _load(args.config)
        handlers = load_handlers(config)
        from ..observability.callbacks import load_callbacks

        logging_callbacks = load_callbacks(config, handlers.loggers)
    except ConfigError as exc:
        print("config is invalid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    scrub = SecretScrubber(config.secrets()).scrub
    for line in _describe(config):
        print(scrub(line))
    print("hooks, in the order they run (phase, method, handlers):")
    for line in handlers.plan.describe():
        print(line)
    if logging_callbacks:
        print("logging callbacks: " + ", ".join(f"{c.name} ({c.event})" for c in logging_callbacks))
    for warning in config.warnings:
        print(f"warning: {warning}")
    print("config OK")
    return 0


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


def _freeze_startup_heap() -> None:
    """Move everything built at startup out of the cyclic GC's reach (``gc.freeze``).

    Why: modules, the price table and the handlers are ~56,000 objects that live as long as the
    process, and each full collection walked them all (~25 ms on the development machine), on the
    event loop, at moments set by allocation counts. Under 1,000 open streams those pauses were the
    worst health-check latencies. Collect first, so that no startup garbage is frozen with them.
    """
    gc.collect()
    gc.freeze()


def create_app_from_env() -> Any:
    """Entry point for Hypercorn's worker processes (``--workers > 1``)."""
    from ..http.app import create_asgi

    path = os.environ.get(_CONFIG_ENV) or None
    _setup_logging(os.environ.get("TRIOPROXY_LOG_LEVEL", "info"), os.environ.get("TRIOPROXY_LOG_FORMAT", "text"))
    config = _load(path)
    install_log_filter(SecretScrubber(config.secrets()))
    from .server_connection import install

    install()   # this worker's connections get the request-head deadline
    app = create_asgi(config)
    event = _supervisor_shutdown_event()
    if event is not None:
        app.state.services.append(_StreamStopper(event, config.graceful_shutdown_timeout, app.state))
    else:
        log.warning("Hypercorn's shutdown event was not found in this worker: at shutdown, its open "
                    "streams are cut at the graceful deadline instead of ending with an error event")
    _freeze_startup_heap()
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


class _StreamStopper:
    """A lifespan service of a ``--workers > 1`` worker: :func:`streams_stop_after` the supervisor's
    shutdown event is set, end this worker's open streams with a ``shutdown`` error event.

    Polls the event every 0.1 s, as Hypercorn's worker does itself (``is_set`` takes an uncontended
    process-shared lock: microseconds). Runs in the app's nursery, which lives until serving ended.
    """

    def __init__(self, event: Any, graceful_timeout: float, state: Any) -> None:
        self._event = event
        self._graceful_timeout = graceful_timeout
        self._state = state

    async def run(self) -> None:
        # a multiprocessing event: there is nothing to await on, so it is polled (as Hypercorn does)
        while not self._event.is_set():  # noqa: ASYNC110
            await trio.sleep(0.1)
        # Hypercorn's supervisor sends SIGTERM to every worker as soon as the first one has exited (an
        # idle worker exits at once), which would cut this worker's in-flight requests long before
        # graceful_shutdown_timeout. Draining is bounded by Hypercorn's own deadline here, and the
        # supervisor's process waits for its (non-daemon) workers before it exits.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        await trio.sleep(streams_stop_after(self._graceful_timeout))
        _stop_streams(self._state)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - the services interface (app.py)
        await trio.lowlevel.checkpoint()


def _stop_streams(state: Any) -> None:
    stop_streams = getattr(state, "stop_streams", None)
    if stop_streams is not None:
        count = stop_streams()
        if count:
            log.warning("graceful shutdown deadline near: ending %d open stream(s) with a 'shutdown' "
                        "error event", count)


def streams_stop_after(graceful_timeout: float) -> float:
    """Seconds after SIGTERM at which open streams are ended with a ``shutdown`` error event.

    Hypercorn cancels whatever still runs ``graceful_timeout`` seconds after the signal, which cuts a
    stream at the TCP level (the client cannot tell a cut from a complete answer). So streams get
    their error event a little earlier: ``min(5 s, graceful_timeout / 4)`` before the deadline,
    time enough for the failure hooks (each bounded by ``hook_timeout_seconds``) and the last write.
    """
    return max(0.0, graceful_timeout - min(5.0, graceful_timeout / 4))


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
        for bind in binds:
            print(f"trioproxy listening on {bind}", flush=True)
        await shutdown.wait()
        await trio.sleep(streams_stop_after(hc.graceful_timeout))
        _stop_streams(getattr(app, "state", None))
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


def _run(args: argparse.Namespace) -> int:
    _setup_logging(args.log_level, args.log_format)
    try:
        config = _load(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("%s", problem)
        return 1
    install_log_filter(SecretScrubber(config.secrets()))
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
    hc = _hypercorn_config(args, config)
    if args.workers > 1:
        from hypercorn.run import run as hypercorn_run

        # the workers rebuild the app from the config: check it here first, so errors show once
        from ..hooks.assembly import load_handlers
        from ..observability.callbacks import load_callbacks

        try:
            load_callbacks(config, load_handlers(config).loggers)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("%s", problem)
            return 1
        os.environ[_CONFIG_ENV] = os.path.abspath(args.config) if args.config else ""
        os.environ["TRIOPROXY_LOG_LEVEL"] = args.log_level
        os.environ["TRIOPROXY_LOG_FORMAT"] = args.log_format
        hc.application_path = "trioproxy.cli:create_app_from_env()"
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
        print(f"trioproxy listening on http://{args.host}:{port} ({args.workers} workers)", flush=True)
        return hypercorn_run(hc)

    from ..http.app import create_asgi

    try:
        app = create_asgi(config)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("%s", problem)
        return 1
    _freeze_startup_heap()
    trio.run(_serve_one, app, hc)
    return 0


def _db(args: argparse.Namespace) -> int:
    """``trioproxy db upgrade|status [CONFIG] [--url URL]``: the store's schema migrations."""
    from ..store import migrate
    from ..store.url import InvalidDatabaseURL, database_url_from_config_file, parse_database_url

    try:
        url = args.url or database_url_from_config_file(args.config)
        if not url:
            print("trioproxy db: no database: pass --url, or a config with general_settings.database_url, "
                  "or set DATABASE_URL", file=sys.stderr)
            return 2
        db_url = parse_database_url(url)
        result = migrate.upgrade(db_url) if args.action == "upgrade" else migrate.status(db_url)
    except (InvalidDatabaseURL, migrate.MigrationError, OSError) as exc:
        print(f"trioproxy db {args.action}: {exc}", file=sys.stderr)
        return 1
    print(f"database: {result.url}")
    print(f"revision: {result.current or '(empty)'} (newest: {result.head})")
    if result.pending:
        print(f"pending:  {', '.join(result.pending)} (run: trioproxy db upgrade)")
    else:
        print("up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trioproxy", description="An OpenAI-compatible LLM proxy on Trio.")
    parser.add_argument("--version", action="version", version=f"trioproxy {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="serve the proxy")
    run.add_argument("config", nargs="?", help="config file (default: embedded defaults, fake models only)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=4000, help="0 picks a free port (printed on stdout)")
    run.add_argument("--workers", type=int, default=1)
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument("--log-format", default="text", choices=["text", "json"])
    run.add_argument("--allow-insecure", action="store_true",
                     help="start on a non-loopback address without a master key (or with one shorter "
                          f"than {MIN_MASTER_KEY_LENGTH} characters)")
    run.set_defaults(func=_run)

    check = commands.add_parser("check", help="validate a config and show what would run")
    check.add_argument("config", nargs="?")
    check.set_defaults(func=_check)

    db = commands.add_parser("db", help="the database schema: apply migrations or show where it stands")
    db.add_argument("action", choices=["upgrade", "status"])
    db.add_argument("config", nargs="?", help="config file whose general_settings.database_url to use")
    db.add_argument("--url", help="database URL (sqlite:///path.db or postgresql://...); overrides the config")
    db.set_defaults(func=_db)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "workers", 1) < 1:
        print("trioproxy: --workers must be at least 1", file=sys.stderr)
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
