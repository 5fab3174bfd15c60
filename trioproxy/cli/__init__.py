"""The command line: ``trioproxy run``, ``check``, ``db`` (``main`` is the console script).

``run.py`` serves (Hypercorn's trio worker, signals, ``--workers``); ``check.py`` validates a config;
``db.py`` applies the store's migrations; ``common.py`` holds what they share;
``server_connection.py`` adds the request-head deadline to Hypercorn's connections. Private by
convention, like every module below ``trioproxy``: the handler API is ``trioproxy/__init__.py``.

May import: everything (this is the top layer); it builds the proxy through ``proxy.py`` only.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from . import check as check_command
from . import db as db_command
from . import run as run_command

__all__ = ["build_parser", "main"]


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
                          f"than {run_command.MIN_MASTER_KEY_LENGTH} characters)")
    run.set_defaults(func=run_command.run)

    check = commands.add_parser("check", help="validate a config and show what would run")
    check.add_argument("config", nargs="?")
    check.set_defaults(func=check_command.check)

    db = commands.add_parser("db", help="the database schema: apply migrations or show where it stands")
    db.add_argument("action", choices=["upgrade", "status"])
    db.add_argument("config", nargs="?", help="config file whose general_settings.database_url to use")
    db.add_argument("--url", help="database URL (sqlite:///path.db or postgresql://...); overrides the config")
    db.set_defaults(func=db_command.db)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "workers", 1) < 1:
        print("trioproxy: --workers must be at least 1", file=sys.stderr)
        return 2
    return int(args.func(args) or 0)
