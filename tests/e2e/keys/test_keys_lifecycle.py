"""Virtual keys across the proxy's life, through real ``trioproxy run`` processes, on SQLite and on
PostgreSQL: the clear key never stored or shown again, data surviving a restart, startup migrations
of an empty and of a previous-version database, a store outage (503 for what is not cached, cached
keys keep working), and a proxy without a database.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from support.fake_upstream import FakeUpstream
from support.keys_support import (
    GUARDRAILS_FILE,
    MASTER,
    REFLECT_FILE,
    Api,
    Database,
    FakeGuard,
    error,
    keys_config,
    make_database,
)
from support.proxy_process import ProxyProcess, write_config
from trioproxy.auth import hash_key
from trioproxy.store import migrate, parse_database_url


@pytest.fixture
def fresh(backend: str, pg: str | None, tmp_path: Path) -> Iterator[Database]:
    """An empty database of the module's backend, for this test alone."""
    db = make_database(backend, tmp_path / "db", pg)
    yield db
    db.drop()


@pytest.fixture
def started() -> Iterator[list[ProxyProcess]]:
    processes: list[ProxyProcess] = []
    yield processes
    for process in processes:
        process.kill()


def run_proxy(started: list[ProxyProcess], directory: Path, config: dict[str, Any], guard: FakeGuard,
              log_level: str = "info") -> tuple[ProxyProcess, Api]:
    path = write_config(directory, config, files={"reflect.py": REFLECT_FILE, "guards.py": GUARDRAILS_FILE})
    process = ProxyProcess(path, env={"LLM_GUARD_API_BASE": guard.url + "/"}, log_level=log_level)
    started.append(process)
    return process, Api(process)


def test_the_clear_key_is_only_in_the_answer_that_creates_it(fresh: Database, upstream: FakeUpstream,
                                                             guard: FakeGuard, tmp_path: Path,
                                                             started: list[ProxyProcess]) -> None:
    proxy, api = run_proxy(started, tmp_path / "p", keys_config(upstream, fresh.url), guard, log_level="debug")
    made = api.new_key(key_alias="secret-test", models=["gpt-test"])
    creating = len(api.answers)
    clear = made["key"]
    assert api.chat(clear).status_code == 200
    assert api.chat(clear, model="gpt-other").status_code == 403
    api.ok(api.get("/key/info", {"key": clear}))
    api.ok(api.get("/key/info", key=clear))
    api.ok(api.post("/key/update", {"key": clear, "rpm_limit": 5}))
    api.ok(api.post("/key/block", {"key": clear}))
    assert api.chat(clear).status_code == 401
    api.ok(api.post("/key/unblock", {"key": clear}))
    assert api.post(f"/key/{clear}/regenerate", {}, key=api.new_key()["key"]).status_code == 403
    api.get("/key/list", {"return_full_object": "true"})
    rotated = api.ok(api.post(f"/key/{clear}/regenerate", {"grace_period": "1h"}))
    rotating = len(api.answers)
    new_clear = rotated["key"]
    assert api.chat(new_clear).status_code == 200 and api.chat(clear).status_code == 200   # grace period
    api.ok(api.post("/key/delete", {"keys": [new_clear]}))
    assert api.chat(clear).status_code == 401 and api.chat(new_clear).status_code == 401
    audit = api.ok(api.get("/audit", {"page_size": "100"}))
    assert {r["action"] for r in audit["audit_logs"]} >= {"created", "updated", "blocked", "unblocked", "rotated",
                                                          "deleted"}
    proxy.terminate()
    for secret in (clear, new_clear):
        assert secret.encode() not in fresh.everything(), "a clear key in the database"
        assert secret not in proxy.logs(), "a clear key in the log"
        assert secret not in str(audit)
    shown = [i for i, text in enumerate(api.answers) if clear in text]
    assert shown == [creating - 1], "the clear key in an answer other than the one that created it"
    shown = [i for i, text in enumerate(api.answers) if new_clear in text]
    assert shown == [rotating - 1]


def test_data_survives_a_restart_and_startup_migrates_an_empty_database(
        fresh: Database, upstream: FakeUpstream, guard: FakeGuard, tmp_path: Path,
        started: list[ProxyProcess]) -> None:
    assert migrate.status(fresh.url).current is None                  # empty: no schema at all
    config = keys_config(upstream, fresh.url)
    first, api = run_proxy(started, tmp_path / "first", config, guard)
    assert migrate.status(fresh.url).up_to_date
    team = api.ok(api.post("/team/new", {"team_id": "kept", "models": ["gpt-test"]}))
    key = api.new_key(team_id=team["team_id"], key_alias="survivor")["key"]
    blocked = api.new_key()["key"]
    api.ok(api.post("/key/block", {"key": blocked}))
    api.ok(api.post("/customer/block", {"user_ids": ["still-blocked"]}))
    assert first.terminate(signal.SIGTERM) == 0
    api.close()

    second, api = run_proxy(started, tmp_path / "second", config, guard)
    assert api.chat(key).status_code == 200
    assert api.chat(key, model="gpt-other").status_code == 403         # the team's models, still
    assert api.chat(blocked).status_code == 401
    assert api.chat(MASTER, user="still-blocked").status_code == 403
    assert api.ok(api.get("/key/info", {"key": key}))["info"]["key_alias"] == "survivor"
    assert api.ok(api.get("/audit", {"object_id": "kept"}))["total"] == 1
    api.close()


