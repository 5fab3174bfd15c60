"""Spend records survive ``kill -9`` and shutdown, through real ``trioproxy run`` processes on
SQLite and on PostgreSQL.

**kill -9 in the middle of a burst.** A key sends ``ANSWERED`` requests that the upstream answers
(plain and streamed: each client reads its whole answer) and ``IN_FLIGHT`` requests that the
upstream holds (it has received them, so they were admitted: admission is before the upstream).
Then the proxy is killed with SIGKILL and started again on the same database and outbox. The
assertion, exact:

* the key has exactly ``ANSWERED + IN_FLIGHT`` records (every admitted request, once);
* the ``success`` records are exactly the ``ANSWERED`` requests — their ids are the ids the clients
  received, and their costs the costs the clients were told — and they equal the requests the
  upstream answered in full;
* the other ``IN_FLIGHT`` records are failures, cost 0, error "proxy restarted before the request
  finished".

Why exact, not "at least": an answered request's final record was copied into the memory-mapped
outbox before the client got its last byte, so it is in the kernel's page cache when SIGKILL comes;
an in-flight request's admission entry was copied there before its upstream call; the restart
replays the dead process's outbox before serving, and the store keeps one row per request id.

**Shutdown with queued records.** The test locks the spend table so the writer cannot store, sends
requests (their records queue), sends SIGTERM, and only then releases the lock: the drain stores
every queued record before the process exits 0 — counted in the database after the exit.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from support.fake_upstream import Behavior, FakeUpstream
from support.keys_support import MASTER, Api, Database
from support.proxy_process import ProxyProcess, write_config
from support.spend_support import rows_of, spend_config, wait_for

ANSWERED = 8          # half of them streamed
IN_FLIGHT = 5


@pytest.fixture
def start(database: Database, upstream: FakeUpstream, tmp_path: Path) -> Iterator[Callable[..., ProxyProcess]]:
    started: list[ProxyProcess] = []
    directory = tmp_path / "proxy"      # the same config, outbox and working directory on every start

    def run(**general: object) -> ProxyProcess:
        config = spend_config(upstream, database.url, **general)
        process = ProxyProcess(write_config(directory, config))
        started.append(process)
        return process

    yield run
    for process in started:
        process.kill()


def _answer(proxy: ProxyProcess, key: str, stream: bool, content: str, model: str = "gpt-test") -> httpx.Response:
    with httpx.Client(base_url=proxy.base_url, timeout=60) as client:
        response = client.post("/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                               json={"model": model, "stream": stream,
                                     "stream_options": {"include_usage": True} if stream else None,
                                     "messages": [{"role": "user", "content": content}]})
        response.read()
        return response


def test_kill_9_mid_burst_then_restart_loses_nothing_and_counts_nothing_twice(
        start: Callable[..., ProxyProcess], upstream: FakeUpstream) -> None:
    first = start()
    api = Api(first)
    made = api.new_key(max_budget=100, max_parallel_requests=50)
    key, token = made["key"], made["token"]
    hold = threading.Event()
    upstream.set_behavior("up-held", Behavior(hold=hold))
    told: dict[str, float] = {}          # request id → the cost the client was told (0: a stream's)
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        try:
            held = [pool.submit(_answer, first, key, False, "held", "gpt-held") for _ in range(IN_FLIGHT)]
            answered = []
            for i in range(ANSWERED):
                response = _answer(first, key, i % 2 == 1, f"answered {i}")
                assert response.status_code == 200
                assert response.text.endswith("data: [DONE]\n\n") if i % 2 else response.json()["choices"]
                answered.append(response)
            wait_for(lambda: len([r for r in upstream.requests if r.json["model"] == "up-held"]) == IN_FLIGHT,
                     what="the held requests at the upstream")
            first.process.send_signal(signal.SIGKILL)       # mid-burst: IN_FLIGHT requests are open
            first.process.wait(timeout=10)
        finally:
            hold.set()
            api.close()
        for future in held:
            assert future.exception() is not None or future.result().status_code != 200
    for response in answered:
        told[response.headers["x-litellm-call-id"]] = float(response.headers.get("x-litellm-response-cost", 0))
    upstream_answered = [r for r in upstream.requests if r.json["model"] == "up-model" and r.completed]
    assert len(upstream_answered) == ANSWERED

    second = start()                    # replays the dead process's outbox before it listens
    api = Api(second)
    try:
        rows = rows_of(api, api_key=token)
        assert len(rows) == ANSWERED + IN_FLIGHT
        success = {r["request_id"]: r for r in rows if r["status"] == "success"}
        assert sorted(success) == sorted(told)
        for request_id, cost in told.items():
            if cost:
                assert success[request_id]["spend"] == pytest.approx(cost)
            assert success[request_id]["spend"] > 0
        lost = [r for r in rows if r["status"] == "failure"]
        assert len(lost) == IN_FLIGHT
        for row in lost:
            assert row["spend"] == 0 and row["metadata"]["error_information"]["error_message"] == \
                "proxy restarted before the request finished"
        # the aggregate equals the sum of the records (the replay counted each once)
        info = api.ok(api.get("/key/info", {"key": token}))["info"]
        assert info["spend"] == pytest.approx(sum(r["spend"] for r in success.values()))
    finally:
        api.close()


def _lock_spend_table(database: Database) -> Callable[[], None]:
    """Hold a write lock on the ledger from outside the proxy; returns the release."""
    if database.kind == "sqlite":
        conn = sqlite3.connect(str(database.path), isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")

        def release_sqlite() -> None:
            conn.execute("ROLLBACK")
            conn.close()

        return release_sqlite
    assert database.dsn is not None
    pg = psycopg.connect(database.dsn)
    pg.execute('LOCK TABLE "spend_logs" IN EXCLUSIVE MODE')

    def release_pg() -> None:
        pg.rollback()
        pg.close()

    return release_pg


def test_shutdown_with_queued_records_loses_none(start: Callable[..., ProxyProcess], database: Database) -> None:
    proxy = start(database_connection_timeout=0.5, graceful_shutdown_timeout=30)
    api = Api(proxy)
    made = api.new_key()
    assert api.chat(made["key"]).status_code == 200          # the key is cached: no store read needed
    wait_for(lambda: rows_of(api, api_key=made["token"]), what="the first record")
    release = _lock_spend_table(database)
    try:
        ids = []
        for i in range(6):
            answer = api.chat(made["key"], content=f"queued {i}", stream=bool(i % 2))
            assert answer.status_code == 200
            ids.append(answer.headers["x-litellm-call-id"])
        assert len(rows_of(api, api_key=made["token"])) == 1  # queued: the writer cannot store them
        proxy.process.send_signal(signal.SIGTERM)
        wait_for(lambda: "received SIGTERM" in proxy.logs(), what="the shutdown to begin")
    finally:
        release()
        api.close()
    assert proxy.process.wait(timeout=60) == 0          # drained, then exited
    if database.kind == "sqlite":
        with sqlite3.connect(str(database.path)) as conn:
            stored = {r[0] for r in conn.execute('SELECT "request_id" FROM "spend_logs" WHERE "api_key" = ?',
                                                 (made["token"],))}
    else:
        with psycopg.connect(database.dsn) as conn:  # type: ignore[arg-type]
            stored = {r[0] for r in conn.execute('SELECT "request_id" FROM "spend_logs" WHERE "api_key" = %s',
                                                 (made["token"],))}
    assert set(ids) <= stored and len(stored) == len(ids) + 1
    assert MASTER not in proxy.logs()
