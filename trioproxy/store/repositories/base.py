"""What every repository shares: the context, the caller (``Actor``), SQL helpers that run inside
a worker thread on a :class:`~trioproxy.store.sql.Conn`, the audit writer, and ``mutate``.

Helpers named ``*_tx`` (here and in the entity modules) are synchronous and take the ``Conn`` of
the current transaction, so one entity's mutation can include another's in the same transaction
(``/user/new`` creates the user and its key together; ``/team/delete`` deletes the team's keys).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from ..database import Database
from ..invalidation import Invalidation, InvalidationBus
from ..schema import LITELLM_TABLE_NAMES, audit_log
from ..sql import Conn, codec_for, encode_time, insert_sql, quote, update_sql
from ..views import jsonable

__all__ = ["Actor", "Page", "RepoContext", "mutate", "utcnow"]

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Actor:
    """Who made a change, for ``updated_by`` and the audit log. ``api_key`` is the caller's key
    *hash* (never a clear key); ``changed_by`` a user id, ``"admin"`` for the master key, or what
    a trusted ``litellm-changed-by`` header named."""

    changed_by: str = ""
    api_key: str = ""


SYSTEM = Actor("system")


@dataclass
class RepoContext:
    db: Database
    bus: InvalidationBus
    audit: bool = False                       # litellm_settings.store_audit_logs
    clock: Callable[[], datetime] = utcnow    # injected in tests (rotation grace, expiry)


@dataclass
class Page:
    rows: list[dict[str, Any]]
    total: int
    page: int
    size: int

    @property
    def total_pages(self) -> int:
        return max(1, -(-self.total // self.size)) if self.size else 1


@dataclass
class _Invalidations:
    events: list[Invalidation] = field(default_factory=list)

    def add(self, *events: Invalidation) -> None:
        self.events.extend(events)


async def mutate(ctx: RepoContext, fn: Callable[[Conn, _Invalidations], T],
                 events: Iterable[Invalidation] = ()) -> T:
    """Run ``fn`` as one write transaction, then publish ``events`` plus what ``fn`` added.

    Published in ``finally``: also when the outcome is unknown (a failed commit, a cancelled
    caller), because a needless cache reload is cheap and a stale entry is a security bug.
    """
    collected = _Invalidations(list(events))
    try:
        return await ctx.db.write(lambda conn: fn(conn, collected))
    finally:
        ctx.bus.publish(*collected.events)


# --- SQL helpers (run in a worker thread) -------------------------------------------------------

def _where(table: sa.Table, conn: Conn, where: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    codec = codec_for(table, conn.dialect)  # type: ignore[arg-type]
    parts: list[str] = []
    params: dict[str, Any] = {}
    for i, (name, value) in enumerate(where.items()):
        col = quote(name)
        if value is None:
            parts.append(f"{col} IS NULL")
        elif isinstance(value, list | tuple | set | frozenset):
            values = list(value)
            if not values:
                parts.append("1 = 0")
                continue
            names = [f"p{i}_{j}" for j in range(len(values))]
            parts.append(f"{col} IN ({', '.join(':' + n for n in names)})")
            for n, v in zip(names, values, strict=True):
                params[n] = codec.encode({name: v})[name]
        else:
            params[f"p{i}"] = codec.encode({name: value})[name]
            parts.append(f"{col} = :p{i}")
    return (" WHERE " + " AND ".join(parts)) if parts else "", params


def select_tx(conn: Conn, table: sa.Table, where: Mapping[str, Any] | None = None, *,
              order_by: Sequence[str] = (), limit: int | None = None, offset: int = 0,
              extra: tuple[str, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    clause, params = _where(table, conn, where or {})
    if extra:
        clause += (" AND " if clause else " WHERE ") + extra[0]
        params.update(extra[1])
    sql = f"SELECT * FROM {quote(table.name)}{clause}"
    if order_by:
        sql += " ORDER BY " + ", ".join(_order(o) for o in order_by)
    if limit is not None:
        sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
    codec = codec_for(table, conn.dialect)  # type: ignore[arg-type]
    return [codec.decode(r) for r in conn.all(sql, params)]


def _order(spec: str) -> str:
    return f"{quote(spec[1:])} DESC" if spec.startswith("-") else quote(spec)


def count_tx(conn: Conn, table: sa.Table, where: Mapping[str, Any] | None = None,
             extra: tuple[str, Mapping[str, Any]] | None = None) -> int:
    clause, params = _where(table, conn, where or {})
    if extra:
        clause += (" AND " if clause else " WHERE ") + extra[0]
        params.update(extra[1])
    return int(conn.scalar(f"SELECT COUNT(*) AS n FROM {quote(table.name)}{clause}", params))


def get_tx(conn: Conn, table: sa.Table, **pk: Any) -> dict[str, Any] | None:
    rows = select_tx(conn, table, pk)
    return rows[0] if rows else None


def exists_tx(conn: Conn, table: sa.Table, **pk: Any) -> bool:
    clause, params = _where(table, conn, pk)
    return conn.one(f"SELECT 1 AS x FROM {quote(table.name)}{clause}", params) is not None


def insert_tx(conn: Conn, table: sa.Table, values: Mapping[str, Any]) -> None:
    codec = codec_for(table, conn.dialect)  # type: ignore[arg-type]
    conn.execute(insert_sql(table.name, tuple(values)), codec.encode(values))


def update_tx(conn: Conn, table: sa.Table, pk: Mapping[str, Any], changes: Mapping[str, Any]) -> int:
    if not changes:
        return 0
    codec = codec_for(table, conn.dialect)  # type: ignore[arg-type]
    params = codec.encode(changes)
    params.update(codec.encode(pk, prefix="w_"))
    return conn.execute(update_sql(table.name, tuple(changes), tuple(pk)), params)


def delete_tx(conn: Conn, table: sa.Table, where: Mapping[str, Any]) -> int:
    clause, params = _where(table, conn, where)
    return conn.execute(f"DELETE FROM {quote(table.name)}{clause}", params)


def time_param(conn: Conn, value: datetime) -> Any:
    return encode_time(value, conn.dialect)  # type: ignore[arg-type]


def write_audit_tx(conn: Conn, ctx: RepoContext, actor: Actor, *, action: str, table: str,
                   object_id: str, before: Mapping[str, Any] | None,
                   updated: Mapping[str, Any] | None) -> None:
    """One audit row in the current transaction (nothing when audit is off). The values are views
    of rows (hashes, never clear keys) or the changed fields."""
    if not ctx.audit:
        return
    insert_tx(conn, audit_log, {
        "id": str(uuid.uuid4()),
        "updated_at": ctx.clock(),
        "changed_by": actor.changed_by or "",
        "changed_by_api_key": actor.api_key or "",
        "action": action,
        "table_name": LITELLM_TABLE_NAMES.get(table, table),
        "object_id": object_id,
        "before_value": jsonable(before) if before is not None else None,
        "updated_values": jsonable(updated) if updated is not None else None,
    })