def test_startup_upgrades_a_previous_version_database(fresh: Database, upstream: FakeUpstream, guard: FakeGuard,
                                                      tmp_path: Path, started: list[ProxyProcess]) -> None:
    migrate.upgrade(fresh.url, "0001")
    assert migrate.status(fresh.url).pending
    clear = "sk-made-at-0001-" + "q" * 30
    engine = sa.create_engine(parse_database_url(fresh.url).sqlalchemy_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO virtual_keys (token, key_name, key_alias) VALUES (:t, :n, 'old')"),
                     {"t": hash_key(clear), "n": "sk-...qqqq"})
    engine.dispose()
    proxy, api = run_proxy(started, tmp_path / "p", keys_config(upstream, fresh.url), guard)
    assert migrate.status(fresh.url).up_to_date
    assert "Running upgrade 0001 -> 0002" in proxy.logs()
    assert api.chat(clear).status_code == 200
    assert api.ok(api.get("/key/info", key=clear))["info"]["key_alias"] == "old"
    api.close()


def test_a_database_that_cannot_be_reached_stops_startup_with_one_clear_line(
        upstream: FakeUpstream, guard: FakeGuard, tmp_path: Path, backend: str) -> None:
    url = ("postgresql://proxy:db-PASSWORD-9@127.0.0.1:9/proxy" if backend == "postgresql"
           else f"sqlite:///{tmp_path / 'no-such-dir' / 'x' / 'proxy.db'}")
    path = write_config(tmp_path / "p", keys_config(upstream, url),
                        files={"reflect.py": REFLECT_FILE, "guards.py": GUARDRAILS_FILE})
    with pytest.raises(RuntimeError, match="exited with 1 before listening") as failed:
        ProxyProcess(path, env={"LLM_GUARD_API_BASE": guard.url + "/"})
    text = str(failed.value)
    assert "trioproxy could not start: general_settings.database_url" in text
    assert "db-PASSWORD-9" not in text and "Traceback" not in text


def _pg_outage(db: Database, on: bool) -> None:
    assert db._admin_dsn is not None
    with psycopg.connect(db._admin_dsn, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {db._name} ALLOW_CONNECTIONS {'false' if on else 'true'}")
        if on:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db._name,))


def test_a_store_outage_is_a_503_for_what_is_not_cached(fresh: Database, upstream: FakeUpstream, guard: FakeGuard,
                                                         tmp_path: Path, started: list[ProxyProcess]) -> None:
    """PostgreSQL down: cached keys keep working; an uncached key, a new customer, a management call
    get a 503 (never a 401: the key is fine), with a message that names no host; then it recovers.
    SQLite has no server to lose: another process holding its write lock makes writes 503 while
    every read (keys, customers) keeps answering."""
    config = keys_config(upstream, fresh.url, database_connection_timeout=1)
    proxy, api = run_proxy(started, tmp_path / "p", config, guard)
    cached = api.new_key()["key"]
    uncached = api.new_key()["key"]
    assert api.chat(cached).status_code == 200
    assert api.chat(MASTER, user="seen-before").status_code == 200
    if fresh.kind == "postgresql":
        _pg_outage(fresh, True)
        try:
            assert api.chat(cached).status_code == 200                      # from the cache
            assert api.chat(MASTER, user="seen-before").status_code == 200
            for response in (api.chat(uncached), api.chat(MASTER, user="never-seen"),
                             api.post("/key/generate", {})):
                assert response.status_code == 503, response.text
                assert error(response)["code"] == "store_unavailable"
                assert "127.0.0.1" not in response.text and "postgres" not in response.text
        finally:
            _pg_outage(fresh, False)
        deadline = time.monotonic() + 30                                    # the pool reconnects
        while api.chat(uncached).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert api.chat(uncached).status_code == 200
        assert "the store is unavailable" in proxy.logs()
    else:
        assert fresh.path is not None
        locker = sqlite3.connect(fresh.path, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")                                   # another process's write lock
        try:
            write = api.post("/key/generate", {})
            assert write.status_code == 503 and error(write)["code"] == "store_unavailable"
            assert api.chat(cached).status_code == 200 and api.chat(uncached).status_code == 200
            assert api.chat(MASTER, user="never-seen").status_code == 200
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert api.post("/key/generate", {}).status_code == 200
    api.close()


def test_without_a_database_the_master_key_serves_and_management_says_why_not(
        upstream: FakeUpstream, guard: FakeGuard, tmp_path: Path, started: list[ProxyProcess]) -> None:
    proxy, api = run_proxy(started, tmp_path / "p", keys_config(upstream, None), guard)
    assert api.chat(MASTER).status_code == 200
    for response in (api.post("/key/generate", {}), api.get("/key/list"), api.get("/audit"),
                     api.post("/team/new", {}), api.post("/customer/new", {"user_id": "x"})):
        assert response.status_code == 501
        assert error(response)["message"].startswith("Connect Proxy to database to generate keys")
    # blocked_user_check is configured: its in-memory list serves /customer/block without a database
    assert api.ok(api.post("/customer/block", {"user_ids": ["mem"]}))["blocked_users"] == ["config-blocked", "mem"]
    assert api.chat(MASTER, user="mem").status_code == 403
    refused = api.chat("sk-looks-like-a-virtual-key-0000")
    assert refused.status_code == 401
    api.close()
