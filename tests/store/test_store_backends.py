"""The two backends behind one interface: reads, writes, group commit, failures, lifecycle."""

from __future__ import annotations

import threading

import pytest
import trio

from trioproxy.store import StoreClosed
from trioproxy.store.database import open_database
from trioproxy.store.errors import UniqueViolation
from trioproxy.store.sql import Conn


def _insert_budget(budget_id: str, micros: int = 1):
    def job(conn: Conn) -> str:
        conn.execute('INSERT INTO "budgets" ("budget_id", "max_budget") VALUES (:id, :m)', {"id": budget_id, "m": micros})
        return budget_id
    return job


def _count(conn: Conn) -> int:
    return int(conn.scalar('SELECT COUNT(*) FROM "budgets"'))


async def test_read_and_write(db_url: str) -> None:
    db = open_database(db_url)
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        assert await db.write(_insert_budget("b1", 2**40)) == "b1"
        row = await db.read(lambda c: c.one('SELECT * FROM "budgets" WHERE "budget_id" = :id', {"id": "b1"}))
        assert row["max_budget"] == 2**40          # BIGINT on both dialects
        nursery.cancel_scope.cancel()


async def test_a_failing_write_rolls_back_alone_and_raises(db_url: str) -> None:
    db = open_database(db_url)
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        await db.write(_insert_budget("dup"))

        def half_then_fail(conn: Conn) -> None:
            _insert_budget("half")(conn)
            _insert_budget("dup")(conn)          # unique violation: the whole job rolls back

        with pytest.raises(UniqueViolation) as info:
            await db.write(half_then_fail)
        assert info.value.table == "budgets"
        assert await db.read(_count) == 1
        nursery.cancel_scope.cancel()


async def test_write_on_a_stopped_store_is_refused(db_url: str) -> None:
    db = open_database(db_url)
    with pytest.raises(StoreClosed):
        await db.write(_insert_budget("x"))
    with pytest.raises(StoreClosed):
        await db.read(_count)


async def test_concurrent_writes_all_commit(db_url: str) -> None:
    db = open_database(db_url)
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        async with trio.open_nursery() as writers:
            for i in range(64):
                writers.start_soon(db.write, _insert_budget(f"b{i}"))
        assert await db.read(_count) == 64
        assert await db.drain(5) is True
        nursery.cancel_scope.cancel()


async def test_sqlite_group_commit_batches_queued_writes_and_isolates_failures(tmp_path, sqlite_template) -> None:
    """While the writer is busy, writes queue up; the next batch commits them in ONE transaction,
    and the one that violates a constraint fails alone."""
    import shutil

    path = tmp_path / "g.db"
    shutil.copyfile(sqlite_template, path)
    db = open_database(f"sqlite:///{path}")
    gate = threading.Event()
    entered = trio.Event()
    token = None

    def blocker(conn: Conn) -> str:
        token.run_sync_soon(entered.set)
        gate.wait(10)               # holds the writer thread: everything else queues
        return "first"

    results: dict[str, object] = {}

    async def submit(name: str, job) -> None:
        try:
            results[name] = await db.write(job)
        except UniqueViolation as exc:
            results[name] = exc

    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        await db.write(_insert_budget("taken"))
        token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as writers:
            writers.start_soon(submit, "blocker", blocker)
            await entered.wait()
            for i in range(10):
                writers.start_soon(submit, f"w{i}", _insert_budget(f"w{i}"))
            writers.start_soon(submit, "bad", _insert_budget("taken"))
            await trio.testing.wait_all_tasks_blocked()
            assert len(db._queue) == 11
            gate.set()
        assert db.batches[-1] == 11            # the ten good writes and the bad one: one transaction
        assert isinstance(results["bad"], UniqueViolation)
        assert all(results[f"w{i}"] == f"w{i}" for i in range(10))
        assert await db.read(_count) == 11     # taken + w0..w9
        nursery.cancel_scope.cancel()


async def test_sqlite_batches_are_capped(tmp_path, sqlite_template) -> None:
    import shutil

    path = tmp_path / "cap.db"
    shutil.copyfile(sqlite_template, path)
    db = open_database(f"sqlite:///{path}", max_batch=4)
    gate = threading.Event()
    entered = trio.Event()

    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        token = trio.lowlevel.current_trio_token()

        def blocker(conn: Conn) -> None:
            token.run_sync_soon(entered.set)
            gate.wait(10)

        async with trio.open_nursery() as writers:
            writers.start_soon(db.write, blocker)
            await entered.wait()
            for i in range(10):
                writers.start_soon(db.write, _insert_budget(f"c{i}"))
            await trio.testing.wait_all_tasks_blocked()
            gate.set()
        assert db.batches[-3:] == [4, 4, 2]
        nursery.cancel_scope.cancel()


async def test_a_cancelled_writer_still_commits_what_it_queued(db_url: str) -> None:
    db = open_database(db_url)
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        with trio.CancelScope() as scope:
            scope.cancel()               # already cancelled: the write is queued, waited for shielded
            await db.write(_insert_budget("kept"))
        assert await db.read(lambda c: c.one('SELECT * FROM "budgets" WHERE "budget_id" = :id', {"id": "kept"}))
        nursery.cancel_scope.cancel()


async def test_unique_violation_names_the_column(db_url: str) -> None:
    from trioproxy.store.repositories.base import insert_tx

    db = open_database(db_url)
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        from trioproxy.store.schema import internal_users

        def add(user_id: str, email: str):
            return lambda conn: insert_tx(conn, internal_users, {"user_id": user_id, "user_email": email})

        await db.write(add("u1", "a@x"))
        with pytest.raises(UniqueViolation) as info:
            await db.write(add("u2", "a@x"))
        assert (info.value.table, info.value.column) == ("internal_users", "user_email")
        with pytest.raises(UniqueViolation) as info:
            await db.write(add("u1", "b@x"))
        assert info.value.table == "internal_users"
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_statement_postgresql_refuses_for_good_is_not_unavailability(db_url: str) -> None:
    """psycopg classes "program limit exceeded" (SQLSTATE 54xxx: an index row too large, an array too
    long) as an OperationalError, like a lost connection. Called "unavailable", the spend writer would
    retry that record forever; it is a plain StoreError (the writer parks it), and the store still works."""
    from trioproxy.store.errors import StoreError, StoreUnavailable

    db = open_database(db_url)
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        with pytest.raises(StoreError) as info:
            await db.write(lambda conn: conn.execute("SELECT array_fill(1, ARRAY[200000000])"))
        assert not isinstance(info.value, StoreUnavailable)
        assert "SQLSTATE 54" in str(info.value)
        assert await db.write(_insert_budget("after")) == "after"
        nursery.cancel_scope.cancel()
