"""``docs/examples/deploy``: the compose-style deployment of ``docs/deploy.md``, mirrored with real
parts — two ``trioproxy run --workers 2`` instances from that very config file, one fresh PostgreSQL
database, one Redis, the environment variables ``compose.yaml`` sets — behave as one proxy: one
schema, a key made on one instance works on the other, an answer cached by one is a hit on the
other, and ``/metrics`` of an instance counts both of its workers.

Revocation within 1 s and shared limits across the two instances are proven by the coordination
branch's tests (issue #13 items 1–4, 7); its wiring adds its checks here (``# coordination:``)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import yaml

from conftest import MASTER_KEY, UPSTREAM_KEY
from support.fake_upstream import Behavior
from support.proxy_process import ProxyProcess
from support.redis_watch import KeyspaceWatcher

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "deploy"


@pytest.fixture
def fresh_pg_url(pg_dsn: str):
    name = f"deploy_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    base, _, _ = pg_dsn.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_the_compose_file_is_what_this_test_runs() -> None:
    compose = yaml.safe_load((EXAMPLE / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "proxy-a", "proxy-b"} <= set(services)
    for name in ("proxy-a", "proxy-b"):
        proxy = services[name]
        assert set(proxy["environment"]) == {"OPENAI_API_BASE", "OPENAI_API_KEY", "LITELLM_MASTER_KEY",
                                             "DATABASE_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"}
        assert "./config.yaml:/etc/trioproxy/config.yaml:ro" in proxy["volumes"]
        assert "--workers 2" in proxy["command"] and "/etc/trioproxy/config.yaml" in proxy["command"]
    assert "noeviction" in services["redis"]["command"]


def test_two_instances_on_one_postgresql_and_one_redis(tmp_path, fake_upstream, fresh_pg_url, redis_url) -> None:
    redis = urlsplit(redis_url)
    env = {"OPENAI_API_BASE": fake_upstream.base_url, "OPENAI_API_KEY": UPSTREAM_KEY,
           "LITELLM_MASTER_KEY": MASTER_KEY, "DATABASE_URL": fresh_pg_url,
           "REDIS_HOST": redis.hostname or "127.0.0.1", "REDIS_PORT": str(redis.port), "REDIS_PASSWORD": ""}
    fake_upstream.set_behavior("gpt-4o", Behavior(content="one proxy, two instances"))
    instances: list[ProxyProcess] = []
    try:
        for name in ("a", "b"):
            directory = tmp_path / name
            directory.mkdir()
            config = shutil.copy(EXAMPLE / "config.yaml", directory / "config.yaml")   # byte for byte
            instances.append(ProxyProcess(Path(config), env=env, args=["--workers", "2"], start_timeout=120))
        a, b = instances
        admin = {"Authorization": f"Bearer {MASTER_KEY}"}

        # the management API on one instance, the key used on the other (one database)
        made = httpx.post(f"{a.base_url}/key/generate", headers=admin, json={"models": ["gpt-4o"]}, timeout=30)
        assert made.status_code == 200, made.text
        user = {"Authorization": f"Bearer {made.json()['key']}"}
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": f"shared? {uuid.uuid4()}"}]}

        # the response cache: stored through instance a, a hit on instance b
        with KeyspaceWatcher(redis_url, "trioproxy:cache:prod:*") as watcher:
            first = httpx.post(f"{a.url}/chat/completions", headers=user, json=body, timeout=30)
            assert first.status_code == 200, first.text
            watcher.wait_set()
        second = httpx.post(f"{b.url}/chat/completions", headers=user, json=body, timeout=30)
        assert second.status_code == 200, second.text
        assert second.headers["x-litellm-cache-key"].startswith("prod:")
        assert second.json()["choices"][0]["message"]["content"] == "one proxy, two instances"
        assert len(fake_upstream.requests) == 1

        # coordination: a key deleted on a is refused by b within 1 s (issue #13 item 1, redis branch)

        # /metrics of an instance: its two workers' totals (the same count from either of them)
        for instance, expected in ((a, 1), (b, 1)):
            for _ in range(4):
                with httpx.Client(base_url=instance.base_url, headers=admin, timeout=30) as fresh:
                    text = fresh.get("/metrics").text
                count = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                            if line.startswith('trioproxy_requests_total{model="gpt-4o"'))
                assert count == expected
        for instance in instances:
            logs = instance.logs()
            assert "Traceback" not in logs and UPSTREAM_KEY not in logs and MASTER_KEY not in logs
            assert instance.terminate() == 0
    finally:
        for instance in instances:
            instance.kill()
