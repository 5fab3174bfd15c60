"""``litellm_settings.default_team_settings`` (per-team logging callbacks, LiteLLM's docs' example) in
a real ``trioproxy run`` on SQLite with the official openai client: a team's requests also go to its
own Langfuse project (its keys, from ``os.environ/``), other requests do not; the config-wide
``langfuse`` logs everything with the environment's keys. The strict Langfuse fake checks each
project's Basic auth. The proxy is stopped with SIGTERM before reading (the queue is drained)."""

from __future__ import annotations

import base64
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_collectors import FakeCollectors
from trioproxy.config import ConfigError, parse_config
from trioproxy.observability.callbacks import load_callbacks

TEAM_PUBLIC, TEAM_SECRET = "pk-lf-team-one-0123456789", "sk-lf-team-SECRET-0123456789"


@pytest.fixture
def collectors() -> Iterator[FakeCollectors]:
    with FakeCollectors(langfuse_projects={TEAM_PUBLIC: TEAM_SECRET}) as fake:
        yield fake


def _project(batch_request: Any) -> str:
    basic = batch_request.headers["authorization"].removeprefix("Basic ")
    return base64.b64decode(basic).decode().split(":", 1)[0]


def test_a_teams_requests_reach_its_own_project(start_proxy: Any, fake_upstream: Any, collectors: FakeCollectors,
                                               tmp_path: Path) -> None:
    c = collectors.creds
    config = {
        "model_list": [upstream_model(fake_upstream)],
        "general_settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp_path / 'proxy.db'}"},
        "litellm_settings": {
            "callbacks": ["langfuse"],
            "default_team_settings": [
                {"team_id": "team-1", "success_callback": ["langfuse"], "failure_callback": ["langfuse"],
                 "langfuse_public_key": "os.environ/LANGFUSE_PROJECT1_PUBLIC",
                 "langfuse_secret": "os.environ/LANGFUSE_PROJECT1_SECRET"},
            ],
        },
    }
    env = {"LANGFUSE_PUBLIC_KEY": c.langfuse_public, "LANGFUSE_SECRET_KEY": c.langfuse_secret,
           "LANGFUSE_HOST": collectors.url, "LANGFUSE_PROJECT1_PUBLIC": TEAM_PUBLIC,
           "LANGFUSE_PROJECT1_SECRET": TEAM_SECRET}
    proxy = start_proxy(config, env=env)
    admin = {"Authorization": f"Bearer {MASTER_KEY}"}
    assert httpx.post(f"{proxy.base_url}/team/new", json={"team_id": "team-1"}, headers=admin).status_code == 200
    team_key = httpx.post(f"{proxy.base_url}/key/generate", json={"team_id": "team-1"}, headers=admin).json()["key"]
    for key, text in ((team_key, "from team one"), (MASTER_KEY, "from the admin")):
        client = openai.OpenAI(api_key=key, base_url=proxy.url, max_retries=0)
        client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": text}])
    assert proxy.terminate(signal.SIGTERM) == 0
    assert collectors.problems == []

    by_project: dict[str, list[str]] = {}
    for request in collectors.on("/api/public/ingestion"):
        generation = next(e["body"] for e in request.payload["batch"] if e["type"] == "generation-create")
        by_project.setdefault(_project(request), []).append(generation["input"][0]["content"])
    assert sorted(by_project[c.langfuse_public]) == ["from team one", "from the admin"]   # config-wide
    assert by_project[TEAM_PUBLIC] == ["from team one"]                                   # the team's only
    logs = proxy.logs()
    for secret in (TEAM_SECRET, c.langfuse_secret, MASTER_KEY, UPSTREAM_KEY):
        assert secret not in logs


def test_team_entries_are_checked_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-placeholder")
    monkeypatch.delenv("LANGFUSE_SECRET_KEY", raising=False)
    raw = {"model_list": [], "litellm_settings": {"default_team_settings": [
        {"team_id": "t1", "success_callback": ["custom_callbacks.fn", "langfuse"]},
        {"team_id": "t2", "success_callback": ["langfuse"], "langfuse_secret": "sk-lf-team-two-SECRET-42"},
        {"success_callback": ["langfuse"]},
    ]}}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "c.yaml", Path("."))
    assert "default_team_settings[2].team_id: is required" in str(caught.value)
    raw["litellm_settings"]["default_team_settings"].pop()
    config = parse_config(raw, "c.yaml", Path("."))
    assert "sk-lf-team-two-SECRET-42" in config.secrets()
    with pytest.raises(ConfigError) as caught:
        load_callbacks(config, [])
    problems = "\n".join(caught.value.problems)
    assert "default_team_settings[0].success_callback[0]: 'custom_callbacks.fn': per-team callbacks are" in problems
    assert "default_team_settings[0].success_callback[1]: 'langfuse'" in problems and "LANGFUSE_SECRET_KEY" in problems
    assert "default_team_settings[1]" not in problems        # its own secret, the environment's public key
