"""Shared fixtures: a fake OpenAI upstream on loopback and real ``trioproxy run`` processes."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))          # support/
sys.path.insert(1, str(Path(__file__).parent.parent))   # handlers/ (the example handlers)

from support.fake_upstream import FakeUpstream
from support.proxy_process import ProxyProcess, write_config

UPSTREAM_KEY = "sk-upstream-SECRET-0123456789abcdef"
MASTER_KEY = "sk-master-SECRET-abcdef0123456789"


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake
        assert not fake.errors, fake.errors


def upstream_model(fake: FakeUpstream, model_name: str = "gpt-test", upstream_name: str = "up-model",
                   **params: Any) -> dict[str, Any]:
    """A model_list entry pointing at the fake upstream."""
    return {"model_name": model_name,
            "litellm_params": {"model": f"openai/{upstream_name}", "api_base": fake.base_url,
                               "api_key": UPSTREAM_KEY, **params}}


@pytest.fixture
def start_proxy(tmp_path: Path) -> Iterator[Callable[..., ProxyProcess]]:
    """``start_proxy(config_dict_or_yaml, files={...}, env={...})`` → a running ProxyProcess."""
    started: list[ProxyProcess] = []

    def start(config: dict[str, Any] | str | None, *, files: dict[str, str] | None = None,
              env: dict[str, str] | None = None, args: list[str] | None = None, log_level: str = "info",
              subdir: str | None = None) -> ProxyProcess:
        directory = tmp_path / (subdir or f"proxy{len(started)}")
        path = write_config(directory, config, files=files) if config is not None else None
        proxy = ProxyProcess(path, env=env, args=args, log_level=log_level)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.kill()


def _service_url(variable: str, what: str) -> str:
    value = os.environ.get(variable)
    if not value:
        pytest.fail(f"{variable} is not set: this test needs a real {what}. Run ./scripts/test (it starts "
                    f"PostgreSQL and Redis for the run), or scripts/pg-redis.sh run -- .venv/bin/pytest ...",
                    pytrace=False)
    return value


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The DSN of the throwaway PostgreSQL server that ``./scripts/test`` starts (never skipped)."""
    return _service_url("TEST_PG_DSN", "PostgreSQL server")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of the throwaway Redis server that ``./scripts/test`` starts (never skipped)."""
    return _service_url("TEST_REDIS_URL", "Redis server")
