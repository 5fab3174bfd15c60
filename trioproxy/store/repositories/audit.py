"""Reading the audit log (``GET /audit``, ``GET /audit/{id}``). Writing happens inside each
mutation's transaction (``base.write_audit_tx``); the proxy never updates or deletes audit rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..schema import audit_log
from ..sql import Conn
from .base import Page, RepoContext, count_tx, get_tx, select_tx, time_param

__all__ = ["AuditRepository"]


class AuditRepository:
    def __init__(self, ctx: RepoContext):
        self.ctx = ctx

    async def get(self, audit_id: str) -> dict[str, Any] | None:
        return await self.ctx.db.read(lambda conn: get_tx(conn, audit_log, id=audit_id))

    async def list(self, *, action: str | None = None, table_name: str | None = None,
                   object_id: str | None = None, changed_by: str | None = None,
                   start_date: datetime | None = None, end_date: datetime | None = None,
                   page: int = 1, size: int = 50) -> Page:
        """Newest first. ``start_date`` inclusive, ``end_date`` exclusive."""
        where = {k: v for k, v in (("action", action), ("table_name", table_name), ("object_id", object_id),
                                   ("changed_by", changed_by)) if v is not None}

        def run(conn: Conn) -> Page:
            parts, params = [], {}
            if start_date is not None:
                parts.append('"updated_at" >= :start')
                params["start"] = time_param(conn, start_date)
            if end_date is not None:
                parts.append('"updated_at" < :end')
                params["end"] = time_param(conn, end_date)
            extra = (" AND ".join(parts), params) if parts else None
            total = count_tx(conn, audit_log, where, extra)
            rows = select_tx(conn, audit_log, where, order_by=("-updated_at", "-id"), limit=size,
                             offset=(page - 1) * size, extra=extra)
            return Page(rows, total, page, size)

        return await self.ctx.db.read(run)
