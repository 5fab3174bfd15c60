"""Issue #13, requirement 3: spend exactly once across instances. Two stores — two processes' worth:
their own connection pools — on one PostgreSQL database write the same records at the same time and
again (a retry after a lost acknowledgement, an outbox replayed by another instance): every request
is counted once and every aggregate equals the sum of its records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from support.keys_support import Database, make_database
from trioproxy.spend import build_record
from trioproxy.store import Actor, open_store

from .spend_helpers import assert_aggregates_match, inputs, scalar

KEY = "e" * 64


@pytest.fixture
def database(pg_dsn: str, tmp_path: Path) -> Iterator[Database]:
    db = make_database("postgresql", tmp_path, pg_dsn)
    yield db
    db.drop()


async def test_two_instances_writing_the_same_records_count_each_once(database: Database) -> None:
    records = [build_record(inputs(f"req-{i}", spend=100 + i, key=KEY, team="t", end_user=f"c{i % 3}"))
               for i in range(60)]
    rows = [r.to_row() for r in records]
    async with open_store(database.url) as first, open_store(database.url, migrate=False) as second:
        await first.teams.create({"team_id": "t"}, [], Actor("admin"))
        await first.keys.create({"token": KEY, "key_name": "sk-...eeee", "team_id": "t"}, Actor("admin"))
        inserted: dict[str, list[str]] = {}

        async def write(name: str, store: object, batch: list[object]) -> None:
            for start in range(0, len(batch), 7):
                got = await store.spend.write(batch[start:start + 7])  # type: ignore[attr-defined]
                inserted.setdefault(name, []).extend(got)

        async with trio.open_nursery() as nursery:      # both at once, in opposite orders
            nursery.start_soon(write, "first", first, rows)
            nursery.start_soon(write, "second", second, list(reversed(rows)))
        await write("retry", second, rows)              # everything again: a lost acknowledgement
        everything = inserted.get("first", []) + inserted.get("second", []) + inserted.get("retry", [])
        assert sorted(everything) == sorted(f"req-{i}" for i in range(60))      # each inserted by one
        assert inserted.get("retry", []) == []
        assert await scalar(first, 'SELECT COUNT(*) FROM "spend_logs"') == 60
        assert await scalar(first, 'SELECT "spend" FROM "virtual_keys"') == sum(100 + i for i in range(60))
        await assert_aggregates_match(first)
