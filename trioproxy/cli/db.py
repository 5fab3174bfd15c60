"""``trioproxy db upgrade|status [CONFIG] [--url URL]``: the store's schema migrations."""

from __future__ import annotations

import argparse
import sys

__all__ = ["db"]


def db(args: argparse.Namespace) -> int:
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
