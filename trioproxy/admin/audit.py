"""``GET /audit`` (filters, pages; newest first) and ``GET /audit/{id}``."""

from __future__ import annotations

from typing import Any

from ..store.views import audit_view
from .access import Access, Caller, require
from .common import AdminContext, store_errors
from .errors import not_found
from .validation import date_or_time, one_of, query_int, string, validate

__all__ = ["audit_get", "audit_list"]

ACTIONS = ("created", "updated", "deleted", "blocked", "unblocked", "rotated")


async def audit_list(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    """``?page=&page_size=(≤100)&action=&table_name=&object_id=&changed_by=&start_date=&end_date=``

    ``start_date`` is inclusive, ``end_date`` exclusive; a bare date means its midnight UTC.
    """
    route = "/audit"
    require(caller, Access.ADMIN_READ, route)
    store = ctx.require_store()
    query = validate(data, {"page": lambda v: v, "page_size": lambda v: v, "action": one_of(*ACTIONS),
                            "table_name": string, "object_id": string, "changed_by": string,
                            "start_date": date_or_time, "end_date": date_or_time}, route)
    page = query_int(query.get("page"), "page", route, default=1)
    size = query_int(query.get("page_size"), "page_size", route, default=50, maximum=100)
    with store_errors():
        result = await store.audit.list(action=query.get("action"), table_name=query.get("table_name"),
                                        object_id=query.get("object_id"), changed_by=query.get("changed_by"),
                                        start_date=query.get("start_date"), end_date=query.get("end_date"),
                                        page=page, size=size)
    return {"audit_logs": [audit_view(r) for r in result.rows], "total": result.total, "page": page,
            "page_size": size, "total_pages": result.total_pages}


async def audit_get(ctx: AdminContext, caller: Caller, data: Any) -> dict[str, Any]:
    route = "/audit/{id}"
    require(caller, Access.ADMIN_READ, route)
    store = ctx.require_store()
    audit_id = validate(data, {"id": string}, route, required=("id",))["id"]
    with store_errors():
        row = await store.audit.get(audit_id)
    if row is None:
        raise not_found(f"Audit log not found: {audit_id}", param="id")
    return audit_view(row)
