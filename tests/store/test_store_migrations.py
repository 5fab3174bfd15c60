"""Migrations: an empty database and a previous-version database reach the newest schema on both
backends; several instances migrating at once create it once; ``trioproxy db upgrade|status``."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from trioproxy.store import migrate, schema
from trioproxy.store.url import parse_database_url

TRIOPROXY = str(Path(sys.executable).parent / "trioproxy")


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(parse_database_url(url).sqlalchemy_url, poolclass=sa.NullPool)


def _schema_differences(url: str) -> list:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "compare_type": True, "compare_server_default": True, "version_table": schema.VERSION_TABLE})
            return compare_metadata(context, schema.metadata)
    finally:
        engine.dispose()


def _version_rows(url: str) -> list:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT version_num FROM {schema.VERSION_TABLE}")).fetchall()
    finally:
        engine.dispose()


def test_an_empty_database_is_migrated_to_the_current_schema(empty_db_url: str) -> None:
    before = migrate.status(empty_db_url)
    assert before.current is None and before.pending == ["0001", "0002", "0003", "0004"] and not before.up_to_date
    after = migrate.upgrade(empty_db_url)
    assert after.current == after.head == "0004" and after.up_to_date and after.pending == []
    assert _schema_differences(empty_db_url) == []           # the migrations build exactly schema.py
    assert migrate.upgrade(empty_db_url).current == "0004"   # idempotent
    assert _version_rows(empty_db_url) == [("0004",)]


def test_a_previous_version_database_keeps_its_data(empty_db_url: str) -> None:
    assert migrate.upgrade(empty_db_url, "0001").current == "0001"
    assert migrate.status(empty_db_url).pending == ["0002", "0003", "0004"]
    engine = _engine(empty_db_url)
    with engine.begin() as conn:
        conn.execute(sa.text('INSERT INTO virtual_keys (token, key_name, key_alias, max_budget) '
                             "VALUES ('abc', 'sk-...abcd', 'old-key', 5000000)"))
        conn.execute(sa.text("INSERT INTO teams (team_id) VALUES ('t1')"))
        conn.execute(sa.text("INSERT INTO internal_users (user_id) VALUES ('u1')"))
        conn.execute(sa.text("INSERT INTO team_memberships (team_id, user_id, max_budget_in_team, spend) "
                             "VALUES ('t1', 'u1', 2000000, 150)"))
    engine.dispose()
    assert migrate.upgrade(empty_db_url).current == "0004"
    assert _schema_differences(empty_db_url) == []
    engine = _engine(empty_db_url)
    with engine.begin() as conn:
        row = conn.execute(sa.text("SELECT key_alias, max_budget, blocked, models, last_active "
                                   "FROM virtual_keys WHERE token = 'abc'")).one()
        # server defaults of revision 0001 filled the columns the INSERT did not name
        assert row[0] == "old-key" and row[1] == 5_000_000 and not row[2] and row[4] is None
        assert conn.execute(sa.text("SELECT COUNT(*) FROM audit_log")).scalar() == 0
        # revision 0002's autoincrement BIGINT id works on both dialects
        for rid in ("r1", "r2"):
            conn.execute(sa.text("INSERT INTO spend_logs (request_id, start_time, end_time) "
                                 "VALUES (:r, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"r": rid})
        ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM spend_logs ORDER BY id"))]
        assert len(set(ids)) == 2 and all(isinstance(i, int) for i in ids)
        # revision 0003: an existing membership keeps its budget and spend and stays lifetime
        member = conn.execute(sa.text("SELECT max_budget_in_team, spend, budget_duration, budget_reset_at "
                                      "FROM team_memberships")).one()
        assert tuple(member) == (2_000_000, 150, None, None)
    engine.dispose()


def test_downgrade_to_empty_and_back(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url)
    assert migrate.downgrade(empty_db_url, "0001").current == "0001"
    assert migrate.downgrade(empty_db_url, "base").current is None
    assert migrate.upgrade(empty_db_url).current == "0004"
    assert _schema_differences(empty_db_url) == []


def test_concurrent_upgrades_in_threads_create_the_schema_once(empty_db_url: str) -> None:
    barrier = threading.Barrier(6)
    results: list[object] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(migrate.upgrade(empty_db_url).current)
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == ["0004"] * 6
    assert _version_rows(empty_db_url) == [("0004",)]
    assert _schema_differences(empty_db_url) == []


def _upgrade_in_process(url: str, barrier, queue) -> None:  # runs in a spawned process
    barrier.wait()
    try:
        queue.put(migrate.upgrade(url).current)
    except BaseException as exc:
        queue.put(repr(exc))


def test_concurrent_upgrades_in_processes_create_the_schema_once(empty_db_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_upgrade_in_process, args=(empty_db_url, barrier, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    outcomes = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    assert outcomes == ["0004"] * 4
    assert _version_rows(empty_db_url) == [("0004",)]


def test_cli_db_status_and_upgrade(empty_db_url: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("general_settings:\n  database_url: os.environ/TP_TEST_DB\nmodel_list: []\n")
    env = {**os.environ, "TP_TEST_DB": empty_db_url}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([TRIOPROXY, "db", *args], capture_output=True, text=True, env=env, timeout=120,
                              stdin=subprocess.DEVNULL)

    status = cli("status", str(config))
    assert status.returncode == 0, status.stderr
    assert "revision: (empty)" in status.stdout and "pending:  0001, 0002, 0003, 0004" in status.stdout
    up = cli("upgrade", str(config))
    assert up.returncode == 0, up.stderr
    assert "revision: 0004" in up.stdout and "up to date" in up.stdout
    assert "up to date" in cli("status", "--url", empty_db_url).stdout


def test_cli_db_errors_are_clear(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    none = subprocess.run([TRIOPROXY, "db", "status"], capture_output=True, text=True, env=env, timeout=60)
    assert none.returncode == 2 and "no database" in none.stderr
    bad = subprocess.run([TRIOPROXY, "db", "upgrade", "--url", "postgresql://u:hunter2@127.0.0.1:1/x"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 1 and "cannot connect" in bad.stderr and "hunter2" not in bad.stderr
    odd = subprocess.run([TRIOPROXY, "db", "status", "--url", "mysql://x/y"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert odd.returncode == 1 and "unsupported database scheme" in odd.stderr
