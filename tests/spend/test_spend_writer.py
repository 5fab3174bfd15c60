"""The writer against a real store (SQLite file and PostgreSQL): exactly once, aggregates equal the
sum of records, store down → kept and written once after recovery, drain at shutdown, a bad record
parked without stopping the others."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import trio

from trioproxy.spend import Outbox, SpendWriter, build_record, find_orphans
from trioproxy.spend.outbox import FINAL
from trioproxy.store import Actor, Store

from .spend_helpers import (
    FlakySink,
    assert_aggregates_match,
    inputs,
    record,
    rows,
    scalar,
    segments,
)

ADMIN = Actor("admin")


async def _identity(store: Store) -> None:
    await store.teams.create({"team_id": "t1"}, [], ADMIN)
    await store.users.create({"user_id": "u1"}, ADMIN, teams_to_join=["t1"])
    await store.keys.create({"token": "a" * 64, "key_name": "sk-...aaaa", "team_id": "t1", "user_id": "u1"}, ADMIN)
    await store.keys.create({"token": "b" * 64, "key_name": "sk-...bbbb", "user_id": "u1"}, ADMIN)


def _mixed(n: int, prefix: str = "r") -> list[Any]:
    out = []
    for i in range(n):
        if i % 3 == 0:
            out.append(inputs(f"{prefix}{i}", spend=1000 + i, key="a" * 64, team="t1", user="u1",
                              end_user=f"c{i % 2}", tags=["x", "y"]))
        elif i % 3 == 1:
            out.append(inputs(f"{prefix}{i}", spend=2000 + i, key="b" * 64, user="u1", tags=["y"]))
        else:
            out.append(inputs(f"{prefix}{i}", spend=0, key="b" * 64, user="u1", status="failure"))
    return out


async def test_every_record_once_and_aggregates_equal_the_ledger(store: Store, outbox_dir: Path) -> None:
    await _identity(store)
    writer = SpendWriter(store.spend, outbox_dir, batch_size=7, flush_interval=0.01)
    batch = _mixed(40)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        for item in batch:
            writer.admitted(item)
            writer.finished(build_record(item))
        writer.finished(build_record(batch[0]))          # a duplicate hand-off is stored once
        assert await writer.drain(30)
        nursery.cancel_scope.cancel()
    assert await scalar(store, 'SELECT COUNT(*) AS n FROM "spend_logs"') == 40
    assert writer.written == 40 and writer.duplicates == 1
    await assert_aggregates_match(store)
    assert await scalar(store, 'SELECT "spend" FROM "team_memberships" WHERE "team_id" = \'t1\'') == \
        sum(i.spend_micros for i in batch if i.identity.team_id == "t1")
    assert await scalar(store, 'SELECT "spend" FROM "internal_users" WHERE "user_id" = \'u1\'') == \
        sum(i.spend_micros for i in batch)
    tags = {r["entity_id"]: r for r in await rows(
        store, 'SELECT "entity_id", SUM("api_requests") AS n FROM "daily_spend" WHERE "entity_type" = \'tag\' '
        'GROUP BY "entity_id"')}
    assert tags["x"]["n"] == 14 and tags["y"]["n"] == 27
    failed = await scalar(store, 'SELECT SUM("failed_requests") AS n FROM "daily_spend" WHERE "entity_type" = \'key\'')
    assert failed == 13
    # every record committed: the outbox holds nothing unresolved
    assert writer.outbox.unresolved == 0 if writer.outbox.segment_count else True


async def test_writing_the_same_records_again_counts_nothing(store: Store) -> None:
    await _identity(store)
    rows_ = [build_record(i).to_row() for i in _mixed(12)]
    first = await store.spend.write(rows_)
    again = await store.spend.write(rows_[3:] + rows_[:3])
    assert len(first) == 12 and again == []
    assert await scalar(store, 'SELECT COUNT(*) AS n FROM "spend_logs"') == 12
    await assert_aggregates_match(store)


class _Signal(FlakySink):
    """Sets ``failing`` once two writes failed (the writer is retrying with backoff)."""

    def __init__(self, store: Store):
        super().__init__(store)
        self.failing = trio.Event()

    async def write(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        try:
            return await super().write(rows)
        finally:
            if self.failed >= 2:
                self.failing.set()


async def test_store_down_keeps_records_then_writes_them_once(store: Store, outbox_dir: Path) -> None:
    await _identity(store)
    sink = _Signal(store)
    sink.down = True
    writer = SpendWriter(sink, outbox_dir, batch_size=5, flush_interval=0.01, retry_initial=0.01, retry_max=0.05)
    batch = _mixed(12)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        for item in batch:
            writer.admitted(item)
            writer.finished(build_record(item))
        await sink.failing.wait()
        assert await scalar(store, 'SELECT COUNT(*) AS n FROM "spend_logs"') == 0
        assert writer.pending == 12
        assert writer.outbox.unresolved == 12            # the finals (each superseded its admitted entry)
        sink.down = False
        assert await writer.drain(30)
        nursery.cancel_scope.cancel()
    assert await scalar(store, 'SELECT COUNT(*) AS n FROM "spend_logs"') == 12
    assert writer.written == 12 and writer.duplicates == 0
    await assert_aggregates_match(store)


async def test_drain_writes_everything_queued_at_shutdown(store: Store, outbox_dir: Path) -> None:
    # a long flush interval and a large batch: without drain nothing would be written for a while
    writer = SpendWriter(store.spend, outbox_dir, batch_size=10_000, flush_interval=1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        for i in range(300):
            writer.finished(record(f"q{i}", spend=i))
        assert await writer.drain(30)
        nursery.cancel_scope.cancel()
    assert await scalar(store, 'SELECT COUNT(*) AS n FROM "spend_logs"') == 300
    assert await scalar(store, 'SELECT SUM("spend") AS s FROM "spend_logs"') == sum(range(300))
    assert not segments(outbox_dir)             # closed cleanly: nothing left to replay


class _Refusing:
    def __init__(self, store: Store, bad: str):
        self.store = store
        self.bad = bad

    async def write(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        if any(r["request_id"] == self.bad for r in rows):
            raise ValueError("refused (test)")
        return await self.store.spend.write(rows)


async def test_a_record_the_store_refuses_is_parked_and_the_rest_stored(store: Store, outbox_dir: Path) -> None:
    writer = SpendWriter(_Refusing(store, "r5"), outbox_dir, batch_size=16, flush_interval=0.01,
                         retry_initial=0.001, retry_max=0.001)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        for i in range(16):
            writer.finished(record(f"r{i}"))
        assert await writer.drain(30)
        nursery.cancel_scope.cancel()
    assert await scalar(store, 'SELECT COUNT(*) AS n FROM "spend_logs"') == 15
    assert [r.request_id for r in writer.parked] == ["r5"]
    # kept in the outbox for the next start
    assert segments(outbox_dir)


async def test_a_record_the_store_refuses_does_not_stop_the_replay_of_dead_outboxes(
        store: Store, outbox_dir: Path) -> None:
    """Two dead processes' outboxes, one holding a record the store refuses: every other record of
    both is stored once; the refused one is parked and kept in an outbox for the next start."""
    for prefix, n in (("d", 10), ("e", 3)):
        dead = Outbox(outbox_dir, segment_size=64 * 1024)
        dead.open()
        for i in range(n):
            dead.append(FINAL, record(f"{prefix}{i}", spend=i).to_json())
        dead.close()                                     # the lock is released, as at process death
    writer = SpendWriter(_Refusing(store, "d5"), outbox_dir, flush_interval=0.01)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)                  # replays the dead outboxes before it starts
        assert await scalar(store, 'SELECT COUNT(*) AS n FROM "spend_logs"') == 12
        assert writer.replayed == 12
        assert [r.request_id for r in writer.parked] == ["d5"]
        assert await writer.drain(30)
        nursery.cancel_scope.cancel()
    assert await scalar(store, 'SELECT SUM("spend") AS s FROM "spend_logs"') == sum(range(10)) - 5 + sum(range(3))
    # the refused record survives for the next start; nothing else is left to replay
    assert [r.request_id for orphan in find_orphans(outbox_dir) for r in orphan.load()] == ["d5"]


async def test_client_supplied_nul_characters_never_make_a_record_unstorable(store: Store,
                                                                             outbox_dir: Path) -> None:
    """The request's ``user``, its tags and its spend_logs_metadata (body or header JSON) come from
    the client, error messages from the upstream: a NUL character in them must not make PostgreSQL
    refuse the record (that would park it: a request served and never charged)."""
    from trioproxy.spend import ErrorInfo

    nul = inputs("nul-1", spend=4321, end_user="cust\x00omer", tags=["t\x00ag"])
    nul = replace(nul, request_metadata={"spend_logs_metadata": {"k\x00": "v\x00", "n": ["\x00"]},
                                         "session_id": "s\x00"},
                  error=ErrorInfo("APIError", "500", "upstream said \x00"), status="failure")
    writer = SpendWriter(store.spend, outbox_dir, flush_interval=0.01, retry_initial=0.001, retry_max=0.001)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        writer.admitted(nul)
        writer.finished(build_record(nul))
        assert await writer.drain(30)
        nursery.cancel_scope.cancel()
    assert writer.parked == []
    [row] = await store.spend.logs(request_id="nul-1")
    assert row["spend"] == 4321
    assert "\x00" not in repr(row)
    assert await scalar(store, 'SELECT "spend" FROM "end_users"') == 4321


async def test_client_supplied_values_longer_than_their_column_never_make_a_record_unstorable(
        store: Store, outbox_dir: Path) -> None:
    """A request's ``user`` of 300 characters (or a tag, or a session id): PostgreSQL refuses a
    value longer than its VARCHAR column, which would park the record — a request served and never
    charged. The value is cut to the column's length instead."""
    long_user, long_tag = "u" * 300, "t" * 300
    item = replace(inputs("long-1", spend=987, end_user=long_user, tags=[long_tag, "short"]),
                   request_metadata={"session_id": "s" * 300})
    writer = SpendWriter(store.spend, outbox_dir, flush_interval=0.01, retry_initial=0.001, retry_max=0.001)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        writer.finished(build_record(item))
        assert await writer.drain(30)
        nursery.cancel_scope.cancel()
    assert writer.parked == []
    [row] = await store.spend.logs(request_id="long-1")
    assert (row["spend"], row["end_user"], row["session_id"]) == (987, long_user[:255], "s" * 255)
    assert await scalar(store, 'SELECT "spend" FROM "end_users"') == 987
    tags = await rows(store, 'SELECT "entity_id" FROM "daily_spend" WHERE "entity_type" = \'tag\' ORDER BY 1')
    assert [t["entity_id"] for t in tags] == ["short", long_tag[:255]]


async def test_a_hand_off_the_outbox_cannot_take_is_still_stored(store: Store, outbox_dir: Path) -> None:
    writer = SpendWriter(store.spend, outbox_dir, flush_interval=0.01)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        active = writer.outbox._active
        writer.outbox._active = None                     # the outbox refuses (as with a full disk)
        writer.finished(record("no-outbox"))             # never raises on the request path
        writer.outbox._active = active
        assert writer.outbox_failures == 1
        assert await writer.drain(30)
        nursery.cancel_scope.cancel()
    assert await scalar(store, 'SELECT COUNT(*) AS n FROM "spend_logs"') == 1
    writer.finished(record("after-stop"))                # after shutdown: logged, not raised
    assert writer.outbox_failures == 2
