"""The request path's view of customers (the request's ``user``): ``await customer_cache.find(user)``.

The same loading cache as the key cache (``loading_cache.py``): a hit is a dict lookup; a miss one
``SELECT`` in a worker thread. Unknown customers are the common case (any ``user`` value is a
customer), so "no row" is cached like a record (``negative_ttl``, 60 s by default here) and dropped
at once by the invalidation that ``/customer/block`` (an upsert) publishes in this process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from .database import Database
from .errors import StoreUnavailable
from .invalidation import Invalidation, InvalidationBus
from .loading_cache import MISS, LoadingCache
from .schema import budgets, end_users
from .sql import Conn, codec_for
from .sql_select import select_list
from .unavailable import OutageLog, unavailable_is_503

__all__ = ["MAX_CUSTOMER_ID", "CustomerCache", "CustomerRecord", "load_customer_tx"]

#: the longest customer id the store holds (``end_users.user_id`` is ``VARCHAR(255)``)
MAX_CUSTOMER_ID = 255


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    user_id: str
    blocked: bool
    alias: str | None
    spend: int
    allowed_model_region: str | None
    default_model: str | None
    budget_id: str | None
    max_budget: int | None
    soft_budget: int | None
    tpm_limit: int | None
    rpm_limit: int | None
    max_parallel_requests: int | None
    budget_duration: str | None
    budget_reset_at: datetime | None


def load_customer_tx(conn: Conn, user_id: str) -> CustomerRecord | None:
    sql = (f"SELECT {select_list('c', end_users)}, {select_list('b', budgets)} FROM \"end_users\" c "
           'LEFT JOIN "budgets" b ON b."budget_id" = c."budget_id" WHERE c."user_id" = :id')
    raw = conn.one(sql, {"id": user_id})
    if raw is None:
        return None
    c = codec_for(end_users, conn.dialect).decode(raw, "c__")  # type: ignore[arg-type]
    b = codec_for(budgets, conn.dialect).decode(raw, "b__") if raw.get("b__budget_id") else {}  # type: ignore[arg-type]
    return CustomerRecord(
        user_id=c["user_id"], blocked=bool(c["blocked"]), alias=c["alias"], spend=c["spend"] or 0,
        allowed_model_region=c["allowed_model_region"], default_model=c["default_model"],
        budget_id=c["budget_id"], max_budget=b.get("max_budget"), soft_budget=b.get("soft_budget"),
        tpm_limit=b.get("tpm_limit"), rpm_limit=b.get("rpm_limit"),
        max_parallel_requests=b.get("max_parallel_requests"), budget_duration=b.get("budget_duration"),
        budget_reset_at=b.get("budget_reset_at"))


class CustomerCache(LoadingCache[CustomerRecord]):
    """Customers for the request path (see the module docstring). Subscribes to ``bus``."""

    def __init__(self, db: Database, bus: InvalidationBus, *, ttl: float = 60.0, negative_ttl: float = 60.0,
                 max_entries: int = 100_000, max_negative: int = 100_000,
                 monotonic: Callable[[], float] = time.monotonic):
        self._db = db
        super().__init__(self._load_record, ttl=ttl, negative_ttl=negative_ttl, max_entries=max_entries,
                         max_negative=max_negative, monotonic=monotonic, live=lambda: bus.live,
                         stale_errors=(StoreUnavailable,))
        self._outage = OutageLog("customer", monotonic)
        bus.subscribe(self._on_event)
        bus.on_reset(self.clear)

    async def _load_record(self, user_id: str) -> CustomerRecord | None:
        return await self._db.read(lambda conn: load_customer_tx(conn, user_id))

    async def find(self, user_id: str) -> CustomerRecord | None:
        """The customer ``user_id`` (the request's ``user``), or ``None`` when there is no such row.

        A value no customer row can have (over 255 characters, or with a NUL: the admin routes refuse
        both) is answered ``None`` without a query. The store being unavailable is a 503
        (``store_unavailable``): a block must not lapse because the database is down.
        """
        if len(user_id) > MAX_CUSTOMER_ID or "\x00" in user_id:
            return None
        record = self.lookup(user_id)
        if record is MISS:
            with unavailable_is_503(self._outage):
                record = await self.get(user_id)
        return record  # type: ignore[return-value]

    async def is_blocked(self, user_id: str) -> bool:
        record = await self.find(user_id)
        return record is not None and record.blocked

    def _on_event(self, event: Invalidation) -> None:
        if event.kind == "customer":
            self.invalidate([event.id])
        elif event.kind == "all":
            self.clear()
