"""Several ``trioproxy run`` instances started at once on one empty database (a fresh PostgreSQL
database, a fresh SQLite file) create the schema once, start without errors, and share it: a key
generated through one instance works on every other. On PostgreSQL half of them find the database
through LiteLLM's ``DATABASE_HOST`` / ``DATABASE_USERNAME`` / ``DATABASE_PASSWORD`` / ``DATABASE_NAME``."""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa

from conftest import MASTER_KEY
from support.proxy_process import ProxyProcess, write_config
from trioproxy.store import schema
from trioproxy.store.url import parse_database_url

INSTANCES = 4


def _start_together(configs: list[tuple[Path, dict[str, str]]]) -> list[ProxyProcess | BaseException]:
    barrier = threading.Barrier(len(configs))
    started: list[ProxyProcess | BaseException] = [RuntimeError("not started")] * len(configs)

    def start(i: int) -> None:
        path, env = configs[i]
        barrier.wait()
        try:
            started[i] = ProxyProcess(path, env=env, start_timeout=120)
        except BaseException as exc:       # reported by the test, with the instance's log
            started[i] = exc

    threads = [threading.Thread(target=start, args=(i,)) for i in range(len(configs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return started


def _env_parts(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    return {"DATABASE_HOST": f"{parts.hostname}:{parts.port}", "DATABASE_USERNAME": parts.username or "",
            "DATABASE_PASSWORD": parts.password or "", "DATABASE_NAME": parts.path.lstrip("/"),
            "DATABASE_URL": ""}


def test_instances_starting_at_once_create_the_schema_once(empty_db_url: str, backend: str, tmp_path: Path) -> None:
    configs = []
    for i in range(INSTANCES):
        general: dict[str, object] = {"master_key": MASTER_KEY}
        env: dict[str, str] = {}
        if backend == "postgresql" and i % 2:
            env = _env_parts(empty_db_url)          # no database_url: LiteLLM's variables
        else:
            general["database_url"] = empty_db_url
        config = {"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
                  "general_settings": general}
        configs.append((write_config(tmp_path / f"instance{i}", config), env))
    started = _start_together(configs)
    try:
        failed = [s for s in started if not isinstance(s, ProxyProcess)]
        assert not failed, failed
        proxies = [s for s in started if isinstance(s, ProxyProcess)]
        for proxy in proxies:
            assert "Traceback" not in proxy.logs() and "ERROR" not in proxy.logs(), proxy.logs()

        engine = sa.create_engine(parse_database_url(empty_db_url).sqlalchemy_url, poolclass=sa.NullPool)
        try:
            with engine.connect() as conn:
                versions = conn.execute(sa.text(f"SELECT version_num FROM {schema.VERSION_TABLE}")).fetchall()
        finally:
            engine.dispose()
        assert len(versions) == 1

        admin = {"Authorization": f"Bearer {MASTER_KEY}"}
        made = httpx.post(f"{proxies[0].base_url}/key/generate", headers=admin, json={}, timeout=30)
        assert made.status_code == 200, made.text
        key = made.json()["key"]
        for proxy in proxies:
            answer = httpx.post(f"{proxy.base_url}/v1/chat/completions", timeout=30,
                                headers={"Authorization": f"Bearer {key}"},
                                json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
            assert answer.status_code == 200, answer.text
    finally:
        for s in started:
            if isinstance(s, ProxyProcess):
                s.kill()
