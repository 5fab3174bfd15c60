"""The writer's memory is bounded while the store is down and when it replays a dead process's
outbox (real store: SQLite file and PostgreSQL): records beyond ``max_queued`` stay in the outbox
only and are read back in order; a dead outbox is stored one batch at a time; nothing is lost and
every record is counted once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import trio

from trioproxy.spend import Outbox, SpendWriter, build_record, find_orphans
from trioproxy.spend.outbox import ADMITTED, FINAL
from trioproxy.store import Store

from .spend_helpers import FlakySink, assert_aggregates_match, inputs, record, scalar, segments


class _Watched(FlakySink):
    """Down until told; records the largest batch it was handed and signals repeated failures."""

    def __init__(self, store: Store):
        super().__init__(store)
        self.failing = trio.Event()
        self.largest = 0

    async def write(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        self.largest = max(self.largest, len(rows))
        try:
            return await super().write(rows)
        finally:
            if self.failed >= 2:
                self.failing.set()


async def test_a_long_outage_keeps_at_most_max_queued_records_in_memory(store: Store, outbox_dir: Path) -> None:
    sink = _Watched(store)
    sink.down = True
    writer = SpendWriter(sink, outbox_dir, batch_size=5, max_queued=10, flush_interval=0.01,
                         retry_initial=0.01, retry_max=0.02)
    items = [inputs(f"r{i}", spend=100 + i, key="a" * 64, end_user=f"c{i % 3}") for i in range(200)]
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        for item in items:
            writer.admitted(item)
            writer.finished(build_record(item))
        await sink.failing.wait()
        assert writer.pending == 200
        assert len(writer._queue) <= 10 and writer.queue_peak == 10
        assert writer.spilled == 190                     # durable in the outbox, not held in memory
        assert writer.outbox.unresolved == 200           # the finals (each superseded its admitted entry)
        sink.down = False
        assert await writer.drain(60)
        nursery.cancel_scope.cancel()
    assert writer.queue_peak == 10 and sink.largest <= 5
    assert await scalar(store, 'SELECT COUNT(*) AS n FROM "spend_logs"') == 200
    assert await scalar(store, 'SELECT SUM("spend") AS s FROM "spend_logs"') == sum(100 + i for i in range(200))
    assert writer.written == 200 and writer.duplicates == 0
    await assert_aggregates_match(store)
    assert writer.outbox.unresolved == 0


async def test_a_dead_outbox_is_replayed_one_batch_at_a_time(store: Store, outbox_dir: Path) -> None:
    """1 000 finals and 7 requests that were in flight when the process died (admitted, no final),
    interleaved across small segments: at most one batch is held, finals win, the in-flight ones
    are stored as failures, each request once."""
    dead = Outbox(outbox_dir, segment_size=32 * 1024)
    dead.open()
    for i in range(1000):
        dead.append(ADMITTED, record(f"d{i}", spend=0).to_json())
        if i % 150 == 7:
            dead.append(ADMITTED, record(f"inflight{i}", spend=0).to_json())
        dead.append(FINAL, record(f"d{i}", spend=10).to_json())
    dead.close()                                         # the lock is released, as at process death
    assert len(segments(outbox_dir)) > 5
    [orphan] = find_orphans(outbox_dir)
    sizes = [len(c) for c in orphan.chunks(64)]
    orphan.release()
    assert max(sizes) == 64 and sum(sizes) == 1007

    sink = _Watched(store)
    writer = SpendWriter(sink, outbox_dir, batch_size=50, flush_interval=0.01)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)                  # replays the dead outbox before it starts
        assert writer.replayed == 1007
        assert writer.replay_peak == 50 and sink.largest == 50
        assert await writer.drain(30)
        nursery.cancel_scope.cancel()
    assert await scalar(store, 'SELECT COUNT(*) AS n FROM "spend_logs"') == 1007
    assert await scalar(store, 'SELECT SUM("spend") AS s FROM "spend_logs"') == 10_000
    assert await scalar(store, 'SELECT COUNT(*) AS n FROM "spend_logs" WHERE "status" = \'failure\'') == 7
    assert find_orphans(outbox_dir) == []
