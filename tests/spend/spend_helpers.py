"""Helpers shared by the spend tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from trioproxy.spend import KeyIdentity, RecordInputs, SpendRecord, build_record
from trioproxy.store import Store, StoreUnavailable

BASE = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    """The store's injected wall clock."""

    def __init__(self, start: datetime = BASE):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def inputs(request_id: str, *, spend: int = 1000, key: str = "k" * 64, team: str | None = None,
           user: str | None = None, end_user: str | None = None, at: datetime = BASE,
           tags: Sequence[str] = (), status: str = "success", model: str = "gpt-4o") -> RecordInputs:
    t = at.timestamp()
    return RecordInputs(request_id=request_id, call_type="acompletion", start_time=t, end_time=t + 0.5,
                        identity=KeyIdentity(api_key=key, team_id=team, user_id=user), model=model,
                        model_group=model, status=status, spend_micros=spend, prompt_tokens=10,
                        completion_tokens=5, end_user=end_user, body_tags=list(tags))  # type: ignore[arg-type]


def record(request_id: str, **kw: Any) -> SpendRecord:
    return build_record(inputs(request_id, **kw))


async def rows(store: Store, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    return await store.db.read(lambda c: c.all(sql, params))


async def scalar(store: Store, sql: str, params: Mapping[str, Any] | None = None) -> Any:
    return await store.db.read(lambda c: c.scalar(sql, params))


async def assert_aggregates_match(store: Store) -> None:
    """Every aggregate equals the sum of the ledger rows it covers (lifetime budgets)."""
    logs = await rows(store, 'SELECT "api_key", "team_id", "user_id", "end_user", "spend" FROM "spend_logs"')
    by_key: dict[str, int] = {}
    for r in logs:
        by_key[r["api_key"]] = by_key.get(r["api_key"], 0) + r["spend"]
    for k in await rows(store, 'SELECT "token", "spend" FROM "virtual_keys"'):
        assert k["spend"] == by_key.get(k["token"], 0), k
    for c in await rows(store, 'SELECT "user_id", "spend" FROM "end_users"'):
        assert c["spend"] == sum(r["spend"] for r in logs if r["end_user"] == c["user_id"]), c
    for t in await rows(store, 'SELECT "team_id", "spend" FROM "teams"'):
        assert t["spend"] == sum(r["spend"] for r in logs if r["team_id"] == t["team_id"]), t
    daily = await rows(store, 'SELECT "entity_id", "spend", "api_requests" FROM "daily_spend" WHERE "entity_type" = \'key\'')
    assert sum(d["spend"] for d in daily) == sum(r["spend"] for r in logs)
    assert sum(d["api_requests"] for d in daily) == len(logs)


class FlakySink:
    """``store.spend`` that fails with StoreUnavailable while ``down`` (the database "stopped")."""

    def __init__(self, store: Store):
        self.store = store
        self.down = False
        self.attempts = 0
        self.failed = 0

    async def write(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        self.attempts += 1
        if self.down:
            self.failed += 1
            raise StoreUnavailable("database unavailable (test)")
        return await self.store.spend.write(rows)


def segments(directory: Path) -> list[Path]:
    """The outbox segment files left in ``directory``."""
    return sorted(directory.glob("*.seg"))
