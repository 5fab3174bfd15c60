"""The thin layer between repositories and the two DB-API drivers.

Repositories write SQL once, with ``:name`` placeholders and double-quoted identifiers that both
SQLite and PostgreSQL accept, and run it through :class:`Conn` inside a worker thread (never on
the Trio thread). ``Conn`` converts placeholders for psycopg (``%(name)s``), returns rows as
dicts, and maps integrity errors to :mod:`trioproxy.store.errors`.

Values cross the boundary through a per-table :class:`Codec` driven by ``schema.py``'s column
types, so both dialects read and write the same Python values:

==============  ===========================================  ============================
column type     Python value                                  stored as (SQLite / PG)
==============  ===========================================  ============================
JSON            dict / list / str / number / None             text / JSONB
DateTime(tz)    aware ``datetime`` (UTC on the way out)       ``YYYY-MM-DD HH:MM:SS.ffffff`` / timestamptz
Boolean         ``bool``                                      0/1 / boolean
BigInteger      ``int`` (money: micro-USD)                    integer / bigint
==============  ===========================================  ============================

Why not SQLAlchemy's execution layer: ~25–100 µs of CPU per statement and a connection pool of its
own (state-layer.md §4); the statements here are few and fixed, and psycopg_pool is the pool.
SQLAlchemy stays the source of the schema and the migrations.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

import orjson
import sqlalchemy as sa

from .errors import ForeignKeyViolation, UniqueViolation

__all__ = ["Codec", "Conn", "codec_for", "insert_sql", "quote", "update_sql"]

Dialect = Literal["sqlite", "postgresql"]

_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=2048)
def _to_pyformat(sql: str) -> str:
    return _PLACEHOLDER.sub(r"%(\1)s", sql.replace("%", "%%"))


def quote(name: str) -> str:
    return f'"{name}"'


@lru_cache(maxsize=512)
def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    cols = ", ".join(quote(c) for c in columns)
    values = ", ".join(f":{c}" for c in columns)
    return f"INSERT INTO {quote(table)} ({cols}) VALUES ({values})"


@lru_cache(maxsize=512)
def update_sql(table: str, columns: tuple[str, ...], where: tuple[str, ...]) -> str:
    sets = ", ".join(f"{quote(c)} = :{c}" for c in columns)
    cond = " AND ".join(f"{quote(c)} = :w_{c}" for c in where)
    return f"UPDATE {quote(table)} SET {sets} WHERE {cond}"


# --- values -------------------------------------------------------------------------------------

def _kind(column: sa.Column) -> str:
    t = column.type
    if isinstance(t, sa.JSON):
        return "json"
    if isinstance(t, sa.DateTime):
        return "time"
    if isinstance(t, sa.Boolean):
        return "bool"
    return "plain"


def _sqlite_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store: always pass aware (UTC) datetimes")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _parse_sqlite_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def dumps_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


class Codec:
    """Encodes parameters and decodes rows of one table for one dialect."""

    def __init__(self, table: sa.Table, dialect: Dialect):
        self.table = table
        self.dialect = dialect
        self.kinds = {str(c.name): _kind(c) for c in table.columns}
        self.columns = tuple(str(c.name) for c in table.columns)

    def encode(self, values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        sqlite = self.dialect == "sqlite"
        for name, value in values.items():
            kind = self.kinds.get(name)
            if kind is None:
                raise KeyError(f"{self.table.name} has no column {name!r}")
            if value is not None:
                if kind == "json":
                    value = dumps_json(value)
                elif kind == "time":
                    if sqlite:
                        value = _sqlite_time(value)
                    elif value.tzinfo is None:
                        raise ValueError("naive datetime given to the store: always pass aware (UTC) datetimes")
                elif kind == "bool":
                    value = bool(value)
            out[prefix + name] = value
        return out

    def decode(self, row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        sqlite = self.dialect == "sqlite"
        for name in self.columns:
            key = prefix + name
            if key not in row:
                continue
            value = row[key]
            if value is not None:
                kind = self.kinds[name]
                if kind == "json":
                    if sqlite and isinstance(value, str | bytes):
                        value = orjson.loads(value)
                elif kind == "time":
                    value = _parse_sqlite_time(value) if sqlite else value.astimezone(UTC)
                elif kind == "bool":
                    value = bool(value)
            out[name] = value
        return out


_codecs: dict[tuple[str, str], Codec] = {}


def codec_for(table: sa.Table, dialect: Dialect) -> Codec:
    key = (table.name, dialect)
    codec = _codecs.get(key)
    if codec is None:
        codec = _codecs[key] = Codec(table, dialect)
    return codec


def encode_time(value: datetime, dialect: Dialect) -> Any:
    """A bare time parameter (in a WHERE clause), as the dialect compares it."""
    return _sqlite_time(value) if dialect == "sqlite" else value


# --- connections --------------------------------------------------------------------------------

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (\w+)\.(\w+)")
_CONSTRAINT = re.compile(r"^(?:uq|pk)_(.+)$")


def _unique_from_constraint(constraint: str | None, tables: Iterable[str]) -> tuple[str | None, str | None]:
    """``uq_virtual_keys_key_alias`` → ("virtual_keys", "key_alias"); ``pk_x`` → ("x", None)."""
    if not constraint:
        return None, None
    if constraint.startswith("pk_"):
        return constraint[3:], None
    m = _CONSTRAINT.match(constraint)
    if not m:
        return None, None
    rest = m.group(1)
    for table in sorted(tables, key=len, reverse=True):
        if rest.startswith(table + "_"):
            return table, rest[len(table) + 1:]
    return None, None


class Conn:
    """One DB-API connection, used by one worker thread for one read or one write job."""

    __slots__ = ("dialect", "raw")

    def __init__(self, raw: Any, dialect: Dialect):
        self.raw = raw
        self.dialect: Dialect = dialect

    def _sql(self, sql: str) -> str:
        return _to_pyformat(sql) if self.dialect == "postgresql" else sql

    def _cursor(self, sql: str, params: Mapping[str, Any] | Sequence[Any] | None) -> Any:
        try:
            if self.dialect == "sqlite":
                return self.raw.execute(sql, params if params is not None else ())
            return self.raw.execute(self._sql(sql), params)
        except sqlite3.IntegrityError as exc:
            text = str(exc)
            m = _SQLITE_UNIQUE.search(text)
            if m:
                raise UniqueViolation(m.group(1), m.group(2), text) from None
            if "PRIMARY KEY" in text or "UNIQUE" in text:
                raise UniqueViolation(None, None, text) from None
            if "FOREIGN KEY" in text:
                raise ForeignKeyViolation(text) from None
            raise
        except Exception as exc:
            if self.dialect == "postgresql":
                import psycopg.errors as pe

                from .schema import metadata

                if isinstance(exc, pe.UniqueViolation):
                    table, column = _unique_from_constraint(exc.diag.constraint_name, metadata.tables)
                    raise UniqueViolation(table, column, str(exc).splitlines()[0]) from None
                if isinstance(exc, pe.ForeignKeyViolation):
                    raise ForeignKeyViolation(str(exc).splitlines()[0]) from None
            raise

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement; the number of rows it changed."""
        cur = self._cursor(sql, params)
        return cur.rowcount

    def execute_many(self, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
        """One statement for many parameter sets (psycopg pipelines them: one round trip, not N)."""
        if not params:
            return
        if self.dialect == "sqlite":
            self.raw.executemany(sql, params)
        else:
            with self.raw.cursor() as cur:
                cur.executemany(self._sql(sql), params)

    def all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        cur = self._cursor(sql, params)
        if self.dialect == "postgresql":
            return cur.fetchall()          # dict_row factory
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def one(self, sql: str, params: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        cur = self._cursor(sql, params)
        row = cur.fetchone()
        if row is None:
            return None
        return next(iter(row.values())) if isinstance(row, dict) else row[0]
