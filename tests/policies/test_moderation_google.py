"""``google_text_moderation`` through a real ``trioproxy run``, against a fake Natural Language API.

The fake (``support.fake_google``) also serves the service account's ``token_uri``: the real
google-auth code signs a JWT with the account's key (a fresh RSA key written by the test), exchanges
it for a token there, and the proxy sends that token to ``POST /v1/documents:moderateText``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import MASTER_KEY, upstream_model
from support.fake_google import FakeGoogle
from support.fake_upstream import FakeUpstream
from support.proxy_process import ProxyProcess, write_config

HEADERS = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture
def google(tmp_path: Path) -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        fake.scores = {"attack": {"Violent": 0.9}, "idiot": {"Toxic": 0.2, "Insult": 0.5},
                       "tragedy": {"Death, Harm & Tragedy": 0.85}}
        yield fake


def env(google: FakeGoogle, tmp_path: Path) -> dict[str, str]:
    return {"GOOGLE_APPLICATION_CREDENTIALS": str(google.service_account_file(tmp_path)),
            "GOOGLE_TEXT_MODERATION_API_BASE": google.url}


def config(fake: FakeUpstream, **settings: Any) -> dict[str, Any]:
    return {"model_list": [upstream_model(fake, "gpt-test", "up-model")],
            "general_settings": {"master_key": MASTER_KEY},
            "litellm_settings": {"num_retries": 0, "callbacks": ["google_text_moderation"], **settings}}


def chat(proxy: ProxyProcess, text: str) -> httpx.Response:
    return httpx.post(f"{proxy.url}/chat/completions", headers=HEADERS, timeout=30,
                      json={"model": "gpt-test", "messages": [{"role": "system", "content": "Be kind"},
                                                              {"role": "user", "content": text}]})


def test_benign_text_passes_with_a_service_account_token(
        google: FakeGoogle, fake_upstream: FakeUpstream, tmp_path: Path,
        start_proxy: Callable[..., ProxyProcess]) -> None:
    proxy = start_proxy(config(fake_upstream), env=env(google, tmp_path))
    assert chat(proxy, "hello there").status_code == 200
    assert chat(proxy, "and again").status_code == 200
    tokens = google.seen(lambda s: s.path == "/token")
    assert len(tokens) == 1                                         # kept until it expires
    moderations = google.seen(lambda s: s.path == "/v1/documents:moderateText")
    assert [m.json() for m in moderations] == [
        {"document": {"type": "PLAIN_TEXT", "content": "Be kind\nhello there"}},
        {"document": {"type": "PLAIN_TEXT", "content": "Be kind\nand again"}}]
    assert all(m.headers["authorization"] == "Bearer ya29.fake-1" for m in moderations)


def test_a_category_over_the_default_threshold_is_rejected(
        google: FakeGoogle, fake_upstream: FakeUpstream, tmp_path: Path,
        start_proxy: Callable[..., ProxyProcess]) -> None:
    proxy = start_proxy(config(fake_upstream), env=env(google, tmp_path))
    response = chat(proxy, "plan an attack")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "guardrail_violation"
    assert error["message"] == "Violated content safety policy: Violent (confidence 0.90 > 0.8)"
    assert chat(proxy, "you idiot").status_code == 200              # 0.2 and 0.5 are below 0.8


def test_thresholds_in_both_spellings(google: FakeGoogle, fake_upstream: FakeUpstream, tmp_path: Path,
                                      start_proxy: Callable[..., ProxyProcess]) -> None:
    proxy = start_proxy(config(fake_upstream, google_moderation_confidence_threshold=0.4,
                               toxic_confidence_threshold=0.1,          # LiteLLM's code's spelling
                               violent_threshold=0.95,                  # the spec's table's spelling
                               death_harm_and_tragedy_threshold=0.9),
                        env=env(google, tmp_path))
    response = chat(proxy, "you idiot")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == ("Violated content safety policy: Toxic (confidence 0.20 > 0.1), "
                                                   "Insult (confidence 0.50 > 0.4)")
    assert chat(proxy, "plan an attack").status_code == 200         # 0.9 < 0.95
    assert chat(proxy, "a tragedy").status_code == 200              # 0.85 < 0.9


def test_outage_fails_closed_unless_fail_open(google: FakeGoogle, fake_upstream: FakeUpstream, tmp_path: Path,
                                              start_proxy: Callable[..., ProxyProcess]) -> None:
    google.moderation_status = 500
    closed = start_proxy(config(fake_upstream), env=env(google, tmp_path))
    response = chat(closed, "hello")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "guardrail_unavailable"
    assert "'google_text_moderation'" in response.json()["error"]["message"]
    assert "it answered HTTP 500" in response.json()["error"]["message"]
    opened = start_proxy(config(fake_upstream, google_moderation_fail_open=True), env=env(google, tmp_path))
    assert chat(opened, "hello").status_code == 200


def test_startup_errors(google: FakeGoogle, fake_upstream: FakeUpstream, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    def check(raw: dict[str, Any], extra_env: dict[str, str]) -> str:
        path = write_config(tmp_path / str(len(extra_env)), raw)
        done = subprocess.run([sys.executable, "-m", "trioproxy", "check", str(path)], capture_output=True,
                              text=True, timeout=120, env={**os.environ, **extra_env})
        assert done.returncode == 1
        return done.stderr

    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    assert "google_text_moderation needs the environment variable GOOGLE_APPLICATION_CREDENTIALS" in check(
        config(fake_upstream), {})
    both = config(fake_upstream, violent_confidence_threshold=0.3, violent_threshold=0.5)
    assert ("litellm_settings: violent_confidence_threshold=0.3 and violent_threshold=0.5 disagree"
            in check(both, env(google, tmp_path)))
