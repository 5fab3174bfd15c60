"""PostgreSQL stopped under a running writer (a server of the test's own): records are kept, the
writer retries, and after the server is back every record is stored exactly once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import trio

from trioproxy.spend import SpendWriter, build_record
from trioproxy.store import Actor, Store, StoreUnavailable, open_store

from .own_postgres import OwnPostgres
from .spend_helpers import assert_aggregates_match, inputs, scalar


class Watched:
    """``store.spend`` that reports when writes have failed twice in a row."""

    def __init__(self, store: Store):
        self.store = store
        self.failed = 0
        self.failing = trio.Event()

    async def write(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        try:
            return await self.store.spend.write(rows)
        except StoreUnavailable:
            self.failed += 1
            if self.failed >= 2:
                self.failing.set()
            raise


async def test_postgres_stopped_then_restarted(tmp_path: Path) -> None:
    pg = OwnPostgres()
    await trio.to_thread.run_sync(pg.init)
    await trio.to_thread.run_sync(pg.start)
    try:
        async with open_store(pg.dsn, pool_size=2) as store:
            await store.keys.create({"token": "a" * 64, "key_name": "sk-...aaaa"}, Actor("admin"))
            sink = Watched(store)
            writer = SpendWriter(sink, tmp_path / "outbox", batch_size=10, flush_interval=0.01,
                                 retry_initial=0.05, retry_max=0.2)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                for i in range(20):
                    writer.finished(build_record(inputs(f"before-{i}", spend=10, key="a" * 64)))
                assert await writer.drain(60)
                await trio.to_thread.run_sync(pg.stop)                       # the database goes away
                for i in range(30):
                    item = inputs(f"during-{i}", spend=100, key="a" * 64, end_user="c")
                    writer.admitted(item)
                    writer.finished(build_record(item))
                await sink.failing.wait()
                assert writer.pending == 30 and writer.outbox.unresolved == 30   # finals (each superseded its admitted entry)
                await trio.to_thread.run_sync(pg.start)                      # and comes back
                assert await writer.drain(120)
                nursery.cancel_scope.cancel()
            assert await scalar(store, 'SELECT COUNT(*) AS n FROM "spend_logs"') == 50
            assert await scalar(store, 'SELECT "spend" FROM "virtual_keys"') == 20 * 10 + 30 * 100
            await assert_aggregates_match(store)
            assert writer.written == 50 and writer.duplicates == 0
    finally:
        with trio.CancelScope(shield=True):
            try:
                await trio.to_thread.run_sync(lambda: pg.stop("fast"))
            finally:
                pg.cleanup()
