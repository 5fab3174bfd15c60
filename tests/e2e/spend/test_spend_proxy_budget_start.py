"""The proxy budget's window start through real ``trioproxy run`` processes (SQLite file and
PostgreSQL): the first start with ``litellm_settings.budget_duration`` stores it, a restart keeps
it, a changed duration starts a new sequence; ``/global/spend`` answers for that window."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from support.fake_upstream import FakeUpstream
from support.keys_support import Api, Database
from support.proxy_process import ProxyProcess, write_config
from support.spend_support import spend_config, wait_for


def _stored(database: Database) -> tuple[str, str] | None:
    sql = 'SELECT budget_duration, budget_start FROM proxy_budget WHERE id = \'proxy\''
    if database.kind == "sqlite":
        with sqlite3.connect(str(database.path)) as conn:
            row = conn.execute(sql).fetchone()
    else:
        with psycopg.connect(database.dsn, autocommit=True) as conn:  # type: ignore[arg-type]
            row = conn.execute(sql).fetchone()
    return (row[0], str(row[1])) if row else None


def _start(upstream: FakeUpstream, database: Database, directory: Path, duration: str) -> ProxyProcess:
    config: dict[str, Any] = spend_config(upstream, database.url,
                                          litellm={"max_budget": 100.0, "budget_duration": duration})
    return ProxyProcess(write_config(directory, config))


def test_the_first_start_is_kept_across_restarts_and_a_new_duration_starts_anew(
        database: Database, upstream: FakeUpstream, tmp_path: Path) -> None:
    first = _start(upstream, database, tmp_path / "a", "1d")
    try:
        stored = wait_for(lambda: _stored(database), what="the proxy budget's start")
        assert stored[0] == "1d"
        api = Api(first)
        try:
            answer = api.ok(api.get("/global/spend"))
            assert answer["max_budget"] == pytest.approx(100.0) and answer["spend"] >= 0
        finally:
            api.close()
    finally:
        first.kill()
    again = _start(upstream, database, tmp_path / "b", "1d")          # a restart (it has started): the same start
    try:
        assert _stored(database) == stored
    finally:
        again.kill()
    changed = _start(upstream, database, tmp_path / "c", "2d")        # set anew: a new first window
    try:
        now = wait_for(lambda: (s := _stored(database)) and s[0] == "2d" and s, what="the new duration's start")
        assert now[1] != stored[1]
    finally:
        changed.kill()
