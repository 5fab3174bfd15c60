"""Database URLs: ``sqlite:///path.db`` and ``postgresql://…`` (or ``postgres://…``).

One small value type so every part of the store (the runtime backends, Alembic, the CLI) agrees on
what a URL means. SQLite paths follow SQLAlchemy's rule: ``sqlite:///rel/path.db`` is relative to
the current directory, ``sqlite:////abs/path.db`` is absolute. In-memory SQLite is refused: the
writer thread and the reader connections must see the same database, and a database that vanishes
with the process would lose every key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["DatabaseURL", "InvalidDatabaseURL", "database_url_from_config_file", "parse_database_url"]


class InvalidDatabaseURL(ValueError):
    """The URL is not one the store can open; the message says why and what is accepted."""


#: libpq takes passwords in the query string too (``?password=``, ``?sslpassword=``)
_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)[^&]*", re.IGNORECASE)

_ACCEPTED = "use sqlite:///path/to/proxy.db or postgresql://user:password@host:port/dbname"


@dataclass(frozen=True)
class DatabaseURL:
    kind: Literal["sqlite", "postgresql"]
    #: SQLite: the file path (as given, relative to the current directory when not absolute).
    #: PostgreSQL: the libpq connection string psycopg takes (``postgresql://…``).
    target: str

    @property
    def sqlalchemy_url(self) -> str:
        """The URL for SQLAlchemy/Alembic: stdlib sqlite3 or psycopg 3 as the DBAPI."""
        if self.kind == "sqlite":
            return f"sqlite:///{self.target}"
        return "postgresql+psycopg://" + self.target.split("://", 1)[1]

    def redacted(self) -> str:
        """For logs and errors: the password (if any, in the user info or the query) replaced by ``***``."""
        if self.kind == "sqlite":
            return f"sqlite:///{self.target}"
        scheme, rest = self.target.split("://", 1)
        creds, at, host = rest.rpartition("@")
        if at and ":" in creds:
            user = creds.split(":", 1)[0]
            rest = f"{user}:***@{host}"
        return scheme + "://" + _QUERY_PASSWORD.sub(r"\1***", rest)

    def __repr__(self) -> str:
        return f"DatabaseURL({self.redacted()!r})"


def parse_database_url(url: str | DatabaseURL) -> DatabaseURL:
    if isinstance(url, DatabaseURL):
        return url
    if not isinstance(url, str) or not url.strip():
        raise InvalidDatabaseURL(f"empty database URL: {_ACCEPTED}")
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise InvalidDatabaseURL(f"not a URL: {url[:40]!r}; {_ACCEPTED}")
    scheme = scheme.lower()
    if scheme in ("sqlite", "sqlite3"):
        if not rest.startswith("/") or rest in ("/", "//"):
            raise InvalidDatabaseURL(f"a SQLite URL needs a file path after 'sqlite:///'; {_ACCEPTED}")
        path = rest[1:]
        if path in (":memory:", "") or path.startswith("file:") or "mode=memory" in path:
            raise InvalidDatabaseURL("an in-memory SQLite database cannot hold keys; name a file: sqlite:///proxy.db")
        return DatabaseURL("sqlite", path)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        return DatabaseURL("postgresql", "postgresql://" + rest)
    raise InvalidDatabaseURL(f"unsupported database scheme {scheme!r}; {_ACCEPTED}")


def _resolve_env(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("os.environ/"):
        name = value.split("/", 1)[1]
        if name not in os.environ:
            raise InvalidDatabaseURL(f"general_settings.database_url names the environment variable {name}, which is not set")
        return os.environ[name]
    return value


def database_url_from_config_file(path: str | os.PathLike[str] | None) -> str | None:
    """``general_settings.database_url`` of a config file (``os.environ/NAME`` resolved), else
    ``$DATABASE_URL``, else ``None``. Reads only that key, so ``trioproxy db`` works on configs whose
    handlers cannot be imported on this machine. A relative SQLite path in the config is relative
    to the config file's directory, as ``trioproxy run`` reads it (``config/build.py``)."""
    if path is not None:
        import yaml

        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f) or {}
        settings = raw.get("general_settings") if isinstance(raw, dict) else None
        value = _resolve_env(settings.get("database_url")) if isinstance(settings, dict) else None
        if value:
            return _relative_to(str(value), os.path.dirname(os.path.abspath(path)))
    return os.environ.get("DATABASE_URL") or None


def _relative_to(url: str, base_dir: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in ("sqlite", "sqlite3") and rest.startswith("/") and not rest.startswith("//"):
        relative = rest[1:]
        if relative and not relative.startswith((":memory:", "file:")):
            return f"sqlite:///{os.path.normpath(os.path.join(base_dir, relative))}"
    return url
